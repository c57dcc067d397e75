"""Sender authentication at SMTP DATA time, before the 250.

Anyone can write any From: header, and the gateway acts on behalf of the
address in it, so a message is accepted only when that address is
authenticated. :func:`authenticate` returns a :class:`Verdict`; the SMTP
handler answers with ``Verdict.smtp_reply`` when it is not ok and sends no
email about it (a refusal at SMTP time reaches only the connecting server,
so there is no backscatter to a forged address).

Steps, in order (the first that decides, decides):

1. **Strict From** (:func:`strict_from`): exactly one From header holding
   exactly one mailbox, read the same way by ``email.headerregistry`` and
   ``email.utils.getaddresses``. Refused: a second From header, lists and
   groups, comments, a display name containing ``@`` (also after RFC 2047
   decoding and NFKC folding, so ``＠`` counts), an encoded-word inside the
   address, a quoted or otherwise unusual local part, a domain that is not a
   host name, and a header section whose lines the stdlib skips (a ``From ``
   envelope line, a line that is not a header): other readers may see a From
   header there. Failure: ``550 5.7.1 From header: ...``.
2. **Trusted peer** (only with ``trust_loopback``, i.e. ``--demo``): a
   loopback peer (127.0.0.0/8, ::1, also IPv4-mapped) is trusted without
   DKIM. No other address is ever trusted this way.
3. **Authentication-Results** from our own MX: only headers whose
   authserv-id is in ``trusted_authserv_ids`` count; any other is ignored.
   They pass with ``dkim=pass`` whose ``header.d`` aligns with the From
   domain, or ``dmarc=pass`` whose ``header.from`` *is* the From domain
   (``header.from`` names the From domain the MX evaluated, so anything else
   describes some other From). The gateway cannot tell a real header from one
   the sender wrote with the same id: **the trusted MX must delete inbound
   Authentication-Results headers carrying its own authserv-id** (RFC 8601
   section 5) before it adds its own. Without that, leave
   CLIENTTRACK_TRUSTED_AUTHSERV_IDS empty.
4. **DKIM**, verified here with dkimpy. A signature can authenticate the
   From only if all of these hold; the others are not even looked up:

   * its ``d=`` aligns with the From domain (DMARC relaxed alignment, see
     :func:`organizational_domain`);
   * ``h=`` includes ``from`` (RFC 6376 5.4: From must be signed);
   * ``a=`` is ``rsa-sha256`` or ``ed25519-sha256`` (RFC 8301 forbids
     trusting rsa-sha1; ed25519 would need pynacl, which we do not install);
   * there is **no ``l=`` tag at all**. A body length limit lets anyone append
     text (new payment directives) below the signed part; comparing ``l=``
     with the canonical body length would accept the rare honest use, but
     signers that set ``l=`` are rare and the simple rule has no edge cases;
   * the RSA key has at least :data:`MIN_KEY_BITS` bits.

   At most :data:`MAX_SIGNATURES` such signatures are checked, so a message
   stacked with signatures cannot make us do unbounded DNS and hashing.
   Their keys are fetched concurrently with the injected async resolver;
   dkimpy (synchronous) then verifies each in a worker thread and reads the
   prefetched record through its ``dnsfunc``, so it never does DNS itself.
   One passing signature is enough. Otherwise, if a key lookup failed (time-
   out, SERVFAIL) the answer is ``451 4.7.5`` -- the key might have made it
   pass, so the sender's server should retry -- and else ``550 5.7.1``.

Parsing and hashing a large message takes a noticeable fraction of a
second, so that work runs in worker threads. (dkimpy still holds the GIL
while it splits the whole message in one regex call: the event loop can
stall about 20 ms per MB of message, measured here.) The only I/O is the
injected resolver.
"""

from __future__ import annotations

import asyncio
import email.parser
import functools
import email.policy
import inspect
import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from email import errors as email_errors
from email.message import Message
from email.utils import getaddresses
from typing import Awaitable, Callable

import authres
import dkim
import dkim.util
import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver

MIN_KEY_BITS = 1024
# Header sections up to this size are parsed on the event loop (a thread
# hand-off costs more); bigger ones in a worker thread.
INLINE_HEADER_BYTES = 64 * 1024
MAX_SIGNATURES = 5
ACCEPTED_ALGORITHMS = frozenset({b"rsa-sha256", b"ed25519-sha256"})

# SMTP reply lines are at most 512 octets (RFC 5321 4.5.3.1.5).
_MAX_REASON = 400

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

# Python 3.11.7 predates getaddresses(strict=True) (the CVE-2023-27043 fix,
# backported to later patch releases): use it where it exists.
_GETADDRESSES_HAS_STRICT = "strict" in inspect.signature(getaddresses).parameters

# RFC 5322 atext, plus any non-ASCII character (RFC 6532 addresses).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+"
_DOT_ATOM = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})+")
# DKIM selectors and signing domains: host-name labels, leniently with "_".
_DNS_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_SELECTOR = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_SIGNING_DOMAIN = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})+")

# Header-section defects meaning the stdlib skipped a line another reader
# might take as a header (possibly a second From).
_HIDING_DEFECTS = (
    email_errors.MisplacedEnvelopeHeaderDefect,
    email_errors.MissingHeaderBodySeparatorDefect,
    email_errors.FirstHeaderLineIsContinuationDefect,
)


class FromError(ValueError):
    """The From header is not exactly one strictly valid mailbox."""


class DnsFailure(Exception):
    """A DNS lookup failed temporarily (time-out, SERVFAIL, unreachable)."""


@dataclass(frozen=True)
class Verdict:
    """What to answer at DATA; the caller sends no mail about a refusal."""

    ok: bool
    smtp_reply: str  # "" when ok, else the full SMTP reply line to send
    from_address: str  # the strictly parsed From address, lower-cased ("" if none)
    method: str  # "dkim", "authres", "trusted-peer", or "" when not ok
    reason: str  # short, for logs


Resolver = Callable[[str], Awaitable[bytes | None]]
"""Async TXT lookup: ``"sel._domainkey.example.com"`` -> the record's strings
joined, None for NXDOMAIN or no TXT record; raises :class:`DnsFailure` on a
temporary failure."""


# --------------------------------------------------------------------------
# From
# --------------------------------------------------------------------------


def strict_from(raw: bytes) -> str:
    """The one From address of a raw message, lower-cased.

    Raises :class:`FromError` with a short reason, written by us (never
    echoing the header), when the From header is anything but exactly one
    plain mailbox."""
    return _strict_from(_header_section(_header_bytes(raw)))


def _header_bytes(raw: bytes) -> bytes:
    """The header section and its blank line: the parser stops there anyway,
    and would first decode the whole message (up to 25 MB) to find it."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return raw[: min(ends) + 4] if ends else raw


def _header_section(header: bytes) -> Message:
    return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(header)


def _header_values(headers: Message, name: str) -> list[str | None]:
    """Every value of a header, unfolded, as text (UTF-8 allowed, RFC 6532);
    None for a value that is not valid UTF-8.

    ``raw_items`` rather than ``get_all``: compat32 turns 8-bit values into
    ``Header`` objects; the raw value keeps the bytes as surrogate escapes.
    """
    values: list[str | None] = []
    for key, value in headers.raw_items():
        if key.strip().lower() == name:
            text = re.sub(r"\r\n|\r|\n", "", str(value))
            try:
                values.append(text.encode("ascii", "surrogateescape").decode("utf-8"))
            except UnicodeError:
                values.append(None)
    return values


def _has_comment(value: str) -> bool:
    """True if the header has an RFC 5322 comment, i.e. "(" outside quotes."""
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "(" and not quoted:
            return True
    return False


def _ascii_domain(domain: str) -> str:
    """The lower-case A-label form of a domain, or "" if it is not a host name."""
    try:
        ascii_form = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return ""
    # The idna codec also splits at lookalike dots ("firm\u3002example"):
    # refuse those rather than read them as "firm.example".
    if ascii_form.count(".") != domain.count("."):
        return ""
    return ascii_form if len(ascii_form) <= 253 and _HOST_NAME.fullmatch(ascii_form) else ""


def _strict_from(headers: Message) -> str:
    if headers.get_unixfrom() or any(isinstance(d, _HIDING_DEFECTS) for d in headers.defects):
        raise FromError("the header section has a line that is not a header")
    values = _header_values(headers, "from")
    if len(values) != 1:
        raise FromError("missing" if not values else f"{len(values)} From headers, expected exactly one")
    if values[0] is None:
        raise FromError("not valid UTF-8")
    return _mailbox(values[0])


# Staff send from a handful of From lines, over and over: the parse below is
# the costliest step of admitting a message, and a pure function of the line.
# (Refusals raise, so they are not kept: lru_cache keeps only answers.)
@functools.lru_cache(maxsize=4096)
def _mailbox(value: str) -> str:
    """The one plain mailbox of a From value, lower-cased, or FromError."""
    if _has_comment(value):
        raise FromError("comments (in parentheses) are not accepted")
    try:
        parsed = email.policy.default.header_factory("from", value)
        groups = parsed.groups
    except Exception:  # the stdlib parser raises IndexError etc. on some inputs
        raise FromError("cannot be parsed") from None
    # RFC 6532 allows a UTF-8 local part; every other defect is a refusal.
    defects = [d for d in parsed.defects if not isinstance(d, email_errors.NonASCIILocalPartDefect)]
    if defects:
        raise FromError(f"malformed address ({type(defects[0]).__name__})")
    if len(groups) == 1 and groups[0].display_name is not None:
        raise FromError("group syntax is not accepted")
    addresses = [address for group in groups for address in group.addresses]
    if len(addresses) != 1:
        raise FromError(f"holds {len(addresses)} addresses, expected exactly one")
    mailbox = addresses[0]
    if "@" in unicodedata.normalize("NFKC", mailbox.display_name):
        raise FromError("the display name contains '@' (it looks like an address)")
    if "=?" in mailbox.addr_spec:
        raise FromError("an encoded-word inside the address")
    if not _DOT_ATOM.fullmatch(mailbox.username):
        raise FromError("the local part is not a plain dot-atom")
    if not _ascii_domain(mailbox.domain):
        raise FromError("the domain is not a host name")
    # A second, independent reading: a trick that fools one parser rarely
    # fools both the same way (e.g. CVE-2023-27043 in getaddresses).
    if _GETADDRESSES_HAS_STRICT:
        others = getaddresses([value], strict=True)
    else:
        others = getaddresses([value])
    if [address.lower() for _name, address in others] != [mailbox.addr_spec.lower()]:
        raise FromError("the address parsers disagree")
    return mailbox.addr_spec.lower()


# --------------------------------------------------------------------------
# Alignment and trust
# --------------------------------------------------------------------------


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


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    # A dual-stack listener reports IPv4 loopback as ::ffff:127.0.0.1.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _trusted_authres(headers: Message, from_domain: str, trusted_ids: tuple[str, ...]) -> str:
    """Why a trusted Authentication-Results header authenticates the From
    domain, or "" if none does."""
    trusted = {i.strip().lower() for i in trusted_ids if i.strip()}
    if not trusted:
        return ""
    for value in _header_values(headers, "authentication-results"):
        if value is None:
            continue
        try:
            header = authres.parse_value(value)
        except authres.AuthResError:
            continue  # unreadable: it proves nothing
        if header.authserv_id not in trusted:
            continue
        for result in header.results:
            method, outcome = result.method.lower(), result.result.lower()
            if outcome != "pass":
                continue
            props = {(p.type.lower(), p.name.lower()): str(p.value).lower() for p in result.properties}
            if method == "dkim" and aligned(props.get(("header", "d"), ""), from_domain):
                return f"{header.authserv_id}: dkim=pass header.d={props[('header', 'd')]}"
            if method == "dmarc" and props.get(("header", "from")) == from_domain:
                return f"{header.authserv_id}: dmarc=pass header.from={from_domain}"
    return ""


# --------------------------------------------------------------------------
# DKIM
# --------------------------------------------------------------------------


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


async def _authenticate_dkim(raw: bytes, from_address: str, from_domain: str, resolve: Resolver) -> Verdict:
    def refused(problems: list[str]) -> Verdict:
        reason = f"no valid DKIM signature aligned with {from_domain}"
        if problems:
            reason += " (" + "; ".join(problems) + ")"
        if len(reason) > _MAX_REASON:
            reason = reason[: _MAX_REASON - 3] + "..."
        return Verdict(False, f"550 5.7.1 Sender not authenticated: {reason}", from_address, "", reason)

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
        reason = f"DKIM signature d={valid.domain} s={valid.selector} aligned with {from_domain}"
        return Verdict(True, "", from_address, "dkim", reason)
    if dns_failures:
        # An unchecked signature might still pass: let the sender retry.
        failure = " ".join(str(dns_failures[0]).split())  # one line, whatever the resolver wrote
        reason = f"DKIM key lookup failed: {failure}"
        reply = f"451 4.7.5 Could not check the sender's DKIM key ({failure}), try again later"
        return Verdict(False, reply, from_address, "", reason)
    return refused(problems)


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------


def _inspect(header: bytes, trusted_authserv_ids: tuple[str, ...]) -> tuple[str, str, str]:
    """(From address, its domain in ASCII, why a trusted A-R header passes it or "")."""
    headers = _header_section(header)
    from_address = _strict_from(headers)
    from_domain = _ascii_domain(from_address.rpartition("@")[2])
    return from_address, from_domain, _trusted_authres(headers, from_domain, trusted_authserv_ids)


async def authenticate(
    raw: bytes,
    *,
    peer_host: str,
    trust_loopback: bool,
    trusted_authserv_ids: tuple[str, ...],
    resolve: Resolver,
) -> Verdict:
    """Decide whether the sender in a raw message's From is authenticated.

    A DNS failure is never an accept: it gives 451, unless another signature
    passes. See the module docstring for the steps.
    """
    try:
        header = _header_bytes(raw)
        if len(header) <= INLINE_HEADER_BYTES:
            from_address, from_domain, authres_pass = _inspect(header, trusted_authserv_ids)
        else:
            from_address, from_domain, authres_pass = await asyncio.to_thread(_inspect, header, trusted_authserv_ids)
    except FromError as exc:
        return Verdict(False, f"550 5.7.1 From header: {exc}", "", "", f"From header: {exc}")
    if trust_loopback and _is_loopback(peer_host):
        return Verdict(True, "", from_address, "trusted-peer", f"loopback peer {peer_host} trusted (--demo)")
    if authres_pass:
        return Verdict(True, "", from_address, "authres", authres_pass)
    return await _authenticate_dkim(raw, from_address, from_domain, resolve)


def dns_resolver(timeout: float = 3.0, *, nameservers: list[str] | None = None, port: int = 53) -> Resolver:
    """The real :data:`Resolver`, on dnspython's asyncio resolver.

    ``timeout`` bounds a whole lookup, retries included. Without
    ``nameservers`` the system's resolv.conf is read (now, not at import).
    """
    resolver = dns.asyncresolver.Resolver(configure=nameservers is None)
    if nameservers is not None:
        resolver.nameservers = list(nameservers)
    resolver.port = port
    resolver.timeout = timeout
    resolver.lifetime = timeout

    async def resolve(name: str) -> bytes | None:
        try:
            answer = await resolver.resolve(dns.name.from_text(name), "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.exception.Timeout as exc:
            raise DnsFailure("DNS timed out") from exc
        except dns.resolver.NoNameservers as exc:  # SERVFAIL, REFUSED, unreachable
            raise DnsFailure("no DNS server answered") from exc
        except dns.exception.DNSException as exc:
            raise DnsFailure(f"DNS lookup failed ({type(exc).__name__})") from exc
        # One record's strings are concatenated (RFC 6376 3.6.2.2). A name
        # with several TXT records is a publisher's mistake; like dkimpy's
        # own lookup, take the first.
        return b"".join(next(iter(answer)).strings)

    return resolve
