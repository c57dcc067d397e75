"""/staff/reports (report and admin): the `report` command's choices as a
form, its summary on the page, and the file as a streamed download.

The words are the command's (gateway/reports/grammar.py and periods.py),
so a choice the command refuses is refused here with the same sentence.
The summary adds up the same rows the file holds (reports/summary.py).
The download writes the file as the mail command does (export.run_report,
the writer in a thread pulling rows from the database a batch at a time)
and sends each 64 KiB as it is written: a year of 100,000 requests never
sits in memory, and the first bytes leave before the last rows are read.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from typing import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.core.models import Firm, Level
from gateway.reports import periods
from gateway.reports.export import Report, period_of, run_report, selection_of
from gateway.reports.grammar import FORMATS, PAYMENT_FORMATS, STATUSES, GrammarError, ReportSpec, parse_report_args
from gateway.reports.summary import Summary
from gateway.reports.writers import iif, json_writer, sage, xlsx
from gateway.reports.writers.base import CSV, ZIP, Written
from web.client import translator
from web.downloads import content_disposition
from web.staff.pages import StaffPages

CHUNK = 64 * 1024
# Each format's file; the bank-statement formats become a zip of several
# files when they need more than one (writers/bankfiles.py), which the
# first bytes of the file tell (a zip starts "PK").
FILES = {"csv": Written("csv", CSV), "xlsx": Written("xlsx", xlsx.MEDIA_TYPE),
         "json": Written("json", json_writer.MEDIA_TYPE), "iif": Written("iif", iif.MEDIA_TYPE),
         "qbo": Written("csv", CSV), "xero": Written("csv", CSV), "sage": Written("txt", sage.MEDIA_TYPE)}
ZIPPED = Written("zip", ZIP)


class Cancelled(Exception):
    """The browser went away: the writer stops at its next write."""


class _Pipe(io.RawIOBase):
    """A file the report's writer (in its thread) writes to and the response
    reads from (in the event loop), a few chunks apart at most: a slow
    browser slows the writer down instead of the file piling up in memory."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4)
        self.buffer = bytearray()
        self.cancelled = threading.Event()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.cancelled.is_set():
            raise Cancelled
        self.buffer += data
        if len(self.buffer) >= CHUNK:
            self._send(bytes(self.buffer))
            self.buffer.clear()
        return len(data)

    def _send(self, chunk: bytes | None) -> None:
        asyncio.run_coroutine_threadsafe(self.chunks.put(chunk), self.loop).result()

    async def finish(self) -> None:
        """After the writer is done (in the loop): the rest, then the end."""
        if self.buffer:
            await self.chunks.put(bytes(self.buffer))
            self.buffer.clear()
        await self.chunks.put(None)

    def cancel(self) -> None:
        self.cancelled.set()
        while not self.chunks.empty():  # frees a writer waiting for room
            self.chunks.get_nowait()


def period_word(params) -> str:
    """The period picked: one of the words, or the range of two dates."""
    word = params.get("period", "").strip().lower()
    if word == "range":
        first, last = params.get("from", "").strip(), params.get("to", "").strip()
        return f"{first}..{last}" if first and last else "range"
    return word


class Reports:
    def __init__(self, pages: StaffPages) -> None:
        self.pages = pages
        self.deps = pages.deps

    def routes(self) -> list[Route]:
        return [Route("/staff/reports", self.show, methods=["GET"]),
                Route("/staff/reports/file", self.download, methods=["GET"])]

    def _spec(self, request: Request, firm: Firm):
        """(spec, period) from the query, or the sentence that says what is wrong."""
        params = request.query_params
        words = [params.get("format", ""), period_word(params), params.get("status", "") or "all"]
        try:
            spec = parse_report_args(words)
            return spec, period_of(firm, spec, self.deps.clock())
        except (GrammarError, periods.PeriodError) as exc:
            return str(exc)

    async def show(self, request: Request) -> Response:
        signed_in = await self.pages.member(request, Level.REPORT)
        if isinstance(signed_in, Response):
            return signed_in
        firm = signed_in.firm
        params = request.query_params
        context = {"formats": FORMATS, "payment_formats": PAYMENT_FORMATS, "statuses": STATUSES,
                   "periods": periods.WORDS, "chosen": dict(params), "error": "", "summary": None}
        if params.get("format"):
            got = self._spec(request, firm)
            if isinstance(got, str):
                context["error"] = got
            else:
                spec, period = got
                summary = Summary(spec, period)
                async for batch in selection_of(firm, spec, period).batches():
                    summary.add(batch)
                context.update(self._summary(request, spec, summary))
        return await self.pages.render(request, signed_in, "pages/staff/reports.html", context,
                                       status=400 if context["error"] else 200, section="/staff/reports")

    def _summary(self, request: Request, spec: ReportSpec, summary: Summary) -> dict:
        t = translator(request)
        rows = []
        for currency in sorted(summary.by_currency):
            totals = summary.by_currency[currency]
            money = lambda minor: t.amount(minor, currency)  # noqa: E731
            rows.append({"currency": currency, "count": totals.count, "paid": totals.paid,
                         "amount": money(totals.amount_minor), "card_fees": money(totals.card_fee_minor),
                         "gross": money(totals.gross_minor), "provider_fees": money(totals.provider_fee_minor),
                         "platform_fees": money(totals.platform_fee_minor), "net": money(totals.net_minor),
                         "refunded": money(totals.refunded_minor), "net_unknown": totals.net_unknown})
        period = summary.period
        return {"summary": rows, "spec": spec, "period": period,
                "first_day": t.date(period.first_day), "last_day": t.date(period.last_day),
                "download": request.url.include_query_params().query}

    async def download(self, request: Request) -> Response:
        signed_in = await self.pages.member(request, Level.REPORT)
        if isinstance(signed_in, Response):
            return signed_in
        firm = signed_in.firm
        got = self._spec(request, firm)
        if isinstance(got, str):
            return Response(got, status_code=400, media_type="text/plain")
        spec, period = got
        pipe = _Pipe(asyncio.get_running_loop())

        async def write() -> None:
            try:
                await run_report(firm, spec, period, pipe)
            finally:
                await pipe.finish()

        task = asyncio.create_task(write())
        first = await pipe.chunks.get()
        if first is None:
            await task  # an empty file, or the error that stopped the writer before its first byte
        zipped = spec.format in ("qbo", "xero") and (first or b"").startswith(b"PK\x03\x04")
        written = ZIPPED if zipped else FILES[spec.format]
        name = Report(firm, spec, period, Summary(spec, period), written).filename

        async def body() -> AsyncIterator[bytes]:
            try:
                chunk = first
                while chunk is not None:
                    yield chunk
                    chunk = await pipe.chunks.get()
                await task  # a writer that failed half-way fails the download, not silently
            finally:
                if not task.done():
                    pipe.cancel()
                    with contextlib.suppress(Cancelled, asyncio.CancelledError):
                        await task

        return StreamingResponse(body(), media_type=written.media_type,
                                 headers={"content-disposition": content_disposition(name)})
