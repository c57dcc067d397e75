"""Outlook's winmail.dat (TNEF) unpacked: its files with their exact bytes
(framing and checksums verified here, as tnefparse only logs them), and
its body (plain, else HTML, else compressed RTF decompressed and read as
text). A stream that cannot be read exactly gives None: the caller keeps it
as it came."""

from __future__ import annotations

import codecs
import logging
import re
import struct
from dataclasses import dataclass

from tnefparse import TNEF

from gateway.mail.decoding import decode_bytes, normalise_newlines, scrub
from gateway.mail.files import MIME_TABLE
from gateway.mail.htmltext import html_to_text

log = logging.getLogger(__name__)

_MAX_TNEF_DEPTH = 8
_TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
_TNEF_SIGNATURE = 0x223E9F78


@dataclass
class TnefResult:
    attachments: list[tuple[str | None, str, bytes]]  # (name, type, data)
    body: str  # plain text ("" if none)


def _tnef_records(data: bytes) -> list[tuple[int, int, bytes]] | None:
    """Verify TNEF framing and checksums; return (level, name, data) records.

    None if the stream is truncated, over-long or corrupt.
    """
    if len(data) < 6 or struct.unpack_from("<I", data, 0)[0] != _TNEF_SIGNATURE:
        return None
    records = []
    offset = 6
    while offset < len(data):
        if len(data) - offset < 11:
            # tolerate NUL padding after the last record
            return records if not data[offset:].strip(b"\x00") else None
        level = data[offset]
        name = struct.unpack_from("<H", data, offset + 1)[0]
        length = struct.unpack_from("<I", data, offset + 5)[0]
        end = offset + 9 + length
        if end + 2 > len(data):
            return None
        payload = data[offset + 9 : end]
        if (sum(payload) & 0xFFFF) != struct.unpack_from("<H", data, end)[0]:
            return None
        records.append((level, name, payload))
        offset = end + 2
    return records


def _tnef_text(value, codepage: str | None) -> str:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, bytes):
        return decode_bytes(value.rstrip(b"\x00"), codepage or "cp1252")
    return ""


def _tnef_attachment_name(att, codepage: str | None) -> str | None:
    from tnefparse import properties as P

    for prop in (P.MAPI_ATTACH_LONG_FILENAME, P.MAPI_DISPLAY_NAME):
        for attr in att.mapi_attrs:
            if attr.name == prop:
                try:
                    name = _tnef_text(attr.data, codepage).strip("\x00")
                except Exception:
                    name = ""
                if name:
                    return name
    name = _tnef_text(getattr(att, "_name", b""), codepage).strip("\x00")
    return name or None


def _tnef_attachment_type(att, name: str | None) -> str:
    from tnefparse import properties as P

    for attr in att.mapi_attrs:
        if attr.name == P.MAPI_ATTACH_MIME_TAG:
            try:
                ct = _tnef_text(attr.data, None).strip().lower()
            except Exception:
                ct = ""
            if re.fullmatch(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+", ct):
                return ct
    if name and "." in name:
        guessed, _enc = MIME_TABLE.guess_type("file." + name.rsplit(".", 1)[-1], strict=False)
        if guessed:
            return guessed.lower()
    return "application/octet-stream"


def unpack_tnef(data: bytes, depth: int = 0) -> TnefResult | None:
    """Unpack a TNEF stream; None if it cannot be read exactly."""
    if depth > _MAX_TNEF_DEPTH:
        return None
    records = _tnef_records(data)
    if records is None:
        return None
    try:
        tnef = TNEF(data, do_checksum=False)  # checksums verified above
    except Exception as exc:  # tnefparse raises many kinds on bad input
        log.info("TNEF stream does not parse: %r", exc)
        return None

    # Exact attachment bytes: the attAttachData record of each attachment
    # (tnefparse opens a new attachment at each attAttachRendData record).
    exact: dict[int, bytes] = {}
    index = -1
    for level, name, payload in records:
        if name == TNEF.ATTATTACHRENDDATA:
            index += 1
        elif level == TNEF.LVL_ATTACHMENT and name == TNEF.ATTATTACHDATA and index >= 0:
            exact[index] = payload

    files: list[tuple[str | None, str, bytes]] = []
    for i, att in enumerate(tnef.attachments):
        name = _tnef_attachment_name(att, tnef.codepage)
        embed = getattr(att, "embed", None)
        if embed is not None:
            inner = unpack_tnef(att.data, depth + 1)
            if inner is not None and inner.attachments:
                files.extend(inner.attachments)
                continue
            files.append((name, "application/vnd.ms-tnef", att.data))
            continue
        payload = exact.get(i, att.data if isinstance(att.data, bytes) else b"")
        files.append((name, _tnef_attachment_type(att, name), payload))

    body = ""
    try:
        if tnef.body:
            body = normalise_newlines(_tnef_text(tnef.body, tnef.codepage))
        elif tnef.htmlbody:
            body = html_to_text(_tnef_text(tnef.htmlbody, tnef.codepage))
        elif tnef._rtfbody:  # noqa: SLF001 - rtfbody needs compressed_rtf
            rtf = decompress_rtf(tnef._rtfbody)  # noqa: SLF001
            if rtf is not None:
                body = rtf_to_text(rtf)
    except Exception as exc:
        log.info("TNEF body unreadable: %r", exc)
        body = ""

    if not files and not body.strip():
        return None  # nothing recovered: keep the original
    return TnefResult(files, body.strip("\n"))


def may_be_tnef(content_type: str, filename: str | None) -> bool:
    """Whether is_tnef could say yes to a part of this type and name, its
    data unseen (mail/pieces.py leaves such a part in the message)."""
    return content_type in _TNEF_TYPES or (filename or "").strip().lower() == "winmail.dat"


def is_tnef(content_type: str, filename: str | None, data: bytes) -> bool:
    if content_type in _TNEF_TYPES:
        return True
    return (
        may_be_tnef(content_type, filename)
        and len(data) >= 4
        and struct.unpack_from("<I", data, 0)[0] == _TNEF_SIGNATURE
    )


_RTF_PREBUF = (
    b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman "
    b"\\fswiss \\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New "
    b"RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par "
    b"\\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx"
)


def decompress_rtf(data: bytes) -> bytes | None:
    """Decompress PR_RTF_COMPRESSED ("LZFu", or "MELA" = stored)."""
    if len(data) < 16:
        return None
    comp_size, raw_size, magic = struct.unpack_from("<II4s", data, 0)
    if magic == b"MELA":
        return data[16 : 16 + raw_size]
    if magic != b"LZFu":
        return None
    end = min(len(data), comp_size + 4)
    buf = bytearray(4096)
    buf[: len(_RTF_PREBUF)] = _RTF_PREBUF
    wpos = len(_RTF_PREBUF)
    out = bytearray()
    pos = 16
    while pos < end:
        control = data[pos]
        pos += 1
        for bit in range(8):
            if pos >= end:
                break
            if control & (1 << bit):
                if pos + 1 >= end:
                    return bytes(out)
                token = (data[pos] << 8) | data[pos + 1]
                pos += 2
                offset, length = token >> 4, (token & 0xF) + 2
                if offset == wpos:
                    return bytes(out)
                for k in range(length):
                    byte = buf[(offset + k) % 4096]
                    out.append(byte)
                    buf[wpos] = byte
                    wpos = (wpos + 1) % 4096
            else:
                byte = data[pos]
                pos += 1
                out.append(byte)
                buf[wpos] = byte
                wpos = (wpos + 1) % 4096
            if len(out) > raw_size + 4096:  # runaway stream
                return bytes(out)
    return bytes(out)


_RTF_SKIP_DESTINATIONS = frozenset(
    "fonttbl colortbl stylesheet info pict header footer headerl headerr "
    "footerl footerr object fldinst themedata datastore latentstyles "
    "generator xmlnstbl listtable listoverridetable rsidtbl mmathPr "
    "pgdsctbl filetbl revtbl userprops fonttbl bkmkstart bkmkend".split()
)
_RTF_SYMBOLS = {
    "par": "\n", "line": "\n", "sect": "\n", "row": "\n", "page": "\n",
    "tab": "\t", "cell": "\t", "emdash": "\u2014", "endash": "\u2013",
    "bullet": "\u2022", "lquote": "\u2018", "rquote": "\u2019",
    "ldblquote": "\u201c", "rdblquote": "\u201d", "emspace": " ",
    "enspace": " ", "qmspace": " ",
}
_RTF_TOKEN = re.compile(
    rb"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?|\\'([0-9a-fA-F]{2})|\\(.)|([{}])|([\r\n]+)|([^\\{}\r\n]+)|(\\)",
    re.DOTALL,
)


def rtf_to_text(rtf: bytes) -> str:
    """Visible text of an RTF document (good enough for a mail body).

    Groups starting with ``\\*`` or a non-text destination (font table,
    pictures, ...) are skipped, which also drops the HTML tags Outlook
    encapsulates in ``{\\*\\htmltag ...}``.
    """
    codepage = "cp1252"
    m = re.search(rb"\\ansicpg(\d+)", rtf[:4096])
    if m:
        candidate = f"cp{int(m.group(1))}"
        try:
            if codecs.lookup(candidate)._is_text_encoding:
                codepage = candidate
        except LookupError:
            pass
    out: list[str] = []
    pending = bytearray()  # \'hh bytes, decoded together (DBCS code pages)
    stack: list[tuple[bool, int]] = []
    skip = False
    uc = 1
    skip_chars = 0
    group_start = False

    def flush():
        if pending:
            out.append(pending.decode(codepage, "replace"))
            pending.clear()

    pos = 0
    while pos < len(rtf):
        tok = _RTF_TOKEN.match(rtf, pos)
        if tok is None:  # pragma: no cover - the pattern matches any byte
            pos += 1
            continue
        pos = tok.end()
        word, arg, hexbyte, sym, brace, newline, text, _backslash = tok.groups()
        first, group_start = group_start, False
        if brace is not None:
            flush()
            if brace == b"{":
                if len(stack) > 512:
                    break
                stack.append((skip, uc))
                group_start = True
            else:
                skip, uc = stack.pop() if stack else (False, 1)
            skip_chars = 0
            continue
        if newline is not None or _backslash is not None:
            group_start = first
            continue
        if word is not None:
            name = word.decode("ascii")
            if name == "bin":  # raw binary data follows: never text
                pos += max(0, int(arg or 0))
                continue
            if first and name in _RTF_SKIP_DESTINATIONS:
                skip = True
            if skip:
                continue
            if name == "uc" and arg:
                uc = int(arg)
            elif name == "u" and arg:
                flush()
                code = int(arg)
                code = code + 65536 if code < 0 else code
                out.append(chr(code) if 0 < code < 0x110000 else "\ufffd")
                skip_chars = uc
            elif name in _RTF_SYMBOLS:
                flush()
                out.append(_RTF_SYMBOLS[name])
            continue
        if sym is not None:
            if sym == b"*":
                skip = True  # ignorable destination: skip the whole group
                continue
            if skip:
                continue
            if skip_chars:
                skip_chars -= 1
                continue
            if sym in (b"\\", b"{", b"}"):
                flush()
                out.append(sym.decode())
            elif sym == b"~":
                flush()
                out.append(" ")
            elif sym == b"_":
                flush()
                out.append("-")
            continue
        if skip:
            continue
        if hexbyte is not None:
            if skip_chars:
                skip_chars -= 1
                continue
            pending.append(int(hexbyte, 16))
            continue
        if text is not None:
            if skip_chars:
                n = min(skip_chars, len(text))
                text = text[n:]
                skip_chars -= n
            if text:
                flush()
                out.append(text.decode(codepage, "replace"))
    flush()
    result = scrub("".join(out)).replace("\x00", "")
    lines = [line.rstrip() for line in result.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
