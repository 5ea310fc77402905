"""One Kubernetes node (scripts/k8s-node.sh) for every test of this layer, and the agent's images in it.

The node starts once per session: starting it costs about 25 s, and every
test works in a namespace of its own. The agent's images come from
scripts/k8s-agent-images.py (built like the docker_agent role builds them,
once per change of their inputs) and are loaded into the node's containerd:
no registry is reachable.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE = ["bash", str(ROOT / "scripts" / "k8s-node.sh")]
GOOD = "1.0.0"
# The versions scripts/k8s-agent-images.py builds besides GOOD.
VARIANTS = ["1.1.0", "1.2.0-crash", "1.2.0-notready", "1.2.0-smoke500"]


def node(*args: str, stdin: str | None = None, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NODE, *args], input=stdin, capture_output=True, text=True, timeout=timeout, check=check)


def cluster_state() -> Path:
    return Path(os.environ.get("AGENTOPS_K8S_STATE", "/tmp/agentops-k8s"))


def host_cni_files() -> set[str]:
    """What the host's /var/lib/cni holds (CNI plugins keep addresses and results there by default)."""
    return {str(path) for path in Path("/var/lib/cni").rglob("*")}


def pod_processes() -> list[str]:
    """Processes in a kubepods cgroup: the pods' (the kubelet's cgroupfs driver puts them there)."""
    found = []
    for path in Path("/proc").glob("[0-9]*/cgroup"):
        try:
            if "kubepods" in path.read_text(errors="replace"):
                found.append(path.parent.name)
        except OSError:  # gone meanwhile
            continue
    return found


@pytest.fixture(scope="session")
def cluster() -> Iterator[dict]:
    host_cni_before = host_cni_files()
    try:
        started = node("start")
        print(started.stderr)
        facts: dict = dict(line.split("=", 1) for line in started.stdout.split())
        facts["host_cni_before"] = host_cni_before
        yield facts
    finally:
        node("stop", check=False)
    # Nothing of the node outlives it: no pod's process (they sit in kubepods cgroups) and no node process.
    left = pod_processes()
    assert not left, f"processes of pods outlived the node: {left}"
    assert str(cluster_state()) not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="session")
def agent_images(cluster: dict) -> list[str]:
    """Every test image, loaded into the node's containerd (scripts/k8s-agent-images.py builds them when their inputs changed)."""
    built = subprocess.run([sys.executable, str(ROOT / "scripts" / "k8s-agent-images.py")], capture_output=True, text=True,
                           check=True, timeout=1800).stdout.strip()
    node("load", built)
    return [GOOD, *VARIANTS]
