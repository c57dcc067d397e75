"""The inbound queue's group commit: messages arriving together share one
transaction, and nobody hears back before their row is committed."""

from __future__ import annotations

import asyncio

import pytest

from gateway import db, inbound, vault
from gateway.models import InboundMessage
from tests.test_runner import START


def row(queue_id: str) -> InboundMessage:
    return InboundMessage(id=queue_id, mail_from="a@b.example", sender="a@b.example", firm_domain="b.example",
                          rcpt_tos=["pay@b.example"], size=1, sealed_raw=b"x", received_at=START)


async def test_concurrent_messages_are_committed_together_and_each_waits_for_it(tmp_path):
    async with db.opened(f"sqlite://{tmp_path}/t.db"):
        commit = inbound.GroupCommit(linger=0.01)
        await asyncio.gather(*(commit.insert(row(f"Q{n}")) for n in range(30)))
        assert await InboundMessage.all().count() == 30


async def test_a_failed_batch_fails_every_waiter_and_keeps_nothing(tmp_path):
    async with db.opened(f"sqlite://{tmp_path}/t.db"):
        commit = inbound.GroupCommit(linger=0.01)
        await commit.insert(row("TAKEN"))
        results = await asyncio.gather(commit.insert(row("NEW")), commit.insert(row("TAKEN")),
                                       return_exceptions=True)
        assert all(isinstance(r, Exception) for r in results)
        assert await InboundMessage.filter(id="NEW").count() == 0
        await commit.insert(row("LATER"))  # the writer carries on
        assert await InboundMessage.filter(id="LATER").count() == 1


async def test_enqueue_seals_the_raw_message(tmp_path):
    async with db.opened(f"sqlite://{tmp_path}/t.db"):
        key = vault.new_data_key()
        queue_id = await inbound.enqueue(b"Subject: secret pw=Blue42\r\n\r\nhi", commit=inbound.GroupCommit(),
                                         master_key=key, mail_from="a@b.example", sender="a@b.example",
                                         firm_domain="b.example", rcpt_tos=["pay@b.example"], peer="127.0.0.1",
                                         trusted_peer=False, now=START)
        stored = await InboundMessage.get(id=queue_id)
        assert b"Blue42" not in stored.sealed_raw
        assert inbound.open_raw(stored, key).endswith(b"hi")
        with pytest.raises(vault.TamperedError):
            inbound.open_raw(stored, vault.new_data_key())
