"""One log line per event, in the format the collection's log shipping parses.

Text:  2026-11-23T10:00:00.123Z INFO [component] message
JSON:  {"timestamp": "...", "level": "INFO", "component": "...", "message": "..."}

The same dictConfig is handed to uvicorn, so its own loggers and every worker
process (spawned fresh, inheriting nothing) use this format too.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

from app.settings import Settings

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Logger names that are not ours get a short, stable component name.
_COMPONENT_ALIASES = {
    "uvicorn": "server",
    "uvicorn.error": "server",
    "uvicorn.asgi": "server",
    "uvicorn.access": "access",
}
_NOISY_LIBRARIES = ("httpx", "httpcore", "openai", "langchain", "langchain_core", "multipart")


def component_of(logger_name: str) -> str:
    if logger_name in _COMPONENT_ALIASES:
        return _COMPONENT_ALIASES[logger_name]
    if logger_name.startswith("agent."):
        return logger_name[len("agent."):]
    return logger_name.split(".", 1)[0] or "root"


def format_timestamp(created: float) -> str:
    moment = datetime.fromtimestamp(created, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _single_line(text: str) -> str:
    # A line break would split one event into several for every line-based
    # shipper (rsyslog, Logstash file input); escape instead.
    return text.replace("\r", "\\r").replace("\n", "\\n")


class _RedactingFormatter(logging.Formatter):
    """Base: scrubs every known secret from the final line, whatever produced it."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted({secret for secret in (secrets or []) if secret}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[REDACTED]")
        return text

    def exception_text(self, record: logging.LogRecord) -> str | None:
        if record.exc_info:
            return self.formatException(record.exc_info)
        if record.exc_text:
            return record.exc_text
        return None


class TextFormatter(_RedactingFormatter):
    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{format_timestamp(record.created)} {record.levelname} "
            f"[{component_of(record.name)}] {record.getMessage()}"
        )
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            line += f" request_id={request_id}"
        exception = self.exception_text(record)
        if exception:
            line += f" exception={exception}"
        return self.redact(_single_line(line))


class JsonFormatter(_RedactingFormatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "timestamp": format_timestamp(record.created),
            "level": record.levelname,
            "component": component_of(record.name),
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            document["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                document.setdefault(key, value)
        exception = self.exception_text(record)
        if exception:
            document["exception"] = exception
        # json.dumps escapes line breaks itself; redact after serialising so
        # secrets inside any field are caught.
        return self.redact(json.dumps(document, ensure_ascii=False, default=str))


def build_log_config(settings: Settings) -> dict[str, Any]:
    """A logging.config.dictConfig document; also passed to uvicorn as log_config."""
    formatter_class = JsonFormatter if settings.log_format == "json" else TextFormatter
    handlers: dict[str, dict[str, Any]] = {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "agent",
            "stream": "ext://sys.stdout",
        },
    }
    if settings.log_file:
        handlers["file"] = {
            # Watched: reopens the file after logrotate moves it away.
            "class": "logging.handlers.WatchedFileHandler",
            "formatter": "agent",
            "filename": settings.log_file,
            "encoding": "utf-8",
        }
    library_level = "DEBUG" if settings.log_level == "DEBUG" else "WARNING"
    loggers: dict[str, dict[str, Any]] = {
        # uvicorn installs its own handlers unless told otherwise; route
        # everything to the root handlers instead.
        name: {"handlers": [], "propagate": True, "level": settings.log_level}
        for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi")
    }
    # The middleware writes the access line (with request id and duration);
    # uvicorn's own would duplicate every request.
    loggers["uvicorn.access"] = {"handlers": [], "propagate": False}
    loggers.update({name: {"level": library_level} for name in _NOISY_LIBRARIES})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "agent": {
                "()": f"{formatter_class.__module__}.{formatter_class.__qualname__}",
                "secrets": settings.secret_values(),
            },
        },
        "handlers": handlers,
        "root": {"level": settings.log_level, "handlers": list(handlers)},
        "loggers": loggers,
    }


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(build_log_config(settings))
