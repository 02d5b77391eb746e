"""What probes and 503s may say about an unavailable index: a short reason, never a path or an
exception's text (those go to the log, once each time the reason changes)."""

from __future__ import annotations

import logging
import re
import threading

from index.errors import IndexUnavailable

log = logging.getLogger("service.index")
_GENERATION = re.compile(r"(?:index generation|points at) (\S+?)(?=[:,]|\s|$)")
# (words in the index's message, what a client is told); {generation} is the generation's
# name (a timestamp and a version, not a path).
_REASONS = [
    ("no index built yet", "no index built yet (run `snippets build`)"),
    ("cannot read", "the index pointer cannot be read"),
    ("missing or incomplete", "CURRENT points at {generation}, which is missing or incomplete"),
    ("built by pipeline", "index generation {generation} was built by another pipeline "
                          "version (run `snippets build`)"),
    ("scoring arrays", "index generation {generation} has damaged scoring arrays (rebuild "
                       "with `snippets build`)"),
    ("holds", "index generation {generation} does not hold the snippets its manifest "
              "records (rebuild with `snippets build`)"),
    ("damaged", "index generation {generation} is damaged (rebuild with `snippets build`)"),
    ("cannot be opened", "index generation {generation} cannot be opened (rebuild with "
                         "`snippets build`)"),
]
# Damaged files are named as the manifest records them (relative names inside a generation).
_DAMAGED_FILES = re.compile(r"is damaged: ([\w./, -]+?) missing or not as its manifest records")
_last_logged: list[str] = [""]
_lock = threading.Lock()


def public_reason(error: IndexUnavailable) -> str:
    """The reason a client may read; the full message is logged when it changes."""
    message = str(error)
    with _lock:
        if message != _last_logged[0]:
            _last_logged[0] = message
            log.warning("index unavailable: %s", message)
    found = _GENERATION.search(message)
    generation = found.group(1) if found else "in service"
    files = _DAMAGED_FILES.search(message)
    if files and not any(part.strip().startswith("/") for part in files.group(1).split(",")):
        return (f"index generation {generation} is damaged: {files.group(1)} missing or not as "
                "its manifest records (rebuild with `snippets build`)")
    for words, reason in _REASONS:
        if words in message:
            return reason.format(generation=generation)
    return "the index cannot be opened"
