"""Where a signature covers To or Cc, the signed To and Cc must name the gateway."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gateway.admission import signatures
from gateway.admission.addressed import problem
from gateway.admission.headersection import read

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

NOW = datetime(2026, 5, 4, 15, 0, tzinfo=timezone.utc)
GATEWAY = "pay@firm.example"


def check(to: str, cc: str | None, signed: str, domain: str = "firm.example") -> str:
    lines = ["From: boss@firm.example", f"To: {to}"] + ([f"Cc: {cc}"] if cc else [])
    lines.append(f"DKIM-Signature: v=1; a=rsa-sha256; d={domain}; s=sel; h={signed}; bh=x; b=y")
    section = read(("\r\n".join(lines) + "\r\n\r\n").encode())
    found = signatures.read_all(section.fields, "firm.example", NOW)
    return problem(section, found, [GATEWAY])


@pytest.mark.parametrize("to, cc, signed", [
    (GATEWAY, None, "from:to:subject"),
    ("bob@firm.example", GATEWAY, "from:to:cc"),
    (f"Pay <{GATEWAY.upper()}>", None, "from:to"),
    ("mallory@evil.example", None, "from:subject:date"),  # Microsoft 365: To is not signed
    ("mallory@evil.example", None, "from:to"),  # signed, but by a signature not aligned with the From
])
def test_addressed_or_not_covered(to, cc, signed):
    domain = "list.example" if to.startswith("mallory") and signed == "from:to" else "firm.example"
    assert check(to, cc, signed, domain) == ""


@pytest.mark.parametrize("to, cc, signed", [
    ("mallory@evil.example", None, "from:to"),
    ("mallory@evil.example", GATEWAY, "from:to"),  # the Cc naming the gateway is not signed
    (f'"{GATEWAY}" <mallory@evil.example>', None, "from:to"),
    ("mallory@evil.example, bob@firm.example", None, "from:to:cc"),
])
def test_signed_mail_to_someone_else_is_refused(to, cc, signed):
    assert f"{GATEWAY} is not in the signed" in check(to, cc, signed)
