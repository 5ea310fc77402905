"""agent_health's logic against real HTTP(S) servers started by the tests."""
from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.agentops.deploy.plugins.module_utils import health
from ansible_collections.agentops.deploy.plugins.module_utils import prometheus_text


class Agent:
    """A scriptable agent: each GET /ready answer comes from `answers` in turn."""

    def __init__(self) -> None:
        self.answers: list = [(200, {'status': 'ready', 'version': '1.4.0'})]
        self.delay = 0.0
        self.requests = {'200': 0, '500': 0}
        self.calls = 0
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path == '/metrics':
                    lines = [f'http_requests_total{{method="POST",route="/api/agent",status="{code}"}} {count}'
                             for code, count in agent.requests.items()]
                    lines.append('http_requests_total{method="GET",route="/ready",status="200"} 1000')
                    self._send(200, ('# TYPE http_requests_total counter\n' + '\n'.join(lines) + '\n').encode(),
                               'text/plain')
                    return
                time.sleep(agent.delay)
                status, body = agent.answers[min(agent.calls, len(agent.answers) - 1)]
                agent.calls += 1
                self._send(status, json.dumps(body).encode(), 'application/json')

            do_POST = do_GET

            def _send(self, status: int, data: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header('Content-Type', kind)
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.02}, daemon=True).start()

    def url(self, path: str = '/ready', scheme: str = 'http') -> str:
        return f'{scheme}://127.0.0.1:{self.port}{path}'


@pytest.fixture
def agent():
    server = Agent()
    yield server
    server.server.shutdown()


def spec(url: str, **extra) -> health.ProbeSpec:
    return health.ProbeSpec(url=url, **{'interval': 0.05, 'deadline': 2, 'timeout': 1, **extra})


def test_healthy_after_consecutive_successes(agent: Agent) -> None:
    result = health.run(spec(agent.url(), success_threshold=3, expect_json={'status': 'ready', 'version': '1.4.0'}))
    assert result['healthy'] and result['attempts'] == 3 and result['consecutive_successes'] == 3
    assert result['json']['version'] == '1.4.0' and result['status'] == 200
    assert 0 < result['latency_ms']['min'] <= result['latency_ms']['p50'] <= result['latency_ms']['max']


def test_wrong_version_is_named(agent: Agent) -> None:
    agent.answers = [(200, {'status': 'ready', 'version': '1.3.0'})]
    result = health.run(spec(agent.url(), deadline=0.5, expect_json={'version': '1.4.0'}))
    assert not result['healthy']
    assert result['reason'].startswith('version is 1.3.0, expected 1.4.0')
    assert result['failures'] and result['failures'][-1]['reason'] == 'version is 1.3.0, expected 1.4.0'


def test_flapping_health_needs_the_threshold(agent: Agent) -> None:
    good, bad = (200, {'status': 'ready'}), (503, {'error': 'x', 'message': 'warming up'})
    agent.answers = [good, bad, good, bad, good, good, bad] * 10
    # A clock that advances 0.1 s per reading: exactly 6 probes, the last one
    # good, whatever the machine's load.
    ticks = iter(range(100))
    result = health.run(spec(agent.url(), success_threshold=3, deadline=0.6),
                        clock=lambda: next(ticks) / 10, sleep=lambda seconds: None)
    assert result['attempts'] == 6
    assert not result['healthy'] and 'consecutive successes of the 3 required' in result['reason']
    agent.calls = 0
    agent.answers = [good, bad, good, good, good]
    assert health.run(spec(agent.url(), success_threshold=3))['healthy']


def test_http_error_uses_the_body_message(agent: Agent) -> None:
    agent.answers = [(503, {'error': 'provider_not_configured', 'message': 'provider not configured'})]
    result = health.run(spec(agent.url(), deadline=0.3))
    assert result['reason'].startswith('HTTP 503: provider not configured')
    assert result['status'] == 503


def test_slow_answers_fail_the_latency_limit(agent: Agent) -> None:
    agent.delay = 0.2
    result = health.run(spec(agent.url(), max_latency_ms=50, deadline=0.8))
    assert not result['healthy'] and 'over the 50 ms limit' in result['reason']
    assert result['latency_ms']['min'] >= 200


def test_request_timeout_is_a_failure(agent: Agent) -> None:
    agent.delay = 1.0
    result = health.run(spec(agent.url(), timeout=0.2, deadline=0.5))
    assert not result['healthy'] and 'within the request timeout' in result['reason']


def test_connection_refused_says_where_and_for_how_long() -> None:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    result = health.run(spec(f'http://127.0.0.1:{port}/ready', deadline=0.5, interval=0.1))
    assert not result['healthy'] and result['status'] is None
    assert result['reason'].startswith(f'connection refused on 127.0.0.1:{port} for ')
    assert f"({result['attempts']} attempts)" in result['reason'] and result['attempts'] >= 3


def test_metrics_gate_catches_a_5xx_ratio(agent: Agent) -> None:
    def traffic():
        time.sleep(0.1)
        agent.requests = {'200': 80, '500': 20}
    threading.Thread(target=traffic).start()
    result = health.run(spec(agent.url(), success_threshold=5, interval=0.05,
                             metrics_url=agent.url('/metrics'), max_error_ratio=0.05))
    assert not result['healthy']
    assert result['metrics']['requests'] == 100 and result['metrics']['errors'] == 20
    assert result['metrics']['error_ratio'] == 0.2
    assert '20 of 100 requests failed with 5xx' in result['reason']


def test_metrics_gate_passes_low_ratio_and_ignores_probe_routes(agent: Agent) -> None:
    def traffic():
        time.sleep(0.05)
        agent.requests = {'200': 99, '500': 1}
    threading.Thread(target=traffic).start()
    result = health.run(spec(agent.url(), success_threshold=4, metrics_url=agent.url('/metrics'),
                             max_error_ratio=0.05))
    assert result['healthy'] and result['metrics']['requests'] == 100


def test_metrics_gate_with_too_few_requests_is_not_judged(agent: Agent) -> None:
    result = health.run(spec(agent.url(), metrics_url=agent.url('/metrics'), max_error_ratio=0.01,
                             min_requests=10))
    assert result['healthy'] and 'not judged' in result['metrics']['note']


@pytest.fixture(scope='module')
def tls_material(tmp_path_factory) -> dict:
    directory = tmp_path_factory.mktemp('tls')

    def run(*args: str) -> None:
        subprocess.run(args, cwd=directory, check=True, capture_output=True)
    run('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
        '-days', '2', '-subj', '/CN=agentops test CA')
    run('openssl', 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr',
        '-subj', '/CN=127.0.0.1')
    (directory / 'ext.cnf').write_text('subjectAltName=IP:127.0.0.1\n')
    run('openssl', 'x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
        '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf')
    return {name: str(directory / name) for name in ('ca.pem', 'server.pem', 'server.key')}


def test_tls_with_a_private_ca(agent: Agent, tls_material: dict) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_material['server.pem'], tls_material['server.key'])
    agent.server.socket = context.wrap_socket(agent.server.socket, server_side=True)
    url = agent.url(scheme='https')
    untrusted = health.run(spec(url, deadline=0.3))
    assert not untrusted['healthy']
    assert 'TLS' in untrusted['reason'] or 'CERTIFICATE' in untrusted['reason'].upper()
    trusted = health.run(spec(url, ca_path=tls_material['ca.pem'], expect_json={'version': '1.4.0'}))
    assert trusted['healthy'], trusted['reason']
    unchecked = health.run(spec(url, validate_certs=False))
    assert unchecked['healthy']


@pytest.mark.parametrize(('document', 'expected', 'mismatch'), [
    ({'a': {'b': [1, {'c': 'x'}]}}, {'a.b.1.c': 'x'}, None),
    ({'version': '1.4'}, {'version': 1.4}, None),
    ({'ok': True}, {'ok': 'true'}, None),
    ({'ok': False}, {'ok': True}, 'ok is False, expected True'),
    ({}, {'version': '1'}, 'version is missing from the response, expected 1'),
])
def test_json_expectations(document, expected, mismatch) -> None:
    assert health.json_mismatch(document, expected) == mismatch


def test_prometheus_text_parser_reads_labels_escapes_and_specials() -> None:
    text = ('# HELP x y\n'
            'http_requests_total{route="/a",status="500",note="say \\"hi\\"\\n"} 3.0\n'
            'http_requests_total{route="/ready",status="503"} 7 1700000000000\n'
            'up 1\nnan_metric NaN\ninf_metric +Inf\n')
    samples = prometheus_text.parse(text)
    assert samples[0] == ('http_requests_total', {'route': '/a', 'status': '500', 'note': 'say "hi"\n'}, 3.0)
    assert prometheus_text.request_counts(samples, ignore_routes=('/ready',)) == (3.0, 3.0)
    assert prometheus_text.request_counts(samples) == (10.0, 10.0)
    with pytest.raises(prometheus_text.MetricsParseError, match='line 1'):
        prometheus_text.parse('http_requests_total{route=} 1')
