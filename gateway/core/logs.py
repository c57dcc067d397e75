"""Logging for `clienttrack`: plain lines for a terminal, or one JSON object
a line (CLIENTTRACK_LOG_FORMAT=json) for a log collector.

Under `serve` with several worker processes (gateway/workers.py), each
worker's lines say which it is: ``[worker 2]`` before the logger's name,
``"worker": 2`` in JSON; the supervising process's lines carry none."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

PLAIN = "%(asctime)s %(levelname)s %(worker)s%(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """time (UTC, ISO 8601), level, logger, message, the worker under
    several processes, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        worker = getattr(record, "worker_number", None)
        if worker is not None:
            line["worker"] = worker
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class _Worker(logging.Filter):
    """Marks each record with this process's worker number (or none)."""

    def __init__(self, number: int | None) -> None:
        super().__init__()
        self.number = number

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker_number = self.number
        record.worker = f"[worker {self.number}] " if self.number is not None else ""
        return True


def configure(level: str, form: str, worker: int | None = None) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if form == "json" else logging.Formatter(PLAIN))
    handler.addFilter(_Worker(worker))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def set_worker(number: int) -> None:
    """From now on, this process's lines name it worker ``number``."""
    for handler in logging.getLogger().handlers:
        for found in handler.filters:
            if isinstance(found, _Worker):
                found.number = number
