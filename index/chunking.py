"""Split an article into paragraph-level snippets with exact character spans.

Every non-blank line is classified as a title, heading, lead-in (ends with a colon), bullet or
paragraph. This works the same for articles that separate paragraphs by blank lines and for
those that use single newlines. Headings are not snippets: they become the `section` of the
snippets under them. A snippet's text is always ``source[start:end]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BULLET = re.compile(r"^([-*\u2022])\s+")
# "- Label: text": a short label (no sentence punctuation) before the colon.
_LABELLED = re.compile(r"^[^.:;!?]{1,60}:\s+\S")
_HEADING_MAX_WORDS = 12
_TITLE_MAX_CHARS = 200


@dataclass(frozen=True)
class Line:
    start: int
    end: int
    text: str
    kind: str  # title | heading | leadin | bullet | labelled | paragraph
    line_start: int  # where the line starts, before any bullet marker


@dataclass(frozen=True)
class Chunk:
    """One snippet-to-be: its span, the section it sits in, and an optional lead-in line."""

    start: int
    end: int
    text: str
    section: str | None
    lead_in: str | None


def _lines(source: str):
    pos = 0
    for raw in source.splitlines(keepends=True):
        body = raw.rstrip("\r\n")
        stripped = body.strip()
        if stripped:
            start = pos + (len(body) - len(body.lstrip()))
            yield start, start + len(stripped), stripped
        pos += len(raw)


def _is_heading(text: str) -> bool:
    if len(text.split()) > _HEADING_MAX_WORDS:
        return False
    return not text.endswith((".", ":", ";", ",", "!", '"', "\u201d"))


def classify(source: str) -> list[Line]:
    lines: list[Line] = []
    for start, end, text in _lines(source):
        line_start = start
        bullet = _BULLET.match(text)
        if not lines and len(text) <= _TITLE_MAX_CHARS and not text.endswith((".", ":")):
            kind = "title"
        elif bullet:
            # The span of a bullet starts after its marker, so "- " is not part of the snippet.
            start += bullet.end()
            text = text[bullet.end():]
            kind = "labelled" if _LABELLED.match(text) else "bullet"
        elif text.endswith(":"):
            kind = "leadin"
        elif _is_heading(text):
            kind = "heading"
        else:
            kind = "paragraph"
        lines.append(Line(start, end, text, kind, line_start))
    return lines


def chunk(source: str) -> tuple[str | None, list[Chunk]]:
    """Return the article's title line (or None) and its snippets in reading order."""
    lines = classify(source)
    title = lines[0].text if lines and lines[0].kind == "title" else None
    chunks: list[Chunk] = []
    section: str | None = None
    i = 0

    def span(first: Line, last: Line, lead_in: str | None = None) -> Chunk:
        return Chunk(first.start, last.end, source[first.start:last.end], section, lead_in)

    def bullet_list(first: Line, last: Line) -> Chunk:
        # A list keeps every item's marker, the first one's too, so all items read alike.
        start = first.line_start
        return Chunk(start, last.end, source[start:last.end], section, None)

    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        if line.kind == "title":
            i += 1
        elif line.kind == "heading":
            section = line.text
            i += 1
        elif line.kind == "labelled":
            # Each "- Label: text" bullet stands on its own.
            chunks.append(span(line, line))
            i += 1
        elif line.kind == "bullet":
            # A run of short unlabelled bullets reads as one paragraph.
            j = i
            while j + 1 < len(lines) and lines[j + 1].kind == "bullet":
                j += 1
            chunks.append(bullet_list(line, lines[j]))
            i = j + 1
        elif line.kind == "leadin" and nxt is not None and nxt.kind == "labelled":
            # The lead-in introduces labelled bullets: keep it as their context, not a snippet.
            j = i + 1
            while j < len(lines) and lines[j].kind == "labelled":
                chunks.append(span(lines[j], lines[j], lead_in=line.text))
                j += 1
            i = j
        elif line.kind == "leadin" and nxt is not None and nxt.kind == "bullet":
            # Lead-in plus its plain bullet list: one contiguous snippet.
            j = i + 1
            while j + 1 < len(lines) and lines[j + 1].kind == "bullet":
                j += 1
            chunks.append(span(line, lines[j]))
            i = j + 1
        elif line.kind == "leadin" and nxt is not None and nxt.kind == "paragraph":
            chunks.append(span(line, nxt))
            i += 2
        else:
            chunks.append(span(line, line))
            i += 1
    return title, chunks
