"""Each tag a role README documents selects what it says.

For roles whose task files are imported (static), `ansible-playbook
--list-tasks --tags T` shows exactly the tasks a run with that tag would
run, with no host needed. The method roles include the release contract
dynamically: their tags are run for real in the venv_systemd and
docker_agent Molecule scenarios (tasks/check_and_tags.yml).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# tag: (tasks it must select, tasks it must leave out)
EXPECTED = {
    "base_host": {
        "base_host_install": (["Install the base packages"], ["Create the service group"]),
        "base_host_configure": (["Create the service group"], ["Install the base packages"]),
    },
    "logging": {
        "logging_install": (["Install rsyslog, logrotate and the modules in use"],
                            ["Configure rsyslog to read the agent's log and forward it"]),
        "logging_configure": (["Configure rsyslog to read the agent's log and forward it"],
                              ["Install rsyslog, logrotate and the modules in use"]),
    },
    "monitoring": {
        "monitoring_install": (["Install node_exporter", "Install Prometheus, Alertmanager and blackbox_exporter",
                                "Start node_exporter"],
                               ["Set node_exporter's flags", "Write the targets from the inventory"]),
        "monitoring_configure": (["Set node_exporter's flags", "Write the targets from the inventory",
                                  "Start node_exporter"],
                                 ["Install node_exporter", "Install Prometheus, Alertmanager and blackbox_exporter"]),
    },
    "venv_systemd": {"venv_systemd_install": None, "venv_systemd_deploy": None},
    "docker_agent": {"docker_agent_install": None, "docker_agent_deploy": None},
}


def documented_tags(role: str) -> set[str]:
    readme = (REPO_ROOT / "roles" / role / "README.md").read_text()
    section = readme.split("\n## Tags\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(rf"`({role}_\w+)`", section))


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_readme_documents_the_tags_tested(role: str) -> None:
    assert documented_tags(role) == set(EXPECTED[role])


def listed_tasks(role: str, tag: str, tmp_path: Path) -> list[str]:
    (tmp_path / "play.yml").write_text(
        f"- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: agentops.deploy.{role}\n")
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".collections"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg")}
    run = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "--list-tasks",
                          "--tags", tag, str(tmp_path / "play.yml")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=True)
    return [line.split(" : ", 1)[-1].split("\tTAGS:")[0].strip() for line in run.stdout.splitlines() if "TAGS:" in line]


LISTED = [(role, tag) for role, tags in EXPECTED.items() for tag, expected in tags.items() if expected]


@pytest.mark.parametrize(("role", "tag"), LISTED)
def test_tag_selects_what_the_readme_says(role: str, tag: str, tmp_path: Path) -> None:
    selected, left_out = EXPECTED[role][tag]
    tasks = listed_tasks(role, tag, tmp_path)
    assert not [name for name in selected if name not in tasks], tasks
    assert not [name for name in left_out if name in tasks], tasks
