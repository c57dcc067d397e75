"""Setting a firm up for payments: its Stripe connected account and the
hosted onboarding (Account Links).

``clienttrack firm connect-stripe DOMAIN`` and the admin mail command
``setup payments`` both call :func:`start_onboarding`, which creates the
firm's account if it has none and answers with an onboarding link. Stripe
sends the firm back to our return URL (:func:`finish_onboarding` marks the
firm ready once ``charges_enabled``) or, when the link has expired, to our
refresh URL (a fresh link). Both URLs carry a signed, expiring token naming
the firm, so nobody can mint an onboarding link for a firm by guessing a URL.
``account.updated`` webhooks keep ``payments_ready`` current afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
from datetime import datetime, timedelta
from urllib.parse import quote, urlsplit

from gateway.core import events
from gateway.core.models import Firm
from gateway.payments.provider import AccountStatus, OnboardingLink, PaymentsNotSetUp, ProviderError

log = logging.getLogger("clienttrack.payments.connect")

TOKEN_TTL = timedelta(days=30)
REFRESH_PATH = "/stripe/connect/refresh"
RETURN_PATH = "/stripe/connect/return"


def _token_key(master_key: bytes) -> bytes:
    return hmac.new(master_key, b"clienttrack/stripe-onboarding/v1", hashlib.sha256).digest()


def _sign(master_key: bytes, body: str) -> str:
    mac = hmac.new(_token_key(master_key), body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def onboarding_token(master_key: bytes, firm_id: int, now: datetime, ttl: timedelta = TOKEN_TTL) -> str:
    body = f"{firm_id}.{int((now + ttl).timestamp())}"
    return f"{body}.{_sign(master_key, body)}"


def read_token(master_key: bytes, token: str, now: datetime) -> int | None:
    """The firm id a token names, or None if forged or expired."""
    # Ours are ASCII; anything else is malformed (and compare_digest raises
    # TypeError on non-ASCII text, which was a 500).
    if not token.isascii():
        return None
    try:
        firm_id, expires, signature = token.split(".")
        body = f"{int(firm_id)}.{int(expires)}"
    except ValueError:
        return None
    if not hmac.compare_digest(signature.encode(), _sign(master_key, body).encode()) or int(expires) < now.timestamp():
        return None
    return int(firm_id)


def onboarding_urls(base_url: str, token: str) -> tuple[str, str]:
    base = base_url.rstrip("/")
    return f"{base}{REFRESH_PATH}?t={quote(token)}", f"{base}{RETURN_PATH}?t={quote(token)}"


def pay_domain(base_url: str) -> str | None:
    """The pay page's host, when Stripe could register it for wallets (not
    localhost, not an IP address)."""
    host = (urlsplit(base_url).hostname or "").lower()
    if not host or host == "localhost" or host.endswith((".localhost", ".local", ".test")):
        return None
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        return host


def _connect_capable(provider: object) -> bool:
    return all(hasattr(provider, name) for name in ("connect_account", "onboarding_link", "account_ready"))


async def start_onboarding(firm: Firm, provider: object, *, base_url: str, master_key: bytes, now: datetime,
                           actor: str) -> OnboardingLink:
    """Create the firm's connected account if needed; a fresh onboarding link."""
    if not _connect_capable(provider):
        raise PaymentsNotSetUp("Stripe is not set up on this gateway: set CLIENTTRACK_STRIPE_SECRET_KEY "
                               "(and CLIENTTRACK_STRIPE_WEBHOOK_SECRET) and restart it.")
    if not firm.stripe_account_id:
        account_id = await provider.connect_account(firm)  # type: ignore[attr-defined]
        # The idempotency key makes a retry return the same account; keep the first one stored.
        await Firm.filter(id=firm.id, stripe_account_id="").update(stripe_account_id=account_id)
        firm = await Firm.get(id=firm.id)
        await events.record(now, actor, "firm.stripe_account", firm=firm, account=firm.stripe_account_id)
    refresh_url, return_url = onboarding_urls(base_url, onboarding_token(master_key, firm.id, now))
    link = await provider.onboarding_link(firm, refresh_url, return_url)  # type: ignore[attr-defined]
    await events.record(now, actor, "firm.stripe_onboarding_link", firm=firm, account=firm.stripe_account_id)
    return link


async def finish_onboarding(firm: Firm, provider: object, *, now: datetime, actor: str,
                            base_url: str = "") -> AccountStatus:
    """The firm came back from Stripe: ready once ``charges_enabled``; the
    pay domain is registered for Apple Pay / Google Pay on its account."""
    if not _connect_capable(provider):
        raise PaymentsNotSetUp("Stripe is not set up on this gateway.")
    status = await provider.account_ready(firm)  # type: ignore[attr-defined]
    await Firm.filter(id=firm.id).update(payments_ready=status.charges_enabled)
    if status.charges_enabled:
        await register_wallet_domain(firm, provider, base_url)
    await events.record(now, actor, "firm.stripe_onboarding_return", firm=firm, account=firm.stripe_account_id,
                        charges_enabled=status.charges_enabled, details_submitted=status.details_submitted)
    return status


async def register_wallet_domain(firm: Firm, provider: object, base_url: str) -> bool:
    """Register the pay page's domain for Apple Pay / Google Pay on the firm's
    account. Called whenever the account can take charges, by whatever path
    (back from onboarding, or an ``account.updated`` webhook when Stripe
    verifies the firm later); Stripe's answer is idempotent, and so is our
    key. False when skipped (a local host) or refused (logged; it is tried
    again the next time the account is updated)."""
    domain = pay_domain(base_url) if base_url else None
    if not domain or not firm.stripe_account_id or not hasattr(provider, "register_payment_method_domain"):
        return False
    try:
        await provider.register_payment_method_domain(domain, account=firm.stripe_account_id)  # type: ignore[attr-defined]
    except ProviderError as exc:
        log.warning("could not register %s for wallets on %s: %s", domain, firm.domain, exc)
        return False
    return True


def setup_reply(firm: Firm, link: OnboardingLink) -> list[str]:
    """Paragraphs for the ``setup payments`` reply (and the CLI's output)."""
    return [
        f"To let {firm.name}'s clients pay online, open this link and complete Stripe's sign-up: "
        "your business details and the bank account your payments are deposited to. It takes 2 to 5 minutes.",
        f"    {link.url}",
        "The link works once and expires within minutes; if it has, send \"setup payments\" again "
        "(or open it anyway: Stripe will send you a fresh one).",
        "When Stripe has approved the account, payment requests you send get a Pay button.",
    ]
