"""Concurrent, killed and refused deploys on the lab, after the operator story (`make e2e`).

Each case is what an operator meets: two runs on one host at once; a run
killed (SIGKILL, as a cancelled CI job) after the switch and during the
verification, on a VM and in Docker, three at once, then the same command run
again; a ledger that cannot be read; a first release that crashes. Cases
that touch hosts or services of their own run side by side (side_by_side):
most of their time is spent waiting on a deploy, not computing.
"""
from __future__ import annotations

import re
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from labtools import (LEDGERS, Background, broken_agent, current_release, ledger, on_host, playbook, served, wait_for,
                      wait_on_host)

# The bake proves nothing these cases are about: keep it short.
QUICK = ("-e", "agent_bake_seconds=2")


def runs_by_release(host: str) -> dict[str, dict]:
    return {run["release"]: run for run in ledger(host).get("runs", []) if run.get("release")}


def release_statuses(host: str) -> dict[str, str]:
    return {release["version"]: release["status"] for release in ledger(host).get("releases", [])}


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def side_by_side(cases: dict[str, Callable[[], None]]) -> None:
    """Run cases that touch hosts (or services) of their own at once; fail with every failed case's traceback."""
    with ThreadPoolExecutor(len(cases)) as pool:
        futures = {name: pool.submit(case) for name, case in cases.items()}
    failures = {name: "".join(traceback.format_exception(future.exception()))
                for name, future in futures.items() if future.exception() is not None}
    assert not failures, "\n".join(f"{name}:\n{text}" for name, text in failures.items())


# One run killed per agent, all three at once, each at another moment: after
# the switch before the restart (VM), while the new release is verified (VM),
# and once the new container exists (Docker). Side by side they prove in one
# deploy's time what one after the other took three.
KILLED_RUNS = {
    "agent-1": ("1.5.0", "switched"),
    "agent-2": ("1.6.0", "verifying"),
    "agent-3": ("1.5.0", "container created"),
}


def kill_and_run_again(host: str, version: str, killed_when: str) -> None:
    serving_before = served(host)["version"]
    failed_before = {name for name, status in release_statuses(host).items() if status == "failed"}
    pid_before = on_host(host, "systemctl show -p MainPID --value agent") if host != "agent-3" else ""
    run = Background("deploy.yml", "-l", host, "-e", f"agent_version={version}", *QUICK)
    if killed_when == "switched":
        # The ledger's top-level keys are indented by two spaces (release_ledger writes indent=2).
        wait_on_host(host, f"grep -q '^  \"current\": \"{version}+' {LEDGERS[host]}", 300, interval=0.05,
                     what=f"{version} made current")
    elif killed_when == "verifying":
        wait_for(lambda: served(host).get("version") == version, 300, interval=0.2, what=f"{version} answering")
    else:
        wait_on_host(host, "docker inspect -f '{{index .Config.Labels \"org.agentops.release\"}}' smart-agent "
                           f"2>/dev/null | grep -q '^{version}'", 600, interval=0.2, what=f"the container of {version}")
    run.kill()
    name, status = current_release(host)
    assert name.startswith(version) and status == "active", (host, name, status)
    if killed_when == "switched":
        # Killed before the restart: the previous release still serves.
        assert on_host(host, "systemctl show -p MainPID --value agent") == pid_before, host
        assert served(host)["version"] == serving_before, host
        # A restart in this window (a crash, a reboot) starts the release made current, which passed its trial on
        # a side port before the switch: it answers ready at once.
        on_host(host, "systemctl restart agent")
        assert wait_for(lambda: served(host).get("version") == version, 30, interval=0.2, what=f"{version} restarted")
        assert served(host, "/health")["release"] == name, host

    started = time.monotonic()
    again = playbook("deploy.yml", "-l", host, "-e", f"agent_version={version}", *QUICK)
    print(f"FIGURE re-run after a kill ({killed_when}, {host}): {time.monotonic() - started:.1f} s")
    assert again.returncode == 0, again.stdout[-3000:]
    output = flat(again.stdout)
    assert f"made {name} current" in output and "stopped before verifying it" in output, host
    assert f"Finished the interrupted run: {name} is verified healthy" in output, host
    assert "Took the deploy lock" in output and "its process is gone" in output, host
    assert served(host)["version"] == version, host
    assert current_release(host) == (name, "healthy"), host
    # No good release was recorded as failed on the way (pruning may have removed an old failed one).
    assert {name for name, status in release_statuses(host).items() if status == "failed"} <= failed_before, host
    killed = [run for run in ledger(host)["runs"] if run["outcome"] == "superseded"][-1]
    assert killed["release"] == name and "its process is gone" in killed["reason"], (host, killed)


def test_killed_runs_are_finished_by_the_next() -> None:
    side_by_side({f"{host} ({case[1]})": partial(kill_and_run_again, host, *case) for host, case in KILLED_RUNS.items()})


def a_killed_runs_trial_stops_itself() -> None:
    """A run killed while its release is on trial leaves no side process behind for long.

    Both methods at once, each with a release already staged (no build): the
    venv trial is a runtime unit with RuntimeMaxSec, the docker trial a
    container that a systemd timer removes. With a 5 s health deadline their
    lifetime is 2 x 5 + the smoke timeout (35) + 30 = 75 s.
    """
    # Each succeeds while its trial runs.
    trial_up = {"agent-1": "systemctl is-active -q agent-trial",
                "agent-3": "[ \"$(docker inspect -f '{{.State.Running}}' smart-agent-trial 2>/dev/null)\" = true ]"}
    serving = {"agent-1": "systemctl show -p MainPID --value agent",
               "agent-3": "docker inspect -f '{{.State.StartedAt}}' smart-agent"}
    before = {host: on_host(host, command) for host, command in serving.items()}
    versions = {host: served(host)["version"] for host in trial_up}
    runs = {host: Background("deploy.yml", "-l", host, "-e", "agent_version=1.1.0", "-e", "agent_health_deadline=5")
            for host in trial_up}
    # Each run is killed the moment its trial is up, before the trial can pass.

    def kill_when_trial_is_up(host: str) -> None:
        wait_on_host(host, trial_up[host], 600, interval=0.1, what="the trial")
        runs[host].kill()

    with ThreadPoolExecutor(len(runs)) as pool:
        seen = {host: pool.submit(kill_when_trial_is_up, host) for host in runs}
    missed = {host: str(case.exception()) for host, case in seen.items() if case.exception() is not None}
    if missed:
        for run in runs.values():
            if run.returncode is None:
                run.kill()
    assert not missed, f"no trial seen: {missed}"
    killed = time.monotonic()
    assert on_host("agent-3", "systemctl is-active smart-agent-trial-removal.timer") == "active"
    for host, condition in trial_up.items():
        wait_on_host(host, f"! {condition}", 120, interval=1, what="the trial gone")
    assert on_host("agent-3", "docker ps -aq --filter name=smart-agent-trial") == ""
    print(f"FIGURE killed runs' trials gone {time.monotonic() - killed:.0f} s after the kill (lifetime 75 s)")
    # The serving releases never noticed.
    assert {host: on_host(host, command) for host, command in serving.items()} == before
    assert {host: served(host)["version"] for host in trial_up} == versions


def test_an_unreadable_ledger_stops_the_run_before_staging() -> None:
    serving = served("agent-1")["version"]
    on_host("agent-1", "cp /opt/agent/releases.json /root/releases.json.bak && echo '{broken' > /opt/agent/releases.json")
    try:
        refused = playbook("deploy.yml", "-l", "agent-1", "-e", "agent_version=1.7.0")
        assert refused.returncode != 0
        assert "/opt/agent/releases.json is not valid JSON" in flat(refused.stdout)
        assert on_host("agent-1", "ls /opt/agent/releases | grep -c ^1.7.0 || true") == "0"
        assert on_host("agent-1", "cat /opt/agent/releases.json") == "{broken"
        assert served("agent-1")["version"] == serving
    finally:
        on_host("agent-1", "mv /root/releases.json.bak /opt/agent/releases.json")


def a_failed_first_release_says_nothing_serves(tmp_path: Path) -> None:
    fresh = ["-l", "agent-1", "-e", "agent_version=2.0.0", "-e", f"venv_systemd_source_path={broken_agent(tmp_path)}",
             "-e", "venv_systemd_root=/opt/fresh-agent", "-e", "agent_service_name=fresh-agent",
             "-e", "agent_port=8011", "-e", "agent_rollout_force=true", "-e", "agent_health_deadline=20",
             # Past a trial, as when a release fails only under its real port.
             "-e", "agent_trial=false"]
    serving = served("agent-1")["version"]
    try:
        failed = playbook("deploy.yml", *fresh)
        assert failed.returncode != 0
        message = flat(failed.stdout)
        assert re.search(r"failed on agent-1: RuntimeError: e2e: this release crashes at import\. ", message)
        assert "nothing to return to: the service was stopped" in message and "nothing serves on agent-1 now" in message
        data = ledger("agent-1", "/opt/fresh-agent/releases.json")
        assert data["current"] is None
        assert [(r["status"], r["reason"].split(".")[0]) for r in data["releases"]] == [
            ("failed", "RuntimeError: e2e: this release crashes at import")]
        assert on_host("agent-1", "test -e /opt/fresh-agent/current && echo present || echo absent") == "absent"
        assert on_host("agent-1", "systemctl is-active fresh-agent; systemctl is-enabled fresh-agent").split() == [
            "inactive", "disabled"]
        # The agent that was serving on the host is untouched.
        assert served("agent-1")["version"] == serving
    finally:
        on_host("agent-1", "systemctl disable --now fresh-agent; rm -f /etc/systemd/system/fresh-agent.service; "
                           "systemctl daemon-reload; rm -rf /opt/fresh-agent /etc/fresh-agent")


def two_runs_on_one_host_take_turns(host: str) -> None:
    first = Background("deploy.yml", "-l", host, "-e", "agent_version=1.3.0", *QUICK)
    wait_on_host(host, "test -s /opt/agent/releases.json && test -s /opt/agent/deploy.lock", 180, interval=0.05,
                 what="the first run's lock")
    holder = on_host(host, "cat /opt/agent/deploy.lock")
    before = on_host(host, "sha256sum /opt/agent/releases.json; ls /opt/agent/releases")

    # A run that will not wait is refused at once, naming the holder, and changes nothing.
    started = time.monotonic()
    impatient = playbook("deploy.yml", "-l", host, "-e", "agent_version=1.4.0", "-e", "agent_deploy_lock_wait=2")
    print(f"FIGURE refused second run: {time.monotonic() - started:.1f} s")
    assert impatient.returncode != 0
    refusal = flat(impatient.stdout)
    assert "holds the deploy lock" in refusal and "after waiting 2 s" in refusal and "Nothing was changed" in refusal
    assert re.search(r'"id": "([^"]+)"', holder).group(1) in refusal
    assert "deploying 1.3.0" in refusal
    assert on_host(host, "ls /opt/agent/releases | grep -c ^1.4.0 || true") == "0"

    # A run that waits deploys after the first one, which is not disturbed.
    started = time.monotonic()
    second = Background("deploy.yml", "-l", host, "-e", "agent_version=1.4.0", *QUICK)
    first.finish()
    print(f"FIGURE first run finished {time.monotonic() - started:.1f} s after the second started")
    second.finish()
    print(f"FIGURE second run finished {time.monotonic() - started:.1f} s after it started")
    assert (first.returncode, second.returncode) == (0, 0)
    assert served(host)["version"] == "1.4.0"
    statuses = release_statuses(host)
    assert [status for name, status in statuses.items() if name.startswith("1.3.0")] == ["healthy"]
    assert [status for name, status in statuses.items() if name.startswith("1.4.0")] == ["healthy"]
    # The ledger holds both runs' outcomes.
    outcomes = {name.split("+")[0]: run["outcome"] for name, run in runs_by_release(host).items()}
    assert outcomes["1.3.0"] == "healthy" and outcomes["1.4.0"] == "healthy"
    assert before  # the refused run had changed nothing before the first finished


def test_two_runs_a_killed_trial_and_a_failed_first_release_side_by_side(tmp_path: Path) -> None:
    """Three cases at once, each on its own hosts or service: two runs on agent-2 take turns; runs killed on
    agent-1 and agent-3 while their release is on trial leave no trial behind; a first release that fails on a
    fresh service of agent-1 says nothing serves there. One after the other they took 386 s, mostly waiting."""
    side_by_side({"two runs on agent-2": partial(two_runs_on_one_host_take_turns, "agent-2"),
                  "killed trials on agent-1 and agent-3": a_killed_runs_trial_stops_itself,
                  "a failed first release on agent-1": partial(a_failed_first_release_says_nothing_serves, tmp_path)})
