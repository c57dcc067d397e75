"""Bounce addresses: one per outbound message, and nobody can make one up."""

from __future__ import annotations

import pytest

from gateway import vault
from gateway.vault.verp import BounceAddress, Verp, shaped_like

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

KEY = vault.new_data_key()


def test_an_address_names_its_message_and_domain():
    address = Verp(KEY).address(42, "Firm.Example")
    local, _, domain = address.partition("@")
    assert local.startswith("bounce+42.") and domain == "firm.example"
    assert Verp(KEY).verify(address) == BounceAddress(42, "firm.example")
    assert Verp(KEY).verify(f"<{address.upper()}>") == BounceAddress(42, "firm.example")  # case and brackets


@pytest.mark.parametrize("change", [
    lambda a: a.replace("bounce+42.", "bounce+43."),  # another message's id with this MAC
    lambda a: a.replace("@firm.example", "@other.example"),  # this MAC at another firm
    lambda a: a[:20] + ("0" if a[20] != "0" else "1") + a[21:],  # one MAC digit changed
    lambda a: a.replace("bounce+", "bounce-"),
    lambda a: a.split("@")[0][:-1] + "@firm.example",  # MAC cut short
    lambda a: "bounce+42@firm.example",
    lambda a: a.replace("bounce+42", "bounce+042"),  # the same id written otherwise
])
def test_a_forged_or_altered_address_does_not_verify(change):
    address = Verp(KEY).address(42, "firm.example")
    assert Verp(KEY).verify(change(address)) is None


def test_another_master_key_makes_other_addresses():
    assert Verp(KEY).verify(Verp(vault.new_data_key()).address(42, "firm.example")) is None


def test_the_shape_is_recognised_without_the_key():
    assert shaped_like(Verp(vault.new_data_key()).address(9, "firm.example"))
    assert not shaped_like("bounce+news@example.com") and not shaped_like("pay@firm.example")


def test_the_key_is_not_in_the_repr():
    assert repr(Verp(KEY)) == "Verp(***)"
