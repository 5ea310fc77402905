# -*- coding: utf-8 -*-
# Copyright: agentops.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The logic of agentops.deploy.agent_health: probe an agent until healthy.

Plain Python over ansible's open_url, so it is unit-tested against real HTTP
servers without running a module.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from ansible.module_utils.urls import open_url

from ansible_collections.agentops.deploy.plugins.module_utils import prometheus_text

FAILURES_KEPT = 5
# Kinds of failed LLM calls (the agent's error_type) that say the provider
# failed, not the release calling it: a malformed request (bad_request) or an
# unknown error (other) may be the release's own doing. A key revoked while
# the release serves (auth) is not the release's either: keys live outside
# releases, and a new one is tried before it goes live.
PROVIDER_ERROR_KINDS = ('server', 'timeout', 'rate_limited', 'connection', 'auth')
# Methods a probe may send in check mode: the agent treats them as reads.
READ_ONLY_METHODS = ('GET', 'HEAD', 'OPTIONS')
_MISSING = object()


@dataclass
class ProbeSpec:
    url: str
    method: str = 'GET'
    headers: dict = field(default_factory=dict)
    body: object = None
    expected_status: list = field(default_factory=lambda: [200])
    expect_json: dict = field(default_factory=dict)
    timeout: float = 5.0
    interval: float = 2.0
    deadline: float = 60.0
    success_threshold: int = 1
    max_latency_ms: float | None = None
    validate_certs: bool = True
    ca_path: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    metrics_url: str | None = None
    max_error_ratio: float | None = None
    min_requests: int = 1
    metrics_ignore_routes: list = field(default_factory=lambda: ['/health', '/ready', '/metrics'])
    refused_grace: float | None = None
    max_server_errors: int | None = None
    process_command: list | None = None


@dataclass
class Attempt:
    ok: bool
    reason: str | None
    status: int | None
    latency_ms: float | None
    payload: object = None
    refused: bool = False


def lookup(document, path: str):
    """Value at a dotted path (`a.b.0.c`), or _MISSING."""
    current = document
    for part in path.split('.'):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def _same(actual, expected) -> bool:
    if type(actual) is type(expected):
        return actual == expected
    # Inventories and JSON disagree on types ("1.4" vs 1.4, "true" vs True).

    def text(value):
        return json.dumps(value) if isinstance(value, bool) or value is None else str(value)
    return text(actual) == text(expected)


def json_mismatch(payload, expected: dict) -> str | None:
    """The first expectation the body does not meet, as a sentence, or None."""
    for path, wanted in expected.items():
        actual = lookup(payload, path)
        if actual is _MISSING:
            return f"{path} is missing from the response, expected {wanted}"
        if not _same(actual, wanted):
            return f"{path} is {actual}, expected {wanted}"
    return None


def _body_message(payload, raw: bytes) -> str:
    if isinstance(payload, dict):
        for key in ('reason', 'message', 'detail', 'error'):
            value = payload.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict) and isinstance(value.get('message'), str):
                return value['message']
    text = raw.decode('utf-8', 'replace').strip()
    return text[:200] if text else 'empty body'


def _request(spec: ProbeSpec, url: str, method: str, data: bytes | None, headers: dict):
    return open_url(
        url, data=data, headers=headers, method=method, timeout=spec.timeout,
        validate_certs=spec.validate_certs, ca_path=spec.ca_path,
        client_cert=spec.client_cert, client_key=spec.client_key,
        follow_redirects='safe', use_proxy=False,
    )


def _describe_error(error: BaseException, url: str) -> tuple[str, bool]:
    where = urlsplit(url).netloc
    reason = getattr(error, 'reason', error)
    if isinstance(reason, ConnectionRefusedError) or 'Connection refused' in str(reason):
        return f'connection refused on {where}', True
    # Docker's userland proxy accepts on a published port and hangs up when
    # nothing listens behind it: as good as refused for the start grace.
    if isinstance(reason, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
                           http.client.RemoteDisconnected, http.client.BadStatusLine)):
        return f'connection closed without an answer on {where}', True
    if isinstance(reason, (socket.timeout, TimeoutError)) or 'timed out' in str(reason):
        return f'no answer from {where} within the request timeout', False
    if isinstance(reason, ssl.SSLError) or 'CERTIFICATE' in str(reason).upper():
        return f'TLS error with {where}: {reason}', False
    return f'cannot reach {where}: {reason}', False


def probe_once(spec: ProbeSpec) -> Attempt:
    """One request, judged against every expectation."""
    headers = dict(spec.headers)
    data = None
    if spec.body is not None:
        if isinstance(spec.body, (dict, list)):
            data = json.dumps(spec.body).encode()
            headers.setdefault('Content-Type', 'application/json')
        else:
            data = str(spec.body).encode()
    started = time.monotonic()
    try:
        response = _request(spec, spec.url, spec.method, data, headers)
        status, raw = response.getcode(), response.read()
    except HTTPError as error:
        status, raw = error.code, error.read() or b''
    except (URLError, OSError, ssl.SSLError, ValueError, http.client.HTTPException) as error:
        reason, refused = _describe_error(error, spec.url)
        return Attempt(False, reason, None, None, refused=refused)
    latency_ms = (time.monotonic() - started) * 1000.0
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None

    if status not in spec.expected_status:
        return Attempt(False, f'HTTP {status}: {_body_message(payload, raw)}', status, latency_ms, payload)
    if spec.expect_json:
        if payload is None:
            return Attempt(False, f'HTTP {status} without a JSON body to check', status, latency_ms)
        mismatch = json_mismatch(payload, spec.expect_json)
        if mismatch:
            return Attempt(False, mismatch, status, latency_ms, payload)
    if spec.max_latency_ms is not None and latency_ms > spec.max_latency_ms:
        return Attempt(False, f'answered in {latency_ms:.0f} ms, over the {spec.max_latency_ms:.0f} ms limit',
                       status, latency_ms, payload)
    return Attempt(True, None, status, latency_ms, payload)


def scrape(spec: ProbeSpec) -> tuple[float, float, dict]:
    """Requests, 5xx answers and failed LLM calls by (provider, kind) so far."""
    response = _request(spec, spec.metrics_url, 'GET', None, {})
    samples = prometheus_text.parse(response.read().decode('utf-8', 'replace'))
    total, errors = prometheus_text.request_counts(samples, ignore_routes=tuple(spec.metrics_ignore_routes))
    return total, errors, prometheus_text.llm_errors(samples)


def _increase(before: float, after: float) -> float:
    # A restarted process resets its counters: judge the later scrape alone.
    return after - before if after >= before else after


def _provider_errors(before: dict, after: dict) -> dict:
    """Failed LLM calls of the provider's kinds in the window, by provider and kind."""
    grown = {key: _increase(before.get(key, 0.0), value) for key, value in after.items()}
    return {f'{provider}/{kind}': count for (provider, kind), count in sorted(grown.items())
            if kind in PROVIDER_ERROR_KINDS and count > 0}


def _seconds(value: float) -> str:
    # Whole seconds read best in a deploy log; fractions only matter below 10 s.
    return f'{value:.0f}' if value >= 10 else f'{value:.1f}'.removesuffix('.0')


class FailFast:
    """Decides, attempt by attempt, whether waiting for the deadline is pointless.

    A refusal that outlasts the start grace means nothing listens (a crash at
    import, a wrong port); a run of 5xx answers means the release answers but
    fails. Either way the rest of the deadline would only delay the rollback.

    With `process_running` (a callable returning (running, detail)), a refusal
    past the grace is a verdict only once the process that should answer is
    gone: on a busy host a healthy start can take longer than the grace, and
    judging it by the clock alone rolled back good releases. While the
    process runs, refusals wait for the deadline.
    """

    def __init__(self, spec: ProbeSpec, process_running=None) -> None:
        self.spec = spec
        self.process_running = process_running
        self.process_seen_running = False
        self.refused_since: float | None = None
        self.refused_attempts = 0
        self.server_errors = 0
        self.verdict: str | None = None
        self.reason: str | None = None

    def observe(self, attempt: Attempt, now: float) -> bool:
        """Record an attempt that ended at `now`; True when probing must stop."""
        if attempt.refused:
            if self.refused_since is None:
                self.refused_since = now
            self.refused_attempts += 1
        else:
            self.refused_since, self.refused_attempts = None, 0
        # An expected status is a success even when it is a 5xx.
        if not attempt.ok and attempt.status is not None and 500 <= attempt.status <= 599:
            self.server_errors += 1
        else:
            self.server_errors = 0

        grace = self.spec.refused_grace
        gone = None
        if grace is not None and self.refused_since is not None and now - self.refused_since >= grace:
            gone = self._process_gone()
        if gone is not None:
            count = self.refused_attempts
            self.verdict = 'refused'
            self.reason = (f'{attempt.reason} for {_seconds(now - self.refused_since)} s, past the start grace '
                           f'of {_seconds(grace)} s ({count} attempt{"s" if count > 1 else ""})'
                           + (f', and its process is not running ({gone})' if gone else ''))
        elif self.spec.max_server_errors is not None and self.server_errors >= self.spec.max_server_errors:
            self.verdict = 'server_errors'
            self.reason = f'{self.server_errors} consecutive 5xx answers, the last {attempt.reason}'
        return self.verdict is not None

    def _process_gone(self) -> str | None:
        """None while the process that should answer runs; else why it is gone ('' when nobody can tell)."""
        if self.process_running is None:
            return ''
        running, detail = self.process_running()
        if running:
            self.process_seen_running = True
            return None
        return detail


def not_sent(spec: ProbeSpec) -> dict:
    """The result of a probe that check mode kept from being sent."""
    return {
        'healthy': None,
        'verdict': 'skipped',
        'skipped': True,
        'msg': f'check mode: the {spec.method} to {spec.url} was not sent: it is not read-only',
        'attempts': 0,
        'consecutive_successes': 0,
        'elapsed': 0.0,
        'status': None,
        'json': None,
        'failures': [],
        'reason': None,
        'latency_ms': {'min': None, 'p50': None, 'max': None},
    }


def _percentile(values: list, fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def run(spec: ProbeSpec, clock=time.monotonic, sleep=time.sleep, wall=time.time, process_running=None) -> dict:
    """Probe until `success_threshold` consecutive successes, the deadline, or a fail-fast limit.

    `process_running` answers (running, detail) for spec.process_command (see FailFast).
    """
    start = clock()
    attempts = consecutive = 0
    fail_fast = FailFast(spec, process_running)
    latencies: list = []
    failures: list = []
    last: Attempt | None = None
    metrics_before = None
    metrics_error = None
    if spec.metrics_url:
        try:
            metrics_before = scrape(spec)
        except (URLError, OSError, ValueError, prometheus_text.MetricsParseError) as error:
            metrics_error = f'cannot read {spec.metrics_url}: {getattr(error, "reason", error)}'

    while True:
        attempts += 1
        last = probe_once(spec)
        if last.latency_ms is not None:
            latencies.append(last.latency_ms)
        if last.ok:
            consecutive += 1
        else:
            consecutive = 0
            failures.append({'time': round(wall(), 3), 'reason': last.reason})
            del failures[:-FAILURES_KEPT]
        elapsed = clock() - start
        if fail_fast.observe(last, elapsed):
            break
        if consecutive >= spec.success_threshold or elapsed + spec.interval > spec.deadline:
            break
        sleep(spec.interval)
    elapsed = clock() - start

    healthy = consecutive >= spec.success_threshold
    reason = None
    if fail_fast.verdict:
        reason = fail_fast.reason
    elif not healthy and last.ok:
        # Flapping: the latest probe passed but not enough of them in a row.
        previous = failures[-1]['reason'] if failures else 'none'
        reason = (f'only {consecutive} consecutive successes of the {spec.success_threshold} required '
                  f'within {spec.deadline:g} s; last failure: {previous}')
    elif not healthy and last.refused:
        reason = f'{last.reason} for {elapsed:.0f} s ({attempts} attempts)'
        if fail_fast.process_seen_running:
            reason += (f'; its process kept running past the start grace of {_seconds(spec.refused_grace)} s '
                       f'without opening this port (another port, or a start slower than the deadline)')
    elif not healthy:
        reason = f'{last.reason} (after {attempts} attempts in {elapsed:.0f} s)'

    result = {
        'healthy': healthy,
        'verdict': 'healthy' if healthy else fail_fast.verdict or 'deadline',
        'attempts': attempts,
        'consecutive_successes': consecutive,
        'elapsed': round(elapsed, 3),
        'status': last.status,
        'json': last.payload,
        'failures': failures,
        'reason': reason,
        'latency_ms': {
            'min': round(min(latencies), 1) if latencies else None,
            'p50': round(_percentile(latencies, 0.5), 1) if latencies else None,
            'max': round(max(latencies), 1) if latencies else None,
        },
    }

    if spec.metrics_url:
        gate = {'requests': None, 'errors': None, 'error_ratio': None, 'max_error_ratio': spec.max_error_ratio,
                'provider_errors': {}}
        if metrics_error is None:
            try:
                after = scrape(spec)
            except (URLError, OSError, ValueError, prometheus_text.MetricsParseError) as error:
                metrics_error = f'cannot read {spec.metrics_url}: {getattr(error, "reason", error)}'
            else:
                total = _increase(metrics_before[0], after[0])
                errors = _increase(metrics_before[1], after[1])
                gate.update(requests=total, errors=errors,
                            provider_errors=_provider_errors(metrics_before[2], after[2]))
                if total >= max(spec.min_requests, 1):
                    gate['error_ratio'] = round(errors / total, 4)
                else:
                    gate['note'] = (f'{total:.0f} requests in the window, fewer than min_requests '
                                    f'({spec.min_requests}): the error ratio was not judged')
        if metrics_error:
            gate['error'] = metrics_error
            if result['healthy']:
                result.update(healthy=False, verdict='metrics', reason=metrics_error)
        elif (result['healthy'] and spec.max_error_ratio is not None and gate['error_ratio'] is not None
              and gate['error_ratio'] > spec.max_error_ratio):
            reason = (f"{gate['errors']:.0f} of {gate['requests']:.0f} requests failed with 5xx "
                      f"({gate['error_ratio']:.1%}), over the {spec.max_error_ratio:.1%} limit")
            failed_calls = gate['provider_errors']
            # Every 5xx is a call the provider failed: the provider's verdict,
            # which a deploy must not blame on the release it was baking.
            if failed_calls and sum(failed_calls.values()) >= gate['errors']:
                reason += '; the LLM provider failed ' + ', '.join(
                    f'{count:.0f} calls ({key})' for key, count in failed_calls.items())
                result.update(healthy=False, verdict='provider', reason=reason)
            else:
                result.update(healthy=False, verdict='metrics', reason=reason)
        result['metrics'] = gate
    return result
