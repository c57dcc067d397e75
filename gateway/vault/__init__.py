"""The vault: encryption of client content. Sealed files (sealing.py),
password-wrapped data keys (keywrap.py), the server's master key
(master.py) and link tokens (tokens.py); sealed.py reads a request's sealed
content back. Callers use the names gathered here (``vault.seal_with_master``
...). Everything is synchronous; AES-GCM and Argon2id release the GIL, so
async callers run them in a thread. No secret is ever logged or put in an
exception message. The key hierarchy and each construction, with why:
docs/vault.md.
"""

from gateway.vault.keywrap import (
    KdfParams,
    WrongPassword,
    derive_kek,
    new_kdf_params,
    unwrap_key,
    unwrap_with_password,
    wrap_key,
    wrap_with_password,
)
from gateway.vault.master import MasterKeyError, load_or_create_master_key, open_with_master, seal_with_master, subkey
from gateway.vault.primitives import KEY_SIZE, TAG_SIZE, TamperedError
from gateway.vault.sealing import (
    CHUNK_SIZE,
    FILE_SALT_SIZE,
    ChunkOpener,
    ChunkSealer,
    chunk_count,
    new_data_key,
    new_file_salt,
    open_chunks,
    seal_chunks,
)
from gateway.vault.tokens import new_token, token_hash

__all__ = [
    "CHUNK_SIZE",
    "TAG_SIZE",
    "KEY_SIZE",
    "FILE_SALT_SIZE",
    "TamperedError",
    "WrongPassword",
    "MasterKeyError",
    "new_data_key",
    "new_file_salt",
    "chunk_count",
    "seal_chunks",
    "ChunkSealer",
    "ChunkOpener",
    "open_chunks",
    "KdfParams",
    "new_kdf_params",
    "derive_kek",
    "wrap_key",
    "unwrap_key",
    "wrap_with_password",
    "unwrap_with_password",
    "load_or_create_master_key",
    "seal_with_master",
    "open_with_master",
    "subkey",
    "new_token",
    "token_hash",
]
