"""agent_health's main(): read-only, fails with a reason or returns healthy=false."""
from __future__ import annotations

import socket

from ansible_collections.agentops.deploy.plugins.modules import agent_health


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_unhealthy_fails_with_the_reason(run_module) -> None:
    url = f'http://127.0.0.1:{free_port()}/ready'
    outcome = run_module(agent_health.main, {'url': url, 'deadline': 0.3, 'interval': 0.1})
    assert outcome.failed and outcome.result['changed'] is False
    assert outcome.result['msg'].startswith(f'{url} is unhealthy: connection refused on 127.0.0.1:')
    assert outcome.result['healthy'] is False and outcome.result['attempts'] >= 2


def test_fail_on_unhealthy_false_returns_instead(run_module) -> None:
    outcome = run_module(agent_health.main, {'url': f'http://127.0.0.1:{free_port()}/', 'deadline': 0.2,
                                             'interval': 0.1, 'fail_on_unhealthy': False,
                                             '_ansible_check_mode': True})
    assert not outcome.failed and outcome.result['healthy'] is False and outcome.result['changed'] is False


def test_bad_options_are_refused_before_probing(run_module) -> None:
    for args, message in (({'success_threshold': 0}, 'success_threshold'), ({'deadline': 0}, 'deadline'),
                          ({'max_error_ratio': 2, 'metrics_url': 'http://x/'}, 'max_error_ratio'),
                          ({'max_error_ratio': 0.1}, 'needs metrics_url')):
        outcome = run_module(agent_health.main, {'url': 'http://127.0.0.1:9/', **args})
        assert outcome.failed and message in outcome.result['msg'] and 'attempts' not in outcome.result
