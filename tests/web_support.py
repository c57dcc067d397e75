"""Helpers for the web tests: requests made straight in the database (no
mail round trip), and a client that fills in the unlock form the way a
browser would. The fixtures are in tests/web_fixtures.py."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import httpx

from gateway import vault
from gateway.core.models import Firm, PaymentRequest, RequestStatus, SealedChunk, SealedFile, Staff
from gateway.deps import Deps
from gateway.documents import storing
from gateway.documents.storing import seal_item
from gateway.handlers.request import BODY_FILENAME
from gateway.vault.sealed import key_aad
from gateway.service import Running

PASSWORD = "Blue42"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Made:
    request: PaymentRequest
    token: str

    @property
    def path(self) -> str:
        return f"/r/{self.token}"


async def make_request(deps: Deps, *, password: str = PASSWORD, body: str = "Hello Jane,\nyour invoice.\n",
                       files: list[tuple[str, str, bytes]] = (), expires_in: timedelta = timedelta(days=30),
                       status: RequestStatus = RequestStatus.SENT, hint: str = "First pet",
                       invoice: str = "1042", in_database: bool = False) -> Made:
    """A payment request from the demo firm's staff member, as the mail
    handler would store it; `in_database`: its sealed chunks as SealedChunk
    rows, as before the blob store (what `blobs migrate` moves)."""
    firm = await Firm.get(domain="demo.localhost")
    staff = await Staff.get(firm=firm)
    token = vault.new_token()
    token_hash = vault.token_hash(token)
    data_key = vault.new_data_key()
    params = vault.new_kdf_params(deps.settings.kdf_memory_kib, deps.settings.kdf_iterations)
    now = deps.clock()
    request = await PaymentRequest.create(
        firm=firm, staff=staff, sender=staff.email, invoice=invoice, client_email="jane@client.example",
        amount_minor=125000, currency="CAD", hint=hint, token_hash=token_hash, kdf=params.to_json(),
        wrapped_key=vault.wrap_with_password(password, data_key, params, key_aad(token_hash)),
        source_message_id=f"<{token_hash[:16]}@test>", created_at=now, expires_at=now + expires_in, status=status,
    )
    items = [seal_item(data_key, BODY_FILENAME, "text/plain", body.encode()), *(
        seal_item(data_key, name, content_type, data) for name, content_type, data in files)]
    if not in_database:
        await storing.record(request, await storing.put_items(deps.blobs, items))
        return Made(request, token)
    for position, item in enumerate(items):
        sealed = await SealedFile.create(
            request=request, position=position, is_body=position == 0, filename=item.filename,
            content_type=item.content_type, size=item.size, file_salt=item.salt, chunk_count=len(item.chunks),
        )
        await SealedChunk.bulk_create([SealedChunk(file=sealed, index=i, data=c) for i, c in enumerate(item.chunks)])
    return Made(request, token)


def base_url(gw: Running) -> str:
    return gw.deps.settings.public_base_url


def csrf_token(page: httpx.Response) -> str:
    return CSRF.search(page.text).group(1)


async def submit(http: httpx.AsyncClient, path: str, password: str, **headers: str) -> httpx.Response:
    """Open the form, then post the password with its CSRF token."""
    form = await http.get(path)
    return await http.post(path, data={"password": password, "csrf_token": csrf_token(form)}, headers=headers)
