"""DKIM, verified here with dkimpy: does a signature aligned with the From
domain, of the shape signatures.py asks for, verify (the rules: step 4 of
docs/sender-authentication.md)?
Keys are fetched concurrently with the injected resolver; dkimpy then
verifies in a worker thread, reading the prefetched record, so it never
does DNS itself."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import dkim

from gateway.admission import signatures
from gateway.admission.keylookup import DnsFailure, Resolver
from gateway.admission.signatures import Signature

MIN_KEY_BITS = 1024
MAX_SIGNATURES = 5


@dataclass(frozen=True)
class DkimResult:
    passed: bool
    reason: str  # why it passed, or why no signature did
    dns_failure: str = ""  # set when nothing passed and a key lookup failed: the sender may retry
    signature: Signature | None = None  # the one that passed


def _check(signer: dkim.DKIM, signature: Signature, record: bytes | None) -> str:
    """"" when the signature verifies with this key record, else why not."""
    if record is None:
        return f"no DKIM key published at {signature.key_name}"
    try:
        _key, bits, key_type, _tlsrpt = dkim.evaluate_pk(signature.key_name, record)
    except dkim.DKIMException:
        return "the DKIM key record is unreadable or of an unsupported type"
    if key_type is None:
        return "the DKIM key record is not for email"
    if key_type == b"rsa" and bits < MIN_KEY_BITS:
        return f"the {bits}-bit key is too short (at least {MIN_KEY_BITS} bits required)"
    # dkimpy asks for the key by name: bytes, with a trailing dot.
    expected = f"{signature.key_name}.".encode("ascii")
    try:
        verified = signer.verify(
            idx=signature.index,
            dnsfunc=lambda name, timeout=5: record if name.lower() == expected else None,
        )
    except dkim.ValidationError as exc:
        # dkimpy says "body hash mismatch" only in the message text.
        if str(exc).startswith("body hash mismatch"):
            return "body hash mismatch (the body was changed after signing)"
        return "the signature is invalid (bad tags, expired or from the future)"
    except Exception as exc:  # dkimpy raises assorted types on malformed input
        return f"the signature could not be checked ({type(exc).__name__})"
    return "" if verified else "the signature does not verify (the headers were changed or it is forged)"


def _first_valid(
    signer: dkim.DKIM, candidates: list[Signature], records: dict[str, bytes | None]
) -> tuple[Signature | None, list[str]]:
    """The first signature that verifies, and why each one before it did not."""
    problems = []
    for signature in candidates:
        problem = _check(signer, signature, records[signature.key_name])
        if not problem:
            return signature, problems
        problems.append(f"d={signature.domain} s={signature.selector}: {problem}")
    return None, problems


async def verify(raw: bytes, fields: tuple[tuple[str, bytes], ...], from_domain: str, resolve: Resolver,
                 now: datetime) -> DkimResult:
    """Does one DKIM signature aligned with from_domain, of the shape
    signatures.py asks for, verify? ``fields`` is the header section as
    headersection.read gave it. At most MAX_SIGNATURES candidates are looked
    up, concurrently."""
    def refused(problems: list[str]) -> DkimResult:
        reason = f"no valid DKIM signature aligned with {from_domain}"
        if problems:
            reason += " (" + "; ".join(problems) + ")"
        return DkimResult(False, reason)

    try:
        signer = await asyncio.to_thread(dkim.DKIM, raw, minkey=MIN_KEY_BITS)
    except dkim.DKIMException:  # MessageFormatError: a header line it cannot read
        return refused(["the header section cannot be read for DKIM"])
    found = signatures.read_all(fields, from_domain, now)
    if not found:
        return refused(["the message is not signed"])
    candidates = [s for s in found if not s.problem][:MAX_SIGNATURES]
    if not candidates:
        return refused([f"d={s.domain}: {s.problem}" for s in found])

    names = sorted({s.key_name for s in candidates})
    answers = await asyncio.gather(*(resolve(name) for name in names), return_exceptions=True)
    records: dict[str, bytes | None] = {}
    dns_failures: list[DnsFailure] = []
    for name, answer in zip(names, answers):
        if isinstance(answer, DnsFailure):
            dns_failures.append(answer)
        elif isinstance(answer, BaseException):
            raise answer  # a resolver bug or a cancellation, not a DNS answer
        else:
            records[name] = answer
    checkable = [s for s in candidates if s.key_name in records]
    valid, problems = await asyncio.to_thread(_first_valid, signer, checkable, records)
    if valid is not None:
        return DkimResult(True, f"DKIM signature d={valid.domain} s={valid.selector} aligned with {from_domain}",
                          signature=valid)
    if dns_failures:
        # An unchecked signature might still pass: the sender should retry.
        failure = " ".join(str(dns_failures[0]).split())  # one line, whatever the resolver wrote
        return DkimResult(False, f"DKIM key lookup failed: {failure}", dns_failure=failure)
    return refused(problems)
