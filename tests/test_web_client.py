"""The client's pages over real HTTP: unlock, lock out, read, expire."""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import timedelta

import httpx

from gateway.core.models import ClientSession, Event, Firm, PaymentRequest, RequestStatus, UnlockGuard
from tests.conftest import CLIENT_THREADS, DEMO_STAFF, mails_to, settled
from tests.web_support import PASSWORD, base_url, csrf_token, make_request, submit
from web.app import create_app
from web.limits import Limits

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 300

pytest_plugins = ["tests.web_fixtures"]

# Unlocking derives a key (Argon2id, ~50 ms of CPU): on a machine busy with
# other suites, httpx's 5 s default once ran out in the lockout test.
TIMEOUT = httpx.Timeout(60.0)


async def test_the_unlock_page_shows_who_what_how_much_and_a_password_form(clocked):
    made = await make_request(clocked.deps, files=[("invoice-1042.pdf", "application/pdf", PDF)])
    async with httpx.AsyncClient(base_url=base_url(clocked), timeout=TIMEOUT) as http:
        page = await http.get(made.path)
    assert page.status_code == 200
    for text in ("Demo Accounting", "1042", "$1,250.00 CAD", "First pet", 'name="password"', 'type="password"'):
        assert text in page.text, text
    assert csrf_token(page)
    assert "Hello Jane" not in page.text and "invoice-1042.pdf" not in page.text
    assert f'action="{made.path}"' in page.text


async def test_a_wrong_password_says_how_many_tries_are_left_and_the_right_one_opens(clocked):
    made = await make_request(clocked.deps, body="Hello Jane,\nhere is your invoice.",
                              files=[("invoice-1042.pdf", "application/pdf", PDF)])
    async with httpx.AsyncClient(base_url=base_url(clocked), timeout=TIMEOUT) as http:
        wrong = await submit(http, made.path, "blue42")
        assert wrong.status_code == 403
        assert "4 more tries" in wrong.text and 'name="password"' in wrong.text
        assert "1 more try " not in wrong.text
        right = await submit(http, made.path, PASSWORD)
        assert right.status_code == 303 and right.headers["location"] == made.path
        page = await http.get(made.path)
    assert page.status_code == 200
    assert "Hello Jane,\nhere is your invoice." in page.text
    assert f'<a href="{made.path}/files/1">invoice-1042.pdf</a>' in page.text
    assert f'href="{made.path}/pay"' in page.text
    assert 'name="password"' not in page.text
    assert (await UnlockGuard.get(request_id=made.request.id)).failures == 0


async def test_five_wrong_in_a_row_lock_for_15_minutes_then_30_and_the_staff_is_told(clocked, clock):
    made = await make_request(clocked.deps)
    async with httpx.AsyncClient(base_url=base_url(clocked), timeout=TIMEOUT) as http:
        for left in (4, 3, 2, 1):
            assert f"{left} more tr" in (await submit(http, made.path, "wrong")).text
        locked = await submit(http, made.path, "wrong")
        assert locked.status_code == 429 and locked.headers["retry-after"] == "900"
        assert "locked" in locked.text and "15 minutes" in locked.text
        # Refused while locked, the right password included, and not counted.
        sixth = await submit(http, made.path, PASSWORD)
        assert sixth.status_code == 429 and "locked" in sixth.text
        clock.advance(minutes=14, seconds=59)
        assert (await submit(http, made.path, PASSWORD)).status_code == 429

        clock.advance(seconds=1)
        for _ in range(4):
            assert (await submit(http, made.path, "wrong")).status_code == 403
        second = await submit(http, made.path, "wrong")
        assert second.status_code == 429 and second.headers["retry-after"] == "1800"
        clock.advance(minutes=30)
        assert (await submit(http, made.path, PASSWORD)).status_code == 303

    await settled()
    notices = [m for m in mails_to(clocked, DEMO_STAFF) if "Locked" in str(m["Subject"])]
    assert len(notices) == 2
    text = notices[0].get_body(("plain",)).get_content()
    assert "jane@client.example" in text and "15 minutes" in text and PASSWORD not in text
    assert "30 minutes" in notices[1].get_body(("plain",)).get_content()
    assert await Event.filter(action="request.locked").count() == 2


async def test_the_first_unlock_marks_the_request_viewed_and_tells_the_staff_member_once(clocked):
    made = await make_request(clocked.deps)
    for _ in range(2):
        async with httpx.AsyncClient(base_url=base_url(clocked), timeout=TIMEOUT) as http:
            assert (await submit(http, made.path, PASSWORD)).status_code == 303
    request = await PaymentRequest.get(id=made.request.id)
    assert request.status is RequestStatus.VIEWED and request.viewed_at == clocked.deps.clock()
    await settled()
    opened = [m for m in mails_to(clocked, DEMO_STAFF) if "Opened" in str(m["Subject"])]
    assert len(opened) == 1
    assert "jane@client.example" in opened[0].get_body(("plain",)).get_content()


async def test_a_firm_that_does_not_want_to_know_is_not_told(clocked):
    await Firm.filter(domain="demo.localhost").update(notify_on_view=False)
    made = await make_request(clocked.deps)
    async with httpx.AsyncClient(base_url=base_url(clocked), timeout=TIMEOUT) as http:
        assert (await submit(http, made.path, PASSWORD)).status_code == 303
    await settled()
    assert (await PaymentRequest.get(id=made.request.id)).status is RequestStatus.VIEWED
    assert not mails_to(clocked, DEMO_STAFF)


async def test_the_message_is_shown_as_text_with_its_line_breaks(clocked):
    made = await make_request(clocked.deps, body='<script>alert("x")</script>\nSecond line & <b>more</b>')
    async with httpx.AsyncClient(base_url=base_url(clocked), timeout=TIMEOUT) as http:
        await submit(http, made.path, PASSWORD)
        page = await http.get(made.path)
    assert "<script>" not in page.text and "<b>more</b>" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;\nSecond line &amp; &lt;b&gt;more&lt;/b&gt;" in page.text


async def test_the_session_ends_after_30_idle_minutes_and_holds_no_secret_in_clear(clocked, clock):
    made = await make_request(clocked.deps)
    async with httpx.AsyncClient(base_url=base_url(clocked), timeout=TIMEOUT) as http:
        # An id planted in the browser beforehand must not survive the unlock.
        http.cookies.set("ct_session", "A" * 43, domain="localhost.local")
        session_id = (await submit(http, made.path, PASSWORD)).cookies["ct_session"]
        assert session_id != "A" * 43
        clock.advance(minutes=29)
        assert "Hello Jane" in (await http.get(made.path)).text
        clock.advance(minutes=29)  # idle time counts from the last request
        assert "Hello Jane" in (await http.get(made.path)).text
        clock.advance(minutes=30)
        page = await http.get(made.path)
        assert 'name="password"' in page.text and "Hello Jane" not in page.text
        assert (await http.get(f"{made.path}/files/0")).status_code == 303
    data = b"".join(p.read_bytes() for p in clocked.deps.settings.data_dir.glob("clienttrack.db*"))
    assert session_id.encode() not in data and PASSWORD.encode() not in data


async def test_the_set_cookie_headers_are_httponly_and_strict(clocked):
    made = await make_request(clocked.deps)
    async with httpx.AsyncClient(base_url=base_url(clocked), timeout=TIMEOUT) as http:
        form = await http.get(made.path)
        unlocked = await http.post(made.path, data={"password": PASSWORD, "csrf_token": csrf_token(form)})
    for response in (form, unlocked):
        [cookie] = response.headers.get_list("set-cookie")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain http: a Secure cookie would be dropped
    assert unlocked.headers["set-cookie"].startswith("ct_session=")
    assert await ClientSession.all().count() == 1


async def test_locking_the_message_again_ends_the_session(clocked):
    made = await make_request(clocked.deps)
    async with httpx.AsyncClient(base_url=base_url(clocked), timeout=TIMEOUT) as http:
        await submit(http, made.path, PASSWORD)
        message = await http.get(made.path)
        locked = await http.post(f"{made.path}/lock", data={"csrf_token": csrf_token(message)})
        assert locked.status_code == 200 and 'name="password"' in locked.text
        assert "ct_session" not in http.cookies  # the browser dropped it
        assert "Hello Jane" not in (await http.get(made.path)).text
    assert await ClientSession.all().count() == 0


async def test_unknown_expired_and_cancelled_requests_say_whom_to_contact(clocked, clock):
    expiring = await make_request(clocked.deps, expires_in=timedelta(days=1))
    cancelled = await make_request(clocked.deps, status=RequestStatus.CANCELLED)
    async with httpx.AsyncClient(base_url=base_url(clocked), timeout=TIMEOUT) as http:
        unknown = await http.get("/r/" + "x" * 43)
        assert unknown.status_code == 404 and "contact the firm" in unknown.text
        assert (await http.post("/r/" + "x" * 43, data={"password": "p"})).status_code == 404
        gone = await http.get(cancelled.path)
        assert gone.status_code == 410 and "cancelled" in gone.text and DEMO_STAFF in gone.text
        form = await http.get(expiring.path)
        clock.advance(days=1)
        expired = await http.post(expiring.path, data={"password": PASSWORD, "csrf_token": csrf_token(form)})
        assert expired.status_code == 410 and "expired" in expired.text and DEMO_STAFF in expired.text
        assert (await http.get(expiring.path)).status_code == 410
    assert await ClientSession.all().count() == 0


async def test_an_unlocked_browser_loses_the_message_when_it_expires(clocked, clock):
    made = await make_request(clocked.deps, expires_in=timedelta(hours=1))
    async with httpx.AsyncClient(base_url=base_url(clocked), timeout=TIMEOUT) as http:
        await submit(http, made.path, PASSWORD)
        clock.advance(hours=1)
        assert (await http.get(made.path)).status_code == 410
        assert (await http.get(f"{made.path}/files/0")).status_code == 410


async def test_a_kept_unlock_form_still_gives_each_browser_its_own_csrf_token(clocked):
    made = await make_request(clocked.deps)
    async with httpx.AsyncClient(base_url=base_url(clocked), timeout=TIMEOUT) as first, \
            httpx.AsyncClient(base_url=base_url(clocked), timeout=TIMEOUT) as second:
        pages = [await first.get(made.path), await second.get(made.path)]
        tokens = [csrf_token(page) for page in pages]
        assert tokens[0] != tokens[1]
        assert pages[0].text.replace(tokens[0], "") == pages[1].text.replace(tokens[1], "")
        # One browser's token is no good with the other's cookie.
        crossed = await second.post(made.path, data={"password": PASSWORD, "csrf_token": tokens[0]})
        assert crossed.status_code == 403 and "open for too long" in crossed.text
        for http, token in zip((first, second), tokens):
            opened = await http.post(made.path, data={"password": PASSWORD, "csrf_token": token})
            assert opened.status_code == 303


async def test_a_cancelled_request_shows_its_form_only_while_the_page_is_kept(clocked):
    made = await make_request(clocked.deps)
    ticks = [0.0]
    app = create_app(clocked.deps, Limits(form_page_seconds=2), monotonic=lambda: ticks[0])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url(clocked)) as http:
        form = await http.get(made.path)
        await PaymentRequest.filter(id=made.request.id).update(status=RequestStatus.CANCELLED)
        ticks[0] = 1.9
        assert (await http.get(made.path)).status_code == 200
        # The unlock itself reads the database.
        refused = await http.post(made.path, data={"password": PASSWORD, "csrf_token": csrf_token(form)})
        assert refused.status_code == 410
        ticks[0] = 2.0
        assert (await http.get(made.path)).status_code == 410


async def test_a_kept_unlock_form_is_never_shown_past_the_requests_expiry(clocked, clock):
    made = await make_request(clocked.deps, expires_in=timedelta(hours=1))
    async with httpx.AsyncClient(base_url=base_url(clocked), timeout=TIMEOUT) as http:
        assert (await http.get(made.path)).status_code == 200
        clock.advance(hours=1)
        assert (await http.get(made.path)).status_code == 410


def _server_cpu(url: str, paths: list[tuple[str, str]]) -> dict[str, list[float]]:
    """GET each (kind, path) from this client thread; the CPU time the server
    spent on each: the process's CPU time (the event loop, the database
    thread) less this thread's own. Unlike the wall time, it does not grow
    when the machine is busy with other work (five suites at once, xdist).
    A new connection each time: on a kept-alive one, a delayed ACK could
    hide a difference under tens of milliseconds."""
    times: dict[str, list[float]] = {}
    with httpx.Client(base_url=url, headers={"connection": "close"}) as http:
        for kind, path in paths:
            process, own = time.process_time(), time.thread_time()
            http.get(path)
            server = (time.process_time() - process) - (time.thread_time() - own)
            times.setdefault(kind, []).append(server)
    return times


async def _timed(gw, paths: list[tuple[str, str]]) -> tuple[float, float]:
    times = await asyncio.get_running_loop().run_in_executor(CLIENT_THREADS, _server_cpu, base_url(gw), paths)
    return statistics.median(times["known"]), statistics.median(times["unknown"])


async def test_an_unknown_token_answers_in_the_same_time_as_a_known_one_first_time_too(clocked):
    # Unlock forms are kept a few seconds (web/formcache.py): each link here is asked for once.
    known = [(await make_request(clocked.deps)).path for _ in range(30)]
    unknown = [f"/r/{n:043d}" for n in range(30)]
    warm_up = [("warm", f"/r/{'W' * 43}"), ("warm", known.pop())]  # templates
    rounds = [pair for k, u in zip(known, unknown) for pair in (("known", k), ("unknown", u))]
    known_time, missing = await _timed(clocked, warm_up + rounds)
    assert abs(known_time - missing) < max(0.002, 0.5 * min(known_time, missing)), (known_time, missing)


async def test_an_unknown_token_answers_in_the_same_time_as_a_known_one(clocked):
    made = await make_request(clocked.deps)
    unknown = "/r/" + "Z" * 43
    warm_up = [("warm", made.path), ("warm", unknown)]  # templates
    rounds = [("known", made.path), ("unknown", unknown)] * 40
    known, missing = await _timed(clocked, warm_up + rounds)
    assert abs(known - missing) < max(0.002, 0.5 * min(known, missing)), (known, missing)


async def test_french_from_the_browser_and_a_switch_that_sticks(clocked):
    made = await make_request(clocked.deps)
    async with httpx.AsyncClient(base_url=base_url(clocked), timeout=TIMEOUT, headers={"accept-language": "fr-CA,fr;q=0.9,en;q=0.5"}) \
            as http:
        french = await http.get(made.path)
        assert 'lang="fr"' in french.text and "Mot de passe" in french.text
        assert "1\u00a0250,00\u00a0$ CAD" in french.text and 'href="?lang=en"' in french.text
        english = await http.get(made.path + "?lang=en")
        assert "Password" in english.text and "ct_lang=en" in english.headers["set-cookie"]
        assert "Password" in (await http.get(made.path)).text
        wrong = await submit(http, made.path + "?lang=fr", "nope")
        assert "Il vous reste 4 essais" in wrong.text
