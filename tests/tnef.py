"""Build a minimal TNEF (winmail.dat) stream, the way Outlook wraps an
attachment, so tests can carry a PDF inside one."""

from __future__ import annotations

import struct

SIGNATURE = 0x223E9F78
LEVEL_MESSAGE, LEVEL_ATTACHMENT = 1, 2
TYPE_STRING, TYPE_BYTE, TYPE_DWORD = 0x0001, 0x0006, 0x0008
ATT_TNEF_VERSION, ATT_OEM_CODEPAGE = 0x9006, 0x9007
ATT_ATTACH_REND_DATA, ATT_ATTACH_TITLE, ATT_ATTACH_DATA = 0x9002, 0x8010, 0x800F


def _record(level: int, name: int, kind: int, data: bytes) -> bytes:
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", checksum)


def winmail(files: list[tuple[str, bytes]]) -> bytes:
    out = struct.pack("<IH", SIGNATURE, 0x1234)
    out += _record(LEVEL_MESSAGE, ATT_TNEF_VERSION, TYPE_DWORD, struct.pack("<I", 0x00010000))
    out += _record(LEVEL_MESSAGE, ATT_OEM_CODEPAGE, TYPE_BYTE, struct.pack("<II", 1252, 0))
    for name, data in files:
        out += _record(LEVEL_ATTACHMENT, ATT_ATTACH_REND_DATA, TYPE_BYTE, struct.pack("<HIIHI", 1, 0xFFFFFFFF, 0, 0, 0))
        out += _record(LEVEL_ATTACHMENT, ATT_ATTACH_TITLE, TYPE_STRING, name.encode("cp1252") + b"\0")
        out += _record(LEVEL_ATTACHMENT, ATT_ATTACH_DATA, TYPE_BYTE, data)
    return out
