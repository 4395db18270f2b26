"""How crawlfleet's own processes write their log: text (default) or JSON lines.

With ``log_format = "json"`` every record is one JSON object on one line —
``time`` (ISO 8601, UTC, milliseconds), ``level``, ``role`` (master, node,
web, up…), ``logger``, ``message``, ``pid``, and ``exception`` with the
formatted traceback when there is one — which log collectors (Loki, Fluent
Bit, Elastic, ``docker logs`` piped into ``jq``) read without parsing rules.
"""

import datetime
import json
import logging
from typing import Any

TEXT_FORMAT = "%(asctime)s {role} %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record; never more than one line."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "role": self.role,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # json.dumps escapes newlines inside strings: a traceback stays on one line
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(log_format: str, role: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(role)
    return logging.Formatter(TEXT_FORMAT.format(role=role))


def setup(log_format: str, level: str, role: str) -> None:
    """Configure the root logger of this process: one handler on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format, role))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, str(level).upper(), logging.INFO))


def gunicorn_logconfig(log_format: str, level: str, role: str = "web") -> dict[str, Any] | None:
    """gunicorn's `logconfig_dict` for JSON logs, so its own lines (workers
    booting, timeouts) are JSON like crawlfleet's; None for text."""
    if log_format != "json":
        return None
    level = str(level).upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter, "role": role}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stderr"}},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": level, "handlers": ["stderr"], "propagate": False},
        },
    }
