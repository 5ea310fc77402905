"""The playbooks end to end on the lab (`make e2e` creates it first).

One ordered story, as an operator would live it: the lab runs 1.0.0 from
site.yml; deploy.yml moves every agent to 1.1.0; a 1.2.0 broken on the VMs
fails its trial on a side port of both before any batch, and nothing is
switched anywhere;
the same release without its trial is switched to, fails and is rolled back
on its own; rollback.yml returns every agent to 1.0.0; a rollback to a
release the agents do not keep is refused on every agent before any
changes; agent-1 is rolled back by name to 1.1.0 and back to 1.0.0; a
1.2.1 that fails live on agent-2, the second batch, is undone on agent-1
too (agent_rollout_atomic); troubleshoot.yml reports a service we stopped.

Clients reach the agents through HAProxy on ops-1 (127.0.0.1:8080) all along:
every rollout and rollback drains each agent before its restart, so not one
request through it fails. A 20 s answer started straight at an agent just
before its restart still completes: the agent finishes it after SIGTERM.
"""
from __future__ import annotations

import re
import subprocess
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from labtools import (AGENT_PORTS, LEDGERS, broken_agent, current_release, lab_state, ledger, on_host, playbook,
                      pool_state_is, served, served_versions, server_states, started_at, wait_for, wait_on_host)
from loadgen import Load, ask

LB = "http://127.0.0.1:8080"

FIRST_BATCH = "agent-1"


def health_table(output: str) -> dict[str, tuple[str, str]]:
    """host -> (version, status) from the table agent_status.yml prints."""
    rows = re.findall(r"(agent-\d)\s+(?:venv_systemd|docker_agent)\s+(\S+)\s+(healthy|UNHEALTHY)", output)
    # The last table of the output wins (deploy.yml prints one before and one after).
    return {host: (version, status) for host, version, status in rows}


@pytest.fixture(scope="module")
def broken_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return broken_agent(tmp_path_factory.mktemp("broken"))


def answer_in_flight_at_restart(host: str) -> tuple[str, float, float]:
    """When the rollout takes `host` out of the pool, send it a 20 s request straight: (kind, seconds, sent at)."""
    wait_on_host("ops-1", pool_state_is(host, "DRAIN", "MAINT"), 900, interval=0.2, what=f"{host} out of the pool")
    sent_at = time.time()
    kind, seconds = ask(f"http://127.0.0.1:{AGENT_PORTS[host]}", "[offline delay 20s] an answer in flight", timeout=90)
    return kind, seconds, sent_at


def test_operator_story(broken_source: Path, tmp_path: Path) -> None:
    # The lab as site.yml left it.
    health = playbook("health.yml")
    assert health.returncode == 0
    assert {version for version, _status in health_table(health.stdout).values()} == {"1.0.0"}

    # Check mode changes nothing, and says what a deploy would change. (site.yml in check mode: the AWX
    # Check job, test_lab_runs_as_awx.py.)
    before = lab_state()
    assert all(before.values()), before
    deploy_check = playbook("deploy.yml", "--check", "--diff", "-e", "agent_version=1.1.0")
    assert deploy_check.returncode == 0
    assert "would be made current" in deploy_check.stdout
    assert lab_state() == before

    # A good version goes everywhere; the summary and the agents agree. Not one request through the load
    # balancer fails, and a slow answer in flight when the agent restarts (a VM, a container) completes.
    deploy_started = time.time()
    with ThreadPoolExecutor(max_workers=2) as pool, Load(LB, rate=10) as through_lb:
        in_flight: dict[str, Future] = {host: pool.submit(answer_in_flight_at_restart, host) for host in ("agent-1", "agent-3")}
        deploy = playbook("deploy.yml", "-e", "agent_version=1.1.0")
    print(f"FIGURE deploy.yml of a new version on three agents: {time.time() - deploy_started:.0f} s")
    print(f"deploy.yml through the load balancer: {through_lb.summary()}")
    assert deploy.returncode == 0
    assert through_lb.failures == {} and through_lb.sent >= 300, through_lb.summary()
    for host, answer in in_flight.items():
        kind, seconds, sent_at = answer.result(timeout=1)
        assert (kind, seconds >= 20) == ("ok", True), (host, kind, seconds)
        # The new process started only after the answer was given: the stop waited for it.
        assert started_at(host) >= sent_at + 19, (host, started_at(host), sent_at)
    assert health_table(deploy.stdout) == {host: ("1.1.0", "healthy") for host in AGENT_PORTS}
    assert served_versions() == {host: "1.1.0" for host in AGENT_PORTS}
    # Every agent staged 1.1.0 before the first batch switched to it, and each ran one trial, before its batch.
    new_releases = {host: next(r for r in ledger(host)["releases"] if r["version"].startswith("1.1.0+"))
                    for host in AGENT_PORTS}
    first_switch = min(release["activated"] for release in new_releases.values())
    assert all(release["created"] < first_switch for release in new_releases.values()), new_releases
    for host in ("agent-1", "agent-2"):
        trials = on_host(host, f"journalctl -u agent-trial -o cat --since @{int(deploy_started)} | grep -c '^Started' || true")
        assert trials == "1", (host, trials)

    # A version that crashes at import on the VMs (the Docker agent builds a good one) fails its trial on both VMs
    # at once, before any batch. No agent is switched or restarted; the Docker agent, whose trial passed, gets back
    # the deploy lock its run kept for a batch that never came, and its ledger says why.
    before = lab_state()
    broken = playbook("deploy.yml", "-e", "agent_version=1.2.0", "-e", f"venv_systemd_source_path={broken_source}")
    assert broken.returncode != 0
    fatals = {m.group(1): re.sub(r"\s+", " ", m.group(0))
              for m in re.finditer(r"^fatal: \[(agent-\d)\].*?(?=^\S|\Z)", broken.stdout, re.S | re.M)}
    assert set(fatals) == {"agent-1", "agent-2"}, broken.stdout[-3000:]
    # Each failed its trial on a side port, so its running release was never touched; the message leads with the
    # exception the release died of, before any tool output.
    for host, fatal in fatals.items():
        assert "1.2.0" in fatal and "Nothing was switched" in fatal, fatal
        assert re.search(rf"failed its trial on {host}: RuntimeError: e2e: this release crashes at import\. ", fatal), fatal
        assert ".. Rolled back" not in fatal, fatal
    assert {host: on_host(host, f"test -e {LEDGERS[host].rsplit('/', 1)[0]}/deploy.lock && echo held || echo free")
            for host in AGENT_PORTS} == {host: "free" for host in AGENT_PORTS}
    given_back = ledger("agent-3")["runs"][-1]
    assert given_back["outcome"] == "unchanged" and given_back["release"].startswith("1.2.0+"), given_back
    assert "stopped before this host's batch (agent-1, agent-2 failed); nothing was switched here" in \
        re.sub(r"\s+", " ", given_back["reason"]), given_back
    # The ledgers record the failed release; the processes (and the venv hosts' current links) are as they were.
    serving = {"agent-1": 2, "agent-2": 2, "agent-3": 1}
    after = lab_state()
    assert {host: after[host].splitlines()[:lines] for host, lines in serving.items()} == \
        {host: before[host].splitlines()[:lines] for host, lines in serving.items()}
    # The summary still comes after a failed batch.
    assert health_table(broken.stdout.split("PLAY [Summary]")[-1]) == {host: ("1.1.0", "healthy") for host in AGENT_PORTS}
    assert served_versions() == {host: "1.1.0" for host in AGENT_PORTS}
    # Check mode after it: the failed release is staged but not current, so it would be switched to.
    broken_check = playbook("deploy.yml", "--check", "-l", FIRST_BATCH, "-e", "agent_version=1.2.0",
                            "-e", f"venv_systemd_source_path={broken_source}")
    assert broken_check.returncode == 0 and "would be made current" in broken_check.stdout

    # Without its trial, the broken release is switched to on agent-1, fails and is rolled back on its own,
    # while the load balancer sends its requests to the others: none fails. agent-1 serves again in the pool.
    with Load(LB, rate=10) as through_lb:
        unchecked = playbook("deploy.yml", "-l", FIRST_BATCH, "-e", "agent_version=1.2.0", "-e", "agent_trial=false",
                             "-e", f"venv_systemd_source_path={broken_source}")
    print(f"automatic rollback through the load balancer: {through_lb.summary()}")
    assert unchecked.returncode != 0 and "Rolled back to" in unchecked.stdout, unchecked.stdout[-3000:]
    assert through_lb.failures == {} and through_lb.sent >= 100, through_lb.summary()
    assert served_versions() == {host: "1.1.0" for host in AGENT_PORTS}
    assert wait_for(lambda: server_states().get(FIRST_BATCH) == "UP", 30, interval=1, what="agent-1 back in the pool")

    # An operator's rollback returns every agent to the release before 1.1.0; through the load balancer, unseen.
    with Load(LB, rate=10) as through_lb:
        rollback = playbook("rollback.yml")
    print(f"rollback.yml through the load balancer: {through_lb.summary()}")
    assert rollback.returncode == 0
    assert through_lb.failures == {} and through_lb.sent >= 100, through_lb.summary()
    assert served_versions() == {host: "1.0.0" for host in AGENT_PORTS}
    assert health_table(rollback.stdout) == {host: ("1.0.0", "healthy") for host in AGENT_PORTS}

    # A rollback to a release no agent keeps as verified (1.2.0 failed on the VMs, never reached agent-3) is
    # refused on every agent, naming what each keeps, before any agent changes.
    before = lab_state()
    refused = playbook("rollback.yml", "-e", "agent_rollback_to=1.2.0")
    assert refused.returncode != 0
    message = re.sub(r"\s+", " ", refused.stdout.split("Nothing was rolled back: ", 1)[-1])
    assert message.startswith("3 of 3 agents cannot return to 1.2.0."), refused.stdout[-3000:]
    kept = {host: match.group(1) for host in AGENT_PORTS
            if (match := re.search(rf"{host}: release 1\.2\.0 is not kept on this host as a release that passed its "
                                   r"checks; kept, newest first: (.*?)\. Nothing was changed", message))}
    assert set(kept) == set(AGENT_PORTS), message
    for host, listed in kept.items():
        names = [name.split(" ", maxsplit=1)[0].split("+", maxsplit=1)[0] for name in listed.split(", ")]
        assert names[:2] == ["1.1.0", "1.0.0"] and "1.2.0" not in names, (host, listed)
    assert "PLAY [Roll back to the last healthy release, or the one named]" not in refused.stdout
    assert lab_state() == before

    # By name, agent-1 goes forward to the 1.1.0 it was rolled back from (it passed its checks once), and back.
    for version in ("1.1.0", "1.0.0"):
        named = playbook("rollback.yml", "-l", FIRST_BATCH, "-e", f"agent_rollback_to={version}")
        assert named.returncode == 0, named.stdout[-3000:]
        assert health_table(named.stdout) == {FIRST_BATCH: (version, "healthy")}
        assert served_versions() == {host: version if host == FIRST_BATCH else "1.0.0" for host in AGENT_PORTS}
        data = ledger(FIRST_BATCH)
        statuses = {(release.get("metadata") or {}).get("agent_version"): release["status"]
                    for release in data["releases"]}
        assert statuses[version] == "healthy" and data["last_healthy"] == data["current"]
        assert statuses["1.0.0" if version == "1.1.0" else "1.1.0"] == "rolled_back"

    # All or nothing (agent_rollout_atomic, the default): 1.2.1 passes its trial everywhere but fails live on
    # agent-2, the second batch. agent-2 rolls itself back; agent-1, moved by the first batch, is returned to the
    # release it served before and verified; agent-3's batch never comes. Through the load balancer, unseen.
    before = lab_state()
    served_before = {host: current_release(host)[0] for host in AGENT_PORTS}
    with Load(LB, rate=10) as through_lb:
        atomic = playbook("deploy.yml", "-e", "agent_version=1.2.1", "-e",
                          f"venv_systemd_source_path={broken_agent(tmp_path, on_host_live='agent-2')}")
    print(f"a failed second batch, undone, through the load balancer: {through_lb.summary()}")
    assert atomic.returncode != 0
    assert through_lb.failures == {} and through_lb.sent >= 100, through_lb.summary()
    message = re.sub(r"\s+", " ", atomic.stdout.split("The rollout of 1.2.1 stopped: ", 1)[-1])
    assert "RuntimeError: e2e: this release crashes at import" in message.split("Returned to", 1)[0], message[:3000]
    assert f"Returned to the release they served before (agent_rollout_atomic): agent-1 to {served_before['agent-1']}." \
        in message, message[:3000]
    assert "NOT returned" not in message
    outcome_line = r"^ +- '(agent-\d): (failed|returned to \S+|not moved|moved from \S+)'$"
    outcomes = dict(re.findall(outcome_line, atomic.stdout, re.M))
    assert outcomes == {"agent-1": f"returned to {served_before['agent-1']}", "agent-2": "failed",
                        "agent-3": "not moved"}, outcomes
    # The same, as AWX and CI read it (set_stats; show_custom_stats in ansible.cfg).
    stats = re.sub(r"\s+", " ", atomic.stdout.split("CUSTOM STATS:", 1)[-1])
    assert "outcome: failed" in stats and "agent-2: failed" in stats and "version: 1.2.1" in stats, stats[-800:]
    assert served_versions() == {host: "1.0.0" for host in AGENT_PORTS}
    assert {host: current_release(host) for host in AGENT_PORTS} == \
        {host: (name, "healthy") for host, name in served_before.items()}
    returned = ledger(FIRST_BATCH)
    assert [r["status"] for r in returned["releases"] if r["version"].startswith("1.2.1+")] == ["rolled_back"]
    assert "returned by the rollout of 1.2.1, which failed on agent-2 (agent_rollout_atomic)" in \
        re.sub(r"\s+", " ", returned["runs"][-1]["reason"]), returned["runs"][-1]
    # agent-3 staged and tried it, and was never switched: its container is the one it ran before.
    assert lab_state()["agent-3"].splitlines()[0] == before["agent-3"].splitlines()[0]

    # A stopped service is found and flagged; the healthy hosts are not.
    subprocess.run(["docker", "exec", "agentops-lab-agent-2", "systemctl", "stop", "agent"], check=True)
    try:
        health = playbook("health.yml")
        assert health.returncode != 0 and "agent-2" in health.stdout.split("Unhealthy agents:")[-1]
        report_dir = tmp_path / "reports"
        troubleshoot = playbook("troubleshoot.yml", report_dir=report_dir)
        assert troubleshoot.returncode == 0
        reports = list(report_dir.glob("troubleshoot-*.md"))
        assert len(reports) == 1 and str(reports[0]) in troubleshoot.stdout
        sections = dict(re.findall(r"^## (\S+)\n(.*?)(?=^## |\Z)", reports[0].read_text(), re.M | re.S))
        assert set(sections) == set(AGENT_PORTS)
        assert "SERVICE DOWN" in sections["agent-2"] and "PORT 8000 NOT LISTENING" in sections["agent-2"]
        assert "SERVICE DOWN" not in sections["agent-1"] and "TEST CALL FAILED" not in sections["agent-1"]
    finally:
        subprocess.run(["docker", "exec", "agentops-lab-agent-2", "systemctl", "start", "agent"], check=True)
    # The next tests start from a lab that serves everywhere.
    assert wait_for(lambda: "version" in served("agent-2"), 60, interval=0.5, what="agent-2 serving again")
