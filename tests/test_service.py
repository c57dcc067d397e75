"""`clienttrack serve`: the roles one process runs, and the banner."""

from __future__ import annotations

import pytest

from gateway.core.models import InboundMessage, InboundStatus, PaymentRequest
from gateway.core.settings import SettingsError
from gateway.service import banner, running
from tests.conftest import make_settings, request_mail, send, settled


async def test_roles_split_admission_from_processing(tmp_path):
    async with running(make_settings(tmp_path, roles="smtp,web")) as front:
        await send(front, request_mail("Invoice 9 $10.00 to=jane@client.example pw=Blue42"))
        assert (await InboundMessage.get()).status is InboundStatus.QUEUED
    async with running(make_settings(tmp_path, roles="queue,outbox")):
        await settled()
        assert await PaymentRequest.all().count() == 1


def test_unknown_roles_are_refused(tmp_path):
    with pytest.raises(SettingsError, match="roles: expected some of smtp, web, queue, outbox"):
        make_settings(tmp_path, roles="smtp,mailer")


async def test_the_demo_banner_tells_a_newcomer_what_to_do(gateway):
    text = banner(gateway.deps.settings, gateway.smtp_port)
    assert f"swaks --server 127.0.0.1:{gateway.smtp_port}" in text
    assert "python3 -c" in text
    assert f"{gateway.deps.settings.public_base_url}/demo/outbox" in text
