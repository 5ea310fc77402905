"""The Kubernetes method (roles/k8s_agent) on a real cluster: releases that pass go live, every failure is undone.

Each case runs the role as an operator would (ansible-playbook from the
controller, with a kubeconfig), and checks the cluster afterwards through
its API, and the answers through the Service from inside a pod: the
controller has no network path to pods.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import node

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "agents-test"
# Small enough for three replicas and a surge pod on a 2-core node.
SETTINGS = {
    "k8s_agent_namespace": NAMESPACE,
    "k8s_agent_replicas": 2,
    "k8s_agent_hpa_min_replicas": 2,
    "k8s_agent_resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
    "k8s_agent_bake_seconds": 2,
    "k8s_agent_health_deadline": 40,
    "k8s_agent_drain_timeout": 5,
    "k8s_agent_network_policy_enabled": True,
}


def deploy(version: str, **settings: object) -> subprocess.CompletedProcess[str]:
    extra = {**SETTINGS, "k8s_agent_version": version, "k8s_agent_kubeconfig": str(kubeconfig()), **settings}
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
    return subprocess.run([*node_exec(), str(ROOT / ".venv" / "bin" / "ansible-playbook"),
                           str(ROOT / "tests" / "k8s" / "playbooks" / "deploy.yml"), "-e", json.dumps(extra)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)


def node_exec() -> list[str]:
    return ["bash", str(ROOT / "scripts" / "k8s-node.sh"), "exec"]


def kubeconfig() -> Path:
    return Path(os.environ.get("AGENTOPS_K8S_STATE", "/tmp/agentops-k8s")) / "admin.kubeconfig"


def kubectl(*args: str, namespace: str = NAMESPACE) -> str:
    return node("exec", "kubectl", "-n", namespace, *args).stdout


def get(kind: str, name: str = "smart-agent", namespace: str = NAMESPACE) -> dict:
    return json.loads(kubectl("get", kind, name, "-o", "json", namespace=namespace))


def recap(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    match = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", result.stdout)
    assert match, result.stdout[-3000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups())))


def failure(result: subprocess.CompletedProcess[str]) -> str:
    """The message the run failed with (the last 'msg' of a failed task), on one line."""
    assert result.returncode != 0, result.stdout[-3000:]
    messages = re.findall(r"^fatal: .*?\n(?:.*\n)*?\s+msg: (.*(?:\n {8,}.*)*)", result.stdout, flags=re.M)
    assert messages, result.stdout[-3000:]
    return " ".join(messages[-1].split())


def ledger() -> dict[str, str]:
    annotations = get("deployment")["metadata"].get("annotations", {})
    return {key.split("/", 1)[1]: value for key, value in annotations.items() if key.startswith("agentops.deploy/")}


def serving() -> dict:
    """What the Service answers on /ready, and the temperature in the pods' settings, asked from inside a pod.

    From a pod of the release the Deployment holds, ready and not on its way out.
    """
    release = get("deployment")["spec"]["template"]["metadata"]["labels"]["agentops.deploy/release"]
    pods = json.loads(kubectl("get", "pods", "-l", f"agentops.deploy/release={release}", "-o", "json"))["items"]
    ready = [p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")
             and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]
    assert ready, f"no ready pod of {release}"
    service = get("service")["spec"]
    # A node's proxy rules may send a request to a pod on its way out for a moment: ask until one is answered.
    script = ("import json, os, time, urllib.request as r\n"
              "for attempt in range(10):\n"
              "    try:\n"
              "        a = json.load(r.urlopen('http://%s:%s/ready', timeout=5)); break\n"
              "    except OSError:\n"
              "        time.sleep(0.5)\n"
              "a['temperature'] = os.environ.get('AGENT_TEMPERATURE'); print(json.dumps(a))"
              % (service["clusterIP"], service["ports"][0]["port"]))
    return json.loads(kubectl("exec", ready[0], "-c", "agent", "--", "python", "-c", script))


@pytest.fixture(scope="module")
def images(agent_images: list[str]) -> list[str]:
    return agent_images


def test_a_good_version_rolls_out_answers_through_its_service_and_a_second_run_changes_nothing(images: list[str]) -> None:
    first = deploy("1.0.0")
    assert first.returncode == 0, first.stdout[-4000:]
    assert serving()["version"] == "1.0.0"
    recorded = ledger()
    assert recorded["healthy-version"] == "1.0.0"
    deployment = get("deployment")
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"]["agentops.deploy/release"] == recorded["healthy-release"]
    # The guide's Deployment, hardened: probes, no token, non-root, read-only, no capabilities, RuntimeDefault.
    pod, container = template["spec"], template["spec"]["containers"][0]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready" and container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert deployment["spec"]["revisionHistoryLimit"] == 5
    for kind in ("service", "hpa", "pdb", "networkpolicy", "serviceaccount"):
        assert get(kind)["metadata"]["name"] == "smart-agent"

    second = deploy("1.0.0")
    assert second.returncode == 0, second.stdout[-4000:]
    assert recap(second)["changed"] == 0, second.stdout[-4000:]
    assert ledger() == recorded


def test_a_config_only_change_rolls_out_like_code(images: list[str]) -> None:
    before = ledger()
    result = deploy("1.1.0", k8s_agent_temperature=0.5)
    assert result.returncode == 0, result.stdout[-4000:]
    answer = serving()
    assert (answer["version"], answer["temperature"]) == ("1.1.0", "0.5")
    assert ledger()["healthy-release"] != before["healthy-release"]


@pytest.mark.parametrize("version, settings, reason", [
    # Crashes at import: failed as soon as the container exits, with its exception from the log. The
    # restarts counted by then depend on how fast the verdict came (none on a busy machine).
    ("1.2.0-crash", {"k8s_agent_temperature": 0.9},
     r"the container exited \(Error, exit code 1\)( after \d+ restart\(s\))?: RuntimeError: side effect B crashes at import"),
    # Never ready: failed at the deadline, with the kubelet's probe message.
    ("1.2.0-notready", {"k8s_agent_health_deadline": 16}, r"not ready within 16 s.*Readiness probe failed"),
    # Ready, but its answers fail: the smoke request through the Service.
    ("1.2.0-smoke500", {}, r"smoke request through the Service answered 500.*side effect E fails every request"),
    # An image nobody can pull: failed at once, not after the progress deadline.
    ("9.9.9", {}, r"(ErrImagePull|ImagePullBackOff)"),
], ids=["crash", "never-ready", "smoke-500", "missing-image"])
def test_a_failing_release_is_undone_and_the_previous_one_serves(
        images: list[str], version: str, settings: dict, reason: str) -> None:
    before = ledger()
    started = time.monotonic()
    result = deploy(version, **settings)
    elapsed = time.monotonic() - started
    message = failure(result)
    assert re.search(reason, message), message
    assert f"Version {version} failed on {NAMESPACE}/smart-agent" in message
    assert f"Rolled back to 1.1.0 ({before['healthy-release']}), which serves now" in message
    # The previous release serves, its config with it (temperature 0.5, not the failed run's 0.9).
    answer = serving()
    assert (answer["version"], answer["temperature"]) == ("1.1.0", "0.5")
    deployment = get("deployment")
    assert deployment["spec"]["template"]["metadata"]["labels"]["agentops.deploy/release"] == before["healthy-release"]
    recorded = ledger()
    assert recorded["healthy-release"] == before["healthy-release"]
    assert recorded["failed"].startswith(f"{version} (")
    print(f"{version}: failed and undone in {elapsed:.0f} s")


def test_a_first_release_that_fails_leaves_nothing_serving(images: list[str]) -> None:
    result = deploy("1.2.0-crash", k8s_agent_namespace="agents-first")
    message = failure(result)
    assert "No release of it has passed its checks before" in message and "nothing serves" in message, message
    assert get("deployment", namespace="agents-first")["spec"]["replicas"] == 0


def playbook(name: str, inventory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
    return subprocess.run([*node_exec(), str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory),
                           str(ROOT / "playbooks" / name), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)


def test_the_playbooks_check_roll_back_and_deploy_the_deployment(images: list[str], tmp_path: Path) -> None:
    """health.yml, rollback.yml, deploy.yml and site.yml drive the method from an inventory host, like any other."""
    host = {"ansible_connection": "local", "ansible_python_interpreter": str(ROOT / ".venv" / "bin" / "python"),
            "ansible_become": False, "agent_deploy_method": "k8s_agent", "agent_bake_seconds": 2, "agent_health_deadline": 40,
            "k8s_agent_kubeconfig": str(kubeconfig()),
            **{key: value for key, value in SETTINGS.items() if key.startswith("k8s_agent_")
               and key not in ("k8s_agent_bake_seconds", "k8s_agent_health_deadline")}}
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"children": {"agents": {"hosts": {"cluster-1": host}}}}}))
    history = json.loads(ledger()["healthy-history"])
    assert [entry["version"] for entry in history] == ["1.0.0", "1.1.0"]

    healthy = playbook("health.yml", inventory)
    assert healthy.returncode == 0 and "All 1 agents are healthy" in healthy.stdout, healthy.stdout[-3000:]
    assert re.search(r"cluster-1\s+k8s_agent\s+1\.1\.0\s+healthy", healthy.stdout), healthy.stdout[-3000:]

    # A release nobody kept is refused before anything changes, naming what is kept.
    refused = playbook("rollback.yml", inventory, "-e", "agent_rollback_to=7.7.7")
    assert refused.returncode != 0 and "Nothing was rolled back" in refused.stdout, refused.stdout[-3000:]
    assert "no kept release that passed its checks is 7.7.7" in refused.stdout
    assert serving()["version"] == "1.1.0"

    rolled = playbook("rollback.yml", inventory)
    assert rolled.returncode == 0, rolled.stdout[-4000:]
    assert serving()["version"] == "1.0.0" and ledger()["healthy-version"] == "1.0.0"

    deployed = playbook("deploy.yml", inventory, "-e", "agent_version=1.1.0")
    assert deployed.returncode == 0, deployed.stdout[-4000:]
    assert serving()["version"] == "1.1.0"
    # site.yml runs no host role on the controller that stands for the cluster (base_host, monitoring and logging
    # would change it), and a second deploy changes nothing.
    again = playbook("site.yml", inventory, "-e", "agent_version=1.1.0")
    assert again.returncode == 0 and re.search(r"cluster-1\s*:\s*ok=\d+\s+changed=0\b", again.stdout), again.stdout[-4000:]
