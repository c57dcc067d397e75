"""One-time sign-in links: made only for members with a level, spent once,
bound to the member and the firm, useless once the member loses access."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gateway.core import db, directory
from gateway.core.models import Firm, Level
from gateway.vault import signin
from tests.conftest import database_url

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)


@pytest.fixture
async def firm(tmp_path):
    async with db.opened(database_url(tmp_path)):
        firm = await directory.add_firm("firm.example", "F", currency="CAD", timezone="America/Toronto", now=NOW,
                                        actor="t")
        for email, level in (("a@firm.example", Level.ADMIN), ("n@firm.example", Level.NONE)):
            await directory.add_staff(firm, email, level, now=NOW, actor="t")
        yield firm


def token_of(link: str) -> str:
    return link.rsplit("/", 1)[1]


async def test_a_link_is_spent_once_and_only_in_time(firm):
    staff = await directory.get_staff(firm, "a@firm.example")
    link = await signin.new_link(staff, base_url="https://pay.example/", now=NOW, actor="t")
    assert link.startswith("https://pay.example/staff/sign-in/")
    assert (await signin.look(token_of(link), NOW)).usable
    assert (await signin.spend(token_of(link), NOW)).email == "a@firm.example"
    assert await signin.spend(token_of(link), NOW) is None
    assert not (await signin.look(token_of(link), NOW)).usable

    late = await signin.new_link(staff, base_url="https://pay.example", now=NOW, actor="t")
    assert await signin.spend(token_of(late), NOW + signin.TTL) is None
    assert await signin.spend("A" * 43, NOW) is None


async def test_no_link_for_level_none_and_a_link_dies_with_its_members_access(firm):
    with pytest.raises(ValueError):
        await signin.new_link(await directory.get_staff(firm, "n@firm.example"), base_url="https://p.example",
                              now=NOW, actor="t")
    staff = await directory.get_staff(firm, "a@firm.example")
    first = await signin.new_link(staff, base_url="https://p.example", now=NOW, actor="t")
    await directory.add_staff(firm, "b@firm.example", Level.ADMIN, now=NOW, actor="t")
    await directory.set_level(firm, "a@firm.example", Level.NONE, now=NOW, actor="t")
    assert not (await signin.look(token_of(first), NOW)).usable
    assert await signin.spend(token_of(first), NOW + timedelta(seconds=1)) is None

    await directory.set_level(firm, "a@firm.example", Level.SEND, now=NOW, actor="t")
    second = await signin.new_link(staff, base_url="https://p.example", now=NOW, actor="t")
    await directory.remove_staff(firm, "a@firm.example", now=NOW, actor="t")
    assert await signin.spend(token_of(second), NOW) is None
    assert not await Firm.filter(sign_ins__staff__email="a@firm.example").exists()
