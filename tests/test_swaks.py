"""A real SMTP client other than Python's: swaks, as the README suggests."""

from __future__ import annotations

import asyncio

from gateway.core.models import PaymentRequest
from tests.conftest import DEMO_STAFF, GATEWAY, mails_to, need_tool, settled


async def swaks(gw, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        need_tool("swaks"), "--server", f"127.0.0.1:{gw.smtp_port}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode, out.decode()


async def test_the_readme_sample_request_works_with_swaks(gateway, tmp_path):
    invoice = tmp_path / "invoice-1042.pdf"
    invoice.write_bytes(b"%PDF-1.4 sample invoice\n%%EOF\n")
    code, out = await swaks(
        gateway, "--from", DEMO_STAFF, "--to", GATEWAY,
        "--header", 'Subject: Invoice 1042 $1,250.00 to=jane@client.example pw=Blue42 hint="First pet" +fee',
        "--body", "Hello Jane, your invoice is attached.",
        "--attach-name", "invoice-1042.pdf", "--attach-type", "application/pdf", "--attach", f"@{invoice}",
    )
    assert code == 0, out
    assert "queued as" in out
    await settled()
    request = await PaymentRequest.get()
    assert request.amount_minor == 125000 and request.hint == "First pet"
    assert len(mails_to(gateway, "jane@client.example")) == 1


async def test_swaks_sees_550_for_a_relay_attempt(gateway):
    code, out = await swaks(gateway, "--from", DEMO_STAFF, "--to", "someone@elsewhere.example")
    assert code != 0
    assert "550 5.1.1" in out
