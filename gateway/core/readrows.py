"""Models made from SQLite rows that SQL of our own read (the runner's claim of a
queued message and its sender's directory, on SQLite's thread): the
instance the ORM's Model._init_from_db makes of the same row, but each
column's conversion chosen once a model, and a time or a date read with
the standard library's C parser (datetime.fromisoformat) where the ORM
reads it with the iso8601 package's regular expression. Measured with an
in-process harness (BENCHMARKS.md, stop 29): the ORM's _init_from_db of a
firm's row was ~37 us, a third of reading the sender's directory.

The instance is the ORM's model, with the state _init_from_db gives it
(saved, not partial): code downstream saves and compares it as before.
tests/test_readrows.py holds it to _init_from_db's on the same rows."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from tortoise import Model
from tortoise.backends.sqlite.executor import SqliteExecutor
from tortoise.fields import DateField, DatetimeField
from tortoise.fields.base import Field

M = TypeVar("M", bound=Model)


class ModelReader(Generic[M]):
    """``model``'s columns as SQL of our own selects them (``columns``, in
    that order) and the instance of a row of them (``made``)."""

    def __init__(self, model: type[M]) -> None:
        meta = model._meta
        self.model = model
        self.columns: list[str] = list(meta.fields_db_projection.values())
        self.projection = ", ".join(self.columns)
        # Each column's attribute and conversion, sorted as _init_from_db
        # sorts them for SQLite (Model._meta's lists are the dialect's the
        # ORM was last set up on): the driver's value as it is (native),
        # the field's type called on it (a boolean stored as 0 or 1), or
        # the field's own to_python_value (the rest). None is None in all three.
        self._steps: list[tuple[str, Callable[[Any], Any] | None]] = []
        for attribute in meta.fields_db_projection:
            field = meta.fields_map[attribute]
            plain = type(field).to_python_value is Field.to_python_value
            if field.field_type in SqliteExecutor.DB_NATIVE and (plain or field.skip_to_python_if_native):
                self._steps.append((attribute, None))
            elif plain:
                self._steps.append((attribute, field.field_type))
            else:
                self._steps.append((attribute, _python_value(field)))
        self._generated_pk = meta.db_pk_column in meta.generated_db_fields

    def made(self, values: Sequence[Any]) -> M:
        """The saved instance of a row of ``columns``' values, in their order."""
        instance = self.model.__new__(self.model)
        state = instance.__dict__
        state["_partial"] = False
        state["_saved_in_db"] = True
        state["_custom_generated_pk"] = not self._generated_pk
        state["_await_when_save"] = {}
        for (attribute, convert), value in zip(self._steps, values, strict=True):
            state[attribute] = value if convert is None or value is None else convert(value)
        return instance


def _python_value(field: Field) -> Callable[[Any], Any]:
    """``field.to_python_value``, but for a time or a date stored as ISO
    text parsed first by datetime.fromisoformat (to_python_value then only
    puts the time in the ORM's zone, as it does a time the driver parsed);
    text fromisoformat refuses is left to the field's own parser."""
    to_python = field.to_python_value
    if isinstance(field, DatetimeField):
        parse, then = datetime.fromisoformat, to_python
    elif isinstance(field, DateField):
        parse, then = date.fromisoformat, None  # a date needs nothing more
    else:
        return to_python

    def converted(value: Any) -> Any:
        if isinstance(value, str):
            try:
                parsed = parse(value)
            except ValueError:
                return to_python(value)
            return parsed if then is None else then(parsed)
        return to_python(value)
    return converted


@functools.cache
def reader(model: type[M]) -> ModelReader[M]:
    """``model``'s reader, made once (when first used: the ORM must have
    set its models up, which it does not at import)."""
    return ModelReader(model)
