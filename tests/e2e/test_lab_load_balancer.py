"""HAProxy in front of the lab agents (roles/load_balancer), on ops-1, published on 127.0.0.1:8080.

Requests through it reach every agent; an agent that stops is skipped at
once (its refused connections are retried on another agent) and taken out
by the health check; Prometheus scrapes HAProxy's exporter; bad input and a
configuration HAProxy refuses change nothing while the old one serves.
"""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from labtools import (AGENT_PORTS, backends, broken_agent, current_release, on_host, playbook, runtime_api,
                      server_states, wait_for)
from loadgen import Load

LB = "http://127.0.0.1:8080"
ROLE_PLAYBOOK = Path(__file__).with_name("playbooks") / "load_balancer.yml"
CONFIG = "/etc/haproxy/haproxy.cfg"


def ask(text: str) -> int:
    """POST /api/agent through the load balancer; the HTTP status, 0 when no answer came."""
    request = urllib.request.Request(f"{LB}/api/agent", data=json.dumps({"input": text}).encode(),
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def sessions() -> dict[str, int]:
    return {name: int(row["stot"]) for name, row in backends().items()}


def prometheus(query: str) -> list[dict]:
    url = "http://127.0.0.1:9090/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)["data"]["result"]


def test_requests_through_the_load_balancer_reach_every_agent() -> None:
    assert wait_for(lambda: set(server_states().values()) == {"UP"}, 60, interval=1, what="every agent UP"), \
        server_states()
    before = sessions()
    statuses = [ask(f"through the load balancer {n}") for n in range(30)]
    assert statuses == [200] * 30, statuses
    served = {name: count - before[name] for name, count in sessions().items()}
    assert all(count > 0 for count in served.values()), served

    # Prometheus scrapes HAProxy's own exporter, with every backend UP.
    # A backend that came UP since the last scrape (every 15 s) is seen UP by the next one.
    def up_in_prometheus() -> set[str]:
        up = prometheus('haproxy_server_status{job="haproxy", proxy="agents", state="UP"} == 1')
        return {series["metric"]["server"] for series in up}

    assert wait_for(lambda: up_in_prometheus() == set(AGENT_PORTS), 90, interval=3,
                    what="every agent UP in the haproxy job in Prometheus"), up_in_prometheus()


def test_a_stopped_agent_costs_no_request() -> None:
    on_host("agent-2", "systemctl stop agent")
    try:
        # At once, before the health check notices: agent-2 refuses, HAProxy retries elsewhere.
        statuses = [ask(f"agent-2 is stopping {n}") for n in range(30)]
        assert statuses == [200] * 30, statuses
        assert wait_for(lambda: server_states().get("agent-2", "").startswith("DOWN"), 30, interval=0.5,
                        what="agent-2 DOWN"), server_states()
        statuses = [ask(f"agent-2 is down {n}") for n in range(10)]
        assert statuses == [200] * 10, statuses
    finally:
        on_host("agent-2", "systemctl start agent")
    assert wait_for(lambda: server_states().get("agent-2") == "UP", 60, interval=1, what="agent-2 UP again")


def test_bad_input_changes_nothing() -> None:
    before = on_host("ops-1", f"sha256sum {CONFIG}; systemctl show -p MainPID --value haproxy")
    stranger = playbook(str(ROLE_PLAYBOOK), "-e", '{"load_balancer_backends": ["agent-1", "ops-1"]}')
    assert stranger.returncode != 0
    assert "load_balancer_backends names ops-1, not in the agents group 'agents'" in re.sub(r"\s+", " ", stranger.stdout)

    short = playbook(str(ROLE_PLAYBOOK), "-e", "load_balancer_server_timeout=20")
    assert short.returncode != 0
    assert "load_balancer_server_timeout (20 s) must be longer than the agent's request timeout (30 s" in \
        re.sub(r"\s+", " ", short.stdout)

    # Valid to Ansible, refused by `haproxy -c`: the old configuration stays and serves.
    refused = playbook(str(ROLE_PLAYBOOK), "-e", "load_balancer_check_path='/ready x'")
    assert refused.returncode != 0
    assert "failed to validate" in refused.stdout and "Fatal errors found in configuration" in refused.stdout, \
        refused.stdout[-2000:]
    assert on_host("ops-1", f"sha256sum {CONFIG}; systemctl show -p MainPID --value haproxy") == before
    assert ask("after a refused configuration") == 200


def test_a_host_with_nothing_healthy_to_serve_stays_out_of_the_pool(tmp_path: Path) -> None:
    """A release fails after its switch and the release it rolls back to no longer starts (its venv is
    gone): agent-1 is left in MAINT, the summary says so, and the other agents serve every request meanwhile."""
    previous, _status = current_release("agent-1")
    # The release's own link to its venv, not the venv: the releases of one lock share that venv, and the new
    # release must stage. The running process keeps its interpreter; only a new start of this release fails.
    venv = f"/opt/agent/releases/{previous}/venv"
    on_host("agent-1", f"mv {venv} {venv}.away")
    try:
        with Load(LB, rate=10) as through_lb:
            failed = playbook("deploy.yml", "-l", "agent-1", "-e", "agent_version=2.1.0", "-e", "agent_trial=false",
                              "-e", f"venv_systemd_source_path={broken_agent(tmp_path)}",
                              "-e", "agent_health_deadline=10")
        print(f"a failed rollback through the load balancer: {through_lb.summary()}")
        assert failed.returncode != 0
        message = re.sub(r"\s+", " ", failed.stdout)
        assert "agent-1 stays out of the load balancers' pools (MAINT on ops-1): no verified release serves on it" \
            in message, failed.stdout[-3000:]
        assert server_states()["agent-1"] == "MAINT"
        assert through_lb.failures == {} and through_lb.sent >= 50, through_lb.summary()
    finally:
        on_host("agent-1", f"mv {venv}.away {venv}; systemctl restart agent")
        runtime_api("set server agents/agent-1 state ready")
    assert wait_for(lambda: server_states().get("agent-1") == "UP", 60, interval=1, what="agent-1 UP again")
