"""Capture what reaches the service's loggers, as the service's own JSON formatter writes it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from service.security import JsonLineFormatter


class Lines(logging.Handler):
    """Records reaching a logger, and the JSON lines the service's formatter makes of them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonLineFormatter())
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))

    def access(self) -> list[dict]:
        """The access-log lines, parsed."""
        return [json.loads(line) for record, line in zip(self.records, self.lines, strict=True)
                if record.name == "service.access"]


@contextmanager
def service_log() -> Iterator[Lines]:
    """What reaches the "service" logger. It does not propagate to root, so caplog alone may
    miss it (it sees it only if the logger existed when the test started)."""
    logger = logging.getLogger("service")
    handler = Lines()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@contextmanager
def every_logger_captured(caplog) -> Iterator[None]:
    """Every logger at DEBUG into caplog, also loggers that do not propagate to root (the
    service's own): a privacy test must see everything that could be written anywhere."""
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    for lg in loggers:
        caplog.set_level(logging.DEBUG, logger=lg.name if lg.name != "root" else None)
    detached = [lg for lg in loggers if not lg.propagate]
    for lg in detached:
        lg.addHandler(caplog.handler)
    try:
        yield
    finally:
        for lg in detached:
            lg.removeHandler(caplog.handler)
