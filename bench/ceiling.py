"""What the cores reach on a request's native work alone: the ceiling
under the end-to-end target.

The end-to-end figure is the gateway's rate as a share of the KDF bound,
cores / one derivation timed alone. Two things keep any implementation
below that bound, however little Python it runs:

- two derivations at once are slower than one alone: each fills and
  reads 19 MiB, and the cores share the last-level cache and the memory;
- each request also makes work in C (OpenSSL; binascii for the base64)
  that no change of ours takes away: its two mails' DKIM signatures
  (RSA-2048 over a SHA-256 digest, as gateway/outbound/signing.py makes
  them), the sealing of its file (gateway.vault.sealing) and the
  decoding of the file's base64.

This runs one process a core, each repeating the work for SECONDS:
derivations only, then a request's native work (a derivation and the
rest above). The rates, over the bound, are the highest end-to-end ratio
this machine allows; the core time each takes a request is what the
rest of a request (SMTP, parsing, the database, composing, the kernel)
must fit beside at a given ratio.
"""

from __future__ import annotations

import base64
import multiprocessing
import os
import secrets
import time
from typing import NamedTuple

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from gateway import vault
from gateway.vault import sealing

SIGNATURES_A_REQUEST = 2  # the client's mail and the staff's confirmation


class NativeWork:
    """A request's derivation, or that and the rest of its native work."""

    def __init__(self, memory_kib: int, iterations: int, pdf: bytes, everything: bool) -> None:
        self.params = vault.new_kdf_params(memory_kib, iterations)
        self.everything = everything
        self.pdf = pdf
        self.encoded = base64.encodebytes(pdf)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if everything else None

    def __call__(self) -> None:
        vault.derive_kek("Blue42", self.params)
        if not self.everything:
            return
        base64.decodebytes(self.encoded)
        sealing.seal_chunks(sealing.new_data_key(), sealing.new_file_salt(), self.pdf)
        for _ in range(SIGNATURES_A_REQUEST):
            digest = secrets.token_bytes(32)
            self.key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))


def _repeat(work: NativeWork, seconds: float, start: "multiprocessing.synchronize.Event",
            counts: "multiprocessing.Queue[int]") -> None:
    work()  # warm: the first derivation maps its memory
    start.wait()
    done, end, cpu = 0, time.perf_counter() + seconds, time.process_time()
    while time.perf_counter() < end:
        work()
        done += 1
    counts.put((done, time.process_time() - cpu))


class Measured(NamedTuple):
    rate: float  # units a second, every core busy
    cpu_ms: float  # CPU a unit, in ms


def rate(work: NativeWork, seconds: float, cores: int) -> Measured:
    """Units of ``work`` a second with one process a core, all at once,
    and the CPU a unit (which, unlike the rate, holds when other work
    shares the cores)."""
    context = multiprocessing.get_context("fork")
    start, counts = context.Event(), context.Queue()
    processes = [context.Process(target=_repeat, args=(work, seconds, start, counts)) for _ in range(cores)]
    for process in processes:
        process.start()
    start.set()
    done, cpu = map(sum, zip(*(counts.get() for _ in processes)))
    for process in processes:
        process.join()
    return Measured(done / seconds, cpu * 1000 / done)


def sample(memory_kib: int, iterations: int, pdf: bytes, seconds: float = 2.0) -> tuple[Measured, Measured]:
    """(derivations, requests' native work), every core busy."""
    cores = os.cpu_count() or 1
    return (rate(NativeWork(memory_kib, iterations, pdf, everything=False), seconds, cores),
            rate(NativeWork(memory_kib, iterations, pdf, everything=True), seconds, cores))
