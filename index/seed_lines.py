"""YAML with line numbers, and marshmallow's error messages put back on those lines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

SCHEMA = "_schema"  # marshmallow's key for errors about a value as a whole


class LineDict(dict):
    """A mapping that remembers the line it started on and the line of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: LineLoader, node: yaml.MappingNode) -> LineDict:
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_timestamp(loader: LineLoader, node: yaml.ScalarNode):
    # PyYAML raises a bare ValueError (no line) for dates such as 2026-02-30.
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value!r} is not a valid date ({exc})", node.start_mark
        ) from None


LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
LineLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def line_of(mapping: Any, key: Any = None) -> int | None:
    """The line of `key` in `mapping`, or of the mapping itself; None when not from YAML."""
    if not isinstance(mapping, LineDict):
        return None
    if key is not None and key in mapping.key_lines:
        return mapping.key_lines[key]
    return mapping.line


def locate(errors: Any, value: Any, line: int | None) -> Iterator[tuple[int | None, str]]:
    """Each message in marshmallow's `errors` for `value`, with the line it is about.

    `line` is where `value` is held (its key's line; for JSON, the record's). `errors` is a
    list of messages about `value` itself, or maps keys of `value` (field names, list indexes,
    or "_schema" for the whole) to their own errors. A message about a key is put on that key's
    line; one about a key that is absent, on the line of the value that lacks it.
    """
    if isinstance(errors, str):
        yield line, errors
    elif isinstance(errors, list):
        for message in errors:
            yield from locate(message, value, line)
    else:
        for key, sub in errors.items():
            if key == SCHEMA:
                yield from locate(sub, value, line)
            elif isinstance(value, dict) and key in value:
                key_line = value.key_lines[key] if isinstance(value, LineDict) else line
                yield from locate(sub, value[key], key_line)
            elif isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value):
                yield from locate(sub, value[key], line_of(value[key]) or line)
            else:
                yield from locate(sub, None, line)
