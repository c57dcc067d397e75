"""/demo/outbox: read the demo's Maildir outbox in a browser (--demo only)."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup, escape
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

# The mail's own HTML may style itself, but runs nothing and loads nothing.
MAIL_HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
_URL = re.compile(r"https?://[^\s<>\"']+")
_NAME = re.compile(r"^[\w.,:-]+\.eml$")


@dataclass(frozen=True)
class OutboxMail:
    name: str
    sent: float
    message: email.message.EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return part.get_content() if part else ""

    @property
    def html(self) -> str | None:
        part = self.message.get_body(("html",))
        return part.get_content() if part else None


def read_outbox(outbox: Path) -> list[OutboxMail]:
    mails = []
    for path in (outbox / "new").glob("*.eml"):
        with path.open("rb") as fh:
            message = email.message_from_binary_file(fh, policy=email.policy.default)
        mails.append(OutboxMail(path.name, path.stat().st_mtime, message))
    return sorted(mails, key=lambda m: m.sent, reverse=True)


def read_one(outbox: Path, name: str) -> OutboxMail:
    path = outbox / "new" / name
    if not _NAME.match(name) or not path.is_file():
        raise HTTPException(404, "No such message in the outbox")
    with path.open("rb") as fh:
        return OutboxMail(name, path.stat().st_mtime, email.message_from_binary_file(fh, policy=email.policy.default))


def linkify(text: str) -> Markup:
    """Escape the text, then make its web addresses clickable."""
    out, last = [], 0
    for match in _URL.finditer(text):
        out.append(escape(text[last:match.start()]))
        url = escape(match.group())
        out.append(Markup(f'<a href="{url}">{url}</a>'))
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


async def outbox_list(request: Request) -> Response:
    outbox = request.app.state.deps.settings.outbox_dir
    return request.app.state.templates.TemplateResponse(
        request, "pages/demo_outbox.html", {"mails": read_outbox(outbox)}
    )


async def outbox_message(request: Request) -> Response:
    mail = read_one(request.app.state.deps.settings.outbox_dir, request.path_params["name"])
    return request.app.state.templates.TemplateResponse(
        request, "pages/demo_message.html", {"mail": mail, "body": linkify(mail.text)}
    )


async def outbox_message_html(request: Request) -> Response:
    mail = read_one(request.app.state.deps.settings.outbox_dir, request.path_params["name"])
    if mail.html is None:
        raise HTTPException(404, "This message has no HTML part")
    return HTMLResponse(mail.html, headers={"Content-Security-Policy": MAIL_HTML_CSP, "X-Frame-Options": "SAMEORIGIN"})


def routes() -> list[Route]:
    return [
        Route("/demo/outbox", outbox_list),
        Route("/demo/outbox/{name}", outbox_message),
        Route("/demo/outbox/{name}/html", outbox_message_html),
    ]
