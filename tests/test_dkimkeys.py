"""DKIM key files: made on first need, private, the same across processes,
rotated in two steps."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.core import datadir
from gateway.outbound.dkimkeys import DkimKeyError, KeyStore

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

DAY = date(2026, 5, 14)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_domains_first_keys_are_made_on_first_need_with_the_master_keys_modes(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    store = KeyStore(data)
    assert store.active("Firm.Example") is None
    generation = store.ensure("Firm.Example", DAY)
    assert (generation.name, generation.rsa_selector, generation.ed25519_selector) == \
        ("ct20260514", "ct20260514-rsa", "ct20260514-ed")
    folder = data / "dkim" / "firm.example"
    assert sorted(p.name for p in folder.iterdir()) == ["active", "ct20260514.ed25519.key", "ct20260514.rsa.pem"]
    assert mode(data / "dkim") == mode(folder) == 0o700
    assert all(mode(p) == 0o600 for p in folder.iterdir())
    datadir.check(data)  # what serve checks at start
    assert store.ensure("firm.example", date(2027, 1, 1)) == generation  # kept, not remade
    assert generation.rsa_record().startswith("v=DKIM1; k=rsa; p=MIIBIjAN")  # 2048-bit SubjectPublicKeyInfo
    assert generation.ed25519_record().startswith("v=DKIM1; k=ed25519; p=")


def test_private_keys_never_show_in_a_repr(tmp_path):
    generation = KeyStore(tmp_path).ensure("firm.example", DAY)
    text = repr(generation)
    assert "PRIVATE" not in text and generation.ed25519_seed.decode() not in text


def test_processes_making_a_domains_first_keys_at_once_end_with_the_same_keys(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: KeyStore(tmp_path).ensure("firm.example", DAY), range(8)))
    assert len({(g.rsa_pem, g.ed25519_seed) for g in made}) == 1
    assert len(list((tmp_path / "dkim" / "firm.example").glob("*.rsa.pem"))) == 1


def test_a_process_that_finds_the_first_keys_made_but_not_yet_active_ends_with_those_keys(tmp_path):
    # Another process between its key files and its active pointer (or one
    # that crashed there). The threads above meet this only when one starts
    # late (a busy machine): a second generation was made, unused.
    theirs = KeyStore(tmp_path).ensure("firm.example", DAY)
    folder = tmp_path / "dkim" / "firm.example"
    (folder / "active").unlink()
    assert KeyStore(tmp_path).ensure("firm.example", DAY) == theirs
    assert sorted(p.name for p in folder.iterdir()) == ["active", "ct20260514.ed25519.key", "ct20260514.rsa.pem"]


def test_rotation_makes_the_next_keys_then_activates_them(tmp_path):
    store = KeyStore(tmp_path)
    first = store.ensure("firm.example", DAY)
    upcoming = store.rotate("firm.example", DAY)
    assert upcoming.name == "ct20260514n2" and upcoming.rsa_pem != first.rsa_pem
    assert store.active("firm.example") == first  # still signing with the published keys
    assert store.rotate("firm.example", DAY) == upcoming  # one waits at a time
    old, new = store.activate("firm.example")
    assert (old, new) == (first, upcoming) and store.active("firm.example") == upcoming
    assert store.pending("firm.example") is None
    assert store.load("firm.example", first.name) == first  # kept, for its record to stay published a while
    with pytest.raises(DkimKeyError, match="rotate first"):
        store.activate("firm.example")


@pytest.mark.parametrize("domain", ["../etc", "firm.example/x", "", "a..b", "-x.example"])
def test_a_domain_cannot_name_a_folder_outside_the_store(tmp_path, domain):
    with pytest.raises(ValueError):
        KeyStore(tmp_path).ensure(domain, DAY)


def test_a_damaged_key_file_is_named_and_not_quoted(tmp_path):
    store = KeyStore(tmp_path)
    generation = store.ensure("firm.example", DAY)
    path = tmp_path / "dkim" / "firm.example" / f"{generation.name}.rsa.pem"
    path.write_bytes(b"-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0\n-----END RSA PRIVATE KEY-----\n")
    with pytest.raises(DkimKeyError) as caught:
        store.active("firm.example")
    assert str(path) in str(caught.value) and "c2VjcmV0" not in str(caught.value)


def test_a_key_file_that_reads_as_a_key_but_would_sign_wrongly_is_refused(tmp_path):
    # The key is loaded without cryptography's full check of its numbers
    # (our own file): one whose private numbers belong to another key must
    # still be named, not sign mail that no receiver can verify.
    store = KeyStore(tmp_path)
    generation = store.ensure("firm.example", DAY)
    path = tmp_path / "dkim" / "firm.example" / f"{generation.name}.rsa.pem"
    ours = generation.rsa_key.private_numbers()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers()
    mixed = rsa.RSAPrivateNumbers(ours.p, ours.q, other.d, other.dmp1, other.dmq1, other.iqmp, ours.public_numbers)
    path.write_bytes(mixed.private_key(unsafe_skip_rsa_key_validation=True).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
    with pytest.raises(DkimKeyError) as caught:
        store.active("firm.example")
    assert str(path) in str(caught.value)
