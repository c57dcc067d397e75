"""Which payment provider the gateway runs with: the one the settings name.
Kept apart from the interface (provider.py), which the providers import."""

from __future__ import annotations

from typing import Any

from gateway.core.clock import Clock, system_clock
from gateway.payments.config import PaymentsConfig
from gateway.payments.provider import NoProvider, PaymentProvider
from gateway.payments.sandbox import SandboxProvider
from gateway.payments.stripe_provider import StripeProvider


def provider_for(settings: Any, *, config: PaymentsConfig | None = None, clock: Clock = system_clock,
                 stripe_client: Any = None) -> PaymentProvider:
    """The provider ``settings.payment_provider`` names: the sandbox only when
    it says 'sandbox' (``--demo`` or CLIENTTRACK_PAYMENTS=sandbox), Stripe
    when 'stripe' (its secret key is set), otherwise :class:`NoProvider`."""
    config = config or PaymentsConfig.from_settings(settings)
    kind = settings.payment_provider
    if kind == "sandbox":
        return SandboxProvider(config, clock=clock)
    if kind == "stripe":
        if settings.stripe_secret_key is None:
            return NoProvider(config)
        return StripeProvider(str(settings.stripe_secret_key), api_base=settings.stripe_api_base or "",
                              config=config, client=stripe_client, clock=clock)
    return NoProvider(config)
