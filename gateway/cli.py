"""The `clienttrack` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from gateway import vault
from gateway.core import datadir, db, directory, logs, schema, settings as settings_module
from gateway.core.clock import system_clock
from gateway.core.models import Firm, Level, OutboundMessage, PaymentRequest, RequestKind, RequestStatus, Staff
from gateway.core.money import format_decimal, format_display
from gateway.core.settings import Settings, SettingsError
# Each builds its commands' parsers (every command builds them all) and
# imports what only its commands need when they run.
from gateway.outbound import cli as outbound_cli
from gateway.outbound.dkimkeys import KeyStore
from gateway.payments import cli as payments_cli
from gateway.reminders import cli as reminders_cli
from gateway.documents import cli as documents
from gateway.reports import cli as reports

LEVELS = [level.value for level in Level]
STATUSES = [status.value for status in RequestStatus]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="a TOML settings file (env: CLIENTTRACK_CONFIG)")
    parser.add_argument("--data-dir", help="where the database, master key and outbox live (default ./data)")
    parser.add_argument("--database-url", help="sqlite:///path or postgres://... (default: SQLite in the data dir)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clienttrack",
        description="Secure payment requests by email. Every option also reads CLIENTTRACK_<NAME>.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the SMTP gateway, web app and queue workers")
    _common(serve)
    serve.add_argument("--demo", action="store_true", default=None, help="seed a demo firm, trust loopback senders, serve /demo/outbox")
    serve.add_argument("--smtp-host")
    serve.add_argument("--smtp-port", type=int)
    serve.add_argument("--web-host")
    serve.add_argument("--web-port", type=int)
    serve.add_argument("--base-url", help="public address of the web app, used in links (default http://localhost:PORT)")
    serve.add_argument("--roles", help="run only some of smtp,web,queue,outbox in this process (default: all)")
    serve.add_argument("--processes", type=int, help="worker processes sharing the ports, each running the roles "
                       "(default: one a CPU this process may use; 1: everything in this process)")
    serve.set_defaults(run=cmd_serve)

    firm = commands.add_parser("firm", help="manage firms").add_subparsers(dest="action", required=True, metavar="ACTION")
    add = firm.add_parser("add", help="add a firm; its gateway address is pay@DOMAIN")
    _common(add)
    add.add_argument("domain")
    add.add_argument("--name", required=True)
    add.add_argument("--currency", default="CAD")
    add.add_argument("--timezone", default="America/Toronto")
    add.set_defaults(run=cmd_firm_add)
    connect = firm.add_parser("connect-stripe", help="create the firm's Stripe account; print its onboarding link")
    _common(connect)
    connect.add_argument("domain")
    connect.set_defaults(run=cmd_firm_connect_stripe)
    accounts = firm.add_parser("accounts", help="the ledger accounts the IIF and Sage exports post to")
    _common(accounts)
    accounts.add_argument("domain")
    accounts.add_argument("program", choices=["iif", "sage"])
    accounts.add_argument("assignments", nargs="*", metavar="ROLE=ACCOUNT",
                          help="clearing, fees, receivable or surcharge; none: show them")
    accounts.set_defaults(run=cmd_firm_accounts)
    language = firm.add_parser("language", help="the language of the firm's clients' mail and pages (en, fr, none)")
    _common(language)
    language.add_argument("domain")
    language.add_argument("language", nargs="?", help="en, fr or none (the default: mail in English, pages as "
                          "the client's browser asks); leave out to show it")
    language.set_defaults(run=cmd_firm_language)
    payments_cli.add_parsers(firm, _common)
    reminders_cli.add_parser(firm, _common)
    outbound_cli.add_parsers(firm, _common)
    reports.add_customers_parser(firm, _common)
    firm_list = firm.add_parser("list", help="list firms")
    _common(firm_list)
    firm_list.set_defaults(run=cmd_firm_list)
    documents.add_parsers(commands, firm, _common)

    staff = commands.add_parser("staff", help="manage who may do what").add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, helptext in (("add", "add a staff member"), ("set", "change a staff member's level")):
        p = staff.add_parser(action, help=helptext)
        _common(p)
        p.add_argument("email")
        p.add_argument("--firm", required=True, metavar="DOMAIN")
        p.add_argument("--level", required=True, choices=LEVELS)
        p.add_argument("--name", default="")
        p.set_defaults(run=cmd_staff_add if action == "add" else cmd_staff_set)
    remove = staff.add_parser("remove", help="remove a staff member")
    _common(remove)
    remove.add_argument("email")
    remove.add_argument("--firm", required=True, metavar="DOMAIN")
    remove.set_defaults(run=cmd_staff_remove)
    link = staff.add_parser("link", help="print a one-time sign-in link to the firm's dashboard")
    _common(link)
    link.add_argument("email")
    link.add_argument("--firm", required=True, metavar="DOMAIN")
    link.add_argument("--base-url", help="public address of the web app (default: as `serve` would use)")
    link.set_defaults(run=cmd_staff_link)
    staff_list = staff.add_parser("list", help="list staff and their levels")
    _common(staff_list)
    staff_list.add_argument("--firm", metavar="DOMAIN")
    staff_list.set_defaults(run=cmd_staff_list)

    requests = commands.add_parser("requests", help="payment requests").add_subparsers(dest="action", required=True, metavar="ACTION")
    req_list = requests.add_parser("list", help="list payment requests, newest first")
    _common(req_list)
    req_list.add_argument("--firm", metavar="DOMAIN")
    req_list.add_argument("--status", choices=STATUSES)
    req_list.add_argument("--json", action="store_true", help="print JSON (amounts as decimal strings)")
    req_list.set_defaults(run=cmd_requests_list)

    reports.add_parser(commands, _common)

    database = commands.add_parser("db", help="the database's schema").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    upgrade = database.add_parser("upgrade", help="apply the pending migrations (stop serve first, or not: it locks); "
                                  "a database from before migrations is recognised by its tables and columns")
    _common(upgrade)
    upgrade.set_defaults(run=cmd_db_upgrade)
    status = database.add_parser("status", help="the migrations applied and pending")
    _common(status)
    status.set_defaults(run=cmd_db_status)
    make = database.add_parser("makemigrations", help="(developers) write the migration for changed models")
    make.add_argument("--name", required=True, help="what it does, in a few words: add_firm_vat_number")
    make.set_defaults(run=cmd_db_makemigrations)

    outbox = commands.add_parser("outbox", help="outbound mail").add_subparsers(dest="action", required=True, metavar="ACTION")
    out_list = outbox.add_parser("list", help="outbound mail and its delivery state")
    _common(out_list)
    out_list.add_argument("--json", action="store_true")
    out_list.set_defaults(run=cmd_outbox_list)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    names = ("config", "data_dir", "database_url", "demo", "smtp_host", "smtp_port", "web_host", "web_port", "base_url",
             "roles", "processes")
    return settings_module.load({name: getattr(args, name, None) for name in names})


def _print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.workers import serve

    return serve(settings)


def cmd_firm_add(args, settings) -> int:
    async def work() -> int:
        firm = await directory.add_firm(args.domain, args.name, currency=args.currency, timezone=args.timezone,
                                        now=system_clock(), actor="cli")
        # Its signing keys now, so the records can be published before its first mail.
        KeyStore(settings.data_dir).ensure(firm.domain, system_clock().date())
        print(f"Added {firm.name}: its gateway address is {firm.gateway_address}")
        print(f"Its mail is DKIM-signed: publish its DNS records, `clienttrack firm dkim {firm.domain}` prints them")
        return 0
    return db.run(settings, work)


def cmd_firm_connect_stripe(args, settings) -> int:
    from gateway.payments import connect
    from gateway.payments.provider import PaymentError
    from gateway.payments.providers import provider_for

    async def work() -> int:
        firm = await directory.get_firm(args.domain)
        master_key = vault.load_or_create_master_key(settings.master_key_path)
        try:
            link = await connect.start_onboarding(firm, provider_for(settings), base_url=settings.public_base_url,
                                                  master_key=master_key, now=system_clock(), actor="cli")
        except PaymentError as exc:
            print(f"clienttrack: {exc}", file=sys.stderr)
            return 1
        print("\n\n".join(connect.setup_reply(firm, link)))
        return 0
    return db.run(settings, work)


def cmd_firm_accounts(args, settings) -> int:
    from gateway.reports import ledger

    async def work() -> int:
        firm = await directory.get_firm(args.domain)
        chosen = dict(firm.ledger_accounts or {})
        program = dict(chosen.get(args.program) or {})
        for assignment in args.assignments:
            role, eq, account = assignment.partition("=")
            if not eq or role not in ledger.ROLES or not account.strip():
                raise directory.DirectoryError(
                    f"expected ROLE=ACCOUNT with ROLE one of {', '.join(ledger.ROLES)}, got {assignment!r}")
            program[role] = account.strip()
        if args.assignments:
            firm.ledger_accounts = {**chosen, args.program: program}
            await firm.save(update_fields=["ledger_accounts"])
        for role, account in ledger.accounts(firm.ledger_accounts, args.program).items():
            print(f"{role:<11} {account}")
        return 0
    return db.run(settings, work)


def cmd_firm_language(args, settings) -> int:
    async def work() -> int:
        firm = await directory.get_firm(args.domain)
        if args.language is not None:
            await directory.set_language(firm, args.language, now=system_clock(), actor="cli")
        print(f"{firm.name} ({firm.domain}): clients' language {firm.language or 'none (the browser decides)'}; "
              "a request's lang= wins")
        return 0
    return db.run(settings, work)


def cmd_firm_list(args, settings) -> int:
    async def work() -> int:
        firms = await Firm.all().order_by("domain")
        _print_table([[f.domain, f.name, f.currency, f.timezone] for f in firms], ["DOMAIN", "NAME", "CURRENCY", "TIMEZONE"])
        return 0
    return db.run(settings, work)


def cmd_staff_add(args, settings) -> int:
    async def work() -> int:
        firm = await directory.get_firm(args.firm)
        staff = await directory.add_staff(firm, args.email, Level(args.level), now=system_clock(), actor="cli", name=args.name)
        print(f"Added {staff.email} to {firm.domain} at level {staff.level.value}")
        return 0
    return db.run(settings, work)


def cmd_staff_set(args, settings) -> int:
    async def work() -> int:
        firm = await directory.get_firm(args.firm)
        staff = await directory.set_level(firm, args.email, Level(args.level), now=system_clock(), actor="cli")
        print(f"{staff.email} at {firm.domain} is now level {staff.level.value}")
        return 0
    return db.run(settings, work)


def cmd_staff_remove(args, settings) -> int:
    async def work() -> int:
        firm = await directory.get_firm(args.firm)
        await directory.remove_staff(firm, args.email, now=system_clock(), actor="cli")
        print(f"Removed {args.email} from {firm.domain}")
        return 0
    return db.run(settings, work)


def cmd_staff_link(args, settings) -> int:
    from gateway.vault import signin

    async def work() -> int:
        firm = await directory.get_firm(args.firm)
        staff = await directory.get_staff(firm, args.email)
        if staff.level is Level.NONE:
            print(f"clienttrack: {staff.email} has level none at {firm.domain}: set a level first", file=sys.stderr)
            return 1
        print(await signin.new_link(staff, base_url=settings.public_base_url, now=system_clock(), actor="cli"))
        print(f"It signs {staff.email} in to {firm.name}'s dashboard once, within "
              f"{int(signin.TTL.total_seconds() // 60)} minutes.", file=sys.stderr)
        return 0
    return db.run(settings, work)


def cmd_staff_list(args, settings) -> int:
    async def work() -> int:
        query = Staff.all().prefetch_related("firm")
        if args.firm:
            query = query.filter(firm=await directory.get_firm(args.firm))
        rows = [[s.firm.domain, s.email, s.level.value] for s in await query.order_by("firm__domain", "email")]
        _print_table(rows, ["FIRM", "EMAIL", "LEVEL"])
        return 0
    return db.run(settings, work)


def request_json(r: PaymentRequest) -> dict[str, Any]:
    fee = r.fee_minor or 0
    total = r.total_minor if r.total_minor is not None else r.amount_minor + fee
    message = r.kind is RequestKind.MESSAGE  # a secure message: no amounts at all
    return {
        "id": r.id,
        "kind": r.kind.value,
        "invoice": r.invoice,
        "client": r.client_email,
        "staff": r.sender,
        "amount": None if message else format_decimal(r.amount_minor, r.currency),
        "currency": r.currency,
        "pass_fee": r.pass_fee,
        "fee": None if message else format_decimal(fee, r.currency),
        "total": None if message else format_decimal(total, r.currency),
        "status": r.status.value,
        "created_at": r.created_at.isoformat(),
        "expires_at": r.expires_at.isoformat(),
        "viewed_at": r.viewed_at.isoformat() if r.viewed_at else None,
        "paid_at": r.paid_at.isoformat() if r.paid_at else None,
        "documents_removed_at": r.documents_removed_at.isoformat() if r.documents_removed_at else None,
    }


def cmd_requests_list(args, settings) -> int:
    async def work() -> int:
        query = PaymentRequest.all()
        if args.firm:
            query = query.filter(firm=await directory.get_firm(args.firm))
        if args.status:
            query = query.filter(status=RequestStatus(args.status))
        found = await query.order_by("-id")
        if args.json:
            print(json.dumps([request_json(r) for r in found], indent=2))
        else:
            rows = [[str(r.id), r.invoice, r.client_email,
                     "message" if r.kind is RequestKind.MESSAGE else format_display(r.amount_minor, r.currency),
                     r.status.value,
                     r.created_at.strftime("%Y-%m-%d %H:%M")] for r in found]
            _print_table(rows, ["ID", "INVOICE", "CLIENT", "AMOUNT", "STATUS", "CREATED (UTC)"])
        return 0
    return db.run(settings, work)


def cmd_outbox_list(args, settings) -> int:
    async def work() -> int:
        found = await OutboundMessage.all().order_by("-id")
        if args.json:
            print(json.dumps([{"id": m.id, "kind": m.kind, "to": m.rcpt_to, "subject": m.subject,
                               "status": m.status.value, "attempts": m.attempts, "last_error": m.last_error,
                               "created_at": m.created_at.isoformat()} for m in found], indent=2))
        else:
            rows = [[str(m.id), m.status.value, str(m.attempts), m.kind, m.rcpt_to, m.subject[:60]] for m in found]
            _print_table(rows, ["ID", "STATE", "TRIES", "KIND", "TO", "SUBJECT"])
        return 0
    return db.run(settings, work)


def cmd_db_upgrade(args, settings) -> int:
    async def upgrade() -> int:
        datadir.prepare(settings.data_dir, settings.database)
        async with db.connected(settings.database):
            done = await schema.upgrade(settings.database)
        print("\n".join(done) or "The database is up to date.")
        return 0
    return asyncio.run(upgrade())


def cmd_db_status(args, settings) -> int:
    async def status() -> int:
        datadir.prepare(settings.data_dir, settings.database)
        async with db.connected(settings.database):
            current = await schema.version()
        for name in current.applied:
            print(f"applied  {name}")
        for name in current.pending:
            print(f"pending  {name}")
        if current.pending and not current.empty:
            print(f"Run `{schema.UPGRADE_COMMAND}`.")
        return 0
    return asyncio.run(status())


def cmd_db_makemigrations(args, settings) -> int:
    written = asyncio.run(schema.write_migration(args.name))
    print("\n".join(f"Wrote {path}" for path in written) or "No changes in the models.")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
    except SettingsError as exc:
        print(f"clienttrack: {exc}", file=sys.stderr)
        return 2
    level = settings.log_level.upper() if args.command == "serve" else "WARNING"
    logs.configure(level, settings.log_format)
    try:
        return args.run(args, settings)
    except (directory.DirectoryError, schema.SchemaBehind) as exc:
        print(f"clienttrack: {exc}", file=sys.stderr)
        return 1
    except (datadir.DataDirError, vault.MasterKeyError) as exc:
        # Refuse to start, and say which path to fix.
        print(f"clienttrack: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
