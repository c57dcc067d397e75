"""Settings: read once, validated, secrets never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core.settings import SettingsError, load, split_host_port

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)


def test_defaults_need_no_configuration():
    settings = load({}, environ={})
    assert settings.smtp_port == 2525 and settings.web_port == 8000
    assert settings.database == "sqlite://data/clienttrack.db"
    assert settings.max_message_size == 25 * 1024 * 1024
    assert settings.payment_provider == "none"
    assert settings.public_base_url == "http://localhost:8000"


def test_precedence_is_file_then_environment_then_options(tmp_path):
    config = tmp_path / "clienttrack.toml"
    config.write_text('smtp_port = 2600\nweb_port = 8100\nbase_url = "https://pay.example.ca"\n')
    settings = load({"web_port": 8200}, environ={"CLIENTTRACK_CONFIG": str(config), "CLIENTTRACK_SMTP_PORT": "2700"})
    assert (settings.smtp_port, settings.web_port) == (2700, 8200)
    assert settings.public_base_url == "https://pay.example.ca"


def test_secrets_never_print():
    settings = load({}, environ={
        "CLIENTTRACK_STRIPE_SECRET_KEY": "sk_test_supersecret",
        "CLIENTTRACK_RELAY_URL": "smtp://user:hunter2@relay.example:587",
    })
    assert "sk_test_supersecret" not in repr(settings) and "hunter2" not in repr(settings)
    assert str(settings.stripe_secret_key) == "sk_test_supersecret"
    assert settings.payment_provider == "stripe"


def test_demo_turns_on_the_sandbox_and_nothing_else_does():
    assert load({"demo": True}, environ={}).payment_provider == "sandbox"
    assert load({}, environ={"CLIENTTRACK_PAYMENTS": "sandbox"}).payment_provider == "sandbox"
    assert load({}, environ={"CLIENTTRACK_DEMO": "false"}).payment_provider == "none"


@pytest.mark.parametrize("environ, message", [
    ({"CLIENTTRACK_SMTP_PORT": "http"}, "smtp_port: expected a whole number"),
    ({"CLIENTTRACK_WEB_PORT": "70000"}, "web_port: 70000 is outside"),
    ({"CLIENTTRACK_BASE_URL": "pay.example.ca"}, "base_url: expected a URL"),
    ({"CLIENTTRACK_RELAY_URL": "http://relay"}, "relay_url: expected a URL starting with smtp://"),
    ({"CLIENTTRACK_RELAY_URL": "smtp://user:hunter2@[::1:25"}, "relay_url: not a URL"),
    ({"CLIENTTRACK_BASE_URL": "https://pay.example.ca:99999"}, "base_url: not a URL"),
    ({"CLIENTTRACK_DEMO": "maybe"}, "demo: expected true or false"),
    ({"CLIENTTRACK_PAYMENTS": "paypal"}, "payments: expected sandbox, stripe or none"),
    ({"CLIENTTRACK_PAYMENTS": "stripe"}, "stripe needs CLIENTTRACK_STRIPE_SECRET_KEY"),
    ({"CLIENTTRACK_KDF_MEMORY_KIB": "1024"}, "kdf_memory_kib"),
    ({"CLIENTTRACK_CONFIG": "/nonexistent.toml"}, "config file not found"),
    ({"CLIENTTRACK_TRUSTED_PROXIES": "proxy.internal"}, "trusted_proxies: 'proxy.internal' is not an IP"),
    ({"CLIENTTRACK_DNS_NAMESERVERS": "dns.google"}, "dns_nameservers: 'dns.google' is not an IP address"),
    ({"CLIENTTRACK_DNS_NAMESERVERS": "127.0.0.1:99999"}, "dns_nameservers: '127.0.0.1:99999' has a port"),
    ({"CLIENTTRACK_DNS_NAMESERVERS": "[::1]:x"}, "has a port that is not a number"),
    ({"CLIENTTRACK_MESSAGE_MAX_AGE_HOURS": "0"}, "message_max_age_hours: 0 is outside"),
    ({"CLIENTTRACK_WEB_HEADER_TIMEOUT": "0"}, "web_header_timeout: 0.0 is outside"),
])
def test_wrong_settings_are_named(environ, message):
    with pytest.raises(SettingsError, match=message) as caught:
        load({}, environ=environ)
    assert "hunter2" not in str(caught.value)


def test_unknown_keys_in_the_file_are_refused(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("smtp_prot = 25\n")
    with pytest.raises(SettingsError, match="unknown setting: smtp_prot"):
        load({}, environ={}, config_file=config)


def test_data_dir_is_a_path():
    assert load({}, environ={"CLIENTTRACK_DATA_DIR": "/srv/ct"}).data_dir == Path("/srv/ct")


def test_trusted_proxies_are_addresses_or_networks_and_none_by_default():
    assert load({}, environ={}).trusted_proxies == ()
    settings = load({}, environ={"CLIENTTRACK_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1,::1"})
    assert settings.trusted_proxies == ("10.0.0.0/8", "127.0.0.1/32", "::1/128")


def test_dns_nameservers_are_ip_addresses_with_an_optional_port_and_the_systems_by_default():
    assert load({}, environ={}).dns_nameservers == ()
    settings = load({}, environ={"CLIENTTRACK_DNS_NAMESERVERS": "127.0.0.1:5353, 192.0.2.53,2001:db8::53,[::1]:53"})
    assert settings.dns_nameservers == ("127.0.0.1:5353", "192.0.2.53", "2001:db8::53", "[::1]:53")
    assert [split_host_port(item) for item in settings.dns_nameservers] == [
        ("127.0.0.1", 5353), ("192.0.2.53", None), ("2001:db8::53", None), ("::1", 53)]


def test_signed_mail_stays_fresh_48_hours_unless_set():
    assert load({}, environ={}).message_max_age_hours == 48
    assert load({}, environ={"CLIENTTRACK_MESSAGE_MAX_AGE_HOURS": "6"}).message_max_age_hours == 6
