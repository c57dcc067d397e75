"""Attachment file names: decoded from a part's parameters (RFC 2231 and
RFC 2047, compat32 parsing, which keeps what policy.default drops), and
made safe to show and to store (:func:`safe_filename`)."""

from __future__ import annotations

import email.message
import mimetypes
import unicodedata

from gateway.mail.decoding import decode_bytes, decode_header_text, scrub, to_str, unfold

_MAX_FILENAME_BYTES = 255
_MAX_EXTENSION_BYTES = 32

MIME_TABLE = mimetypes.MimeTypes()  # built-in table only: same on every machine
_EXTENSIONS = {
    "application/octet-stream": ".bin",
    "application/pdf": ".pdf",
    "application/ms-tnef": ".dat",
    "application/vnd.ms-tnef": ".dat",
    "application/zip": ".zip",
    "application/xml": ".xml",
    "application/json": ".json",
    "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s",
    "application/pgp-signature": ".asc",
    "application/vnd.ms-excel": ".xls",
    "application/msword": ".doc",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/tiff": ".tif",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/csv": ".csv",
    "text/calendar": ".ics",
    "message/rfc822": ".eml",
    "message/global": ".eml",
}
# Characters that NFKC (applied by some later tool) would turn into / or \.
_SEPARATOR_LOOKALIKES = str.maketrans({"\uff0f": "_", "\uff3c": "_", "\u2215": "_", "\u2044": "_", "\u29f8": "_", "\u29f9": "_"})


def extension_for(content_type: str) -> str:
    ct = (content_type or "").lower()
    ext = _EXTENSIONS.get(ct) or MIME_TABLE.guess_extension(ct, strict=False)
    return ext or ".bin"


def safe_filename(name: str | None, content_type: str = "application/octet-stream", index: int = 1) -> str:
    """A file name safe to show and to store.

    No directory parts (``/`` or ``\\``; the last component is kept), no
    control or format characters (tabs/newlines become spaces; bidi
    overrides, zero-width and NUL are removed), no leading dots or spaces,
    NFC-normalised, at most 255 UTF-8 bytes with the extension kept.  Never
    empty: ``attachment-<index><ext>`` with the content type's extension.
    """
    text = scrub(name or "")
    text = unicodedata.normalize("NFC", text)
    cleaned = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "\t\n\r\x0b\x0c\x85" or cat in ("Zl", "Zp"):
            cleaned.append(" ")
        elif cat in ("Cc", "Cf", "Cs"):
            continue
        else:
            cleaned.append(ch)
    text = "".join(cleaned)
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = text.translate(_SEPARATOR_LOOKALIKES)
    text = text.strip().lstrip(". ").strip()
    if not text:
        return f"attachment-{index}{extension_for(content_type)}"
    return _clamp(text)


def _clamp(name: str) -> str:
    if len(name.encode("utf-8")) <= _MAX_FILENAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(("." + ext).encode("utf-8")) > _MAX_EXTENSION_BYTES:
        stem, ext = name, ""
    else:
        ext = "." + ext
    budget = _MAX_FILENAME_BYTES - len(ext.encode("utf-8"))
    stem = stem.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip()
    return unicodedata.normalize("NFC", stem + ext)


def _collapse_rfc2231(value) -> str:
    if not isinstance(value, tuple):
        return value if isinstance(value, str) else ""
    charset, _language, text = value
    # compat32 percent-decodes into latin-1 code points (one per byte).
    data = b"".join(bytes([ord(c)]) if ord(c) < 256 else c.encode("utf-8") for c in text)
    return decode_bytes(data, charset) if charset else data.decode("utf-8", "replace")


def part_filename(part: email.message.Message) -> str | None:
    """The decoded file name of a part, or None.

    compat32 parameter parsing is used (it keeps unquoted names with spaces
    and unquoted encoded words, which policy.default drops), on a header
    view whose 8-bit bytes are read as UTF-8, then RFC 2231 / RFC 2047 are
    decoded without ever dropping bytes.
    """
    view = email.message.Message()
    for hname, hvalue in part.raw_items():
        if hname.lower() in ("content-type", "content-disposition"):
            view[hname] = scrub(unfold(to_str(hvalue)))
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        try:
            value = view.get_param(param, None, header=header)
        except Exception:
            value = None
        if value is None:
            continue
        if isinstance(value, tuple):  # RFC 2231 (charset, language, text)
            return scrub(_collapse_rfc2231(value))
        value = scrub(value)  # get_param() already unquoted it
        if "=?" in value:
            value = decode_header_text("x", value)
        return value
    return None
