"""The method-neutral inventory names: validated, defaulted and handed to the method's role.

Runs playbooks/tasks/agent_settings.yml with ansible-playbook on the local
machine; it only validates and sets facts, so nothing here can change the
machine.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLAY = """
- hosts: agent-1
  gather_facts: false
  tasks:
    - ansible.builtin.include_tasks: {tasks}
      vars:
        agent_settings_file: {settings}
    - ansible.builtin.copy:
        dest: {out}
        content: "{{{{ {{'method': agent_deploy_method, 'port': agent_port,
                     'role_port': lookup('vars', agent_deploy_method ~ '_port', default=None),
                     'role_bake': lookup('vars', agent_deploy_method ~ '_bake_seconds', default=None),
                     'role_service': lookup('vars', agent_settings_roles[agent_deploy_method].agent_service_name),
                     'role_key_set': lookup('vars', agent_deploy_method ~ '_api_key', default='') | length > 0}} | to_json }}}}"
        mode: "0600"
      delegate_to: localhost
"""


def run(tmp_path: Path, inventory_vars: dict, extra: dict | None = None) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path / "out.json"
    (tmp_path / "play.yml").write_text(PLAY.format(
        tasks=REPO_ROOT / "playbooks" / "tasks" / "agent_settings.yml",
        settings=REPO_ROOT / "playbooks" / "vars" / "agent_settings.yml", out=out))
    (tmp_path / "inventory.json").write_text(json.dumps(
        {"all": {"hosts": {"agent-1": {"ansible_connection": "local", **inventory_vars}}}}))
    args = [str(BIN / "ansible-playbook"), "-i", str(tmp_path / "inventory.json"), str(tmp_path / "play.yml")]
    if extra:
        (tmp_path / "extra.json").write_text(json.dumps(extra))
        args += ["-e", f"@{tmp_path / 'extra.json'}"]
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".collections"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg")}
    result = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    facts = json.loads(out.read_text()) if out.exists() else {}
    return result, facts


@pytest.mark.parametrize(("inventory_vars", "named"), [
    ({"agent_port": "80OO"}, "agent_port"),
    ({"agent_port": 70000}, "agent_port"),
    ({"agent_deploy_method": "kubernetes"}, "agent_deploy_method is 'kubernetes'"),
    ({"agent_provider": "skynet"}, "agent_provider"),
    ({"agent_bake_seconds": "ten"}, "agent_bake_seconds"),
    ({"agent_version": "1.0/../../etc"}, "agent_version"),
])
def test_bad_value_names_the_inventory_variable(tmp_path: Path, inventory_vars: dict, named: str) -> None:
    result, facts = run(tmp_path, inventory_vars)
    assert result.returncode != 0
    assert named in result.stdout, result.stdout[-2000:]
    assert not facts


def test_agent_names_reach_the_method_role_and_win_over_role_names(tmp_path: Path) -> None:
    result, facts = run(tmp_path, {"agent_deploy_method": "docker_agent", "agent_port": "8100",
                                   "docker_agent_bake_seconds": 3, "agent_bake_seconds": 20,
                                   "agent_api_key": "sk-test-not-a-key-91c2"})
    assert result.returncode == 0, result.stdout[-2000:]
    assert facts == {"method": "docker_agent", "port": 8100, "role_port": 8100, "role_bake": 20,
                     "role_service": "smart-agent", "role_key_set": True}
    assert "sk-test-not-a-key-91c2" not in result.stdout + result.stderr


def test_role_names_still_work_and_defaults_are_one(tmp_path: Path) -> None:
    result, facts = run(tmp_path, {"venv_systemd_bake_seconds": 7})
    assert result.returncode == 0, result.stdout[-2000:]
    # agent_bake_seconds is not given: the role variable stands; agent_port
    # is not given: the one default, handed to the role.
    assert facts["method"] == "venv_systemd" and facts["port"] == 8000
    assert facts["role_bake"] == 7 and facts["role_port"] == 8000


@pytest.mark.parametrize(("switch", "value", "limit"), [
    ("agent_rollout_atomic", "maybe", []), ("agent_rollout_force", "2", []),
    ("agent_rollout_trial_first", "sometimes", []),
    # AWX job templates always pass a limit: the check once ran on localhost, which a limit leaves out.
    ("agent_rollout_atomic", "maybe", ["--limit", "agent-1"]),
])
def test_deploy_refuses_a_rollout_switch_that_is_not_true_or_false(
        tmp_path: Path, switch: str, value: str, limit: list[str]) -> None:
    """deploy.yml stops in its first play, before any agent is probed or touched, with a limit or without."""
    (tmp_path / "inventory.json").write_text(json.dumps(
        {"agents": {"hosts": {"agent-1": {"ansible_connection": "local"}}}}))
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".collections"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg")}
    result = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(tmp_path / "inventory.json"),
                             str(REPO_ROOT / "playbooks" / "deploy.yml"), "-e", "agent_version=1.0.0",
                             "-e", f"{switch}={value}", *limit],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert f"{switch} must be true or false (is '{value}'); nothing was changed." in result.stdout, result.stdout[-2000:]
    # The checks are the only tasks that ran: asserts, evaluated on the controller.
    assert "PLAY [Pre-flight" not in result.stdout and "TASK [Read the agent settings]" not in result.stdout
    assert re.findall(r"^TASK \[(.+?)\]", result.stdout, re.M) == ["Require agent_version", "Check the rollout switches"]
