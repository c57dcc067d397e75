"""Each field's conversion to the database for rows.Insert, chosen once a
field: a value already of the field's own Python type (a str within the
column's length, an int, a bool, bytes, an aware datetime, a date, a dict
or list for JSON, a member of the field's enum) is passed on as the
ORM's to_db_value passes it (a JSON value encoded, an enum member as its
value), without the ORM's per-call dispatch and validator loop; any other
value, and any field of a kind not named here or with validators or
defaults of its own this does not know, goes through the ORM's own
to_python_value and to_db_value as before, which coerce it or raise as
they did. Measured with bench/bench_runner_rows.py (BENCHMARKS.md, stop
29): the conversion of a request's six rows was ~95 us of the crypto
thread's write.

What protects the data stays: a str longer than its column (SQLite keeps
any length; only this check stops it) and a value of another type take
the ORM's path and its error. tests/test_dbvalues.py holds each kind's
result to the ORM's own, value and type, and the errors to its errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from tortoise import Model
from tortoise.fields import (
    BigIntField, BinaryField, BooleanField, CharField, DateField, DatetimeField, IntField, JSONField, SmallIntField,
    TextField,
)
from tortoise.fields.base import Field
from tortoise.fields.data import CharEnumFieldInstance
from tortoise.timezone import get_default_timezone, get_use_tz
from tortoise.validators import MaxLengthValidator

# to_db(field)(value, instance): field.to_db_value(value, instance).
ToDb = Callable[[Any, Any], Any]
# given_to_db(field, model)(value): field.to_db_value(field.to_python_value(value), model).
GivenToDb = Callable[[Any], Any]


def to_db(field: Field) -> ToDb:
    """``field.to_db_value``, with a value of the field's own type passed
    on without it (rows.Insert.values: the values of a model's instance)."""
    slow = field.to_db_value
    fast = _fast(field)
    return slow if fast is None else _fast_or_slow(fast, slow, field.null)


def given_to_db(field: Field, model: type[Model]) -> GivenToDb:
    """``field.to_db_value(field.to_python_value(value), model)`` (a value
    given to rows.New: read as the model's instance would read it, then
    converted), with a value of the field's own type passed on without
    them. A time is put in the ORM's zone, as to_python_value puts it."""
    def slow(value: Any) -> Any:
        return field.to_db_value(field.to_python_value(value), model)
    fast = _fast(field)
    if fast is None or (isinstance(field, DatetimeField) and not get_use_tz()):
        return slow
    if isinstance(field, DatetimeField):
        zone = get_default_timezone()
        aware = fast

        def fast(value: Any) -> Any:
            result = aware(value)
            return result if result is _SLOW else result.astimezone(zone)
    return _fast_or_slow(fast, slow, field.null)


def _fast_or_slow(fast: Callable[[Any], Any], slow: Callable[..., Any], nullable: bool) -> Callable[..., Any]:
    """``fast(value)`` where it converts the value, else ``slow(value,
    *rest)`` (which also decides what None becomes in a field that takes
    none)."""
    def converted(value: Any, *rest: Any) -> Any:
        if value is None:
            return None if nullable else slow(value, *rest)
        result = fast(value)
        return slow(value, *rest) if result is _SLOW else result
    return converted


_SLOW = object()  # what a fast conversion returns for a value it leaves to the ORM


def _fast(field: Field) -> Callable[[Any], Any] | None:
    """The conversion of a value of ``field``'s own type (``_SLOW`` for any
    other), or None when the field is not one this knows to be plain."""
    kind = type(field)
    if any(not isinstance(validator, MaxLengthValidator) for validator in field.validators):
        return None
    if kind is CharEnumFieldInstance:
        enum_type, longest = field.enum_type, field.max_length
        if any(len(str(member.value)) > longest or not isinstance(member.value, str) for member in enum_type):
            return None
        return lambda value: value.value if type(value) is enum_type else _SLOW
    if field.validators and kind is not CharField:
        return None
    if kind is CharField:
        longest = field.max_length
        return lambda value: value if type(value) is str and len(value) <= longest else _SLOW
    if kind is TextField:
        return lambda value: value if type(value) is str else _SLOW
    if kind in (IntField, BigIntField, SmallIntField) and not field.generated:
        return lambda value: value if type(value) is int else _SLOW
    if kind is BooleanField:
        return lambda value: value if type(value) is bool else _SLOW
    if kind is BinaryField:
        return lambda value: value if type(value) is bytes else _SLOW
    if kind is JSONField:
        # A dict or a list is never a pydantic model's value: encoded as to_db_value encodes it.
        encode = field.encoder
        return lambda value: encode(value) if type(value) in (dict, list) else _SLOW
    if kind is DatetimeField and not (field.auto_now or field.auto_now_add):
        return lambda value: value if type(value) is datetime and value.utcoffset() is not None else _SLOW
    if kind is DateField:
        return lambda value: value if type(value) is date else _SLOW
    return None
