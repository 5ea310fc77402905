"""Every runtime setting, read from environment variables only (12-factor).

Parsing never raises anything but SettingsError, whose message names the
offending variable, so the entry point can print one line and exit non-zero
instead of a traceback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import SecretStr

from app import __version__

PROVIDERS = ("deepseek", "openai", "offline")
DEFAULT_MODELS = {
    "deepseek": "deepseek-chat",
    "openai": "gpt-4o-mini",
    "offline": "offline-echo-1",
}
DEFAULT_DEEPSEEK_BASE_URL = "https://api.deepseek.com"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
# The version becomes a Prometheus label value and a log token: keep it tame.
_VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\-]{0,63}$")

T = TypeVar("T")


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8000
    workers: int = 1
    provider: str = "offline"
    provider_requested: str = "auto"
    model: str = DEFAULT_MODELS["offline"]
    temperature: float = 0.7
    request_timeout_s: float = 30.0
    provider_max_retries: int = 2
    max_input_chars: int = 8000
    system_prompt: str = "You are a helpful assistant."
    log_level: str = "INFO"
    log_format: str = "text"
    log_file: str | None = None
    version: str = __version__
    # The deploy tool's name for what runs (version plus a digest of code and
    # configuration), reported by /health and /ready so a deploy can tell
    # which release a process was started from. Empty when not given.
    release: str = ""
    shutdown_timeout_s: float = 30.0
    offline_delay_ms: int = 0
    deepseek_api_key: SecretStr | None = field(default=None, repr=False)
    deepseek_base_url: str = DEFAULT_DEEPSEEK_BASE_URL
    openai_api_key: SecretStr | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    metrics_multiproc_dir: str | None = None

    def secret_values(self) -> list[str]:
        """Every configured secret, so log redaction can scrub them."""
        return [
            key.get_secret_value()
            for key in (self.deepseek_api_key, self.openai_api_key)
            if key is not None and key.get_secret_value()
        ]

    def provider_problem(self) -> str | None:
        """Why the selected provider cannot serve requests, or None when it can.

        A missing key is a readiness failure rather than a startup failure so
        that a health-gated deploy reports the reason and rolls back instead
        of watching a crash loop.
        """
        if self.provider == "deepseek" and self.deepseek_api_key is None:
            return "AGENT_PROVIDER=deepseek but DEEPSEEK_API_KEY (or DEEPSEEK_API_KEY_FILE) is not set"
        if self.provider == "openai" and self.openai_api_key is None and not self.openai_base_url:
            return (
                "AGENT_PROVIDER=openai but neither OPENAI_API_KEY (or OPENAI_API_KEY_FILE) "
                "nor OPENAI_BASE_URL is set"
            )
        return None


class _EnvReader:
    """Reads typed values and collects every problem before failing once."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.errors: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def parsed(self, name: str, default: T, parse: Callable[[str], T], expectation: str) -> T:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return parse(value)
        except (ValueError, TypeError):
            self.errors.append(f"{name} must be {expectation}, got {value!r}")
            return default

    def integer(self, name: str, default: int, minimum: int, maximum: int | None = None) -> int:
        def parse(value: str) -> int:
            number = int(value)
            if number < minimum or (maximum is not None and number > maximum):
                raise ValueError
            return number

        bounds = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        return self.parsed(name, default, parse, f"an integer {bounds}")

    def number(self, name: str, default: float, minimum: float, maximum: float | None = None,
               exclusive_minimum: bool = False) -> float:
        def parse(value: str) -> float:
            number = float(value)
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError
            if number < minimum or (exclusive_minimum and number == minimum):
                raise ValueError
            if maximum is not None and number > maximum:
                raise ValueError
            return number

        lower = f"> {minimum:g}" if exclusive_minimum else f">= {minimum:g}"
        upper = f" and <= {maximum:g}" if maximum is not None else ""
        return self.parsed(name, default, parse, f"a number {lower}{upper}")

    def choice(self, name: str, default: str, choices: tuple[str, ...], *, upper: bool = False) -> str:
        def parse(value: str) -> str:
            normalised = value.upper() if upper else value.lower()
            if normalised not in choices:
                raise ValueError
            return normalised

        return self.parsed(name, default, parse, "one of " + "|".join(choices))

    def url(self, name: str) -> str | None:
        def parse(value: str) -> str:
            if not re.match(r"^https?://[^\s/]+", value):
                raise ValueError
            return value.rstrip("/")

        return self.parsed(name, None, parse, "an http:// or https:// URL")

    def secret(self, name: str) -> SecretStr | None:
        """NAME or NAME_FILE (Docker/systemd credentials style); never echoes the value."""
        direct = self.raw(name)
        file_name = f"{name}_FILE"
        path = self.raw(file_name)
        if direct is not None and path is not None:
            self.errors.append(f"set only one of {name} and {file_name}")
            return None
        if direct is not None:
            return SecretStr(direct)
        if path is None:
            return None
        try:
            content = Path(path).read_text(encoding="utf-8").strip()
        except OSError as error:
            self.errors.append(f"{file_name} cannot be read: {path!r} ({error.strerror or error})")
            return None
        except UnicodeDecodeError:
            self.errors.append(f"{file_name} must be a UTF-8 text file: {path!r}")
            return None
        if not content:
            self.errors.append(f"{file_name} points to an empty file: {path!r}")
            return None
        return SecretStr(content)


def _check_log_file(reader: _EnvReader) -> str | None:
    path = reader.raw("AGENT_LOG_FILE")
    if path is None:
        return None
    try:
        # Opening now turns a bad path into a startup error instead of a
        # silent lack of logs later.
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as error:
        reader.errors.append(f"AGENT_LOG_FILE cannot be opened for appending: {path!r} ({error.strerror or error})")
        return None
    return path


def _check_version(reader: _EnvReader) -> str:
    def parse(value: str) -> str:
        if not _VERSION_PATTERN.match(value):
            raise ValueError
        return value

    return reader.parsed(
        "AGENT_VERSION", __version__, parse,
        "1-64 characters of letters, digits, '.', '_', '+' or '-'",
    )


def _select_provider(requested: str, deepseek_key: SecretStr | None, openai_key: SecretStr | None) -> str:
    if requested != "auto":
        return requested
    if deepseek_key is not None:
        return "deepseek"
    if openai_key is not None:
        return "openai"
    return "offline"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment; raises SettingsError listing every bad variable."""
    reader = _EnvReader(os.environ if env is None else env)

    requested = reader.choice("AGENT_PROVIDER", "auto", ("auto",) + PROVIDERS)
    deepseek_key = reader.secret("DEEPSEEK_API_KEY")
    openai_key = reader.secret("OPENAI_API_KEY")
    provider = _select_provider(requested, deepseek_key, openai_key)

    host = reader.raw("AGENT_HOST") or "0.0.0.0"
    if any(character.isspace() for character in host):
        reader.errors.append(f"AGENT_HOST must be a host name or IP address, got {host!r}")

    settings = Settings(
        host=host,
        port=reader.integer("AGENT_PORT", 8000, 1, 65535),
        workers=reader.integer("AGENT_WORKERS", 1, 1, 64),
        provider=provider,
        provider_requested=requested,
        model=reader.raw("AGENT_MODEL") or DEFAULT_MODELS[provider],
        temperature=reader.number("AGENT_TEMPERATURE", 0.7, 0.0, 2.0),
        request_timeout_s=reader.number("AGENT_REQUEST_TIMEOUT_S", 30.0, 0.0, 3600.0, exclusive_minimum=True),
        provider_max_retries=reader.integer("AGENT_PROVIDER_MAX_RETRIES", 2, 0, 10),
        max_input_chars=reader.integer("AGENT_MAX_INPUT_CHARS", 8000, 1, 1_000_000),
        system_prompt=reader.raw("AGENT_SYSTEM_PROMPT") or "You are a helpful assistant.",
        log_level=reader.choice("AGENT_LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
        log_format=reader.choice("AGENT_LOG_FORMAT", "text", LOG_FORMATS),
        log_file=_check_log_file(reader),
        version=_check_version(reader),
        release=reader.raw("AGENT_RELEASE") or "",
        shutdown_timeout_s=reader.number("AGENT_SHUTDOWN_TIMEOUT_S", 30.0, 0.0, 3600.0),
        offline_delay_ms=reader.integer("AGENT_OFFLINE_DELAY_MS", 0, 0, 600_000),
        deepseek_api_key=deepseek_key,
        deepseek_base_url=reader.url("DEEPSEEK_BASE_URL") or DEFAULT_DEEPSEEK_BASE_URL,
        openai_api_key=openai_key,
        openai_base_url=reader.url("OPENAI_BASE_URL"),
        metrics_multiproc_dir=reader.raw("PROMETHEUS_MULTIPROC_DIR"),
    )
    if reader.errors:
        raise SettingsError("invalid configuration: " + "; ".join(reader.errors))
    return settings
