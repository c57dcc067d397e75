"""DKIM, verified here with dkimpy: does a signature aligned with the From
domain verify (the rules: step 4 of docs/sender-authentication.md)?
Keys are fetched concurrently with the injected resolver; dkimpy then
verifies in a worker thread, reading the prefetched record, so it never
does DNS itself."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import dkim
import dkim.util

from gateway.admission.keylookup import DnsFailure, Resolver

MIN_KEY_BITS = 1024
MAX_SIGNATURES = 5
ACCEPTED_ALGORITHMS = frozenset({b"rsa-sha256", b"ed25519-sha256"})

# Second-level labels that, under a two-letter country TLD, are registries
# rather than organisations (example.co.uk, example.com.au, example.on.ca).
# Without the Public Suffix List this is an approximation: a label missing
# here makes alignment too loose (two firms under one suffix would align),
# a label listed needlessly only makes it stricter, so the list errs long.
_REGISTRY_LABELS = frozenset(
    {
        "ac", "co", "com", "edu", "gov", "net", "org", "mil", "nic", "sch",
        "gob", "go", "or", "ne", "ltd", "plc", "nhs", "gc",
        # Canadian provinces and territories (example.qc.ca)
        "ab", "bc", "mb", "nb", "nl", "ns", "nt", "nu", "on", "pe", "qc", "sk", "yk",
    }
)

# DKIM selectors and signing domains: host-name labels, leniently with "_".
_DNS_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_SELECTOR = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_SIGNING_DOMAIN = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})+")


@dataclass(frozen=True)
class DkimResult:
    passed: bool
    reason: str  # why it passed, or why no signature did
    dns_failure: str = ""  # set when nothing passed and a key lookup failed: the sender may retry


def organizational_domain(domain: str) -> str:
    """DMARC's organizational domain, approximated without the PSL.

    The last two labels, or the last three when the TLD has two letters and
    the label before it is a known registry label (see _REGISTRY_LABELS):
    ``mail.firm.example`` -> ``firm.example``, ``a.firm.co.uk`` ->
    ``firm.co.uk``. Shared-hosting suffixes (github.io, duckdns.org, ...) are
    not known: two sites under one of them would align with each other.
    """
    labels = domain.lower().split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _REGISTRY_LABELS else 2
    return ".".join(labels[-keep:])


def aligned(domain: str, from_domain: str) -> bool:
    """DMARC relaxed alignment: both have the same organizational domain."""
    return organizational_domain(domain) == organizational_domain(from_domain)


@dataclass(frozen=True)
class _Signature:
    index: int  # position among the DKIM-Signature headers, as dkimpy counts
    domain: str  # d=, lower-case, "?" when unusable
    selector: str
    problem: str  # why it cannot authenticate the From; "" if it might

    @property
    def key_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"


def _read_signature(index: int, value: bytes, from_domain: str) -> _Signature:
    try:
        tags = dkim.util.parse_tag_value(value)
        domain = tags.get(b"d", b"").decode("ascii").lower()
        selector = tags.get(b"s", b"").decode("ascii").lower()
    except (dkim.util.InvalidTagValueList, UnicodeDecodeError):
        return _Signature(index, "?", "", "unreadable DKIM-Signature header")
    if not _SIGNING_DOMAIN.fullmatch(domain) or not _SELECTOR.fullmatch(selector) or len(domain) + len(selector) > 240:
        return _Signature(index, "?", "", "invalid d= or s= tag")

    if not aligned(domain, from_domain):
        problem = f"signed by {domain}, which is not aligned with {from_domain}"
    elif tags.get(b"a") not in ACCEPTED_ALGORITHMS:
        problem = "signing algorithm not accepted (rsa-sha1 is too weak)"
    elif b"from" not in (h.strip().lower() for h in tags.get(b"h", b"").split(b":")):
        problem = "the From header is not signed"
    elif b"l" in tags:
        problem = "l= (a body length limit) is not accepted"
    else:
        problem = ""
    return _Signature(index, domain, selector, problem)


def _signatures(signer: dkim.DKIM, from_domain: str) -> list[_Signature]:
    values = [value for name, value in signer.headers if name.lower() == b"dkim-signature"]
    return [_read_signature(i, value, from_domain) for i, value in enumerate(values)]


def _check(signer: dkim.DKIM, signature: _Signature, record: bytes | None) -> str:
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
    signer: dkim.DKIM, signatures: list[_Signature], records: dict[str, bytes | None]
) -> tuple[_Signature | None, list[str]]:
    """The first signature that verifies, and why each one before it did not."""
    problems = []
    for signature in signatures:
        problem = _check(signer, signature, records[signature.key_name])
        if not problem:
            return signature, problems
        problems.append(f"d={signature.domain} s={signature.selector}: {problem}")
    return None, problems


async def verify(raw: bytes, from_domain: str, resolve: Resolver) -> DkimResult:
    """Does one DKIM signature aligned with from_domain verify? At most
    MAX_SIGNATURES candidates are looked up, concurrently."""
    def refused(problems: list[str]) -> DkimResult:
        reason = f"no valid DKIM signature aligned with {from_domain}"
        if problems:
            reason += " (" + "; ".join(problems) + ")"
        return DkimResult(False, reason)

    try:
        signer = await asyncio.to_thread(dkim.DKIM, raw, minkey=MIN_KEY_BITS)
    except dkim.DKIMException:  # MessageFormatError: a header line it cannot read
        return refused(["the header section cannot be read for DKIM"])
    signatures = _signatures(signer, from_domain)
    if not signatures:
        return refused(["the message is not signed"])
    candidates = [s for s in signatures if not s.problem][:MAX_SIGNATURES]
    if not candidates:
        return refused([f"d={s.domain}: {s.problem}" for s in signatures])

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
        return DkimResult(True, f"DKIM signature d={valid.domain} s={valid.selector} aligned with {from_domain}")
    if dns_failures:
        # An unchecked signature might still pass: the sender should retry.
        failure = " ".join(str(dns_failures[0]).split())  # one line, whatever the resolver wrote
        return DkimResult(False, f"DKIM key lookup failed: {failure}", dns_failure=failure)
    return refused(problems)
