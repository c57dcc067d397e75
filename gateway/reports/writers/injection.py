"""Formula injection: text a client or sender typed must not run as a
formula when a spreadsheet opens the file.

A cell whose text starts with = + - @ (or a tab or carriage return, which
spreadsheets skip before looking) gets a leading apostrophe, as OWASP
advises. The apostrophe shows, and the text survives being saved again as
CSV. Only text is touched: our own numbers may well start with a minus.
"""

from __future__ import annotations

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    return "'" + text if text.startswith(_TRIGGERS) else text
