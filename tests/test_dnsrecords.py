"""The records `firm dkim` suggests and what its check says about the ones
found (the lookups themselves: tests/test_deliverability.py)."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.outbound import dnsrecords
from gateway.outbound.dkimkeys import KeyStore
from gateway.outbound.dnsrecords import Level, Spf, check_dkim, check_dmarc, check_spf, spf_for

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)


@pytest.mark.parametrize("relay, hostname, mechanism", [
    (None, "gw.clienttrack.ca", "a:gw.clienttrack.ca"),  # the Maildir: mail would leave from here
    ("smtp://127.0.0.1:25", "gw.clienttrack.ca", "a:gw.clienttrack.ca"),  # Postfix on the same host
    ("smtp://localhost:25", "gw.clienttrack.ca", "a:gw.clienttrack.ca"),
    ("smtp://apikey:secret@smtp.sendgrid.net:587", "gw", "include:sendgrid.net"),
    ("smtps://u:p@email-smtp.ca-central-1.amazonaws.com:465", "gw", "include:amazonses.com"),
    ("smtp://u:p@smtp.office365.com:587", "gw", "include:spf.protection.outlook.com"),
    ("smtp://relay.isp.example:25", "gw", "include:isp.example"),
])
def test_spf_names_the_relays_provider_or_this_host(relay, hostname, mechanism):
    assert spf_for(relay, hostname).mechanism == mechanism


def test_spf_warns_about_a_host_name_that_is_not_public():
    assert "CLIENTTRACK_HOSTNAME" in spf_for(None, "clienttrack.localhost").note
    assert "guess" in spf_for("smtp://relay.isp.example", "gw").note


def test_the_relay_password_never_reaches_the_records(tmp_path):
    generation = KeyStore(tmp_path).ensure("firm.example", date(2026, 5, 14))
    records = dnsrecords.records(generation, None, ed25519=True,
                                 spf=spf_for("smtp://user:hunter2@smtp.sendgrid.net:587", "gw"))
    assert "hunter2" not in repr(records)
    assert [r.name for r in records] == ["ct20260514-rsa._domainkey.firm.example", "ct20260514-ed._domainkey.firm.example",
                                         "firm.example", "_dmarc.firm.example"]


def test_a_long_txt_value_is_split_into_strings_of_255(tmp_path):
    generation = KeyStore(tmp_path).ensure("firm.example", date(2026, 5, 14))
    [rsa] = dnsrecords.dkim_records(generation, ed25519=False)
    line = rsa.zone_line()
    strings = line.split('"')[1::2]
    assert len(strings) == 2 and all(len(s) <= 255 for s in strings) and "".join(strings) == rsa.value


EXPECTED = dnsrecords.Record("s._domainkey.firm.example", "TXT", "v=DKIM1; k=rsa; p=ABCD", "")


@pytest.mark.parametrize("published, level", [
    (["v=DKIM1; k=rsa; p=ABCD"], Level.OK),
    (["v=DKIM1;k=rsa;p=AB CD"], Level.OK),  # white space inside a value does not count
    (["k=rsa; p=ABCD"], Level.OK),  # v= may be left out
    ([], Level.MISSING),
    (["v=DKIM1; k=rsa; p="], Level.WRONG),  # revoked
    (["v=DKIM1; k=rsa; p=EFGH"], Level.WRONG),
    (["v=DKIM1; k=ed25519; p=ABCD"], Level.WRONG),
    (["v=DKIM1; k=rsa; p=ABCD", "v=DKIM1; k=rsa; p=ABCD"], Level.WRONG),
])
def test_dkim(published, level):
    assert check_dkim(EXPECTED, published).level is level


SPF = Spf("include:sendgrid.net", "")


@pytest.mark.parametrize("published, level", [
    (["v=spf1 include:sendgrid.net ~all"], Level.OK),
    (["google-site-verification=x", "v=spf1 mx include:sendgrid.net -all"], Level.OK),
    (["v=spf1 +include:sendgrid.net -all"], Level.OK),
    (["v=spf1 mx -all"], Level.WARNING),  # does not name the relay
    (["v=spf1 include:sendgrid.net"], Level.WARNING),  # no all
    (["v=spf1 include:sendgrid.net +all"], Level.WRONG),
    (["v=spf1 mx -all", "v=spf1 include:sendgrid.net -all"], Level.WRONG),  # two: permerror
    (["v=spf10 include:sendgrid.net"], Level.MISSING),
    ([], Level.MISSING),
])
def test_spf(published, level):
    assert check_spf("firm.example", SPF, published).level is level


@pytest.mark.parametrize("published, parent, level", [
    (["v=DMARC1; p=none; adkim=s"], None, Level.OK),
    (["v=DMARC1; p=reject"], None, Level.OK),
    (["v=DMARC1; p=maybe"], None, Level.WRONG),
    (["v=DMARC1; p=none", "v=DMARC1; p=reject"], None, Level.WRONG),
    ([], ("clienttrack.ca", ["v=DMARC1; p=quarantine; sp=none"]), Level.OK),  # inherited
    ([], ("clienttrack.ca", []), Level.MISSING),
    ([], None, Level.MISSING),
])
def test_dmarc(published, parent, level):
    found = check_dmarc("_dmarc.firm.clienttrack.ca", published, parent)
    assert found.level is level
    if parent and level is Level.OK:
        assert "p=quarantine, sp=none" in found.message
