"""An arrival for the inbound queue: sealed under the master key."""

from __future__ import annotations

import pytest

from gateway import vault
from gateway.core import db
from gateway.core.models import InboundRaw
from gateway.inbound import queue as inbound
from tests.conftest import database_url
from tests.test_runner import START


async def test_an_arrival_is_sealed_and_opens_only_with_the_master_key(tmp_path):
    async with db.opened(database_url(tmp_path)):
        key = vault.new_data_key()
        arrival = inbound.arrival(b"Subject: secret pw=Blue42\r\n\r\nhi", master_key=key, mail_from="a@b.example",
                                  sender="a@b.example", firm_domain="b.example", rcpt_tos=["pay@b.example"],
                                  peer="127.0.0.1", trusted_peer=False, now=START)
        assert arrival.size == len(b"Subject: secret pw=Blue42\r\n\r\nhi")
        await arrival.raw().save()
        stored = await InboundRaw.get(id=arrival.queue_id)
        assert b"Blue42" not in stored.sealed_raw
        assert inbound.open_raw(stored, key).endswith(b"hi")
        with pytest.raises(vault.TamperedError):
            inbound.open_raw(stored, vault.new_data_key())
