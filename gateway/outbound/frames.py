"""A mail template rendered once for each shape of mail, then filled in.

The two mails every request sends differ from one request to the next in
their values (the firm's name, the amount, the link, ...) far more than in
their shape (which rows, a hint or not, the language). Rendering the
templates was half of composing them; now a template is rendered once for
a shape with a marker in place of each value (a *frame*), and each mail is
the frame with its values written in.

The caller says which of the context's strings are the mail's own values by
wrapping them in :class:`Blank`. Everything else in the context is the
shape: a frame's key is the context with each Blank reduced to whether it
is empty (and, for a ``sized`` one, its length), so a value the caller
forgot to wrap only makes more frames, never a wrong one.

A frame is kept only when the template writes each value as it is, escaped
for HTML or not. A template may also use a value otherwise: pad it
(``"%-18s"|format(...)``), measure, cut, change, compare or test it, or
mark it safe. That is not answered from a frame (the template is rendered
as always for that shape), because:

- the marker standing for a value can only become text (str, __html__, an
  empty format spec) or say whether it is empty; any other use (compare,
  len, index, an attribute, a format spec) raises while the frame is made;
- the frame is made twice, with markers of very different lengths and
  letters: text made from a marker and then padded, cut or changed comes
  out different from one to the other, or with a broken marker;
- filled in, the frame must give what the template renders, byte for byte,
  both for the mail's own values and for made-up ones of other lengths
  full of characters HTML escapes (``_probe``): an escaped value where the
  template wrote it raw, or a value changed, shows.

What these cannot see: a template comparing the *text* made from a value
(``(hint ~ "") == "Dog"``) with something the first mail of the shape and
the made-up values do not match. Test what the code gives instead (a
bool in the context: part of the shape).

A ``sized`` Blank is one the template pads (the confirmation's commands,
"%-18s"): its length is part of the shape and its marker is as long as it.

Frames live with their Composer, keyed by the Template object as well: the
templates are compiled once a process and not read again (compose's
_environment), and a Template loaded again would be a new key. A frame
holds markers, never a value: no secret stays in one.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

from jinja2 import Template
from markupsafe import escape

from gateway.core.language import Words

__all__ = ["Blank", "Frames", "filled"]


class Blank:
    """One of the mail's own values in a template's context (see the module)."""

    __slots__ = ("value", "sized")

    def __init__(self, value: str, *, sized: bool = False) -> None:
        self.value = value
        self.sized = sized

    def __repr__(self) -> str:  # never the value: it may be a secret
        return f"Blank(<{len(self.value)} characters>)"


class _Unfit(Exception):
    """The template uses a value otherwise than writing it."""


# A marker's text: START, "<" (so that HTML escaping shows: "&lt;"), the
# value's number, filler letters, END. Private-use characters: a
# template's own text does not hold them, and a frame that still does once
# the markers are taken out is not kept.
_START, _END = "\ue000", "\ue001"
_FIRST_NUMBER, _NUMBERS = 0xE100, 0xF00
_MARKER = re.compile("\ue000(?:<|&lt;)[\ue100-\uefff][aB]*\ue001")
# The second frame's markers are long: padding, cutting or wrapping text
# made from them comes out different from the first's.
_LONG = 400
# A sized value's marker is as long as the value, so it has to hold START,
# "<", the number and END: a sized value shorter than that is part of the
# shape itself.
_MIN_SIZED = 4
# The made-up values the frame is checked with: what HTML escapes, both
# cases, spaces, a line break, braces.
_ODD = "<&>\"' Ab\n{}"


def _whole(blank: Blank) -> bool:
    """Whether a Blank is kept in the shape itself, value and all."""
    return blank.sized and len(blank.value) < _MIN_SIZED


class _Marker:
    """What a template sees in place of a value while its frame is made."""

    __slots__ = ("_text", "_html", "_truth")

    def __init__(self, text: str, truth: bool) -> None:
        self._text = text
        self._html = str(escape(text))
        self._truth = truth

    def __str__(self) -> str:
        return self._text

    def __html__(self) -> str:
        return self._html

    def __format__(self, spec: str) -> str:
        if spec:
            raise _Unfit("a format spec")
        return self._text

    def __bool__(self) -> bool:
        return self._truth

    def __eq__(self, other: object) -> bool:
        raise _Unfit("compared")

    __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __eq__
    __hash__ = None  # type: ignore[assignment]


def _shape(value: Any, blanks: list[Blank]) -> Any:
    """``value`` as a key, each Blank in it appended to ``blanks``.
    Raises _Unfit for anything that could render differently while
    comparing equal."""
    kind = type(value)
    if kind is str:
        return value
    if kind is Blank:
        if not value.sized:
            blanks.append(value)
            return Blank, bool(value.value)
        if _whole(value):
            return str, value.value
        blanks.append(value)
        return Blank, len(value.value)
    if kind is list or kind is tuple:
        return kind, tuple([_shape(item, blanks) for item in value])
    if kind is dict:
        return dict, tuple([(name, _shape(item, blanks)) for name, item in value.items()])
    if kind is bool or kind is int or value is None:
        return kind, value
    if kind is Words:  # one a language a process (words.words), its catalogue never changed
        return value
    raise _Unfit(f"a {kind.__name__} in the context")


def filled(value: Any) -> Any:
    """``value`` with each Blank in it replaced by its value."""
    kind = type(value)
    if kind is Blank:
        return value.value
    if kind is list or kind is tuple:
        return kind(map(filled, value))
    if kind is dict:
        return {name: filled(item) for name, item in value.items()}
    return value


def _filled_with(value: Any, stand_ins: Iterator[Any]) -> Any:
    """``value`` with each Blank that _shape listed replaced by the next of ``stand_ins``."""
    kind = type(value)
    if kind is Blank:
        return value.value if _whole(value) else next(stand_ins)
    if kind is list or kind is tuple:
        return kind([_filled_with(item, stand_ins) for item in value])
    if kind is dict:
        return {name: _filled_with(item, stand_ins) for name, item in value.items()}
    return value


def _probe(blank: Blank) -> str:
    """A made-up value the template must treat as it does ``blank``'s:
    empty when it is, as long when it is sized, else longer."""
    if not blank.value:
        return ""
    length = len(blank.value) if blank.sized else len(blank.value) + 37
    return (_ODD * length)[:length]


def _markers(blanks: list[Blank], long: bool) -> tuple[list[_Marker], dict[str, int]]:
    """A marker for each of ``blanks`` and what each of its texts stands
    for: i (the i-th value) or n + i (the i-th value escaped for HTML)."""
    markers, numbers = [], {}
    for i, blank in enumerate(blanks):
        if blank.sized:
            fill = ("B" if long else "a") * (len(blank.value) - _MIN_SIZED)
        else:
            fill = "B" * _LONG if long else "a"
        marker = _Marker(f"{_START}<{chr(_FIRST_NUMBER + i)}{fill}{_END}", bool(blank.value))
        numbers[str(marker)] = i
        numbers[marker.__html__()] = len(blanks) + i
        markers.append(marker)
    return markers, numbers


class _Frame:
    """A template rendered with markers, taken apart at them: the text
    between them (``pieces``, the even places) and what goes in each odd
    place (``fields``: numbered as by _markers)."""

    __slots__ = ("pieces", "fields", "html")

    def __init__(self, pieces: list[str], fields: list[int], html: bool) -> None:
        self.pieces, self.fields = pieces, fields
        self.html = html  # some value is written escaped

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Frame) and (self.pieces, self.fields) == (other.pieces, other.fields)

    def fill(self, values: list[str], escaped: list[str]) -> str:
        """The text with ``values`` (and ``escaped``, each escaped for HTML, when self.html)."""
        given = values + escaped
        pieces = self.pieces.copy()
        pieces[1::2] = [given[field] for field in self.fields]
        return "".join(pieces)


def _frame(template: Template, context: dict[str, Any], blanks: list[Blank], long: bool) -> _Frame:
    """The template rendered with markers, taken apart at them."""
    if len(blanks) > _NUMBERS:
        raise _Unfit("too many values")
    markers, numbers = _markers(blanks, long)
    rendered = template.render(**_filled_with(context, iter(markers)))
    pieces, fields, done = [], [], 0
    for match in _MARKER.finditer(rendered):
        field = numbers.get(match.group())
        if field is None:  # a marker padded, cut or changed
            raise _Unfit("a marker changed")
        pieces += [rendered[done:match.start()], ""]
        fields.append(field)
        done = match.end()
    pieces.append(rendered[done:])
    if any(_START in piece or _END in piece for piece in pieces):
        raise _Unfit("a marker broken")
    return _Frame(pieces, fields, html=any(field >= len(blanks) for field in fields))


def _escaped(values: list[str]) -> list[str]:
    """Each of ``values`` escaped for HTML: by one escape of them all,
    joined by a character escaping leaves alone and no value holds (a call
    of escape a value was most of filling a frame in)."""
    joined = "\x00".join(values)
    if joined.count("\x00") != len(values) - 1:
        return [str(escape(value)) for value in values]
    return str(escape(joined)).split("\x00")


class Frames:
    """The frames of one Composer's templates, by template and shape."""

    _LIMIT = 256  # frames kept (each about a mail part's size); the oldest goes first

    def __init__(self) -> None:
        # (template, shape) -> its frame, or None: that template is rendered
        # as always for that shape.
        self._kept: dict[tuple, _Frame | None] = {}
        self._lock = threading.Lock()

    def render(self, templates: tuple[Template, ...], context: dict[str, Any]) -> list[str]:
        """What ``template.render(**filled(context))`` gives for each of
        ``templates``, from a frame where it can."""
        blanks: list[Blank] = []
        try:
            shape = _shape(context, blanks)
        except _Unfit:
            return [template.render(**filled(context)) for template in templates]
        values = [blank.value for blank in blanks]
        escaped: list[str] = []  # made when a frame needs them
        out = []
        for template in templates:
            key = (template, shape)
            frame = self._kept.get(key, False)
            if frame is False:
                out.append(self._first(key, template, context, blanks))
            elif frame is None:
                out.append(template.render(**filled(context)))
            else:
                if frame.html and not escaped:
                    escaped = _escaped(values)
                out.append(frame.fill(values, escaped))
        return out

    def _first(self, key: tuple, template: Template, context: dict[str, Any], blanks: list[Blank]) -> str:
        """The first mail of a shape: rendered as always, and its frame kept
        when it passes the checks the module describes."""
        rendered = template.render(**filled(context))
        values = [blank.value for blank in blanks]
        probes = [_probe(blank) for blank in blanks]
        frame = None
        try:
            made = _frame(template, context, blanks, long=False)
            if made == _frame(template, context, blanks, long=True) \
                    and made.fill(values, _escaped(values)) == rendered \
                    and made.fill(probes, _escaped(probes)) == template.render(**_filled_with(context, iter(probes))):
                frame = made
        except Exception:  # a marker used otherwise than written: rendered as always, for this shape
            pass
        with self._lock:
            while len(self._kept) >= self._LIMIT:
                del self._kept[next(iter(self._kept))]
            self._kept[key] = frame
        return rendered
