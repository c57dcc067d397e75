"""Payment settings as the providers see them, read from Settings and validated at start."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.core.settings import SettingsError
from gateway.payments.config import ConfigError, PaymentsConfig, webhook_secrets
from tests.payments_support import make_deps


def test_defaults_are_the_product_pages_rate_and_no_platform_fee(tmp_path):
    config = PaymentsConfig.from_settings(make_deps(tmp_path).settings)
    assert config == PaymentsConfig()
    assert (config.card_fee_rate, config.card_fee_fixed_minor) == (Decimal("0.029"), 50)
    assert not config.application_fee_on and config.application_fee(10000) == 0
    assert config.application_fee_free_requests == 5


def test_payment_settings_come_from_the_settings(tmp_path):
    settings = make_deps(tmp_path, card_fee_rate="0.025", card_fee_fixed_minor="30", application_fee_rate="0.005",
                         application_fee_free_requests="10", stripe_publishable_key="pk_test_123").settings
    config = PaymentsConfig.from_settings(settings)
    assert config.card_fee_rate == Decimal("0.025") and config.card_fee_fixed_minor == 30
    assert config.application_fee_rate == Decimal("0.005") and config.application_fee_free_requests == 10
    assert config.publishable_key == "pk_test_123"
    assert config.application_fee(10000) == 50
    assert config.application_fee(1) == 0  # never the whole amount


@pytest.mark.parametrize("bad, message", [
    ({"card_fee_rate": "abc"}, "card_fee_rate: expected a decimal fraction"),
    ({"card_fee_rate": "0.9"}, "card_fee_rate: 0.9 is outside"),
    ({"card_fee_fixed_minor": "-1"}, "card_fee_fixed_minor: -1 is outside"),
    ({"application_fee_free_requests": "x"}, "application_fee_free_requests: expected a whole number"),
])
def test_bad_values_are_refused_at_start(tmp_path, bad, message):
    with pytest.raises(SettingsError, match=message):
        make_deps(tmp_path, **bad)


def test_a_float_rate_is_refused():
    with pytest.raises(ConfigError, match="expected a Decimal"):
        PaymentsConfig(card_fee_rate=0.029)


def test_webhook_secrets(tmp_path):
    assert webhook_secrets(make_deps(tmp_path).settings) == []
    settings = make_deps(tmp_path, stripe_webhook_secret="whsec_a").settings
    assert webhook_secrets(settings) == ["whsec_a"]
    settings = make_deps(tmp_path, stripe_webhook_secret="whsec_a", stripe_connect_webhook_secret="whsec_b").settings
    assert webhook_secrets(settings) == ["whsec_a", "whsec_b"]
