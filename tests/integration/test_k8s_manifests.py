"""Every manifest the k8s_agent role renders, validated offline against Kubernetes' own schemas (kubernetes-validate).

Strict mode: a field the schema does not know fails too. The role is proven on a
real 1.20 cluster (tests/k8s); here the oldest and newest schemas the
validator ships say the same manifests are valid there, with the API versions
the role picks when the server serves them (policy/v1, autoscaling/v2).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The oldest and newest schemas of kubernetes-validate; the role claims both and everything between.
VERSIONS = ["1.25.0", "1.37.0"]

EVERYTHING = {
    "k8s_agent_version": "1.4.0",
    "k8s_agent_provider": "deepseek",
    "k8s_agent_api_key": "sk-test-not-a-real-key",
    "k8s_agent_model": "deepseek-chat",
    "k8s_agent_system_prompt": "You are terse.",
    "k8s_agent_env": {"AGENT_OFFLINE_DELAY_MS": 5},
    "k8s_agent_image_pull_secrets": ["registry"],
    "k8s_agent_ingress_enabled": True,
    "k8s_agent_ingress_host": "agent.example.com",
    "k8s_agent_ingress_tls_secret": "agent-tls",
    "k8s_agent_network_policy_enabled": True,
    "k8s_agent_network_policy_namespaces": ["ingress-nginx"],
    "k8s_agent_max_surge": "25%",
}


def render(tmp_path: Path, variables: dict) -> list[dict]:
    out = tmp_path / "manifests.json"
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({**variables, "k8s_render_out": str(out),
                                 "_k8s_agent_api": {"pdb": "policy/v1", "hpa": "autoscaling/v2"}}))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    result = subprocess.run([str(BIN / "ansible-playbook"), "-e", f"@{extra}",
                             str(REPO_ROOT / "tests" / "integration" / "playbooks" / "k8s_render.yml")],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    return render(tmp_path_factory.mktemp("everything"), EVERYTHING)


def test_every_object_is_rendered(manifests: list[dict]) -> None:
    kinds = sorted(m["kind"] for m in manifests)
    assert kinds == sorted(["Namespace", "ServiceAccount", "ConfigMap", "Service", "Ingress", "HorizontalPodAutoscaler",
                            "PodDisruptionBudget", "NetworkPolicy", "Deployment", "Secret"])


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_in_strict_mode(manifests: list[dict], version: str) -> None:
    for manifest in manifests:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_key_is_a_mounted_file_and_never_in_the_pods_environment_or_the_config(manifests: list[dict]) -> None:
    by_kind = {m["kind"]: m for m in manifests}
    container = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert "sk-test-not-a-real-key" not in json.dumps([m for m in manifests if m["kind"] != "Secret"])
    assert {"name": "DEEPSEEK_API_KEY_FILE", "value": "/run/secrets/agent/api_key"} in container["env"]
    assert by_kind["Secret"]["metadata"]["name"] == by_kind["Deployment"]["spec"]["template"]["spec"]["volumes"][1]["secret"]["secretName"]
    assert by_kind["ConfigMap"]["data"]["AGENT_MODEL"] == "deepseek-chat"


def test_a_config_change_is_a_new_configmap_and_a_new_release(tmp_path: Path, manifests: list[dict]) -> None:
    changed = render(tmp_path, {**EVERYTHING, "k8s_agent_temperature": 0.2})
    names = [{m["kind"]: m["metadata"]["name"] for m in ms}["ConfigMap"] for ms in (manifests, changed)]
    assert names[0] != names[1] and all(name.startswith("smart-agent-config-") for name in names)
    releases = [{m["kind"]: m for m in ms}["Deployment"]["spec"]["template"]["metadata"]["labels"]["agentops.deploy/release"]
                for ms in (manifests, changed)]
    assert releases[0] != releases[1]


def test_a_cluster_that_cannot_be_reached_fails_before_any_rollout_and_says_so(tmp_path: Path) -> None:
    """The first API call fails (a kubeconfig that points nowhere): the run says nothing was rolled out."""
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({"k8s_agent_version": "1.0.0", "k8s_agent_kubeconfig": str(tmp_path / "missing.kubeconfig")}))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    result = subprocess.run([str(BIN / "ansible-playbook"), "-e", f"@{extra}", str(REPO_ROOT / "tests" / "k8s" / "playbooks" / "deploy.yml")],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    output = " ".join(result.stdout.split())
    assert result.returncode != 0
    assert "Deploying version 1.0.0 to agents/smart-agent failed before the rollout" in output, output[-3000:]
    assert "Nothing was rolled out; the running release keeps serving." in output
