"""playbooks/awx_configure.yml, checked offline: no AWX server is needed or reached.

- Bad input is refused by the first task, naming the variable, before any
  awx.awx module runs.
- Every awx.awx task's arguments pass the module's argument validation: each
  task runs alone (--start-at-task) against a closed port of 127.0.0.1, so the
  module gets past its argument spec and fails on its first request, with a
  connection error; an argument error would fail it earlier, with another
  message. A looped task is run for every item.
- The job templates' data: the playbooks exist, the survey variables are the
  ones the playbooks and roles read, the workflow's nodes are consistent.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLAYBOOK = REPO_ROOT / "playbooks" / "awx_configure.yml"
# Nothing listens on port 9 (discard) of this machine: every request is refused.
CLOSED = "http://127.0.0.1:9"
LLM_KEY = "sk-test-NOT-A-REAL-KEY-4f1c"
HOOK_TOKEN = "T000/B000/HOOK-SECRET-TOKEN"

VALID = {
    "awx_configure_host": CLOSED,
    "awx_configure_token": "test-token",
    "awx_configure_scm_url": "https://git.example.com/agentops/deploy.git",
    "awx_configure_ee_image": "quay.io/example/agentops-ee:1.0",
    "awx_configure_llm_api_key": LLM_KEY,
    "awx_configure_machine_credential": "agentops ssh",
    "awx_configure_notification_url": f"https://hooks.example.com/services/{HOOK_TOKEN}",
}
# What the modules report when the controller cannot be reached (awx.awx
# controller_api.py: make_request's catch-all for a refused connection, and
# authenticate() for username/password).
CONNECTION_FAILURE = re.compile(
    r"^There was an unknown error when trying to connect to http://127\.0\.0\.1:9/api/v2/\S+: "
    r"URLError <urlopen error \[Errno 111\] Connection refused>$"
)
TOKEN_FAILURE = "Failed to get token: <urlopen error [Errno 111] Connection refused>"
ARGUMENT_ERRORS = (
    "Unsupported parameters", "missing required arguments", "value of", "mutually exclusive",
    "must be one of", "is of type", "unable to convert", "Unable to parse controller_host",
    "Unable to resolve controller_host",
)


def load_play() -> dict:
    return yaml.safe_load(PLAYBOOK.read_text())[0]


def awx_tasks() -> list[dict]:
    return [t for t in load_play()["tasks"] if any(k.startswith("awx.awx.") for k in t)]


def run(variables: dict, *args: str, check: bool = False,
        extra_env: dict[str, str] | None = None) -> tuple[int, dict | None, str]:
    """ansible-playbook with the JSON callback; (rc, parsed stdout or None, raw output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROLLER_", "TOWER_"))}
    env.update(extra_env or {})
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".collections"),
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        # The modules must not go through a proxy to reach 127.0.0.1.
        "NO_PROXY": "*", "no_proxy": "*",
    })
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(proxy, None)
    # From a file, as an operator passes them (-e @awx.yml): even fake secrets stay off command lines.
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="awx-configure-") as extra_vars:
        json.dump(variables, extra_vars)
        extra_vars.flush()
        cmd = [str(BIN / "ansible-playbook"), "-e", f"@{extra_vars.name}", *args, str(PLAYBOOK)]
        if check:
            cmd.append("--check")
        result = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
                                check=False)
    try:
        parsed = json.loads(result.stdout)
    except json.JSONDecodeError:
        parsed = None
    return result.returncode, parsed, result.stdout + result.stderr


def ran(parsed: dict) -> list[tuple[str, str, dict]]:
    """(task name, action, localhost's result) of each task that ran."""
    return [(t["task"]["name"], t["hosts"]["localhost"].get("action", ""), t["hosts"]["localhost"])
            for t in parsed["plays"][0]["tasks"] if "localhost" in t["hosts"]]


# a) Refused before any awx.awx call --------------------------------------

@pytest.mark.parametrize(("change", "named"), [
    ({"awx_configure_scm_url": None}, "awx_configure_scm_url"),
    ({"awx_configure_host": "awx.example.com"}, "awx_configure_host"),
    ({"awx_configure_host": "ftp://awx.example.com"}, "awx_configure_host"),
    ({"awx_configure_host": None}, "awx_configure_host"),
    ({"awx_configure_token": None}, "awx_configure_token"),
    ({"awx_configure_token": None, "awx_configure_username": "admin"}, "awx_configure_password"),
    ({"awx_configure_ee_image": ""}, "awx_configure_ee_image"),
    ({"awx_configure_llm_api_key": None}, "awx_configure_llm_api_key"),
    ({"awx_configure_validate_certs": "maybe"}, "awx_configure_validate_certs"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_input_is_refused_before_any_controller_call(change: dict, named: str) -> None:
    variables = {k: v for k, v in {**VALID, **change}.items() if v is not None}
    rc, parsed, output = run(variables)
    assert rc != 0, f"accepted {change}:\n{output[-3000:]}"
    assert parsed is not None, output[-3000:]
    tasks = ran(parsed)
    assert [action for _name, action, _result in tasks] == ["ansible.builtin.assert"], tasks
    _name, _action, result = tasks[0]
    assert result["failed"] and named in result["msg"], result.get("msg")
    assert "Nothing was changed" in result["msg"]
    first_awx_task = awx_tasks()[0]["name"]
    assert first_awx_task not in output
    assert LLM_KEY not in output


def test_a_credential_that_exists_needs_no_key() -> None:
    variables = {k: v for k, v in VALID.items() if k != "awx_configure_llm_api_key"}
    rc, parsed, output = run({**variables, "awx_configure_llm_credential_exists": True}, check=True)
    tasks = ran(parsed)
    assert tasks[0][2].get("failed") is not True, tasks[0][2].get("msg")
    # Past the input check, the first awx.awx task is reached (and cannot connect).
    assert tasks[-1][0] == awx_tasks()[0]["name"], output[-2000:]
    assert CONNECTION_FAILURE.match(tasks[-1][2]["msg"])


# b) Every awx.awx task's arguments are valid ------------------------------

def test_check_mode_renders_the_injector_then_reaches_the_controller() -> None:
    rc, parsed, output = run(VALID, check=True)
    assert rc != 0
    tasks = ran(parsed)
    names = [task[0] for task in tasks]
    assert names[:2] == [
        "Refuse missing or malformed input before any call to the controller",
        "Show the LLM credential type's injector as the controller will receive it",
    ], names
    # AWX must receive its own template, literally.
    assert tasks[1][2]["_awx_llm_injectors"] == {"extra_vars": {"agent_api_key": "{{ api_key }}"}}
    assert names[2] == awx_tasks()[0]["name"]
    assert CONNECTION_FAILURE.match(tasks[2][2]["msg"]), tasks[2][2]["msg"]


@pytest.mark.parametrize("task", awx_tasks(), ids=lambda t: t["name"])
def test_awx_task_arguments_are_valid(task: dict) -> None:
    # no_log off: the module's own message is needed to tell a refused
    # connection from an argument error. The secrets here are fake.
    rc, parsed, output = run({**VALID, "awx_configure_no_log": False}, "--start-at-task", task["name"])
    assert rc != 0 and parsed is not None, output[-3000:]
    tasks = ran(parsed)
    assert len(tasks) == 1 and tasks[0][0] == task["name"], [t[0] for t in tasks]
    result = tasks[0][2]
    assert result.get("skipped") is not True, f"{task['name']} was skipped: its when did not hold"
    items = result["results"] if "loop" in task else [result]
    if "loop" in task:
        assert len(items) == len(load_play()["vars"]["_awx_job_templates"]), "a loop item did not run"
    for item in items:
        msg = str(item.get("msg"))
        assert not any(err in msg for err in ARGUMENT_ERRORS), f"argument error in {task['name']}: {msg}"
        assert item.get("failed") and CONNECTION_FAILURE.match(msg), f"{task['name']}: {msg}"


def test_username_and_password_reach_the_module() -> None:
    variables = {**VALID, "awx_configure_username": "admin", "awx_configure_password": "pw-NOT-REAL"}
    del variables["awx_configure_token"]
    rc, parsed, output = run(variables, "--start-at-task", awx_tasks()[0]["name"])
    result = ran(parsed)[0][2]
    assert result["msg"] == TOKEN_FAILURE, result["msg"]
    assert "pw-NOT-REAL" not in output


@pytest.mark.parametrize(("given", "env", "expected"), [
    (None, {}, True),
    (False, {}, False),
    (None, {"CONTROLLER_VERIFY_SSL": "false"}, False),
    (True, {"CONTROLLER_VERIFY_SSL": "false"}, True),
])
def test_validate_certs_reaches_the_module(given: bool | None, env: dict, expected: bool) -> None:
    variables = {**VALID} if given is None else {**VALID, "awx_configure_validate_certs": given}
    rc, parsed, output = run(variables, "--start-at-task", awx_tasks()[0]["name"], extra_env=env)
    result = ran(parsed)[0][2]
    assert result["invocation"]["module_args"]["validate_certs"] is expected


@pytest.mark.parametrize("task_name", [
    "Credential holding the LLM API key", "Notification template for the workflow",
])
def test_secrets_stay_out_of_the_output(task_name: str) -> None:
    # -vvv: the module's arguments and results as verbose as Ansible shows them
    # (the verbose lines break the JSON, so the output is read as text).
    rc, _parsed, output = run(VALID, "-vvv", "--start-at-task", task_name)
    assert rc != 0 and f'"name": "{task_name}"' in output, output[-3000:]
    assert "output has been hidden" in output
    assert LLM_KEY not in output
    assert HOOK_TOKEN not in output


# c) The data -------------------------------------------------------------

def test_job_templates_run_the_playbooks_of_this_repository() -> None:
    templates = {t["name"]: t["playbook"] for t in load_play()["vars"]["_awx_job_templates"]}
    assert templates == {
        "site": "site.yml",
        "deploy": "playbooks/deploy.yml",
        "rollback": "playbooks/rollback.yml",
        "health": "playbooks/health.yml",
        "troubleshoot": "playbooks/troubleshoot.yml",
    }
    for playbook in templates.values():
        assert (REPO_ROOT / playbook).is_file(), playbook


def survey_variables() -> list[str]:
    play_vars = load_play()["vars"]
    specs = [t["survey"] for t in play_vars["_awx_job_templates"] if "survey" in t]
    specs.append(play_vars["_awx_workflow_survey"])
    for spec in specs:
        assert {"name", "description", "spec"} <= set(spec)
        for question in spec["spec"]:
            assert {"question_name", "variable", "type", "required"} <= set(question)
            if question["type"] == "multiplechoice":
                assert question.get("default") in question["choices"]
    return sorted({q["variable"] for spec in specs for q in spec["spec"]})


@pytest.mark.parametrize("variable", survey_variables())
def test_survey_variables_are_read_by_the_playbooks_or_roles(variable: str) -> None:
    sources = [p for p in (REPO_ROOT / "playbooks").rglob("*.yml") if p != PLAYBOOK]
    sources += list((REPO_ROOT / "roles").glob("*/defaults/*.yml"))
    word = re.compile(rf"\b{re.escape(variable)}\b")
    readers = [p for p in sources if word.search(p.read_text())]
    assert readers, f"no playbook or role default reads {variable}: renamed?"


def test_the_workflow_nodes_are_consistent() -> None:
    play_vars = load_play()["vars"]
    nodes = play_vars["_awx_workflow_nodes"]
    identifiers = [n["identifier"] for n in nodes]
    assert len(set(identifiers)) == len(identifiers)
    templates = {"{{ _awx_prefix }} " + t["name"] for t in play_vars["_awx_job_templates"]}
    edges = set()
    for node in nodes:
        assert node["unified_job_template"]["name"] in templates
        assert node["unified_job_template"]["type"] == "job_template"
        for kind, targets in node.get("related", {}).items():
            for target in targets:
                assert target["identifier"] in identifiers
                edges.add((node["identifier"], kind, target["identifier"]))
    assert edges == {
        ("health-before", "success_nodes", "deploy"),
        ("deploy", "success_nodes", "health-after"),
        ("deploy", "failure_nodes", "rollback"),
        ("rollback", "always_nodes", "health-after"),
    }
