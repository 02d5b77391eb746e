"""The value types of the seed files, as marshmallow fields whose messages editors read.

A message names its field ("title must be text"); the reader puts the file, the line and the
entry ("source '000_x': ") in front of it. A null is reported like any other wrong value.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from typing import Any

from marshmallow import ValidationError, fields

MUST_BE = "{name} must be {what}"


class SeedField(fields.Raw):
    """A field whose wrong values all get one message, "<name> must be <what>" by default.

    `absent_as_null`: a missing key is reported like `key: null`, for the fields of files that
    have no "missing field(s)" message.
    """

    default_error_messages = {"invalid": MUST_BE}
    what = "text"

    def __init__(self, *, what: str | None = None, absent_as_null: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.what = what or self.what
        self.absent_as_null = absent_as_null

    def make_error(self, key: str, **kwargs) -> ValidationError:
        if key == "null" or (key == "required" and self.absent_as_null):
            key, kwargs = "invalid", {**kwargs, "input": None}
        return super().make_error(key, name=self.name, what=self.what, **kwargs)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> Any:
        if not self.accepts(value):
            raise self.make_error("invalid", input=value)
        return self.convert(value)

    def accepts(self, value: Any) -> bool:
        return True

    def convert(self, value: Any) -> Any:
        return value


class Text(SeedField):
    """A string; not blank unless `blank`."""

    def __init__(self, *, blank: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.blank = blank

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and (self.blank or bool(value.strip()))


class TextList(SeedField):
    """A list of strings, none blank, loaded as a tuple; null or absent is the empty one."""

    what = "a list of text"

    def __init__(self, **kwargs):
        kwargs.setdefault("load_default", ())
        super().__init__(**kwargs)

    def deserialize(self, value: Any, *args, **kwargs) -> Any:
        return super().deserialize([] if value is None else value, *args, **kwargs)

    def accepts(self, value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)

    def convert(self, value: list[str]) -> tuple[str, ...]:
        return tuple(value)


class Date(SeedField):
    """A YAML date or a YYYY-MM-DD string, loaded as the ISO string."""

    what = "a date (YYYY-MM-DD)"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, dt.date):
            return True
        try:
            dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            return False
        return True

    def convert(self, value: Any) -> str:
        if isinstance(value, dt.date):
            return value.isoformat()  # a datetime keeps its time, as it always has
        return dt.date.fromisoformat(value).isoformat()


class Identifier(SeedField):
    """A string matching `pattern`; `message` may show the value as {input!r}."""

    def __init__(self, pattern: re.Pattern[str], message: str, **kwargs):
        super().__init__(error_messages={"invalid": message}, **kwargs)
        self.pattern = pattern

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and self.pattern.match(value) is not None


class Choice(SeedField):
    """One of `choices`, compared by equality (a value of any type is reported, not refused)."""

    default_error_messages = {"invalid": "{name} {input!r} is not one of {choices}"}

    def __init__(self, choices: Collection[Any], **kwargs):
        super().__init__(**kwargs)
        self.choices = tuple(choices)

    def make_error(self, key: str, **kwargs) -> ValidationError:
        return super().make_error(key, choices=list(self.choices), **kwargs)

    def accepts(self, value: Any) -> bool:
        return value in self.choices


def one_line(text: str) -> str:
    """Whitespace runs (YAML folding, indentation) as single spaces."""
    return " ".join(text.split())
