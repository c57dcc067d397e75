"""Reminders that chase for the staff: a firm's schedule, run by
housekeeping with a test clock across ten days, over the whole gateway
(requests made by mail, paid and opened over HTTP, commands by mail)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

import httpx

from gateway.core.models import Firm, PaymentRequest, ReminderDigest
from gateway.housekeeping import expire_requests
from gateway.reminders import schedule
from gateway.reminders.chase import Chaser
from tests.conftest import DEMO_STAFF, mails_to, outbox_mails, request_mail, send, settled
from tests.test_cli import run
from tests.test_flow import only_link
from tests.web_support import csrf_token, submit

pytest_plugins = ["tests.web_fixtures"]

TORONTO = ZoneInfo("America/Toronto")


def local_day(mail) -> date:
    return parsedate_to_datetime(mail["Date"]).astimezone(TORONTO).date()


def link_of(gw, client: str) -> str:
    return only_link(mails_to(gw, client)[0])


async def mail(gw, subject: str, *, to: str = "pay@demo.localhost") -> None:
    message = request_mail(subject)
    del message["To"]
    message["To"] = to
    await send(gw, message, rcpt=to)
    await settled()


def test_a_schedule_is_read_and_its_days_fall_between_sending_and_expiry():
    assert schedule.parse_days("3d,7d", "--after") == (3, 7)
    assert schedule.parse_days(" 7 days, 3 ,3d", "--after") == (3, 7)
    assert schedule.parse_days("none", "--after") == ()
    for wrong in ("0d", "3w", "400d", "3d;7d"):
        try:
            schedule.parse_days(wrong, "--after")
        except schedule.ScheduleError as exc:
            assert "--after" in str(exc) and "3d,7d" in str(exc)
        else:
            raise AssertionError(wrong)
    sent, expires = date(2026, 3, 2), date(2026, 3, 11)
    assert schedule.days(sent, expires, [3, 7], [2]) == [date(2026, 3, 5), date(2026, 3, 9)]
    assert schedule.days(sent, date(2026, 3, 7), [3, 7], [2]) == [date(2026, 3, 5)]  # none on or after expiry
    assert schedule.due([date(2026, 3, 5)], sent, date(2026, 3, 5))
    assert not schedule.due([date(2026, 3, 5)], date(2026, 3, 5), date(2026, 3, 8))
    assert schedule.describe([3, 7], [2]) == "3d and 7d after sending, 2d before expiry"
    assert schedule.describe([], []) == "off"


async def test_ten_days_of_the_schedule_send_exactly_the_expected_mails(clocked, clock):
    gw = clocked
    firm = await Firm.get(domain="demo.localhost")
    await schedule.set_schedule(firm, after=(3, 7), before=(2,), now=clock.now, actor="test")
    # Monday 2026-03-02, 10:00 in Toronto (the demo firm's timezone); clocks go forward on the 8th.
    assert clock.now.astimezone(TORONTO).hour == 10
    await mail(gw, "Invoice A1 $100.00 to=a@client.example pw=Blue42 hint=Sky expires=9d")
    await mail(gw, "Invoice B1 $100.00 to=b@client.example pw=Blue42 hint=Sky")
    await mail(gw, "Invoice C1 $100.00 to=c@client.example pw=Blue42 hint=Sky remind=no")
    await mail(gw, "Letter D1 invoice=D1 to=d@client.example pw=Blue42 hint=Sky", to="secure@demo.localhost")
    await mail(gw, 'Slips E1 invoice=E1 to=e@client.example pw=Blue42 hint=Sky upload="T4 slips"',
               to="secure@demo.localhost")
    await mail(gw, "Invoice F1 $100.00 to=f@client.example pw=Blue42 hint=Sky")
    await mail(gw, "Invoice G1 $100.00 to=g@client.example pw=Blue42 hint=Sky")
    await mail(gw, "Invoice H1 $100.00 to=h@client.example pw=Blue42 hint=Sky expires=5d")
    sent_first = len(outbox_mails(gw))

    chaser = Chaser(gw.deps)
    for hour in range(1, 10 * 24 + 1):
        clock.advance(hours=1)
        local = clock.now.astimezone(TORONTO)
        if (local.day, local.hour) == (3, 11):
            await mail(gw, "cancel F1")
            async with httpx.AsyncClient() as http:  # D's client reads the message
                assert (await submit(http, link_of(gw, "d@client.example"), "Blue42")).status_code == 303
        if (local.day, local.hour) == (4, 14):
            await mail(gw, "remind G1")  # by hand, the afternoon before the schedule's first day
        if (local.day, local.hour) == (6, 8):
            link = link_of(gw, "b@client.example")
            async with httpx.AsyncClient() as http:  # B pays, early on the 6th
                await submit(http, link, "Blue42")
                form = await http.get(f"{link}/pay")
                paid = await http.post(f"{link}/pay", data={"csrf_token": csrf_token(form),
                                                             "card_number": "4242 4242 4242 4242"})
                assert paid.status_code == 303 and paid.headers["location"].endswith("/paid")
        await expire_requests(clock.now)
        await chaser.run(clock.now)
    await settled()

    reminders = defaultdict(list)
    for sent in outbox_mails(gw)[sent_first:]:
        if str(sent["Subject"]).startswith("Reminder:"):
            reminders[str(sent["To"])].append(local_day(sent))
    march = lambda *days: [date(2026, 3, d) for d in days]  # noqa: E731
    assert dict(reminders) == {
        "a@client.example": march(5, 9),   # 3d and 7d; 2d before its expiry on the 11th is the 9th too: once
        "b@client.example": march(5),      # paid on the 6th: none after
        "e@client.example": march(5, 9),   # a secure message still waiting for its T4 slips
        "g@client.example": march(4, 6, 9),  # by hand on the 4th: the 5th is within a day of it, so the 6th
        "h@client.example": march(5),      # expires on the 7th: nothing after
    }  # C (remind=no), D (read), F (cancelled) never
    assert {r.invoice: r.status.value for r in await PaymentRequest.all()}["H1"] == "expired"

    digests = [m for m in mails_to(gw, DEMO_STAFF) if str(m["Subject"]).startswith("Reminders:")]
    assert [local_day(d) for d in digests] == march(5, 6, 9, 10)
    said = {local_day(d): " ".join(d.get_body(("plain",)).get_content().split()) for d in digests}
    assert str(digests[0]["Subject"]) == "Reminders: 4 reminders sent"
    for client in ("a@", "b@", "e@", "h@"):
        assert f"{client}client.example (reminder 1)" in said[date(2026, 3, 5)]
    assert str(digests[1]["Subject"]) == "Reminders: 1 reminder sent, 1 expiring tomorrow unpaid"
    assert "g@client.example (reminder 2)" in said[date(2026, 3, 6)]
    assert "These payment requests expire tomorrow unpaid: R8 invoice H1 h@client.example" in said[date(2026, 3, 6)]
    assert str(digests[2]["Subject"]) == "Reminders: 3 reminders sent"
    assert str(digests[3]["Subject"]) == "Reminders: 1 expiring tomorrow unpaid"
    assert "R1 invoice A1 a@client.example $100.00 CAD" in said[date(2026, 3, 10)]
    assert await ReminderDigest.all().count() == 4
    # Every client mail of a request, reminders and all, is a day or more apart.
    for days in reminders.values():
        assert all(b - a >= timedelta(days=1) for a, b in zip(days, days[1:]))


async def test_the_schedule_by_command_line_and_by_an_admins_mail(clocked, tmp_path):
    gw = clocked
    await mail(gw, "reminders after 3d,7d before-expiry 2d")
    [reply] = mails_to(gw, DEMO_STAFF)
    assert str(reply["Subject"]) == "Reminders at Demo Accounting: 3d and 7d after sending, 2d before expiry"
    firm = await Firm.get(domain="demo.localhost")
    assert (firm.reminder_after, firm.reminder_before_expiry) == ([3, 7], [2])
    await mail(gw, "reminders after 3w")
    assert "'3w' is not a number of days" in mails_to(gw, DEMO_STAFF)[-1].get_body(("plain",)).get_content()
    await mail(gw, "reminders off")
    assert str(mails_to(gw, DEMO_STAFF)[-1]["Subject"]) == "Reminders at Demo Accounting: off"

    assert run(tmp_path, "firm", "add", "x.example", "--name", "X").returncode == 0
    shown = run(tmp_path, "firm", "reminders", "x.example")
    assert shown.returncode == 0 and "reminders off" in shown.stdout
    set_ = run(tmp_path, "firm", "reminders", "x.example", "--after", "3d,7d", "--before-expiry", "2d")
    assert "reminders 3d and 7d after sending, 2d before expiry" in set_.stdout
    wrong = run(tmp_path, "firm", "reminders", "x.example", "--after", "soon")
    assert wrong.returncode == 2 and "--after: 'soon' is not a number of days" in wrong.stderr
    cleared = run(tmp_path, "firm", "reminders", "x.example", "--after", "none")
    assert "reminders 2d before expiry" in cleared.stdout
