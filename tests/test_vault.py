"""Tests for gateway.vault (sealing, key wrapping, master key, tokens).

Argon2id runs at the minimum parameters and only a handful of times.
"""

from __future__ import annotations

import json
import os
import stat
import unicodedata

import pytest

from gateway import vault
from gateway.vault import (
    CHUNK_SIZE,
    ChunkOpener,
    ChunkSealer,
    KdfParams,
    MasterKeyError,
    TamperedError,
    WrongPassword,
    chunk_count,
    derive_kek,
    load_or_create_master_key,
    new_data_key,
    new_file_salt,
    new_kdf_params,
    new_token,
    open_chunks,
    open_with_master,
    seal_chunks,
    seal_with_master,
    token_hash,
    unwrap_key,
    unwrap_with_password,
    wrap_key,
    wrap_with_password,
)

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

SIZES = [0, 1, 65535, 65536, 65537, 3 * 65536 + 5]
PASSWORD = "correct horse battery staple"
AAD = b"request:42"


def _plaintext(size: int) -> bytes:
    return os.urandom(size)


def _open_all(key: bytes, salt: bytes, chunks: list[bytes]) -> bytes:
    return b"".join(open_chunks(key, salt, chunks))


def _sealed(size: int = 3 * CHUNK_SIZE + 5):
    key, salt, data = new_data_key(), new_file_salt(), _plaintext(size)
    return key, salt, data, seal_chunks(key, salt, data)


# ------------------------------------------------------------------ sealing


@pytest.mark.parametrize("size", SIZES)
def test_seal_chunks_round_trip(size):
    key, salt, data, chunks = _sealed(size)
    assert len(chunks) == chunk_count(size) == max(1, -(-size // CHUNK_SIZE))
    assert _open_all(key, salt, chunks) == data
    opener = ChunkOpener(key, salt, len(chunks))
    assert b"".join(opener.open(i, c) for i, c in enumerate(chunks)) == data
    assert opener.done


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("piece", [1000, CHUNK_SIZE, CHUNK_SIZE + 1, 10**6])
def test_chunk_sealer_round_trip_and_matches_seal_chunks(size, piece):
    key, salt, data = new_data_key(), new_file_salt(), _plaintext(size)
    sealer = ChunkSealer(key, salt)
    chunks = []
    for start in range(0, len(data), piece):
        chunks.extend(sealer.feed(data[start : start + piece]))
    last = sealer.finish()
    assert isinstance(last, bytes)
    chunks.append(last)
    assert sealer.chunk_count == len(chunks)
    # Deterministic nonces: same key, salt and data give the same chunks.
    assert chunks == seal_chunks(key, salt, data)
    assert _open_all(key, salt, chunks) == data


def test_chunk_sealer_buffers_at_most_one_chunk_and_odd_feeds():
    key, salt = new_data_key(), new_file_salt()
    sealer = ChunkSealer(key, salt)
    assert sealer.feed(b"") == []
    assert sealer.feed(bytearray(CHUNK_SIZE)) == []  # might be the last chunk
    out = sealer.feed(memoryview(b"x"))
    assert len(out) == 1 and len(out[0]) == CHUNK_SIZE + vault.TAG_SIZE
    chunks = out + [sealer.finish()]
    assert _open_all(key, salt, chunks) == bytes(CHUNK_SIZE) + b"x"
    with pytest.raises(RuntimeError):
        sealer.feed(b"more")
    with pytest.raises(RuntimeError):
        sealer.finish()


def test_empty_file_is_one_empty_last_chunk():
    key, salt = new_data_key(), new_file_salt()
    chunks = seal_chunks(key, salt, b"")
    assert len(chunks) == 1 and len(chunks[0]) == vault.TAG_SIZE
    assert list(open_chunks(key, salt, chunks)) == [b""]
    with pytest.raises(TamperedError):
        list(open_chunks(key, salt, []))


def test_flipped_bit_fails():
    key, salt, _, chunks = _sealed()
    for i in range(len(chunks)):
        bad = list(chunks)
        c = bytearray(bad[i])
        c[len(c) // 2] ^= 0x01
        bad[i] = bytes(c)
        with pytest.raises(TamperedError):
            _open_all(key, salt, bad)


def test_truncated_sequence_fails():
    key, salt, _, chunks = _sealed()
    with pytest.raises(TamperedError):
        _open_all(key, salt, chunks[:-1])
    # Stored count lowered to match the truncation: the new "last" chunk
    # lacks the last flag.
    opener = ChunkOpener(key, salt, len(chunks) - 1)
    opener.open(0, chunks[0])
    opener.open(1, chunks[1])
    with pytest.raises(TamperedError):
        opener.open(2, chunks[2])


def test_extended_sequence_fails():
    key, salt, _, chunks = _sealed()
    with pytest.raises(TamperedError):
        _open_all(key, salt, chunks + [chunks[-1]])
    opener = ChunkOpener(key, salt, len(chunks))
    for i, c in enumerate(chunks):
        opener.open(i, c)
    with pytest.raises(TamperedError):
        opener.open(len(chunks), chunks[-1])


def test_reordered_sequence_fails():
    key, salt, _, chunks = _sealed()
    swapped = [chunks[1], chunks[0]] + chunks[2:]
    with pytest.raises(TamperedError):
        _open_all(key, salt, swapped)
    opener = ChunkOpener(key, salt, len(chunks))
    with pytest.raises(TamperedError):
        opener.open(0, chunks[1])
    # The opener enforces the index sequence itself.
    with pytest.raises(TamperedError):
        opener.open(1, chunks[1])
    assert opener.open(0, chunks[0])
    assert opener.next_index == 1


def test_chunk_from_other_file_fails():
    key = new_data_key()
    data = _plaintext(2 * CHUNK_SIZE + 10)
    salt_a, salt_b = new_file_salt(), new_file_salt()
    a = seal_chunks(key, salt_a, data)
    b = seal_chunks(key, salt_b, data)
    mixed = [a[0], b[1], a[2]]
    with pytest.raises(TamperedError):
        _open_all(key, salt_a, mixed)
    with pytest.raises(TamperedError):
        _open_all(new_data_key(), salt_a, a)


def test_chunk_opener_argument_checks():
    key, salt = new_data_key(), new_file_salt()
    with pytest.raises(ValueError):
        ChunkOpener(key, salt, 0)
    with pytest.raises(ValueError):
        ChunkOpener(key[:16], salt, 1)
    with pytest.raises(ValueError):
        seal_chunks(key, salt[:8], b"x")
    with pytest.raises(ValueError):
        open_chunks(key, b"", [b""])  # checked eagerly, before iteration


# ----------------------------------------------------------------- wrapping


@pytest.fixture(scope="module")
def params() -> KdfParams:
    return new_kdf_params()


@pytest.fixture(scope="module")
def kek(params) -> bytes:
    return derive_kek(PASSWORD, params)


def test_password_round_trip_and_wrong_password(params, kek):
    assert len(kek) == 32
    data_key = new_data_key()
    wrapped = wrap_with_password(PASSWORD, data_key, params, AAD)
    assert len(wrapped) == 60
    assert unwrap_key(kek, wrapped, AAD) == data_key
    assert unwrap_with_password(PASSWORD, wrapped, params, AAD) == data_key
    with pytest.raises(WrongPassword) as exc:
        unwrap_with_password("Correct horse battery staple", wrapped, params, AAD)
    assert "orse" not in str(exc.value)


def test_password_is_nfc_normalized(params):
    composed = "caf\u00e9 cr\u00e8me"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    data_key = new_data_key()
    wrapped = wrap_with_password(decomposed, data_key, params, AAD)
    assert unwrap_with_password(composed, wrapped, params, AAD) == data_key


def test_wrapped_key_bound_to_aad(kek):
    data_key = new_data_key()
    wrapped = wrap_key(kek, data_key, AAD)
    assert unwrap_key(kek, wrapped, AAD) == data_key
    with pytest.raises(WrongPassword):
        unwrap_key(kek, wrapped, b"request:43")
    with pytest.raises(WrongPassword):
        unwrap_key(kek, wrapped[:-1], AAD)
    bad = bytearray(wrapped)
    bad[20] ^= 0x80
    with pytest.raises(WrongPassword):
        unwrap_key(kek, bytes(bad), AAD)
    with pytest.raises(WrongPassword):
        unwrap_key(new_data_key(), wrapped, AAD)


def test_empty_password_refused_for_wrapping(params):
    with pytest.raises(ValueError):
        wrap_with_password("", new_data_key(), params, AAD)


def test_unencodable_password_is_wrong_password(params, kek):
    wrapped = wrap_key(kek, new_data_key(), AAD)
    with pytest.raises(WrongPassword):
        unwrap_with_password("\ud800", wrapped, params, AAD)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"memory_kib": 19455},
        {"iterations": 1},
        {"lanes": 0},
        {"memory_kib": 8192, "iterations": 4},
        {"memory_kib": 10**9},
        {"iterations": True},
    ],
)
def test_kdf_params_floor(kwargs):
    with pytest.raises((ValueError, TypeError)):
        KdfParams(salt=os.urandom(16), **kwargs)


def test_kdf_params_salt_checks():
    with pytest.raises(ValueError):
        KdfParams(salt=os.urandom(8))
    with pytest.raises(ValueError):
        new_kdf_params(memory_kib=1024)


def test_kdf_params_json_round_trip():
    p = new_kdf_params(memory_kib=32768, iterations=3)
    assert len(p.salt) == 16
    d = p.to_json()
    assert isinstance(d["salt"], str)
    assert KdfParams.from_json(d) == p
    assert KdfParams.from_json(json.loads(json.dumps(d))) == p
    for bad in (
        {**d, "iterations": 1},
        {**d, "salt": "not base64!"},
        {**d, "kdf": "scrypt"},
        {k: v for k, v in d.items() if k != "lanes"},
        {**d, "memory_kib": "19456"},
        [],
    ):
        with pytest.raises(ValueError):
            KdfParams.from_json(bad)


# --------------------------------------------------------------- master key


def test_master_key_created_0600_and_reused(tmp_path):
    path = tmp_path / "secrets" / "nested" / "master.key"
    key = load_or_create_master_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_master_key(path) == key
    assert path.read_bytes() == key
    assert sorted(os.listdir(path.parent)) == ["master.key"]  # no temp files left


def test_master_key_group_readable_refused(tmp_path):
    path = tmp_path / "master.key"
    load_or_create_master_key(path)
    for mode in (0o640, 0o604, 0o660):
        os.chmod(path, mode)
        with pytest.raises(MasterKeyError) as exc:
            load_or_create_master_key(path)
        assert "master.key" in str(exc.value)


def test_master_key_wrong_length_refused(tmp_path):
    for content in (b"", b"x" * 31, b"x" * 33):
        path = tmp_path / f"k{len(content)}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, content)
        os.close(fd)
        with pytest.raises(MasterKeyError):
            load_or_create_master_key(path)
        assert path.read_bytes() == content  # never overwritten


def test_master_key_directory_refused(tmp_path):
    path = tmp_path / "dir.key"
    path.mkdir(mode=0o700)
    with pytest.raises(MasterKeyError):
        load_or_create_master_key(path)


def test_seal_with_master_round_trip_and_tamper():
    master = new_data_key()
    for plaintext in (b"", b"raw mail body\r\n" * 1000):
        sealed = seal_with_master(master, plaintext, b"raw-mail:1")
        assert sealed[0] == 1
        assert open_with_master(master, sealed, b"raw-mail:1") == plaintext
    sealed = seal_with_master(master, b"hello", b"raw-mail:1")
    assert seal_with_master(master, b"hello", b"raw-mail:1") != sealed  # random nonce
    for i in range(len(sealed)):
        bad = bytearray(sealed)
        bad[i] ^= 0x04
        with pytest.raises(TamperedError):
            open_with_master(master, bytes(bad), b"raw-mail:1")
    with pytest.raises(TamperedError):
        open_with_master(master, sealed, b"raw-mail:2")
    with pytest.raises(TamperedError):
        open_with_master(master, sealed[:-1], b"raw-mail:1")
    with pytest.raises(TamperedError):
        open_with_master(master, sealed[:10], b"raw-mail:1")
    with pytest.raises(TamperedError):
        open_with_master(new_data_key(), sealed, b"raw-mail:1")


# ------------------------------------------------------------------- tokens


def test_tokens():
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    for t in tokens:
        assert len(t) >= 43
        assert "=" not in t and "+" not in t and "/" not in t
    t = next(iter(tokens))
    assert token_hash(t) == token_hash(t)
    assert len(token_hash(t)) == 64 and int(token_hash(t), 16) >= 0
    assert token_hash(t) != token_hash(t + "x")
    assert token_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_a_master_subkey_is_one_per_purpose():
    master = bytes(range(32))
    one = vault.subkey(master, b"inbound body:ABC")
    assert len(one) == 32 and one == vault.subkey(master, b"inbound body:ABC")
    assert one != vault.subkey(master, b"inbound body:ABD") and one != master
    assert one != vault.subkey(bytes(32), b"inbound body:ABC")
