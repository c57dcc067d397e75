"""/r/<token>/pay: where the message page's pay button leads.

Until a payment provider fills this page in, it tells the client, in the
page's own words, how to pay: by contacting the firm. Only a browser that
unlocked the request gets it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from web.client import ClientPages, translator


def routes(pages: ClientPages) -> list[Route]:
    async def pay(request: Request) -> Response:
        opened = await pages.unlocked(request)
        if isinstance(opened, Response):
            return opened
        found, _ = opened
        t = translator(request)
        return pages.templates.TemplateResponse(
            request, "pages/pay.html",
            {"req": found, "token": request.path_params["token"],
             "amount": t.amount(found.amount_minor, found.currency)},
        )

    return [Route("/r/{token}/pay", pay, methods=["GET"])]
