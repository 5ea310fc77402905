"""agent_health's logic against real HTTP(S) servers started by the tests."""
from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.agentops.deploy.plugins.module_utils import health
from ansible_collections.agentops.deploy.plugins.module_utils import prometheus_text


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # The timeout test's client hangs up before the slow answer is written;
        # that is the point of the test, not an error worth a traceback.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class Agent:
    """A scriptable agent: each GET /ready answer comes from `answers` in turn.

    `on_probe` runs before each answer, so traffic a test wants counted in a
    metrics window lands after run()'s first scrape and before its last one,
    whatever the machine's load.
    """

    def __init__(self, port: int = 0) -> None:
        self.answers: list = [(200, {'status': 'ready', 'version': '1.4.0'})]
        self.delay = 0.0
        self.requests = {'200': 0, '500': 0}
        # Failed LLM calls by error_type, as agent_llm_errors_total counts them.
        self.llm_errors: dict = {}
        self.probes: dict = {}
        self.calls = 0
        self.on_probe = None
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path == '/metrics':
                    lines = [f'http_requests_total{{method="POST",route="/api/agent",status="{code}"}} {count}'
                             for code, count in agent.requests.items()]
                    # Probes count like the real agent counts them, so leaving them out is tested.
                    lines += [f'http_requests_total{{method="GET",route="/ready",status="{code}"}} {count}'
                              for code, count in agent.probes.items()]
                    lines += [f'agent_llm_errors_total{{error_type="{kind}",gen_ai_provider_name="openai",'
                              f'gen_ai_request_model="m"}} {count}' for kind, count in agent.llm_errors.items()]
                    self._send(200, ('# TYPE http_requests_total counter\n' + '\n'.join(lines) + '\n').encode(),
                               'text/plain')
                    return
                if agent.on_probe:
                    agent.on_probe()
                time.sleep(agent.delay)
                status, body = agent.answers[min(agent.calls, len(agent.answers) - 1)]
                agent.calls += 1
                agent.probes[str(status)] = agent.probes.get(str(status), 0) + 1
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

        self.server = QuietServer(('127.0.0.1', port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.02}, daemon=True).start()

    def url(self, path: str = '/ready', scheme: str = 'http') -> str:
        return f'{scheme}://127.0.0.1:{self.port}{path}'

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def agent():
    server = Agent()
    yield server
    server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class FakeTime:
    """Time that passes only when run() sleeps.

    Attempts then fall at 0, interval, 2 * interval... however slow the machine
    is, so a test can count them. `at` maps a time to an action (start or stop
    a server) run once the clock has reached it, between two attempts.
    """

    def __init__(self, at: dict | None = None) -> None:
        self.now = 0.0
        self.at = dict(at or {})

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        for when in sorted(when for when in self.at if when <= self.now):
            self.at.pop(when)()

    def run(self, probe: health.ProbeSpec) -> dict:
        return health.run(probe, clock=self.clock, sleep=self.sleep)


def spec(url: str, **extra) -> health.ProbeSpec:
    return health.ProbeSpec(url=url, **{'interval': 0.05, 'deadline': 2, 'timeout': 1, **extra})


def test_healthy_after_consecutive_successes(agent: Agent) -> None:
    result = health.run(spec(agent.url(), success_threshold=3, expect_json={'status': 'ready', 'version': '1.4.0'}))
    assert result['healthy'] and result['attempts'] == 3 and result['consecutive_successes'] == 3
    assert result['verdict'] == 'healthy' and result['reason'] is None
    assert result['json']['version'] == '1.4.0' and result['status'] == 200
    assert 0 < result['latency_ms']['min'] <= result['latency_ms']['p50'] <= result['latency_ms']['max']


def test_wrong_version_is_named(agent: Agent) -> None:
    agent.answers = [(200, {'status': 'ready', 'version': '1.3.0'})]
    result = health.run(spec(agent.url(), deadline=0.5, expect_json={'version': '1.4.0'}))
    assert not result['healthy'] and result['verdict'] == 'deadline'
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
    port = free_port()
    result = FakeTime().run(spec(f'http://127.0.0.1:{port}/ready', deadline=5, interval=1))
    assert not result['healthy'] and result['status'] is None and result['verdict'] == 'deadline'
    assert result['reason'] == f'connection refused on 127.0.0.1:{port} for 5 s (6 attempts)'


def test_refused_grace_stops_before_the_deadline() -> None:
    port = free_port()
    result = FakeTime().run(spec(f'http://127.0.0.1:{port}/ready', interval=2, deadline=60, refused_grace=8))
    assert not result['healthy'] and result['verdict'] == 'refused'
    assert result['attempts'] == 5 and result['elapsed'] == 8
    assert result['reason'] == (f'connection refused on 127.0.0.1:{port} for 8 s, '
                                f'past the start grace of 8 s (5 attempts)')


def test_a_port_that_hangs_up_counts_as_refused() -> None:
    """Docker's userland proxy accepts on a published port and closes the
    connection when no container listens behind it."""
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(16)
    stop = threading.Event()

    def hang_up() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _address = listener.accept()
            except OSError:
                continue
            connection.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        result = FakeTime().run(spec(f'http://127.0.0.1:{port}/ready', interval=2, deadline=60, refused_grace=4))
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert not result['healthy'] and result['verdict'] == 'refused'
    assert result['attempts'] == 3
    assert result['reason'].startswith(f'connection closed without an answer on 127.0.0.1:{port} for 4 s')


def test_an_answer_resets_the_refused_window() -> None:
    port = free_port()
    servers: list = []

    def start() -> None:
        servers.append(Agent(port))
        servers[0].answers = [(503, {'message': 'warming up'})]

    def stop() -> None:
        servers[0].stop()
    # Refused at 0 and 2, one 503 answer at 4, refused again from 6.
    clock = FakeTime(at={3: start, 5: stop})
    result = clock.run(spec(f'http://127.0.0.1:{port}/ready', interval=2, deadline=60, refused_grace=4))
    assert servers[0].calls == 1
    assert result['verdict'] == 'refused' and result['attempts'] == 6 and result['elapsed'] == 10
    assert result['reason'].endswith('for 4 s, past the start grace of 4 s (3 attempts)')
    assert 'HTTP 503: warming up' in [failure['reason'] for failure in result['failures']]


def test_refusals_within_the_grace_do_not_stop_a_slow_start() -> None:
    port = free_port()
    servers: list = []
    clock = FakeTime(at={5: lambda: servers.append(Agent(port))})
    try:
        result = clock.run(spec(f'http://127.0.0.1:{port}/ready', interval=2, deadline=60, refused_grace=6))
    finally:
        servers[0].stop()
    assert result['healthy'] and result['verdict'] == 'healthy' and result['attempts'] == 4


def test_a_start_slower_than_the_grace_passes_while_its_process_runs() -> None:
    port = free_port()
    servers: list = []
    checks: list = []

    def running() -> tuple:
        checks.append(True)
        return True, ''
    clock = FakeTime(at={13: lambda: servers.append(Agent(port))})
    try:
        result = health.run(spec(f'http://127.0.0.1:{port}/ready', interval=2, deadline=60, refused_grace=6),
                            clock=clock.clock, sleep=clock.sleep, process_running=running)
    finally:
        servers[0].stop()
    # Refused at 0..12, the process asked at 6, 8, 10 and 12, healthy at 14.
    assert result['healthy'] and result['attempts'] == 8 and len(checks) == 4


def test_a_process_gone_after_the_grace_is_judged_at_once() -> None:
    port = free_port()
    clock = FakeTime()
    result = health.run(spec(f'http://127.0.0.1:{port}/ready', interval=2, deadline=60, refused_grace=6),
                        clock=clock.clock, sleep=clock.sleep,
                        process_running=lambda: (clock.now < 10, 'systemctl is-active exited 3: failed'))
    assert result['verdict'] == 'refused' and result['elapsed'] == 10 and result['attempts'] == 6
    assert result['reason'] == (f'connection refused on 127.0.0.1:{port} for 10 s, past the start grace of 6 s '
                                f'(6 attempts), and its process is not running (systemctl is-active exited 3: failed)')


@pytest.mark.parametrize('limit', [1, 3])
def test_max_server_errors_stops_after_exactly_n(agent: Agent, limit: int) -> None:
    agent.answers = [(500, {'error': {'message': 'model backend unavailable'}})] * 10
    result = FakeTime().run(spec(agent.url(), interval=2, deadline=60, max_server_errors=limit))
    assert agent.calls == limit and result['attempts'] == limit
    assert not result['healthy'] and result['verdict'] == 'server_errors' and result['status'] == 500
    assert result['reason'] == f'{limit} consecutive 5xx answers, the last HTTP 500: model backend unavailable'


def test_another_answer_restarts_the_5xx_count(agent: Agent) -> None:
    error, old = (500, {'message': 'boom'}), (200, {'status': 'ready', 'version': '1.3.0'})
    agent.answers = [error, error, old, error, error, error, (200, {'status': 'ready', 'version': '1.4.0'})]
    result = FakeTime().run(spec(agent.url(), interval=2, deadline=60, max_server_errors=3,
                                 expect_json={'version': '1.4.0'}))
    assert result['verdict'] == 'server_errors' and result['attempts'] == 6


def test_a_503_then_200s_is_not_stopped_by_a_larger_limit(agent: Agent) -> None:
    ready = (200, {'status': 'ready', 'version': '1.4.0'})
    agent.answers = [(503, {'message': 'warming up'}), ready, ready, ready]
    result = FakeTime().run(spec(agent.url(), interval=2, deadline=60, max_server_errors=2, success_threshold=3))
    assert result['healthy'] and result['verdict'] == 'healthy' and result['attempts'] == 4


def test_an_expected_5xx_is_not_a_server_error(agent: Agent) -> None:
    agent.answers = [(503, {'status': 'draining'})]
    result = FakeTime().run(spec(agent.url(), expected_status=[503], max_server_errors=1))
    assert result['healthy'] and result['attempts'] == 1


REFUSED = health.Attempt(False, 'connection refused on 127.0.0.1:8000', None, None, refused=True)
TIMEOUT = health.Attempt(False, 'no answer from 127.0.0.1:8000 within the request timeout', None, None)
ERROR = health.Attempt(False, 'HTTP 502: bad gateway', 502, 3.0)
NOT_FOUND = health.Attempt(False, 'HTTP 404: not found', 404, 3.0)
READY = health.Attempt(True, None, 200, 3.0)


@pytest.mark.parametrize(('options', 'attempts', 'stop'), [
    ({'refused_grace': 0}, [REFUSED], (0, 'refused')),
    ({'refused_grace': 4}, [REFUSED, REFUSED, REFUSED], (2, 'refused')),
    ({'refused_grace': 4}, [REFUSED, TIMEOUT, REFUSED, REFUSED], None),
    ({'refused_grace': 4}, [REFUSED, ERROR, REFUSED, REFUSED, REFUSED], (4, 'refused')),
    ({'max_server_errors': 2}, [ERROR, NOT_FOUND, ERROR, READY, ERROR], None),
    ({'max_server_errors': 2}, [ERROR, REFUSED, ERROR, TIMEOUT, ERROR], None),
    ({'max_server_errors': 2}, [ERROR, ERROR], (1, 'server_errors')),
    ({}, [REFUSED] * 50 + [ERROR] * 50, None),
    ({'refused_grace': 2, 'max_server_errors': 2}, [ERROR, REFUSED, REFUSED], (2, 'refused')),
])
def test_fail_fast_counts_only_uninterrupted_runs(options: dict, attempts: list, stop) -> None:
    """Attempts 2 s apart; `stop` is the index of the attempt that ends probing, and the verdict."""
    fail_fast = health.FailFast(health.ProbeSpec(url='http://127.0.0.1:8000/ready', **options))
    stopped = next((index for index, attempt in enumerate(attempts) if fail_fast.observe(attempt, index * 2.0)), None)
    assert (stopped, fail_fast.verdict) == (stop or (None, None))


def test_metrics_gate_catches_a_5xx_ratio(agent: Agent) -> None:
    agent.on_probe = lambda: agent.requests.update({'200': 80, '500': 20})
    result = FakeTime().run(spec(agent.url(), success_threshold=5, metrics_url=agent.url('/metrics'),
                                 max_error_ratio=0.05))
    assert not result['healthy'] and result['verdict'] == 'metrics'
    assert result['metrics']['requests'] == 100 and result['metrics']['errors'] == 20
    assert result['metrics']['error_ratio'] == 0.2
    assert '20 of 100 requests failed with 5xx' in result['reason']


@pytest.mark.parametrize('llm_errors, verdict', [
    ({'server': 20}, 'provider'),
    ({'timeout': 5, 'rate_limited': 15}, 'provider'),
    # Some 5xx the provider did not cause: the release's share is judged as before.
    ({'server': 19}, 'metrics'),
    # A malformed request is likely the release's own doing.
    ({'bad_request': 20}, 'metrics'),
])
def test_metrics_gate_names_the_provider_when_its_failures_are_every_5xx(agent: Agent, llm_errors, verdict) -> None:
    agent.llm_errors = {kind: 3 for kind in llm_errors}  # before the window: not counted

    def traffic() -> None:
        agent.requests.update({'200': 80, '500': 20})
        agent.llm_errors = {kind: 3 + count for kind, count in llm_errors.items()}

    agent.on_probe = traffic
    result = FakeTime().run(spec(agent.url(), success_threshold=3, metrics_url=agent.url('/metrics'),
                                 max_error_ratio=0.05))
    assert not result['healthy'] and result['verdict'] == verdict
    expected = {f'openai/{kind}': count for kind, count in sorted(llm_errors.items()) if kind != 'bad_request'}
    assert result['metrics']['provider_errors'] == expected
    assert ('the LLM provider failed' in result['reason']) == (verdict == 'provider')


def test_metrics_gate_passes_low_ratio_and_ignores_probe_routes(agent: Agent) -> None:
    agent.on_probe = lambda: agent.requests.update({'200': 99, '500': 1})
    result = FakeTime().run(spec(agent.url(), success_threshold=4, metrics_url=agent.url('/metrics'),
                                 max_error_ratio=0.05))
    assert agent.probes == {'200': 4}, 'the probes were counted, so leaving them out is what is tested'
    assert result['healthy'] and result['verdict'] == 'healthy'
    assert result['metrics']['requests'] == 100 and result['metrics']['errors'] == 1


def test_metrics_gate_that_cannot_scrape_is_unhealthy(agent: Agent) -> None:
    result = FakeTime().run(spec(agent.url(), metrics_url=f'http://127.0.0.1:{free_port()}/metrics'))
    assert not result['healthy'] and result['verdict'] == 'metrics'
    assert result['reason'].startswith('cannot read http://127.0.0.1:')


def test_metrics_gate_with_too_few_requests_is_not_judged(agent: Agent) -> None:
    result = FakeTime().run(spec(agent.url(), metrics_url=agent.url('/metrics'), max_error_ratio=0.01,
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
