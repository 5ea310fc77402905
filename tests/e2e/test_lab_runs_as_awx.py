"""The job templates' playbooks run as AWX runs them, against the lab.

AWX hands each job to ansible-runner in a private data directory of its own:
the project's checkout in project/, the inventory as an executable script in
inventory/ (the hosts and their variables as AWX holds them, JSON), the
survey answers and the credentials' injected variables in env/extravars,
the limit and job type on the command line (env/cmdline), no terminal and
nothing on standard input. The job's outcome is runner's status and rc, and
the artifacts a workflow passes on are the set_stats data of its
playbook_on_stats event. This file builds that directory for each job
(site, deploy, rollback, health and troubleshoot, as playbooks/awx_configure.yml
defines them, and the deploy workflow's rollback node with the deploy's
stats as its extra variables) and reads the same things AWX reads. No AWX server runs here: what
AWX itself adds (its database, surveys' checks, the workflow engine,
notifications) is not exercised; docs/awx.md says so.
"""
from __future__ import annotations

import functools
import json
import os
import secrets
import stat
import subprocess
import time
from pathlib import Path

import yaml
from labtools import BIN, INVENTORY, ROOT, lab_state, served_versions

# A key as the credential type injects it: it must never show in what AWX
# keeps. (The lab's offline model uses no key, so it reaches no host here;
# the roles' own scenarios follow a key to the host.)
API_KEY = f"sk-awx-{secrets.token_hex(12)}"


@functools.cache
def project_archive() -> bytes:
    """The repository's files (tracked and new, not ignored) as a tar: what AWX's project update leaves."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout
    return subprocess.run(["tar", "--null", "--ignore-failed-read", "-T", "-", "-cf", "-"], cwd=ROOT,
                          input=files, capture_output=True, check=True).stdout


@functools.cache
def inventory_listing() -> str:
    """The inventory as AWX holds it after importing the project's: hosts and variables, JSON."""
    return subprocess.run([str(BIN / "ansible-inventory"), "-i", str(INVENTORY), "--list"], cwd=ROOT,
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}).stdout


def project_checkout(target: Path) -> None:
    """Each job gets its own copy of the project, as AWX gives it."""
    target.mkdir(parents=True)
    subprocess.run(["tar", "-xf", "-", "-C", str(target)], input=project_archive(), check=True)


def inventory_script(target: Path) -> None:
    """AWX gives each job a script that prints the inventory."""
    script = target / "hosts"
    script.write_text(f"#!/bin/sh\ncat <<'INVENTORY'\n{inventory_listing()}\nINVENTORY\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


class Job:
    """One AWX job: a private data directory, run by ansible-runner without a terminal."""

    def __init__(self, base: Path, name: str, playbook: str, extravars: dict, cmdline: str = "") -> None:
        self.name, self.playbook = name, playbook
        self.dir = base / name
        project_checkout(self.dir / "project")
        (self.dir / "inventory").mkdir()
        inventory_script(self.dir / "inventory")
        env = self.dir / "env"
        env.mkdir()
        # The survey answers and the LLM key credential's injected extra var.
        (env / "extravars").write_text(yaml.safe_dump({**extravars, "agent_api_key": API_KEY}))
        # The execution environment has the collection installed; here it is this checkout.
        (env / "envvars").write_text(yaml.safe_dump({"ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"),
                                                     "ANSIBLE_NOCOLOR": "1"}))
        (env / "settings").write_text(yaml.safe_dump({"job_timeout": 1800, "idle_timeout": 0,
                                                      "suppress_ansible_output": True}))
        if cmdline:
            (env / "cmdline").write_text(cmdline)

    def run(self) -> "Job":
        started = time.monotonic()
        subprocess.run([str(BIN / "ansible-runner"), "run", str(self.dir), "-p", self.playbook, "--ident", self.name],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1800, check=False,
                       env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})
        self.artifacts = self.dir / "artifacts" / self.name
        self.status = (self.artifacts / "status").read_text().strip()
        self.rc = int((self.artifacts / "rc").read_text())
        events = [json.loads(path.read_text()) for path in sorted((self.artifacts / "job_events").glob("*.json"))]
        stats = [event for event in events if event.get("event") == "playbook_on_stats"]
        self.artifact_data = stats[-1]["event_data"].get("artifact_data", {}) if stats else {}
        self.stdout = (self.artifacts / "stdout").read_text()
        # The YAML callback folds long messages: the words, one space apart.
        self.text = " ".join(self.stdout.split())
        print(f"--- AWX-shaped job {self.name} ({self.playbook} {self.dir / 'env' / 'cmdline'}): "
              f"{self.status} rc={self.rc}\n{self.stdout[-5000:]}\n"
              f"PLAYBOOK {time.monotonic() - started:6.1f} s  AWX job {self.name}")
        return self

    def leaked_key(self) -> list[str]:
        """Every file AWX would keep of the job (stdout, events, artifacts) that holds the key."""
        return [str(path.relative_to(self.dir)) for path in self.artifacts.rglob("*")
                if path.is_file() and API_KEY in path.read_text(errors="replace")]


def fleet(job: Job) -> dict[str, dict]:
    return job.artifact_data["agent_fleet"]["hosts"]


def test_job_templates_run_as_awx_runs_them(tmp_path: Path) -> None:
    before = served_versions()
    assert "unreachable" not in before.values(), before

    health = Job(tmp_path, "health", "playbooks/health.yml", {}).run()
    assert (health.status, health.rc) == ("successful", 0), health.stdout[-3000:]
    assert health.artifact_data["agent_fleet"]["healthy"] is True
    assert {host: entry["version"] for host, entry in fleet(health).items()} == before

    # The deploy template with its survey answered, limited to one host.
    version = f"7.{int(time.time()) % 100000}.0-awx"
    deploy = Job(tmp_path, "deploy", "playbooks/deploy.yml",
                 {"agent_version": version, "agent_rollout_atomic": "true", "agent_rollout_force": "false"},
                 cmdline="--limit agent-1").run()
    assert (deploy.status, deploy.rc) == ("successful", 0), deploy.stdout[-3000:]
    assert deploy.artifact_data["agent_rollout"]["outcome"] == "deployed"
    # "moved from <release>": the release is its version and a digest of its settings.
    assert list(deploy.artifact_data["agent_rollout"]["hosts"]) == ["agent-1"]
    assert deploy.artifact_data["agent_rollout"]["hosts"]["agent-1"].startswith(f"moved from {before['agent-1']}")
    assert fleet(deploy)["agent-1"] == {"method": "venv_systemd", "version": version, "healthy": True, "reason": ""}
    assert served_versions() == {**before, "agent-1": version}

    # A failing job, as AWX shows one: a switch the playbook refuses. Under a limit too: its check once ran on
    # localhost, which every --limit leaves out, and "maybe" read as false.
    refused = Job(tmp_path, "deploy-refused", "playbooks/deploy.yml",
                  {"agent_version": version, "agent_rollout_atomic": "maybe"}, cmdline="--limit agent-1").run()
    assert (refused.status, refused.rc) == ("failed", 2)
    assert "agent_rollout_atomic must be true or false" in refused.stdout

    # The workflow's rollback node (awx_configure.yml): after a deploy refused before any change, no stats
    # reach it and nothing rolls back; stepping every agent back would leave the fleet a release behind.
    nothing = Job(tmp_path, "rollback-nothing", "playbooks/rollback.yml", {"agent_rollback_after_deploy": "true"}).run()
    assert (nothing.status, nothing.rc) == ("successful", 0), nothing.stdout[-3000:]
    assert "nothing to roll back" in nothing.text
    assert served_versions() == {**before, "agent-1": version}

    # With a deploy's stats, handed on as AWX hands a node's artifacts to the next: only the host that
    # deploy left on its version rolls back.
    rollback = Job(tmp_path, "rollback", "playbooks/rollback.yml",
                   {"agent_rollback_after_deploy": "true", **deploy.artifact_data}).run()
    assert (rollback.status, rollback.rc) == ("successful", 0), rollback.stdout[-3000:]
    assert "rolling back agent-1." in rollback.text
    assert fleet(rollback)["agent-1"]["version"] == before["agent-1"]
    assert served_versions() == before

    troubleshoot = Job(tmp_path, "troubleshoot", "playbooks/troubleshoot.yml", {}, cmdline="--limit agent-1").run()
    assert (troubleshoot.status, troubleshoot.rc) == ("successful", 0), troubleshoot.stdout[-3000:]
    report = troubleshoot.artifact_data["agent_troubleshoot"]
    assert list(report["findings"]) == ["agent-1"]
    assert "agent-1" in report["markdown"] and report["markdown"].startswith("#")
    # Agents the limit leaves out are not in the run, not "unreachable".
    assert "agent-2" not in report["markdown"], report["markdown"][:2000]

    # The site template as a Check job with Show Changes (AWX's job type check is --check, diff mode --diff), over
    # every host: it changes nothing on any of them, and what it shows of the changes holds no key (below).
    before_check = lab_state()
    site = Job(tmp_path, "site", "site.yml", {}, cmdline="--check --diff").run()
    assert (site.status, site.rc) == ("successful", 0), site.stdout[-3000:]
    assert lab_state() == before_check

    for job in (health, deploy, refused, nothing, rollback, troubleshoot, site):
        assert job.leaked_key() == [], f"{job.name}: the API key is in {job.leaked_key()}"
