"""Composing the two mails every request sends, in-process: the client's
request mail (Composer.client_request, with the amount and dates written
in the client's language as gateway/outbound/clientmail.py writes them)
and the sender's confirmation (Composer.confirmation, as
gateway/handlers/request.py's rows_naming asks for it).

CPU a mail (time.process_time over many compositions, median of the
rounds). With --before REV the same compositions run with the code of REV
(`git archive` into a temporary folder), each round in a fresh process of
its own, the two trees interleaved round by round in one run.

    .venv/bin/python bench/bench_compose.py [--rounds 5] [--mails 400] [--before main]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date, datetime, timedelta, timezone

from common import interleaved, print_medians

NOW = datetime(2026, 5, 14, 9, 30, tzinfo=timezone(timedelta(hours=-4)))


def shapes() -> dict[str, callable]:
    """What to time: one function a kind of mail, each making one mail.
    Each mail is another request of one firm's batch: its own client,
    invoice, amount and link (a cache of whole mails would not help)."""
    import itertools
    from gateway.core.paths import TEMPLATES_DIR
    from gateway.outbound.compose import Composer, to_bytes
    from gateway.outbound.words import words

    composer = Composer(TEMPLATES_DIR / "email", hostname="gw.clienttrack.test")

    numbers = itertools.count(1042)

    def client(lang: str):
        def make():
            w = words(lang)
            n = next(numbers)
            return to_bytes(composer.client_request(
                firm_name="Smith & Jones Accounting", firm_domain="smith.clienttrack.test",
                staff_email="anna@smith.example", staff_name="Anna Lee", client_email=f"client{n}@client.example",
                title="", invoice=str(n), amount=w.amount(100000 + 37 * n, "CAD"), hint="Dog's name",
                link=f"https://pay.clienttrack.test/r/Zx81kQmP0aBcDeFgHiJkLmNoPqRsTuVwXyZ{n:010d}",
                expires_on=w.date(date(2026, 6, 13)), now=NOW, card_fee="", kind="payment", lang=w.lang,
                upload_items=(), can_reply=False, reminder_of=""))
        return make

    def confirmation():
        n = next(numbers)
        return to_bytes(composer.confirmation(
            firm_name="Smith & Jones Accounting", firm_domain="smith.clienttrack.test",
            staff_email="anna@smith.example", client_email=f"client{n}@client.example", title="", invoice=str(n),
            amount=words("en").amount(100000 + 37 * n, "CAD"), hint="Dog's name", expires_on="2026-06-13",
            attachment_names=[f"invoice-{n}.pdf"], generated_password=None,
            in_reply_to=f"<CAB{n}@mail.smith.example>", request_ref=f"R{n}", now=NOW, card_fee="",
            kind="payment", extra_rows=[]))

    return {"client mail (en)": client("en"), "client mail (fr)": client("fr"), "confirmation": confirmation}


def measure(mails: int) -> dict[str, float]:
    """ms of CPU a mail, for each shape, in this process."""
    made = shapes()
    for make in made.values():  # templates compiled, caches warm: as in a worker after its first request
        for _ in range(20):
            make()
    spent = {}
    for name, make in made.items():
        start = time.process_time()
        for _ in range(mails):
            make()
        spent[name] = (time.process_time() - start) * 1000 / mails
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mails", type=int, default=400, help="mails of each shape a round")
    parser.add_argument("--before", metavar="REV", help="measure REV's code too, rounds interleaved")
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)  # a round's process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    results = interleaved(__file__, args.mails, args.rounds, args.before)
    print_medians(results, f"ms of CPU a mail (median of {args.rounds} rounds x {args.mails} mails; min-max)", 3, 24, 32)


if __name__ == "__main__":
    main()
