"""The Logstash pipeline's grok pattern against lines the reference agent wrote.

files/logstash/agent.conf is the guide's pipeline made correct. Its grok
pattern is read from the file, expanded with the standard grok definitions
(logstash-patterns-core, ecs-v1/grok-patterns) into a Python regular
expression, and matched against the log file of a real `python -m app`
process that served real HTTP requests. The rsyslog log server parses the
same format with its own regular expression (roles/logging); it must give the
same fields.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PIPELINE = REPO / "files" / "logstash" / "agent.conf"
AGENT_DIR = REPO / "files" / "agent"
AGENT_PYTHON = REPO / ".cache" / "agent-venv" / "bin" / "python"
SERVER_TEMPLATE = REPO / "roles" / "logging" / "templates" / "server.conf.j2"

# The deployment guide's pattern, verbatim.
GUIDE_PATTERN = r"%{TIMESTAMP_ISO8601:timestamp} %{LOGLEVEL:level} \[%{DATA:component}\] %{GREEDYDATA:message}"

# The standard definitions the pattern uses (logstash-patterns-core,
# patterns/ecs-v1/grok-patterns), unchanged.
GROK_DEFINITIONS = {
    "YEAR": r"(?>\d\d){1,2}",
    "MONTHNUM": r"(?:0?[1-9]|1[0-2])",
    "MONTHDAY": r"(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])",
    "HOUR": r"(?:2[0123]|[01]?[0-9])",
    "MINUTE": r"(?:[0-5][0-9])",
    "SECOND": r"(?:(?:[0-5]?[0-9]|60)(?:[:.,][0-9]+)?)",
    "ISO8601_TIMEZONE": r"(?:Z|[+-]%{HOUR}(?::?%{MINUTE}))",
    "TIMESTAMP_ISO8601": r"%{YEAR}-%{MONTHNUM}-%{MONTHDAY}[T ]%{HOUR}:?%{MINUTE}(?::?%{SECOND})?%{ISO8601_TIMEZONE}?",
    "LOGLEVEL": (r"([Aa]lert|ALERT|[Tt]race|TRACE|[Dd]ebug|DEBUG|[Nn]otice|NOTICE|[Ii]nfo?(?:rmation)?|INFO?(?:RMATION)?"
                 r"|[Ww]arn?(?:ing)?|WARN?(?:ING)?|[Ee]rr?(?:or)?|ERR?(?:OR)?|[Cc]rit?(?:ical)?|CRIT?(?:ICAL)?"
                 r"|[Ff]atal|FATAL|[Ss]evere|SEVERE|EMERG(?:ENCY)?|[Ee]merg(?:ency)?)"),
    "DATA": r".*?",
    "GREEDYDATA": r".*",
}
GROK_REFERENCE = re.compile(r"%\{(\w+)(?::([\w@\[\]]+))?\}")


def grok_to_regex(pattern: str) -> str:
    """Expand %{NAME} and %{NAME:field} as grok does; Oniguruma (?<name>) becomes (?P<name>)."""
    def expand(match: re.Match[str]) -> str:
        name, field = match.group(1), match.group(2)
        body = GROK_REFERENCE.sub(expand, GROK_DEFINITIONS[name])
        return f"(?P<{field}>{body})" if field else f"(?:{body})"

    return GROK_REFERENCE.sub(expand, re.sub(r"\(\?<(\w+)>", r"(?P<\1>", pattern))


def pipeline_patterns() -> list[str]:
    """Every grok `match` pattern of the pipeline, in order."""
    text = PIPELINE.read_text(encoding="utf-8")
    return re.findall(r'match\s*=>\s*\{\s*"message"\s*=>\s*"((?:[^"\\]|\\.)*)"\s*\}', text)


def main_grok() -> re.Pattern[str]:
    return re.compile(grok_to_regex(pipeline_patterns()[0]))


def request_id_grok() -> re.Pattern[str]:
    return re.compile(grok_to_regex(pipeline_patterns()[1]))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(url: str, request_id: str, body: bytes | None = None, content_type: str | None = None) -> int:
    headers = {"X-Request-ID": request_id}
    if content_type:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def agent_log(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run the reference agent, make requests, stop it; return its log file's lines."""
    if not AGENT_PYTHON.is_file():
        pytest.skip(f"the agent's virtualenv {AGENT_PYTHON} is missing: run `make agent-venv`")
    log_file = tmp_path_factory.mktemp("agent") / "agent.log"
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AGENT_HOST": "127.0.0.1",
        "AGENT_PORT": str(port),
        "AGENT_PROVIDER": "offline",
        "AGENT_LOG_FILE": str(log_file),
        "AGENT_VERSION": "9.9.9-grok",
    }
    started = datetime.now(UTC)
    process = subprocess.Popen(  # noqa: S603 - a fixed command line
        [str(AGENT_PYTHON), "-m", "app"], cwd=AGENT_DIR, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _request(f"{base}/health", "grok-wait") == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"the agent did not start: {process.stderr.read() if process.poll() is not None else ''}")
            time.sleep(0.2)
        statuses = {
            "grok-health": _request(f"{base}/health", "grok-health"),
            "grok-agent": _request(f"{base}/api/agent", "grok-agent", b'{"input": "What is an agent?"}',
                                   "application/json"),
            "grok-bad-json": _request(f"{base}/api/agent", "grok-bad-json", b"{not json", "application/json"),
            "grok-missing": _request(f"{base}/no/such/path", "grok-missing"),
        }
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return {
        "lines": log_file.read_text(encoding="utf-8").splitlines(),
        "statuses": statuses,
        "started": started,
        "finished": datetime.now(UTC),
    }


def test_the_pipeline_uses_the_guides_pattern_anchored() -> None:
    patterns = pipeline_patterns()
    assert patterns, f"no grok match in {PIPELINE}"
    assert patterns[0] == f"^{GUIDE_PATTERN}$"


def test_the_requests_were_served(agent_log: dict) -> None:
    assert agent_log["statuses"] == {"grok-health": 200, "grok-agent": 200, "grok-bad-json": 400,
                                     "grok-missing": 404}


def test_every_line_the_agent_wrote_matches(agent_log: dict) -> None:
    grok = main_grok()
    lines = agent_log["lines"]
    # Start-up, access, the offline notice and shutdown lines at least.
    assert len(lines) >= 8, lines
    unmatched = [line for line in lines if not grok.match(line)]
    assert not unmatched
    components = {grok.match(line).group("component") for line in lines}
    assert {"access", "app", "server"} <= components, components


@pytest.mark.parametrize(("request_id", "method", "path", "status"), [
    ("grok-health", "GET", "/health", 200),
    ("grok-agent", "POST", "/api/agent", 200),
    ("grok-bad-json", "POST", "/api/agent", 400),
    ("grok-missing", "GET", "/no/such/path", 404),
])
def test_access_line_fields_are_exact(agent_log: dict, request_id: str, method: str, path: str, status: int) -> None:
    grok = main_grok()
    access = [line for line in agent_log["lines"]
              if line.endswith(f" request_id={request_id}") and "[access]" in line]
    assert len(access) == 1, access
    fields = grok.match(access[0]).groupdict()
    assert fields["timestamp"] == access[0].split(" ", 1)[0]
    assert fields["level"] == "INFO"
    assert fields["component"] == "access"
    assert re.fullmatch(
        rf"method={method} path={re.escape(path)} status={status} duration_ms=\d+\.\d client=127\.0\.0\.1 "
        rf"request_id={re.escape(request_id)}", fields["message"]), fields["message"]
    # The date filter's ISO8601: UTC, within the test's run.
    moment = datetime.fromisoformat(fields["timestamp"])
    assert moment.utcoffset() == timedelta(0)
    assert agent_log["started"] - timedelta(seconds=1) <= moment <= agent_log["finished"]
    # The second grok takes the request id from the parsed message.
    assert request_id_grok().search(fields["message"]).group("request_id") == request_id


@pytest.mark.parametrize("line", [
    "",
    "not a log line at all",
    # No brackets around the component.
    "2026-11-23T10:00:00.123Z INFO access method=GET path=/health",
    # A level grok does not know.
    "2026-11-23T10:00:00.123Z VERBOSE [access] method=GET path=/health",
    # Not at the start of the line: the anchored pattern refuses it.
    "junk 2026-11-23T10:00:00.123Z INFO [access] method=GET path=/health",
    # Month 13.
    "2026-13-23T10:00:00.123Z INFO [access] method=GET path=/health",
    # Two lines glued together are not one event.
    "2026-11-23T10:00:00.123Z INFO [access] one\n2026-11-23T10:00:00.124Z INFO [access] two",
])
def test_malformed_lines_do_not_match(line: str) -> None:
    assert main_grok().match(line) is None


def test_an_unanchored_pattern_would_accept_a_prefixed_line() -> None:
    # Why the pipeline anchors the guide's pattern.
    unanchored = re.compile(grok_to_regex(GUIDE_PATTERN))
    assert unanchored.search("junk 2026-11-23T10:00:00.123Z INFO [access] method=GET path=/health")


def test_the_log_servers_parser_agrees_with_grok(agent_log: dict) -> None:
    template = SERVER_TEMPLATE.read_text(encoding="utf-8")
    extractor = re.search(r"re_extract\(\$msg, '([^']+)', 0, 1,", template)
    assert extractor, f"no re_extract of the guide's fields in {SERVER_TEMPLATE}"
    # rsyslog string escapes: '\\[' in the file is '\[' in the expression.
    rsyslog = re.compile(extractor.group(1).replace("\\\\", "\\"))
    grok = main_grok()
    for line in agent_log["lines"]:
        expected = grok.match(line).group("timestamp", "level", "component", "message")
        assert rsyslog.match(line).groups() == expected, line
