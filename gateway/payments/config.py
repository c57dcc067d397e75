"""Payment settings, as the providers use them. They come from
gateway/core/settings.py (``CLIENTTRACK_CARD_FEE_RATE`` and so on, like every
other setting), validated there at start:

==============================  ==========  ===========================================
setting                         default     meaning
==============================  ==========  ===========================================
card_fee_rate                   "0.029"     the firm's card rate, grossed up by ``+fee``
card_fee_fixed_minor            50          its fixed part, minor units ($0.50)
application_fee_rate            "0"         the platform's fee on each payment (0: off)
application_fee_fixed_minor     0           its fixed part, minor units
application_fee_free_requests   5           a firm's first N requests carry no platform fee
stripe_publishable_key          ""          pk_... for Stripe.js on the pay page
stripe_connect_webhook_secret   (none)      whsec_... of the Connect webhook endpoint
==============================  ==========  ===========================================
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from gateway.payments.fees import DEFAULT_FIXED_MINOR, DEFAULT_RATE


class ConfigError(ValueError):
    """A payment setting is wrong; the message names it."""


@dataclass(frozen=True)
class PaymentsConfig:
    card_fee_rate: Decimal = DEFAULT_RATE
    card_fee_fixed_minor: int = DEFAULT_FIXED_MINOR
    application_fee_rate: Decimal = Decimal("0")
    application_fee_fixed_minor: int = 0
    application_fee_free_requests: int = 5
    publishable_key: str = ""

    def __post_init__(self) -> None:
        for name in ("card_fee_rate", "application_fee_rate"):
            value = getattr(self, name)
            if not isinstance(value, Decimal):
                raise ConfigError(f"{name}: expected a Decimal, got {type(value).__name__}")
            if not Decimal(0) <= value < Decimal("0.5"):
                raise ConfigError(f"{name}: {value} is outside 0..0.5")
        for name in ("card_fee_fixed_minor", "application_fee_fixed_minor", "application_fee_free_requests"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name}: expected a whole number >= 0, got {value!r}")

    @property
    def application_fee_on(self) -> bool:
        return bool(self.application_fee_rate or self.application_fee_fixed_minor)

    def application_fee(self, amount_minor: int) -> int:
        """The platform's fee on ``amount_minor`` (rounded half up), never the
        whole amount."""
        if not self.application_fee_on:
            return 0
        fee = int((Decimal(amount_minor) * self.application_fee_rate).to_integral_value(rounding=ROUND_HALF_UP))
        return max(0, min(fee + self.application_fee_fixed_minor, amount_minor - 1))

    @classmethod
    def from_settings(cls, settings: Any) -> "PaymentsConfig":
        return cls(
            card_fee_rate=_decimal("card_fee_rate", settings.card_fee_rate),
            card_fee_fixed_minor=_int("card_fee_fixed_minor", settings.card_fee_fixed_minor),
            application_fee_rate=_decimal("application_fee_rate", settings.application_fee_rate),
            application_fee_fixed_minor=_int("application_fee_fixed_minor", settings.application_fee_fixed_minor),
            application_fee_free_requests=_int("application_fee_free_requests",
                                               settings.application_fee_free_requests),
            publishable_key=settings.stripe_publishable_key,
        )


def webhook_secrets(settings: Any) -> list[str]:
    """The signing secrets our webhook endpoint accepts: the platform
    endpoint's and, for events on the firms' connected accounts (direct
    charges, payouts), the Connect endpoint's."""
    out = []
    for name in ("stripe_webhook_secret", "stripe_connect_webhook_secret"):
        value = getattr(settings, name)
        if value is not None and str(value).strip():
            out.append(str(value).strip())
    return out


def _decimal(name: str, value: Any) -> Decimal:
    if isinstance(value, float):
        raise ConfigError(f"{name}: write it as text (\"0.029\"), not a float")
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigError(f"{name}: expected a decimal number like 0.029, got {value!r}") from None


def _int(name: str, value: Any) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, got {value!r}") from None
