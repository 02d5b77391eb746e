"""The value types of the seed files, as marshmallow fields whose messages editors read.

A message names its field ("title must be text"); the reader puts the file, the line and the
entry ("source '000_x': ") in front of it. A null is reported like any other wrong value.
"""

from __future__ import annotations

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
