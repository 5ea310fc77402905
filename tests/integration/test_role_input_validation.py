"""Bad role input fails before any change, with a message naming the variable.

Runs the real roles with ansible-playbook on the local machine, in check mode
and with a tag no task carries: only the argument_specs validation and the
roles' validate.yml (tagged `always`) run, so nothing here can change the
machine even if validation let bad input through.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

VALID_VENV = {"venv_systemd_version": "1.0.0"}
VALID_DOCKER = {"docker_agent_version": "1.0.0"}
# A kubeconfig that points nowhere: validation must refuse before any API call.
VALID_K8S = {"k8s_agent_version": "1.0.0", "k8s_agent_kubeconfig": "/nonexistent"}
# An endpoint that answers nothing: validation must refuse before any AWS call.
VALID_LAMBDA = {"lambda_agent_version": "1.0.0", "lambda_agent_region": "eu-west-1", "lambda_agent_endpoint_url": "http://127.0.0.1:9"}


def run_role(role: str, variables: dict, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  roles:\n"
        f"    - role: agentops.deploy.{role}\n"
    )
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(variables))
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".collections"),
           "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "--check",
         "--tags", "no_task_has_this_tag", "-e", f"@{extra}", str(playbook)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.mark.parametrize(("role", "variables", "named"), [
    ("venv_systemd", {**VALID_VENV, "venv_systemd_port": 70000}, "venv_systemd_port"),
    ("venv_systemd", {**VALID_VENV, "venv_systemd_port": "eighty"}, "venv_systemd_port"),
    ("venv_systemd", {**VALID_VENV, "venv_systemd_provider": "skynet"}, "venv_systemd_provider"),
    ("venv_systemd", {"venv_systemd_version": "1.0/../../etc"}, "venv_systemd_version"),
    ("venv_systemd", {}, "venv_systemd_version"),
    ("venv_systemd", {**VALID_VENV, "venv_systemd_provider": "deepseek"}, "venv_systemd_api_key"),
    ("venv_systemd", {**VALID_VENV, "venv_systemd_env": {"OPENAI_API_KEY": "x"}}, "venv_systemd_env"),
    ("venv_systemd", {**VALID_VENV, "venv_systemd_env": {"AGENT_PORT": "8999"}}, "venv_systemd_port"),
    # A drain that ends before an LLM answer can: the restart would cut it.
    ("venv_systemd", {**VALID_VENV, "venv_systemd_drain_timeout": 20}, "venv_systemd_drain_timeout (20 s"),
    ("venv_systemd", {**VALID_VENV, "venv_systemd_provider_outage": "wait"}, "venv_systemd_provider_outage"),
    # The wheelhouse installs the lock the code brings: leaving it out of the code is refused.
    ("venv_systemd", {**VALID_VENV, "venv_systemd_source_excludes": ["requirements.lock"]},
     "venv_systemd_source_excludes leaves out"),
    ("venv_systemd", {**VALID_VENV, "venv_systemd_source_type": "git", "venv_systemd_git_repo": "https://example.invalid/a.git"},
     "set venv_systemd_lock_file"),
    ("base_host", {"base_host_ca_certificates": [{"name": "corp", "content": "x", "src": "/y"}]},
     "base_host_ca_certificates"),
    ("base_host", {"base_host_directories": [{"path": "/opt/x", "owner": "root", "group": "root", "mode": 755}]},
     "base_host_directories"),
    ("base_host", {"base_host_nofile_limit": 10}, "base_host_nofile_limit"),
    ("docker_agent", {**VALID_DOCKER, "docker_agent_port": 70000}, "docker_agent_port"),
    ("docker_agent", {**VALID_DOCKER, "docker_agent_port": "eighty"}, "docker_agent_port"),
    ("docker_agent", {**VALID_DOCKER, "docker_agent_memory": "lots"}, "docker_agent_memory"),
    ("docker_agent", {**VALID_DOCKER, "docker_agent_image_source": "ftp"}, "docker_agent_image_source"),
    ("docker_agent", {**VALID_DOCKER, "docker_agent_provider": "deepseek"}, "docker_agent_api_key"),
    ("docker_agent", {**VALID_DOCKER, "docker_agent_uid": 0}, "docker_agent_uid"),
    ("docker_agent", {**VALID_DOCKER, "docker_agent_env": {"AGENT_HOST": "10.0.0.5"}}, "docker_agent_container_port"),
    ("docker_agent", {}, "docker_agent_version"),
    ("docker_agent", {**VALID_DOCKER, "docker_agent_request_timeout": 90}, "docker_agent_drain_timeout (60 s"),
    ("docker_agent", {**VALID_DOCKER, "docker_agent_provider_outage": "rollback"}, "docker_agent_provider_outage"),
    ("k8s_agent", {**VALID_K8S, "k8s_agent_namespace": "Agents_1"}, "k8s_agent_namespace must be a DNS-1123 label"),
    ("k8s_agent", {**VALID_K8S, "k8s_agent_name": "-agent"}, "k8s_agent_name must be a DNS-1123 label"),
    ("k8s_agent", {**VALID_K8S, "k8s_agent_replicas": 0}, "k8s_agent_replicas must be at least 1"),
    ("k8s_agent", {**VALID_K8S, "k8s_agent_max_surge": 0, "k8s_agent_max_unavailable": "0%"},
     "k8s_agent_max_surge and k8s_agent_max_unavailable are both 0"),
    ("k8s_agent", {**VALID_K8S, "k8s_agent_max_surge": "lots"}, "k8s_agent_max_surge must be a number of pods"),
    ("k8s_agent", {**VALID_K8S, "k8s_agent_resources": {"requests": {"cpu": "lots", "memory": "64Mi"}}},
     "k8s_agent_resources.requests.cpu is not a Kubernetes quantity"),
    ("k8s_agent", {**VALID_K8S, "k8s_agent_resources": {"limits": {"memory": "1 GB"}}},
     "k8s_agent_resources.limits.memory is not a Kubernetes quantity"),
    ("k8s_agent", {**VALID_K8S, "k8s_agent_provider": "deepseek"}, "k8s_agent_provider deepseek needs a key"),
    ("k8s_agent", {**VALID_K8S, "k8s_agent_env": {"AGENT_PORT": "9000"}}, "k8s_agent_env may not set AGENT_PORT"),
    ("k8s_agent", {**VALID_K8S, "k8s_agent_version": "1.0/../x"}, "k8s_agent_version must start"),
    ("k8s_agent", {**VALID_K8S, "k8s_agent_image_pull_policy": "Sometimes"}, "k8s_agent_image_pull_policy"),
    ("lambda_agent", {**VALID_LAMBDA, "lambda_agent_function_name": "smart agent!"}, "lambda_agent_function_name must be 1 to 64"),
    ("lambda_agent", {**VALID_LAMBDA, "lambda_agent_function_name": "a" * 65}, "lambda_agent_function_name must be 1 to 64"),
    ("lambda_agent", {**VALID_LAMBDA, "lambda_agent_memory_size": 64}, "lambda_agent_memory_size must be from 128 to 10240 MB, is 64"),
    ("lambda_agent", {**VALID_LAMBDA, "lambda_agent_memory_size": 10241}, "lambda_agent_memory_size must be from 128 to 10240"),
    ("lambda_agent", {**VALID_LAMBDA, "lambda_agent_timeout": 901}, "lambda_agent_timeout must be from 1 to 900 seconds, is 901"),
    ("lambda_agent", {**VALID_LAMBDA, "lambda_agent_timeout": 20}, "lambda_agent_request_timeout (30 s) must be below lambda_agent_timeout"),
    ("lambda_agent", {**VALID_LAMBDA, "lambda_agent_region": "us-middle-1"}, "lambda_agent_region must be a region Lambda runs in"),
    ("lambda_agent", {**VALID_LAMBDA, "lambda_agent_region": ""}, "lambda_agent_region must be a region Lambda runs in"),
    ("lambda_agent", {**VALID_LAMBDA, "lambda_agent_runtime": "python3.11"}, "lambda_agent_runtime must be one of python3.12, python3.13"),
    ("lambda_agent", {**VALID_LAMBDA, "lambda_agent_provider": "deepseek"}, "lambda_agent_provider deepseek needs a key"),
    ("lambda_agent", {**VALID_LAMBDA, "lambda_agent_env": {"AGENT_API_KEY_SECRET_ID": "x"}},
     "lambda_agent_env may not set AGENT_API_KEY_SECRET_ID"),
    ("lambda_agent", {**VALID_LAMBDA, "lambda_agent_version": "1.0/../x"}, "lambda_agent_version must start"),
    ("monitoring", {"monitoring_alertmanager_port": 99999}, "monitoring_alertmanager_port"),
    ("monitoring", {"monitoring_scrape_interval": "15 seconds"}, "monitoring_scrape_interval"),
    ("monitoring", {"monitoring_scrape_interval": "5s", "monitoring_scrape_timeout": "10s"}, "monitoring_scrape_timeout"),
    ("monitoring", {"monitoring_alert_for": {"AgentDwn": "1m"}}, "monitoring_alert_for"),
    ("monitoring", {"monitoring_alert_for": {"AgentDown": "soon"}}, "monitoring_alert_for.AgentDown"),
    ("monitoring", {"monitoring_slo_availability_target": 100}, "monitoring_slo_availability_target"),
    ("monitoring", {"monitoring_alertmanager_receivers": [
        {"name": "chat", "type": "slack", "url": "hooks.example.com/T0/SECRET-TOKEN"}]}, "monitoring_alertmanager_receivers"),
    ("monitoring", {"monitoring_prometheus_web_basic_auth_users": {"admin": "plain-text"}},
     "monitoring_prometheus_web_basic_auth_users"),
    # No agents group in this inventory: nothing to balance.
    ("load_balancer", {}, "load_balancer_backends is empty"),
    ("load_balancer", {"load_balancer_backends": ["stranger"]}, "load_balancer_backends names stranger"),
    ("load_balancer", {"load_balancer_port": "eighty"}, "load_balancer_port"),
])
def test_bad_input_fails_naming_the_variable(role: str, variables: dict, named: str, tmp_path: Path) -> None:
    result = run_role(role, variables, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{role} accepted {variables}:\n{output[-2000:]}"
    assert named in output, f"the error does not name {named}:\n{output[-2000:]}"
    assert "changed=0" in output
    assert "SECRET-TOKEN" not in output, "a receiver's URL leaked into the output"


@pytest.mark.parametrize(("role", "variables"), [
    ("venv_systemd", VALID_VENV),
    ("venv_systemd", {**VALID_VENV, "venv_systemd_provider": "deepseek", "venv_systemd_api_key": "k"}),
    ("base_host", {}),
    ("docker_agent", VALID_DOCKER),
    ("docker_agent", {**VALID_DOCKER, "docker_agent_provider_outage": "fail"}),
    ("docker_agent", {**VALID_DOCKER, "docker_agent_provider": "deepseek", "docker_agent_api_key": "k"}),
    ("k8s_agent", VALID_K8S),
    ("lambda_agent", VALID_LAMBDA),
    ("lambda_agent", {**VALID_LAMBDA, "lambda_agent_provider": "openai", "lambda_agent_api_key_secret_id": "agents/key",
                      "lambda_agent_memory_size": 10240, "lambda_agent_timeout": 900, "lambda_agent_architecture": "arm64"}),
    ("k8s_agent", {**VALID_K8S, "k8s_agent_max_surge": "25%", "k8s_agent_resources": {"requests": {"cpu": "0.5", "memory": "1.5Gi"}}}),
    ("monitoring", {"monitoring_alertmanager_receivers": [
        {"name": "oncall", "type": "pagerduty", "routing_key": "k", "severities": ["critical"]}]}),
])
def test_good_input_passes_validation(role: str, variables: dict, tmp_path: Path) -> None:
    result = run_role(role, variables, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
