"""agent_health's main(): read-only, fails with a reason or returns healthy=false."""
from __future__ import annotations

import functools
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.agentops.deploy.plugins.module_utils import health
from ansible_collections.agentops.deploy.plugins.modules import agent_health


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Counted:
    """What a counting server received, and the status it answers with."""

    def __init__(self) -> None:
        self.url = ''
        self.received: list = []
        self.status = 200


@pytest.fixture
def counting_server():
    """A server that answers every method with `status` and records the methods it received."""
    counted = Counted()

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            counted.received.append(self.command)
            self.rfile.read(int(self.headers.get('Content-Length') or 0))
            body = b'{"status": "ready"}' if counted.status < 500 else b'{"message": "model backend unavailable"}'
            self.send_response(counted.status)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            if self.command != 'HEAD':
                self.wfile.write(body)

        do_GET = do_HEAD = do_OPTIONS = do_POST = do_PUT = do_DELETE = answer

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.02}, daemon=True).start()
    counted.url = f'http://127.0.0.1:{server.server_address[1]}/api/agent'
    yield counted
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake_time(monkeypatch) -> None:
    """Time that passes only when the module sleeps, so attempts can be counted on a loaded machine."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
    monkeypatch.setattr(agent_health, 'run', functools.partial(health.run, clock=lambda: now[0], sleep=sleep))


def test_unhealthy_fails_with_the_reason(run_module, fake_time) -> None:
    url = f'http://127.0.0.1:{free_port()}/ready'
    outcome = run_module(agent_health.main, {'url': url, 'deadline': 3, 'interval': 1})
    assert outcome.failed and outcome.result['changed'] is False
    assert outcome.result['msg'] == f'{url} is unhealthy: {outcome.result["reason"]}'
    assert outcome.result['reason'].startswith('connection refused on 127.0.0.1:')
    assert outcome.result['healthy'] is False and outcome.result['verdict'] == 'deadline'
    assert outcome.result['attempts'] == 4


def test_fail_on_unhealthy_false_returns_instead(run_module) -> None:
    outcome = run_module(agent_health.main, {'url': f'http://127.0.0.1:{free_port()}/', 'deadline': 0.2,
                                             'interval': 0.1, 'fail_on_unhealthy': False,
                                             '_ansible_check_mode': True})
    assert not outcome.failed and outcome.result['healthy'] is False and outcome.result['changed'] is False


@pytest.mark.parametrize('method', ['POST', 'put', 'DELETE'])
def test_check_mode_does_not_send_what_is_not_read_only(run_module, counting_server, method: str) -> None:
    url, received = counting_server.url, counting_server.received
    outcome = run_module(agent_health.main, {'url': url, 'method': method, 'body': {'input': 'ping'},
                                             '_ansible_check_mode': True})
    assert received == []
    assert not outcome.failed, 'a probe that was not sent is not a failure, whatever fail_on_unhealthy says'
    assert outcome.result['msg'] == f'check mode: the {method.upper()} to {url} was not sent: it is not read-only'
    assert {key: outcome.result[key] for key in ('skipped', 'changed', 'healthy', 'verdict', 'attempts')} == {
        'skipped': True, 'changed': False, 'healthy': None, 'verdict': 'skipped', 'attempts': 0}


@pytest.mark.parametrize('method', ['GET', 'HEAD', 'OPTIONS'])
def test_check_mode_sends_read_only_methods(run_module, counting_server, method: str) -> None:
    url, received = counting_server.url, counting_server.received
    outcome = run_module(agent_health.main, {'url': url, 'method': method, '_ansible_check_mode': True})
    assert received == [method]
    assert outcome.result['healthy'] is True and outcome.result['verdict'] == 'healthy'
    assert 'skipped' not in outcome.result


def test_post_is_sent_outside_check_mode(run_module, counting_server) -> None:
    url, received = counting_server.url, counting_server.received
    outcome = run_module(agent_health.main, {'url': url, 'method': 'POST', 'body': {'input': 'ping'}})
    assert received == ['POST'] and outcome.result['healthy'] and outcome.result['changed'] is False


def test_refused_grace_fails_fast_with_the_verdict(run_module, fake_time) -> None:
    url = f'http://127.0.0.1:{free_port()}/ready'
    outcome = run_module(agent_health.main, {'url': url, 'deadline': 600, 'interval': 2, 'refused_grace': 8})
    assert outcome.failed and outcome.result['verdict'] == 'refused' and outcome.result['attempts'] == 5
    assert outcome.result['msg'].endswith('for 8 s, past the start grace of 8 s (5 attempts)')


@pytest.fixture
def sleeper():
    """A real process, and the command that says whether it still runs."""
    process = subprocess.Popen(['sleep', '600'])
    yield process, ['kill', '-0', str(process.pid)]
    process.kill()
    process.wait()


def test_refusals_past_the_grace_wait_while_the_process_runs(run_module, fake_time, sleeper) -> None:
    _process, command = sleeper
    url = f'http://127.0.0.1:{free_port()}/ready'
    outcome = run_module(agent_health.main, {'url': url, 'deadline': 30, 'interval': 2, 'refused_grace': 8,
                                             'process_command': command})
    assert outcome.failed and outcome.result['verdict'] == 'deadline' and outcome.result['attempts'] == 16
    assert outcome.result['msg'].endswith('; its process kept running past the start grace of 8 s without '
                                          'opening this port (another port, or a start slower than the deadline)')


def test_refusals_past_the_grace_stop_once_the_process_is_gone(run_module, fake_time, sleeper) -> None:
    process, command = sleeper
    process.kill()
    process.wait()
    url = f'http://127.0.0.1:{free_port()}/ready'
    outcome = run_module(agent_health.main, {'url': url, 'deadline': 600, 'interval': 2, 'refused_grace': 8,
                                             'process_command': command})
    assert outcome.failed and outcome.result['verdict'] == 'refused' and outcome.result['attempts'] == 5
    assert f'past the start grace of 8 s (5 attempts), and its process is not running (kill -0 {process.pid} ' \
           f'exited 1: ' in outcome.result['msg']


def test_an_empty_process_command_is_refused(run_module) -> None:
    outcome = run_module(agent_health.main, {'url': 'http://127.0.0.1:1/', 'process_command': []})
    assert outcome.failed and outcome.result['msg'] == 'process_command is a command and its arguments, not an empty list'


def test_max_server_errors_fails_fast_with_the_verdict(run_module, fake_time, counting_server) -> None:
    counting_server.status = 500
    outcome = run_module(agent_health.main, {'url': counting_server.url, 'deadline': 600, 'max_server_errors': 3})
    assert outcome.failed and outcome.result['verdict'] == 'server_errors'
    assert counting_server.received == ['GET'] * 3 and outcome.result['attempts'] == 3
    assert outcome.result['msg'].endswith('3 consecutive 5xx answers, the last HTTP 500: model backend unavailable')


def test_bad_options_are_refused_before_probing(run_module) -> None:
    for args, message in (({'success_threshold': 0}, 'success_threshold'), ({'deadline': 0}, 'deadline'),
                          ({'max_error_ratio': 2, 'metrics_url': 'http://x/'}, 'max_error_ratio'),
                          ({'max_error_ratio': 0.1}, 'needs metrics_url'),
                          ({'refused_grace': -1}, 'refused_grace'), ({'max_server_errors': 0}, 'max_server_errors')):
        outcome = run_module(agent_health.main, {'url': 'http://127.0.0.1:9/', **args})
        assert outcome.failed and message in outcome.result['msg'] and 'attempts' not in outcome.result
