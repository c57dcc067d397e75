"""Reports: 100,000 payment requests to XLSX and to CSV, beside the bare
libraries writing the same rows, in the same run.

Cases, each in a process of its own so that its peak memory (VmHWM, the
whole process: interpreter and imports included) is its own:

- report xlsx / report csv: `report FORMAT PERIOD` end to end, reading the
  requests from SQLite in batches and writing the file;
- writer xlsx / writer csv: our writer alone, fed rows made in memory (the
  difference from the report is the database's share);
- openpyxl bare: write-only openpyxl appending the same values, unstyled;
- openpyxl styled: the same values with the amounts in the same currency
  formats, the way openpyxl's documentation shows it (a WriteOnlyCell per
  styled value), with the frozen header and autofilter: the same file
  without our code;
- csv bare: the csv module writing the same values.

Targets (issue 6): the XLSX report at least 0.8 of bare openpyxl's rate,
and every case under 150 MB peak.

Timing on a shared machine moves with other people's load, so each case
runs --rounds times, interleaved, and the best run counts; ratios use CPU
time. With --instructions the cases run instead under valgrind, which
counts the instructions each row costs: a figure that does not move with
load (valgrind must be installed; it takes about a quarter of an hour).

Run: .venv/bin/python bench/bench_reports.py [--rows 100000] [--rounds 3] [--instructions]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from openpyxl import Workbook  # noqa: E402
from openpyxl.cell import WriteOnlyCell  # noqa: E402

from gateway.core import db  # noqa: E402
from gateway.core.models import Firm, PaymentRequest, RequestStatus  # noqa: E402
from gateway.reports.export import period_of, run_report  # noqa: E402
from gateway.reports.grammar import parse_report_args  # noqa: E402
from gateway.reports.periods import parse_period  # noqa: E402
from gateway.reports.rows import Row  # noqa: E402
from gateway.reports.writers import WRITERS  # noqa: E402
from gateway.reports.writers.base import Context  # noqa: E402
from gateway.reports.writers.table import headers  # noqa: E402
from gateway.reports.writers.xlsx import currency_format  # noqa: E402

DOMAIN = "bench.example"
ZONE = ZoneInfo("America/Toronto")
# The report covers March 2026 (a month with a daylight-saving change); "now" is in April.
NOW = datetime(2026, 4, 15, 14, tzinfo=timezone.utc)
MARCH = datetime(2026, 3, 1, 5, tzinfo=timezone.utc)
STATUSES = [RequestStatus.PAID] * 7 + [RequestStatus.SENT, RequestStatus.VIEWED, RequestStatus.REFUNDED]
CASES = ["report xlsx", "writer xlsx", "openpyxl bare", "openpyxl styled", "report csv", "writer csv", "csv bare"]
AMOUNT_COLUMNS = range(5, 10)
TIMEOUT_SECONDS = 900
TARGET_RATIO, TARGET_MB = 0.8, 150


def sample(n: int) -> dict:
    """Request number ``n``: the same values for the database and the bare cases."""
    status = STATUSES[n % len(STATUSES)]
    amount = 5_000 + (n * 7919) % 500_000
    fee = amount * 29 // 1000 if n % 3 == 0 else 0
    created = MARCH + timedelta(seconds=n * 26)  # 100,000 requests spread over the month
    paid = created + timedelta(hours=3) if status in (RequestStatus.PAID, RequestStatus.REFUNDED) else None
    return {
        "id": n, "invoice": f"INV-{n:06d}", "client_email": f"client{n}@client.example",
        "sender": f"staff{n % 7}@{DOMAIN}", "currency": "USD" if n % 10 == 0 else "CAD",
        "amount_minor": amount, "fee_minor": fee, "total_minor": amount + fee,
        "provider_fee_minor": (amount + fee) * 29 // 1000 + 30 if paid else None,
        "application_fee_minor": 0, "status": status, "created_at": created,
        "viewed_at": created + timedelta(hours=1) if status != RequestStatus.SENT else None, "paid_at": paid,
        "deposit_date": (paid + timedelta(days=2)).date() if paid else None, "provider_ref": f"pi_{n:024d}" if paid else "",
    }


def bare_values(n: int) -> tuple:
    """The 16 values of a report row, as plain Python values."""
    s = sample(n)
    cents = lambda minor: Decimal(minor).scaleb(-2)  # noqa: E731
    local = lambda moment: moment.astimezone(ZONE).replace(tzinfo=None) if moment else None  # noqa: E731
    paid = s["paid_at"] is not None
    net = s["total_minor"] - (s["provider_fee_minor"] or 0) if paid else None
    return (
        s["id"], s["invoice"], s["client_email"], s["sender"], s["currency"], cents(s["amount_minor"]),
        cents(s["fee_minor"]), cents(s["total_minor"]),
        cents(s["provider_fee_minor"]) if s["provider_fee_minor"] is not None else None,
        cents(net) if net is not None else None, s["status"].value, local(s["created_at"]), local(s["viewed_at"]),
        local(s["paid_at"]), s["deposit_date"], s["provider_ref"],
    )


async def seed(url: str, rows: int) -> None:
    async with db.opened(url):
        firm = await Firm.create(domain=DOMAIN, name="Bench & Co", created_at=NOW)
        for start in range(1, rows + 1, 10_000):
            await PaymentRequest.bulk_create([
                PaymentRequest(firm=firm, token_hash=f"{n:064x}", kdf={}, wrapped_key=b"", provider="stripe",
                               source_message_id=f"<{n}@bench>", expires_at=NOW, **sample(n))
                for n in range(start, min(start + 10_000, rows + 1))
            ])


# --- the cases, each run in a child process -----------------------------------------------
# Each case prepares first (imports, a pool of rows) and is timed from its start to a closed file.
# Rows made in memory come from a pool of POOL distinct rows, row n being row n % POOL with id n:
# making 100,000 rows from scratch costs more than writing them as CSV, and would blur the comparison.

POOL = 1000


def prepare_report(fmt: str, url: str, out: Path, rows: int):
    async def run() -> int:
        async with db.opened(url):
            firm = await Firm.get(domain=DOMAIN)
            spec = parse_report_args((fmt, "2026-03"))
            with open(out, "wb") as file:
                report = await run_report(firm, spec, period_of(firm, spec, NOW), file)
            return report.summary.count

    return lambda: asyncio.run(run())


def _row_fields(n: int) -> tuple:
    """Our Row's fields after its id, for request ``n``."""
    s = sample(n)
    local = lambda moment: moment.astimezone(ZONE) if moment else None  # noqa: E731
    return (s["invoice"], s["client_email"], s["sender"], s["currency"], s["amount_minor"], s["fee_minor"],
            s["total_minor"], s["provider_fee_minor"], 0, s["status"].value, local(s["created_at"]),
            local(s["viewed_at"]), local(s["paid_at"]), s["deposit_date"], "stripe", s["provider_ref"])


def prepare_writer(fmt: str, out: Path, rows: int):
    pool = [_row_fields(n) for n in range(POOL)]
    context = Context("Bench & Co", DOMAIN, "CAD", parse_period("2026-03", ZONE, NOW), "all")

    def run() -> int:
        with open(out, "wb") as file:
            WRITERS[fmt]((Row(n, *pool[n % POOL]) for n in range(1, rows + 1)), file, context)
        return rows

    return run


def prepare_openpyxl_bare(out: Path, rows: int):
    pool = [bare_values(n)[1:] for n in range(POOL)]

    def run() -> int:
        book = Workbook(write_only=True)
        sheet = book.create_sheet("Payments")
        sheet.append(headers(ZONE.key))
        for n in range(1, rows + 1):
            sheet.append((n, *pool[n % POOL]))
        book.save(out)
        return rows

    return run


def prepare_openpyxl_styled(out: Path, rows: int):
    pool = [bare_values(n)[1:] for n in range(POOL)]
    formats = {currency: currency_format(currency) for currency in ("CAD", "USD")}

    def run() -> int:
        book = Workbook(write_only=True)
        sheet = book.create_sheet("Payments")
        sheet.freeze_panes = "A2"
        sheet.append(headers(ZONE.key))
        for n in range(1, rows + 1):
            values = [n, *pool[n % POOL]]
            for i in AMOUNT_COLUMNS:
                if values[i] is not None:
                    cell = WriteOnlyCell(sheet, value=values[i])
                    cell.number_format = formats[values[4]]
                    values[i] = cell
            sheet.append(values)
        sheet.auto_filter.ref = f"A1:P{rows + 1}"
        book.save(out)
        return rows

    return run


def prepare_csv_bare(out: Path, rows: int):
    pool = [bare_values(n)[1:] for n in range(POOL)]

    def run() -> int:
        with open(out, "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(headers(ZONE.key))
            for n in range(1, rows + 1):
                writer.writerow((n, *pool[n % POOL]))
        return rows

    return run


def peak_rss_kib() -> int:
    """This process's peak resident memory. Not ru_maxrss: Linux carries that across exec, so a
    child would report its parent's peak from before the exec (the seeding parent's, here)."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status)[1])


def child(case: str, url: str, out: Path, rows: int) -> None:
    if case.startswith("report "):
        run = prepare_report(case.split()[1], url, out, rows)
    elif case.startswith("writer "):
        run = prepare_writer(case.split()[1], out, rows)
    elif case == "openpyxl bare":
        run = prepare_openpyxl_bare(out, rows)
    elif case == "openpyxl styled":
        run = prepare_openpyxl_styled(out, rows)
    else:
        run = prepare_csv_bare(out, rows)
    started, cpu_started = time.perf_counter(), time.process_time()
    written = run()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    peak_mb = peak_rss_kib() / 1024
    print(json.dumps({"case": case, "rows": written, "seconds": seconds, "cpu_seconds": cpu_seconds,
                      "peak_mb": peak_mb, "bytes": out.stat().st_size}))


# --- the parent: seed once, run every case, print side by side ---------------------------


def run_case(case: str, url: str, folder: Path, rows: int) -> dict:
    out = folder / (case.replace(" ", "-") + (".xlsx" if "xlsx" in case or "openpyxl" in case else ".csv"))
    result = subprocess.run(
        [sys.executable, __file__, "--child", case, "--url", url, "--out", str(out), "--rows", str(rows)],
        check=True, capture_output=True, text=True, timeout=TIMEOUT_SECONDS,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def instructions(case: str, url: str, folder: Path, rows: int) -> int:
    """CPU instructions the case executes, counted by valgrind (callgrind), all threads."""
    out = folder / ("counted.xlsx" if "xlsx" in case or "openpyxl" in case else "counted.csv")
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
         "--child", case, "--url", url, "--out", str(out), "--rows", str(rows)],
        check=True, capture_output=True, text=True, timeout=TIMEOUT_SECONDS,
    )
    return int(re.search(r"Collected : (\d+)", result.stderr)[1])


def count_instructions(small: int, large: int) -> None:
    """Instructions per row: the difference between a small and a large run of each case, so that
    start-up and imports cancel out. Unlike time, the count does not move with the machine's load."""
    with tempfile.TemporaryDirectory() as folder:
        urls = {rows: f"sqlite://{folder}/bench-{rows}.db" for rows in (small, large)}
        for rows, url in urls.items():
            asyncio.run(seed(url, rows))
        per_row = {}
        for case in CASES:
            counts = {rows: instructions(case, urls[rows], Path(folder), rows) for rows in (small, large)}
            per_row[case] = (counts[large] - counts[small]) / (large - small)
            print(f"  {case}: counted", file=sys.stderr)
    print(f"instructions per row (valgrind, {large:,} rows less {small:,}), Python {sys.version.split()[0]}")
    print(f"{'case':<17}{'instructions':>14}{'vs bare':>9}{'vs styled':>11}")
    for case, count in per_row.items():
        xlsx = "xlsx" in case or "openpyxl" in case
        # A rate is the inverse of the work per row.
        versus = f"{per_row['openpyxl bare' if xlsx else 'csv bare'] / count:>9.3f}"
        versus += f"{per_row['openpyxl styled'] / count:>11.3f}" if xlsx else ""
        print(f"{case:<17}{count:>14,.0f}{versus}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="runs of every case, interleaved; the best counts")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions per row under valgrind instead of timing (1,000 and 3,000 rows)")
    parser.add_argument("--child")
    parser.add_argument("--url")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.out, args.rows)
        return
    if args.instructions:
        count_instructions(1_000, 3_000)
        return

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite://{folder}/bench.db"
        started = time.perf_counter()
        asyncio.run(seed(url, args.rows))
        print(f"seeded {args.rows:,} requests in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        runs: dict[str, list[dict]] = {case: [] for case in CASES}
        for round_number in range(1, args.rounds + 1):
            for case in CASES:
                runs[case].append(run_case(case, url, Path(folder), args.rows))
            print(f"  round {round_number} of {args.rounds} done", file=sys.stderr)
    report(runs, args.rows)


def report(runs: dict[str, list[dict]], rows: int) -> None:
    """Best of the rounds per case: this machine is shared, and load only ever slows a run down.
    Ratios use CPU time (all threads), which another process's load disturbs least."""
    best = {case: min(results, key=lambda r: r["seconds"]) for case, results in runs.items()}
    best_cpu = {case: min(r["cpu_seconds"] for r in results) for case, results in runs.items()}
    rate = {case: r["rows"] / r["seconds"] for case, r in best.items()}
    cpu_rate = {case: best[case]["rows"] / best_cpu[case] for case in best}
    csv_bare, xlsx_bare, styled = cpu_rate["csv bare"], cpu_rate["openpyxl bare"], cpu_rate["openpyxl styled"]
    rounds = len(next(iter(runs.values())))
    print(f"{rows:,} requests, period 2026-03, best of {rounds} rounds, Python {sys.version.split()[0]}")
    print(f"{'case':<17}{'rows/s':>9}{'cpu rows/s':>12}{'vs bare':>9}{'vs styled':>11}{'peak MB':>9}{'file MB':>9}")
    for case, r in best.items():
        xlsx = "xlsx" in case or "openpyxl" in case
        versus = f"{cpu_rate[case] / (xlsx_bare if xlsx else csv_bare):>9.2f}"
        versus += f"{cpu_rate[case] / styled:>11.2f}" if xlsx else " " * 11
        peak = max(run["peak_mb"] for run in runs[case])
        print(f"{case:<17}{rate[case]:>9,.0f}{cpu_rate[case]:>12,.0f}{versus}{peak:>9.0f}{r['bytes'] / 1e6:>9.1f}")
    ratio = cpu_rate["report xlsx"] / xlsx_bare
    peak = max(run["peak_mb"] for results in runs.values() for run in results)
    print(f"target: xlsx report >= {TARGET_RATIO} of bare openpyxl's rate: {ratio:.2f} "
          f"({'met' if ratio >= TARGET_RATIO else 'MISSED'}), {cpu_rate['report xlsx'] / styled:.2f} of openpyxl "
          f"writing the same styled cells; peak < {TARGET_MB} MB: {peak:.0f} MB "
          f"({'met' if peak < TARGET_MB else 'MISSED'})")


if __name__ == "__main__":
    main()
