"""`clienttrack firm set` and `clienttrack firm surcharge`: a firm's card-fee
terms (its rate, where it is, the day it gave the card networks notice)."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Callable

from gateway.core import db, directory
from gateway.core.clock import system_clock
from gateway.core.money import MoneyError, to_minor


def add_parsers(firm_actions, common: Callable[[argparse.ArgumentParser], None]) -> None:
    setter = firm_actions.add_parser("set", help="the firm's card-fee rate and province")
    common(setter)
    setter.add_argument("domain")
    setter.add_argument("--card-fee-rate", metavar="RATE",
                        help="the firm's own card rate, like 0.029 or 2.9%% (default: the gateway's)")
    setter.add_argument("--card-fee-fixed", metavar="AMOUNT", help="its fixed part per payment, like 0.30")
    setter.add_argument("--province", metavar="CODE", help="where the firm is located, like ON or QC")
    setter.set_defaults(run=cmd_firm_set)

    notice = firm_actions.add_parser("surcharge", help="record the day the firm gave card networks surcharge notice")
    common(notice)
    notice.add_argument("domain")
    notice.add_argument("--notice-date", metavar="YYYY-MM-DD", help="the day notice was given; 'none' clears it")
    notice.set_defaults(run=cmd_firm_surcharge)


def cmd_firm_set(args: argparse.Namespace, settings) -> int:
    # Here, not at the top (also below): every `clienttrack` command builds
    # this parser, and the fees' modules are a tenth of the CLI's imports.
    from gateway.payments import surcharge

    async def work() -> int:
        firm = await directory.get_firm(args.domain)
        fixed = None
        if args.card_fee_fixed is not None:
            try:
                fixed = to_minor(args.card_fee_fixed, firm.currency) if args.card_fee_fixed.strip("0. ") else 0
            except MoneyError as exc:
                print(f"clienttrack: --card-fee-fixed: {exc}", file=sys.stderr)
                return 2
        try:
            await surcharge.set_terms(firm, now=system_clock(), actor="cli", rate=args.card_fee_rate,
                                      fixed_minor=fixed, province=args.province)
        except surcharge.RateError as exc:
            print(f"clienttrack: {exc}", file=sys.stderr)
            return 2
        _show(firm, settings)
        return 0
    return db.run(settings, work)


def cmd_firm_surcharge(args: argparse.Namespace, settings) -> int:
    from gateway.payments import surcharge

    async def work() -> int:
        firm = await directory.get_firm(args.domain)
        if args.notice_date is not None:
            text = args.notice_date.strip().lower()
            try:
                day = None if text == "none" else date.fromisoformat(text)
            except ValueError:
                print(f"clienttrack: --notice-date: {args.notice_date!r} is not a date like 2026-03-01",
                      file=sys.stderr)
                return 2
            if day is not None and day > system_clock().date():
                print("clienttrack: --notice-date: record notice once it is given, not before", file=sys.stderr)
                return 2
            await surcharge.record_notice(firm, day, now=system_clock(), actor="cli")
        _show(firm, settings)
        return 0
    return db.run(settings, work)


def _show(firm, settings) -> None:
    from gateway.payments import surcharge
    from gateway.payments.config import PaymentsConfig

    config = PaymentsConfig.from_settings(settings)
    today = surcharge.local_day(firm, system_clock())
    print("\n".join([f"{firm.name} ({firm.domain})", *surcharge.describe(firm, config, today)]))
