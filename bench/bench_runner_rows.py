"""The queue runner's reads and the request's row conversion on SQLite,
in-process: the claim of a queued message (inbound/queue.py
_claimed_on_sqlite: the UPDATE ... RETURNING, its sealed copy, the
message's model), the sender's directory (mail/context.py
directory_on_sqlite: the firm, the staff member, the admins, the
Message-ID check), and the request's rows converted for the database
(handlers/request.py _write_on_sqlite: rows.Insert.values of the request,
Insert.row of its text's and attachment's files, two outbox mails and its
event), without the INSERTs.

CPU a call (time.thread_time on the database's thread, over many calls,
median of the rounds). With --before REV the same calls run with the code
of REV (`git archive` into a temporary folder), each round in a fresh
process of its own, the two trees interleaved round by round in one run.

    .venv/bin/python bench/bench_runner_rows.py [--rounds 5] [--calls 2000] [--before main]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import datetime, timedelta, timezone

from common import interleaved, print_medians

NOW = datetime(2026, 5, 14, 13, 30, 0, 123456, tzinfo=timezone.utc)


async def measured(calls: int) -> dict[str, float]:
    from gateway.core import db, directory, rows
    from gateway.core.models import Event, InboundMessage, OutboundMessage, PaymentRequest, SealedFile
    from gateway.inbound import queue as inbound
    from gateway.mail import context as mail_context

    with tempfile.TemporaryDirectory() as folder:
        async with db.opened(f"sqlite://{folder}/bench.db"):
            firm = await directory.seed_demo(NOW)
            staff = await directory.get_staff(firm, directory.DEMO_STAFF)
            for n in range(calls):
                arrival = inbound.arrival(
                    b"Subject: invoice\r\n\r\nplease pay\r\n", master_key=bytes(32), mail_from=directory.DEMO_STAFF,
                    sender=directory.DEMO_STAFF, firm_domain=directory.DEMO_DOMAIN, rcpt_tos=["pay@demo.localhost"],
                    peer="127.0.0.1", trusted_peer=True, now=NOW + timedelta(microseconds=n))
                await InboundMessage.create(**arrival.fields())
                await arrival.raw().save(force_create=True)
            client = rows.sqlite_client()
            request = PaymentRequest(
                firm=firm, staff=staff, sender=staff.email, upload_items=[], remind=True, invoice="1042",
                client_email="client@client.example", title="", amount_minor=125000, currency="CAD",
                pass_fee=False, customer="", hint="Dog's name", token_hash="ab" * 32, sealed_token=bytes(60),
                kdf={"alg": "argon2id", "m": 65536, "t": 3, "p": 1, "salt": "c2FsdHNhbHRzYWx0c2FsdA"},
                source_message_id="<CAB1042@mail.example>", created_at=NOW, expires_at=NOW + timedelta(days=30),
                wrapped_key=bytes(72))
            files = [rows.New(SealedFile, {
                "request_id": 7, "reply_id": None, "position": position, "is_body": position == 0,
                "filename": name, "content_type": kind, "size": size, "file_salt": bytes(16), "chunk_count": 2,
                "blob": f"ab/{position:062d}", "upload_item": None})
                for position, (name, kind, size) in enumerate(
                    [("message.txt", "text/plain", 300), ("invoice.pdf", "application/pdf", 102400)])]
            mails = [rows.New(OutboundMessage, {
                "kind": kind, "mail_from": "pay@demo.localhost", "rcpt_to": to, "subject": "Invoice 1042",
                "sealed_message": bytes(4000), "next_attempt_at": NOW, "created_at": NOW,
                "notify_on_failure": staff.email, "request_id": 7})
                for kind, to in [("client-request", "client@client.example"), ("confirmation", staff.email)]]
            event = rows.New(Event, {"at": NOW, "actor": staff.email, "action": "request.created",
                                     "firm_id": firm.id, "request_id": 7,
                                     "detail": {"kind": "payment", "invoice": "1042", "client": "client@client.example",
                                                "amount": "$1,250.00", "attachments": 1, "queue_id": "0123456789ABCDEF"}})

            def on_thread(connection) -> dict[str, float]:
                spent = {}

                def timed(name: str, work, times: int = calls) -> None:
                    start = time.thread_time()
                    for _ in range(times):
                        work()
                    spent[name] = (time.thread_time() - start) * 1e6 / times

                values = ["processing", db.stored_time(NOW + timedelta(minutes=5)), "bench",
                          *inbound.pick_values(NOW + timedelta(seconds=1))]
                timed("claim", lambda: inbound._claimed_on_sqlite(connection, values, None))
                timed("directory", lambda: mail_context.directory_on_sqlite(
                    connection, directory.DEMO_DOMAIN, directory.DEMO_STAFF, "<CAB1042@mail.example>"))

                def converted():
                    rows.insert(PaymentRequest, client).values(request)
                    for new in [*files, *mails, event]:
                        rows.insert(new.model, client).row(new)
                timed("request's rows", converted)
                return spent

            return await rows.on_sqlite_thread(client, on_thread)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000, help="calls of each kind a round")
    parser.add_argument("--before", metavar="REV", help="measure REV's code too, rounds interleaved")
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)  # a round's process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(asyncio.run(measured(args.measure))))
        return
    results = interleaved(__file__, args.calls, args.rounds, args.before)
    print_medians(results, f"us of CPU a call (median of {args.rounds} rounds x {args.calls} calls; min-max)", 1, 16, 28)


if __name__ == "__main__":
    main()
