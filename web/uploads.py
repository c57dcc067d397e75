"""Reading a client's reply form (multipart/form-data) as it streams in,
sealing each file chunk by chunk under the request's data key.

No byte of a file is written anywhere in clear: Starlette's own form
parser spools files to temporary files on disk, so this reads the stream
with python-multipart's parser and feeds each file straight into a
ChunkSealer; only sealed chunks are kept (in memory, until the reply is
stored). What is refused is said file by file:

- the reply (text and files together) is at most ``max_size`` bytes (the
  setting reply_max_size, 25 MB by default); beyond, reading stops;
- a file's type comes from its name's extension, among an allow-list of
  document types (the same types downloads serve); any other is refused;
- file names are made safe (gateway/mail/files.safe_filename: no paths, no
  control characters, at most 255 bytes);
- at most MAX_FILES files, and only the form's own fields, each small.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable

import python_multipart
from python_multipart.multipart import parse_options_header

from gateway import vault
from gateway.documents.storing import SealedItem
from gateway.mail.files import safe_filename
from web.downloads import ALLOWED_TYPES

MAX_FILES = 20
FILE_FIELD = "files"
# The form's own fields and how long each may be (bytes): the reply's text,
# the checklist line its files answer, and the CSRF token.
FIELDS = {"message": 100_000, "item": 16, "csrf_token": 200}

# The document types a client may send, by extension (all in ALLOWED_TYPES,
# so a download serves them as what they are).
EXTENSIONS = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".zip": "application/zip",
    ".doc": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".ppt": "application/vnd.ms-powerpoint",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".qbo": "application/vnd.intu.qbo",
}
assert set(EXTENSIONS.values()) <= ALLOWED_TYPES
ACCEPT = ",".join(EXTENSIONS)  # the file field's accept attribute


def type_for(filename: str) -> str | None:
    """The file's content type from its extension, or None if not allowed."""
    _, dot, extension = filename.rpartition(".")
    return EXTENSIONS.get(f".{extension.lower()}") if dot else None


class TooLarge(Exception):
    """The reply is over the size limit: reading stopped."""


class BadForm(Exception):
    """Not our form (no boundary, unknown or oversized fields, bad CSRF token)."""


@dataclass
class Refused:
    filename: str
    reason: str  # "type", "empty" or "count"


@dataclass
class ReplyForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[SealedItem] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)


class _File:
    def __init__(self, data_key: bytes, filename: str, content_type: str) -> None:
        self.filename, self.content_type = filename, content_type
        self.salt = vault.new_file_salt()
        self.sealer = vault.ChunkSealer(data_key, self.salt)
        self.chunks: list[bytes] = []
        self.size = 0

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        self.chunks += self.sealer.feed(data)

    def sealed(self) -> SealedItem:
        self.chunks.append(self.sealer.finish())
        return SealedItem(self.filename, self.content_type, self.size, self.salt, self.chunks)


class _Reader:
    """python-multipart's callbacks: one part at a time, in order."""

    def __init__(self, data_key: bytes, max_size: int, csrf_ok: Callable[[str], bool]) -> None:
        self.data_key, self.max_size, self.csrf_ok = data_key, max_size, csrf_ok
        self.form = ReplyForm()
        self.total = 0
        self.chosen = 0
        self._headers: dict[bytes, bytes] = {}
        self._name, self._value = b"", b""
        self._field: str | None = None
        self._text = bytearray()
        self._file: _File | None = None
        self._skipping = False

    def callbacks(self) -> dict:
        return {"on_part_begin": self.begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.data, "on_part_end": self.end}

    def begin(self) -> None:
        self._headers, self._field, self._file, self._skipping = {}, None, None, False
        self._text = bytearray()

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def header_end(self) -> None:
        self._headers[self._name.lower()] = self._value
        self._name, self._value = b"", b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in options:
            if name == FILE_FIELD:
                self._skipping = True  # the file field sent without a file (some clients omit filename="")
                return
            if name not in FIELDS:
                raise BadForm(f"unexpected field {name[:40]!r}")
            self._field = name
            return
        # A file: nothing is kept of any unless the form's token came first and fits.
        if not self.csrf_ok(self.form.fields.get("csrf_token", "")):
            raise BadForm("the form's token did not come first or does not fit")
        raw = options[b"filename"].decode("utf-8", "replace")
        if name != FILE_FIELD:
            raise BadForm(f"a file in the field {name[:40]!r}")
        if not raw:
            self._skipping = True  # a file field left empty: the browser sends an empty part
            return
        self.chosen += 1
        filename = safe_filename(raw, index=self.chosen)
        kind = type_for(filename)
        if kind is None or self.chosen > MAX_FILES:
            self.form.refused.append(Refused(filename, "type" if kind is None else "count"))
            self._skipping = True
            return
        self._file = _File(self.data_key, filename, kind)

    def data(self, data: bytes, start: int, end: int) -> None:
        piece = data[start:end]
        self.total += len(piece)
        if self.total > self.max_size:
            raise TooLarge()
        if self._file is not None:
            self._file.feed(piece)
        elif self._field is not None:
            self._text += piece
            if len(self._text) > FIELDS[self._field]:
                raise BadForm(f"field {self._field} is too long")

    def end(self) -> None:
        if self._file is not None:
            if self._file.size == 0:
                self.form.refused.append(Refused(self._file.filename, "empty"))
            else:
                self.form.files.append(self._file.sealed())
        elif self._field is not None:
            self.form.fields[self._field] = self._text.decode("utf-8", "replace")


async def read(headers_content_type: str, stream: AsyncIterator[bytes], *, data_key: bytes, max_size: int,
               csrf_ok: Callable[[str], bool]) -> ReplyForm:
    """The reply form, its files sealed. Raises TooLarge past max_size
    (having read no further) and BadForm for anything not our form."""
    kind, params = parse_options_header(headers_content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadForm("not multipart/form-data")
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    try:
        codecs.lookup(charset)
    except LookupError:
        raise BadForm("unknown charset") from None
    reader = _Reader(data_key, max_size, csrf_ok)
    parser = python_multipart.MultipartParser(boundary, reader.callbacks())
    try:
        async for chunk in stream:
            parser.write(chunk)
        parser.finalize()
    except python_multipart.exceptions.FormParserError as exc:
        raise BadForm("the form could not be read") from exc
    return reader.form
