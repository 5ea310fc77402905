#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: agentops.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: agent_health
short_description: Probe an agent service until it is healthy or a deadline passes
version_added: 0.1.0
description:
  - Sends HTTP(S) requests to an endpoint of the agent until O(success_threshold) consecutive answers
    meet every expectation (status, JSON fields, latency), like a Kubernetes readiness probe, or until
    O(deadline) passes.
  - With O(metrics_url) it also reads C(http_requests_total) before and after the probe window and fails
    when the share of 5xx answers exceeds O(max_error_ratio), so a release that answers its health check
    but fails real requests is caught.
  - With O(refused_grace) or O(max_server_errors) it stops as soon as waiting longer is pointless, so a release
    that crashes at import, listens on the wrong port or answers with 5xx is judged in seconds, not after
    O(deadline).
  - It never changes anything on the host. In check mode it sends only read-only requests (V(GET),
    V(HEAD), V(OPTIONS)). It needs only the Python standard library on the host.
author:
  - agentops.deploy maintainers (@agentops)
options:
  url:
    description: The endpoint to probe, for example C(http://127.0.0.1:8000/ready).
    type: str
    required: true
  method:
    description: HTTP method.
    type: str
    default: GET
  headers:
    description: Request headers.
    type: dict
    default: {}
  body:
    description: Request body; a dict or list is sent as JSON.
    type: raw
  expected_status:
    description: Status codes that count as success.
    type: list
    elements: int
    default: [200]
  expect_json:
    description:
      - >-
        Key paths of the JSON answer and the values they must have, for example
        C({status: ready, version: "1.4.0"}). Paths are dotted (C(provider.name), C(items.0.id)).
      - This is how a deploy proves the new version answers, not the old one.
    type: dict
    default: {}
  timeout:
    description: Timeout of one request, seconds.
    type: float
    default: 5
  interval:
    description: Seconds between requests.
    type: float
    default: 2
  deadline:
    description: Seconds after which probing stops and the endpoint counts as unhealthy.
    type: float
    default: 60
  success_threshold:
    description: Consecutive successful answers required.
    type: int
    default: 1
  max_latency_ms:
    description: An answer slower than this counts as a failure.
    type: float
  validate_certs:
    description: Verify the server's TLS certificate.
    type: bool
    default: true
  ca_path:
    description: PEM file of the CA that signed the server's certificate.
    type: path
  client_cert:
    description: PEM client certificate for mutual TLS.
    type: path
  client_key:
    description: PEM key of O(client_cert).
    type: path
  fail_on_unhealthy:
    description: Fail when unhealthy. With V(false) the module returns RV(healthy=false) for block/rescue logic.
    type: bool
    default: true
  metrics_url:
    description: Prometheus endpoint of the agent, scraped at the start and the end of the probe window.
    type: str
  max_error_ratio:
    description: Highest share of 5xx answers in C(http_requests_total) during the window, 0 to 1.
    type: float
  min_requests:
    description:
      - Fewest requests in the window for the error ratio to be judged; with fewer, the gate passes and
        RV(metrics.note) says it was not judged.
    type: int
    default: 1
  metrics_ignore_routes:
    description: Routes left out of the error ratio, so that probes do not dilute it.
    type: list
    elements: str
    default: [/health, /ready, /metrics]
  refused_grace:
    description:
      - Seconds the connection may be refused in a row before probing stops at once, unhealthy with
        RV(verdict=refused). A connection closed without an answer counts as refused, since Docker's userland
        proxy accepts on a published port and hangs up when nothing listens behind it. They count from the first refused attempt of the current run of refusals;
        an answer of any kind, or another error such as a timeout, starts the count again.
      - Set it to the time the service needs to open its port after a (re)start. A release that crashes at
        import or listens on the wrong port is then judged after this grace, not after O(deadline).
      - Unset, refusals are retried until O(deadline).
      - With O(process_command), a refusal past the grace is a verdict only when the process is gone.
    type: float
  process_command:
    description:
      - A command (argv, run without a shell) that exits 0 while the process that should answer at O(url) runs,
        for example V([systemctl, is-active, --quiet, agent.service]) or V([docker, top, agent]).
      - Past O(refused_grace), refusals stop probing only when this command says the process is gone (it exited,
        crashed at import, or waits to be restarted); RV(reason) then ends with its exit status and last line.
        While the process runs, a start slower than the grace on a busy host is given until O(deadline), and a
        process that runs but never opens the port is judged then.
      - It runs only after the grace has passed, once per refused attempt, and must not change anything.
    type: list
    elements: str
  max_server_errors:
    description:
      - Answers in a row with a 5xx status after which probing stops at once, unhealthy with
        RV(verdict=server_errors). A status listed in O(expected_status) is a success, not a server error.
        Any other outcome of a request, including a refused connection or a timeout, starts the count again.
      - Leave room for a service that answers V(503) while it warms up; unset, 5xx answers are retried until
        O(deadline).
    type: int
extends_documentation_fragment:
  - agentops.deploy.attributes
  - agentops.deploy.attributes.actiongroup_agent
attributes:
  check_mode:
    support: partial
    details:
      - V(GET), V(HEAD) and V(OPTIONS) requests are sent in check mode as they are outside it.
      - A request with any other O(method), such as a smoke V(POST), is not read-only and is not sent in
        check mode. The module then returns C(skipped=true), RV(healthy=null), RV(verdict=skipped),
        RV(attempts=0) and C(changed=false), and does not fail whatever O(fail_on_unhealthy) says.
  diff_mode:
    support: N/A
    details:
      - The module changes nothing, so there is nothing to show.
  idempotent:
    support: full
    details:
      - C(changed) is always V(false). A V(POST) probe is sent again on every run; what it does inside the
        agent (a model call, a counter) is up to the endpoint.
seealso:
  - module: agentops.deploy.agent_release
"""

EXAMPLES = r"""
- name: Wait until version 1.4.0 answers ready three times in a row
  agentops.deploy.agent_health:
    url: http://127.0.0.1:8000/ready
    expect_json:
      status: ready
      version: 1.4.0
    success_threshold: 3
    deadline: 60

- name: Bake for 30 s with at most 1 % of requests failing
  agentops.deploy.agent_health:
    url: http://127.0.0.1:8000/ready
    metrics_url: http://127.0.0.1:8000/metrics
    max_error_ratio: 0.01
    success_threshold: 15
    interval: 2
    deadline: 90

- name: Check over TLS without failing the play
  agentops.deploy.agent_health:
    url: https://agent.example.com/health
    ca_path: /etc/ssl/certs/internal-ca.pem
    fail_on_unhealthy: false
  register: agent

- name: Judge a release that never opens its port in 10 s, not 60
  agentops.deploy.agent_health:
    url: http://127.0.0.1:8000/ready
    expect_json:
      version: 1.4.0
    deadline: 60
    refused_grace: 10
    max_server_errors: 5
  register: ready
  failed_when: false

- name: Judge refusals past the grace only once the unit is no longer running
  agentops.deploy.agent_health:
    url: http://127.0.0.1:8000/ready
    deadline: 60
    refused_grace: 8
    process_command: [systemctl, is-active, --quiet, agent.service]

- name: Roll back at once when the release crashed or kept failing
  ansible.builtin.debug:
    msg: "{{ ready.reason }}"
  when: ready.verdict in ['refused', 'server_errors']

- name: Send a real request (not sent in check mode, a POST is not read-only)
  agentops.deploy.agent_health:
    url: http://127.0.0.1:8000/api/agent
    method: POST
    body:
      input: ping
"""

RETURN = r"""
healthy:
  description:
    - Whether the endpoint met every expectation O(success_threshold) times in a row, and the metrics gate.
    - V(null) when check mode kept a request that is not read-only from being sent.
  returned: always
  type: bool
verdict:
  description:
    - How probing ended, for a playbook to branch on.
    - V(healthy) - every expectation and the metrics gate passed.
    - V(deadline) - still not healthy when O(deadline) passed (wrong version, timeouts, too few successes
      in a row, refusals without O(refused_grace)).
    - V(refused) - the connection was refused for longer than O(refused_grace).
    - V(server_errors) - O(max_server_errors) answers in a row had a 5xx status.
    - V(metrics) - the probes passed but the metrics gate failed or could not read O(metrics_url).
    - V(provider) - the probes passed but the metrics gate failed, and every 5xx answer in the window is a call
      the agent's LLM provider failed (C(agent_llm_errors_total) of kind C(server), C(timeout), C(rate_limited),
      C(connection) or C(auth)). The provider is failing, maybe not the release.
    - V(skipped) - check mode did not send a request that is not read-only.
  returned: always
  type: str
  sample: refused
attempts:
  description: Requests sent.
  returned: always
  type: int
consecutive_successes:
  description: Successful answers in a row at the end.
  returned: always
  type: int
elapsed:
  description: Seconds spent probing.
  returned: always
  type: float
latency_ms:
  description: Minimum, median and maximum latency of the answers, milliseconds.
  returned: always
  type: dict
  sample: {min: 2.1, p50: 3.4, max: 9.8}
status:
  description: HTTP status of the last answer, if any.
  returned: always
  type: int
json:
  description: The last body, when it was JSON.
  returned: always
  type: raw
failures:
  description: The last few failures, each with a Unix time and a reason.
  returned: always
  type: list
  elements: dict
reason:
  description: One sentence saying why the endpoint is unhealthy.
  returned: when unhealthy
  type: str
  sample: connection refused on 127.0.0.1:8000 for 8 s, past the start grace of 8 s (5 attempts)
metrics:
  description: The metrics gate over the probe window.
  returned: when O(metrics_url) is set
  type: dict
  contains:
    requests:
      description: Requests counted in C(http_requests_total) during the window, probe routes left out.
      type: float
    errors:
      description: Of those, answers with a 5xx status.
      type: float
    error_ratio:
      description: RV(metrics.errors) divided by RV(metrics.requests); null when not judged.
      type: float
    max_error_ratio:
      description: The limit from O(max_error_ratio).
      type: float
    provider_errors:
      description:
        - Calls the LLM provider failed during the window, from C(agent_llm_errors_total), by
          C(<provider>/<kind>), for the kinds that are the provider's (see RV(verdict=provider)).
      type: dict
      sample: {openai/server: 12}
    note:
      description: Why the ratio was not judged, when too few requests came in.
      type: str
      returned: when fewer than O(min_requests) requests came in
    error:
      description: Why the metrics could not be read; the probe is then unhealthy.
      type: str
      returned: when a scrape failed
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agentops.deploy.plugins.module_utils.health import READ_ONLY_METHODS, ProbeSpec, not_sent, run

ARGUMENT_SPEC = dict(
    url=dict(type='str', required=True),
    method=dict(type='str', default='GET'),
    headers=dict(type='dict', default={}),
    body=dict(type='raw'),
    expected_status=dict(type='list', elements='int', default=[200]),
    expect_json=dict(type='dict', default={}),
    timeout=dict(type='float', default=5),
    interval=dict(type='float', default=2),
    deadline=dict(type='float', default=60),
    success_threshold=dict(type='int', default=1),
    max_latency_ms=dict(type='float'),
    validate_certs=dict(type='bool', default=True),
    ca_path=dict(type='path'),
    client_cert=dict(type='path'),
    client_key=dict(type='path', no_log=False),
    fail_on_unhealthy=dict(type='bool', default=True),
    metrics_url=dict(type='str'),
    max_error_ratio=dict(type='float'),
    min_requests=dict(type='int', default=1),
    metrics_ignore_routes=dict(type='list', elements='str', default=['/health', '/ready', '/metrics']),
    refused_grace=dict(type='float'),
    max_server_errors=dict(type='int'),
    process_command=dict(type='list', elements='str'),
)


def process_checker(module: AnsibleModule, argv: list):
    """(running, detail) from one run of the process command."""
    def check() -> tuple:
        rc, out, err = module.run_command(argv)
        lines = (out + err).strip().splitlines()
        return rc == 0, f'{" ".join(argv)} exited {rc}' + (f': {lines[-1][:200]}' if lines else '')
    return check


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                           required_together=[('client_cert', 'client_key')])
    params = dict(module.params)
    fail_on_unhealthy = params.pop('fail_on_unhealthy')
    for name, lowest in (('timeout', 0.001), ('deadline', 0.001), ('interval', 0)):
        if params[name] < lowest:
            module.fail_json(msg=f'{name} must be {"greater than" if lowest else "at least"} 0, not {params[name]}')
    if params['success_threshold'] < 1:
        module.fail_json(msg=f'success_threshold must be at least 1, not {params["success_threshold"]}')
    if params['max_error_ratio'] is not None and not 0 <= params['max_error_ratio'] <= 1:
        module.fail_json(msg=f'max_error_ratio is a share from 0 to 1, not {params["max_error_ratio"]}')
    if params['max_error_ratio'] is not None and not params['metrics_url']:
        module.fail_json(msg='max_error_ratio needs metrics_url, the endpoint to read http_requests_total from')
    if params['refused_grace'] is not None and params['refused_grace'] < 0:
        module.fail_json(msg=f'refused_grace is a number of seconds, at least 0, not {params["refused_grace"]}')
    if params['max_server_errors'] is not None and params['max_server_errors'] < 1:
        module.fail_json(msg=f'max_server_errors must be at least 1, not {params["max_server_errors"]}')
    if params['process_command'] is not None and not params['process_command']:
        module.fail_json(msg='process_command is a command and its arguments, not an empty list')
    params['method'] = params['method'].upper()
    spec = ProbeSpec(**params)

    if module.check_mode and spec.method not in READ_ONLY_METHODS:
        module.exit_json(changed=False, **not_sent(spec))
    result = run(spec, process_running=process_checker(module, spec.process_command) if spec.process_command else None)
    result['changed'] = False
    if not result['healthy'] and fail_on_unhealthy:
        module.fail_json(msg=f'{params["url"]} is unhealthy: {result["reason"]}', **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
