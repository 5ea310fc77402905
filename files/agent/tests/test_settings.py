from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app import __version__
from app.settings import SettingsError, load_settings
from tests.helpers import AGENT_DIR, clean_env


def test_defaults_run_offline_with_package_version() -> None:
    settings = load_settings({})
    assert (settings.host, settings.port, settings.workers) == ("0.0.0.0", 8000, 1)
    assert settings.provider == "offline" and settings.provider_requested == "auto"
    assert settings.model == "offline-echo-1"
    assert settings.version == __version__
    assert settings.log_format == "text" and settings.log_level == "INFO" and settings.log_file is None
    assert settings.provider_problem() is None


def test_every_variable_is_read() -> None:
    settings = load_settings({
        "AGENT_HOST": "127.0.0.1", "AGENT_PORT": "9001", "AGENT_WORKERS": "3",
        "AGENT_PROVIDER": "OpenAI", "AGENT_MODEL": "qwen2.5", "AGENT_TEMPERATURE": "0.2",
        "AGENT_REQUEST_TIMEOUT_S": "12.5", "AGENT_PROVIDER_MAX_RETRIES": "0",
        "AGENT_MAX_INPUT_CHARS": "100", "AGENT_SYSTEM_PROMPT": "Be brief.",
        "AGENT_LOG_LEVEL": "debug", "AGENT_LOG_FORMAT": "JSON", "AGENT_VERSION": "2.3.4-rc1",
        "AGENT_SHUTDOWN_TIMEOUT_S": "5", "AGENT_OFFLINE_DELAY_MS": "25",
        "OPENAI_BASE_URL": "http://vllm.internal:8000/v1/", "DEEPSEEK_BASE_URL": "https://proxy.example",
    })
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 9001, 3)
    assert (settings.provider, settings.model, settings.temperature) == ("openai", "qwen2.5", 0.2)
    assert (settings.request_timeout_s, settings.provider_max_retries) == (12.5, 0)
    assert (settings.max_input_chars, settings.system_prompt) == (100, "Be brief.")
    assert (settings.log_level, settings.log_format, settings.version) == ("DEBUG", "json", "2.3.4-rc1")
    assert (settings.shutdown_timeout_s, settings.offline_delay_ms) == (5.0, 25)
    assert settings.openai_base_url == "http://vllm.internal:8000/v1"
    assert settings.deepseek_base_url == "https://proxy.example"
    # A keyless OpenAI-compatible server (vLLM, Ollama) is a complete configuration.
    assert settings.provider_problem() is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AGENT_PORT", "eighty"), ("AGENT_PORT", "0"), ("AGENT_PORT", "70000"),
        ("AGENT_WORKERS", "0"), ("AGENT_WORKERS", "1.5"),
        ("AGENT_PROVIDER", "anthropic"),
        ("AGENT_TEMPERATURE", "3"), ("AGENT_TEMPERATURE", "nan"),
        ("AGENT_REQUEST_TIMEOUT_S", "0"), ("AGENT_REQUEST_TIMEOUT_S", "-1"),
        ("AGENT_MAX_INPUT_CHARS", "0"),
        ("AGENT_LOG_LEVEL", "LOUD"), ("AGENT_LOG_FORMAT", "xml"),
        ("AGENT_VERSION", "1.0 beta"), ("AGENT_VERSION", "x" * 65),
        ("AGENT_SHUTDOWN_TIMEOUT_S", "soon"), ("AGENT_OFFLINE_DELAY_MS", "-5"),
        ("AGENT_PROVIDER_MAX_RETRIES", "11"),
        ("OPENAI_BASE_URL", "localhost:11434"), ("DEEPSEEK_BASE_URL", "ftp://x"),
        ("AGENT_HOST", "bad host"),
    ],
)
def test_invalid_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({variable: value})
    assert variable in str(raised.value)


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"AGENT_PORT": "x", "AGENT_WORKERS": "-1"})
    assert "AGENT_PORT" in str(raised.value) and "AGENT_WORKERS" in str(raised.value)


def test_secret_from_file_is_stripped_and_never_in_repr(tmp_path: Path) -> None:
    key_file = tmp_path / "deepseek.key"
    key_file.write_text("sk-file-secret-123\n")
    settings = load_settings({"DEEPSEEK_API_KEY_FILE": str(key_file)})
    assert settings.provider == "deepseek"
    assert settings.deepseek_api_key is not None
    assert settings.deepseek_api_key.get_secret_value() == "sk-file-secret-123"
    assert "sk-file-secret-123" not in repr(settings)
    assert settings.secret_values() == ["sk-file-secret-123"]


@pytest.mark.parametrize("problem", ["missing", "empty", "both"])
def test_bad_secret_file_fails_naming_the_variable(tmp_path: Path, problem: str) -> None:
    key_file = tmp_path / "openai.key"
    env = {"OPENAI_API_KEY_FILE": str(key_file)}
    if problem == "empty":
        key_file.write_text("\n")
    if problem == "both":
        key_file.write_text("sk-a")
        env["OPENAI_API_KEY"] = "sk-do-not-echo"
    with pytest.raises(SettingsError) as raised:
        load_settings(env)
    assert "OPENAI_API_KEY_FILE" in str(raised.value)
    assert "sk-do-not-echo" not in str(raised.value)


def test_unwritable_log_file_fails_at_startup(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="AGENT_LOG_FILE"):
        load_settings({"AGENT_LOG_FILE": str(tmp_path / "no-such-dir" / "agent.log")})


@pytest.mark.parametrize(
    ("env", "provider", "model"),
    [
        ({}, "offline", "offline-echo-1"),
        ({"OPENAI_API_KEY": "sk-o"}, "openai", "gpt-4o-mini"),
        ({"DEEPSEEK_API_KEY": "sk-d"}, "deepseek", "deepseek-chat"),
        # DeepSeek wins when both keys are present (it is the collection's default provider).
        ({"DEEPSEEK_API_KEY": "sk-d", "OPENAI_API_KEY": "sk-o"}, "deepseek", "deepseek-chat"),
        ({"DEEPSEEK_API_KEY": "sk-d", "AGENT_PROVIDER": "offline"}, "offline", "offline-echo-1"),
        # A base URL alone does not switch auto mode away from offline.
        ({"OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}, "offline", "offline-echo-1"),
    ],
)
def test_auto_provider_selection(env: dict[str, str], provider: str, model: str) -> None:
    settings = load_settings(env)
    assert (settings.provider, settings.model) == (provider, model)


@pytest.mark.parametrize(
    ("env", "mentions"),
    [
        ({"AGENT_PROVIDER": "deepseek"}, "DEEPSEEK_API_KEY"),
        ({"AGENT_PROVIDER": "openai"}, "OPENAI_API_KEY"),
    ],
)
def test_explicit_provider_without_credentials_is_a_readiness_problem(env: dict[str, str], mentions: str) -> None:
    problem = load_settings(env).provider_problem()
    assert problem is not None and mentions in problem


def test_entry_point_rejects_bad_config_without_traceback() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=AGENT_DIR,
        env=clean_env({"AGENT_PORT": "eighty", "AGENT_LOG_FORMAT": "xml", "DEEPSEEK_API_KEY": "sk-never-print-me"}),
        capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 2
    assert "AGENT_PORT must be an integer from 1 to 65535, got 'eighty'" in completed.stderr
    assert "AGENT_LOG_FORMAT" in completed.stderr
    assert "Traceback" not in completed.stderr + completed.stdout
    assert "sk-never-print-me" not in completed.stderr + completed.stdout
    assert len(completed.stderr.strip().splitlines()) == 1
