"""The People page over real HTTP: levels changed, people added and
removed through the grant and revoke commands (their rules, their mail,
their events), and only by an admin, checked by URL."""

from __future__ import annotations

import html

import pytest

from gateway.core.models import Event, Level, Staff, StaffSession
from tests.conftest import mails_to, settled
from tests.staff_support import ADMIN, colleague, post_form, signed_in

pytest_plugins = ["tests.web_fixtures"]


def flash(page) -> str:
    start = page.text.index('<p class="notice')
    return html.unescape(page.text[start:page.text.index("</p>", start)])


async def test_an_admin_changes_a_level_and_the_person_is_told(clocked):
    ann = await colleague(clocked, "ann@demo.localhost", Level.SEND)
    async with signed_in(clocked) as http:
        page = await http.get("/staff/people")
        assert "ann@demo.localhost" in page.text and 'id="level-%d"' % ann.id in page.text
        done = await post_form(http, "/staff/people", f"/staff/people/{ann.id}/level", {"level": "report"})
        assert done.status_code == 303 and done.headers["location"] == "/staff/people"
        assert "now has level report" in flash(await http.get("/staff/people"))
    assert (await Staff.get(id=ann.id)).level is Level.REPORT
    await settled()
    [told] = mails_to(clocked, "ann@demo.localhost")
    assert str(told["Subject"]) == "You now have level report at Demo Accounting"
    event = await Event.get(action="staff.level")
    assert (event.actor, event.detail["after"]) == (ADMIN, "report")
    assert (await Event.get(action="command")).detail == {"command": "grant", "via": "dashboard"}


async def test_an_admin_adds_then_removes_a_person_who_is_signed_out_at_once(clocked):
    async with signed_in(clocked) as http:
        await post_form(http, "/staff/people", "/staff/people/add", {"email": "New@Demo.localhost", "level": "send"})
        assert "new@demo.localhost now has level send" in flash(await http.get("/staff/people"))
        new = await Staff.get(email="new@demo.localhost")
        async with signed_in(clocked, "new@demo.localhost") as theirs:
            asked = await http.get(f"/staff/people/{new.id}/remove")
            assert "Remove new@demo.localhost?" in html.unescape(asked.text)
            done = await post_form(http, f"/staff/people/{new.id}/remove", f"/staff/people/{new.id}/remove")
            assert done.status_code == 303
            assert "was removed" in flash(await http.get("/staff/people"))
            assert (await theirs.get("/staff/")).status_code == 401
    assert not await Staff.exists(email="new@demo.localhost")
    assert not await StaffSession.filter(staff_id=new.id).exists()
    await settled()
    subjects = [str(m["Subject"]) for m in mails_to(clocked, "new@demo.localhost")]
    assert "You now have level send at Demo Accounting" in subjects
    assert "Your access to pay@demo.localhost was removed" in subjects


async def test_the_last_admin_stays(clocked):
    me = await Staff.get(email=ADMIN)
    async with signed_in(clocked) as http:
        await post_form(http, "/staff/people", f"/staff/people/{me.id}/level", {"level": "send"})
        assert "only admin" in flash(await http.get("/staff/people"))
        await post_form(http, "/staff/people", f"/staff/people/{me.id}/remove")
        assert "only admin" in flash(await http.get("/staff/people"))
        await post_form(http, "/staff/people", "/staff/people/add", {"email": "x@demo.localhost", "level": "boss"})
        assert "Unknown level 'boss'" in flash(await http.get("/staff/people"))
    assert (await Staff.get(id=me.id)).level is Level.ADMIN


@pytest.mark.parametrize("level", [Level.SEND, Level.REPORT])
async def test_below_admin_the_people_pages_are_refused_by_url(clocked, level):
    other = await colleague(clocked, "ann@demo.localhost", level)
    me = await Staff.get(email=ADMIN)
    async with signed_in(clocked, "ann@demo.localhost") as http:
        page = await http.get("/staff/people")
        assert page.status_code == 403 and "this page needs admin" in html.unescape(page.text)
        assert (await http.get(f"/staff/people/{me.id}/remove")).status_code == 403
        for path, data in ((f"/staff/people/{other.id}/level", {"level": "admin"}),
                           ("/staff/people/add", {"email": "x@demo.localhost", "level": "admin"}),
                           (f"/staff/people/{me.id}/remove", {})):
            assert (await post_form(http, "/staff/", path, data)).status_code == 403
        assert 'href="/staff/people"' not in (await http.get("/staff/")).text
    assert (await Staff.get(id=other.id)).level is level
    assert await Staff.all().count() == 2


async def test_a_member_of_another_firm_is_not_found(clocked):
    from gateway.core.models import Firm

    other_firm = await Firm.create(domain="other.example", name="Other", created_at=clocked.deps.clock())
    stranger = await Staff.create(firm=other_firm, email="s@other.example", level=Level.SEND,
                                  created_at=clocked.deps.clock())
    async with signed_in(clocked) as http:
        assert (await http.get(f"/staff/people/{stranger.id}/remove")).status_code == 404
        done = await post_form(http, "/staff/people", f"/staff/people/{stranger.id}/level", {"level": "none"})
        assert done.status_code == 404
    assert (await Staff.get(id=stranger.id)).level is Level.SEND
