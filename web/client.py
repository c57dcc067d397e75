"""The client's pages, starting with the unlock page at /r/<token>."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import vault
from gateway.models import PaymentRequest, RequestStatus
from gateway.money import format_display


async def find_request(token: str) -> PaymentRequest | None:
    return await PaymentRequest.get_or_none(token_hash=vault.token_hash(token)).prefetch_related("firm", "staff")


async def unlock_page(request: Request) -> Response:
    templates = request.app.state.templates
    deps = request.app.state.deps
    found = await find_request(request.path_params["token"])
    if found is None:
        return templates.TemplateResponse(request, "pages/not_found.html", {}, status_code=404)
    if found.status is RequestStatus.CANCELLED or found.expires_at <= deps.clock():
        return templates.TemplateResponse(request, "pages/gone.html", {"req": found}, status_code=410)
    return templates.TemplateResponse(
        request,
        "pages/unlock.html",
        {"req": found, "amount": format_display(found.amount_minor, found.currency)},
    )


def routes() -> list[Route]:
    return [Route("/r/{token}", unlock_page)]
