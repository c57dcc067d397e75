"""An HTML body as the plain text a person would read (a message with no
text/plain part), and the cid: images it shows inline."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import unquote

from gateway.mail.decoding import normalise_newlines

_BLOCK_TAGS = frozenset(
    "p div tr li ul ol table h1 h2 h3 h4 h5 h6 blockquote pre hr section "
    "article header footer dt dd dl address center form fieldset main nav "
    "aside figure figcaption caption tbody thead tfoot".split()
)
_SKIP_TAGS = frozenset({"script", "style", "title", "template", "xml"})


class _HTMLText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.in_head = False
        self.pre = 0

    def _newline(self) -> None:
        self.out.append("\n")

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag == "head":
            self.in_head = True
        elif tag == "body":
            self.in_head = False
            self.skip = 0
        elif tag == "br":
            self._newline()
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag in _BLOCK_TAGS:
            self._newline()
            if tag == "pre":
                self.pre += 1

    def handle_startendtag(self, tag, attrs):
        if tag == "br" or tag in _BLOCK_TAGS:
            self._newline()

    def handle_endtag(self, tag):
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag == "head":
            self.in_head = False
        elif tag in _BLOCK_TAGS:
            self._newline()
            if tag == "pre":
                self.pre = max(0, self.pre - 1)

    def handle_data(self, data):
        if self.skip or self.in_head:
            return
        if not self.pre:
            data = re.sub(r"[ \t\r\n\f]+", " ", data)
            if data.startswith(" ") and (not self.out or self.out[-1].endswith((" ", "\n"))):
                data = data[1:]
        if data:
            self.out.append(data.replace("\xa0", " "))


def html_to_text(markup: str) -> str:
    """Plain-text rendering: tags stripped, <br>/<p>/blocks become newlines,
    entities unescaped (``&nbsp;`` becomes a space), scripts/styles dropped."""
    parser = _HTMLText()
    try:
        parser.feed(markup)
        parser.close()
        text = "".join(parser.out)
    except Exception:  # HTMLParser is lenient; be safe anyway
        text = html.unescape(re.sub(r"<[^>]*>", " ", markup))
    lines = [line.strip(" ") for line in normalise_newlines(text).split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


def cid_references(markup: str) -> set[str]:
    refs = set()
    for m in re.finditer(r"cid:([^\"'\s<>)]+)", markup, re.IGNORECASE):
        refs.add(unquote(html.unescape(m.group(1))).strip().lower())
    return refs
