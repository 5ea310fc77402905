"""One Kubernetes node (scripts/k8s-node.sh) for every test of this layer, and the agent's images in it.

The node starts once per session: starting it costs about 25 s, and every
test works in a namespace of its own. The agent's images are built here like
the docker_agent role builds them (the agent-base image from debootstrap, the
lock's wheels from the controller's wheelhouse, no index in the build), once
per change of their inputs, and loaded into the node's containerd: no registry
is reachable.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE = ["bash", str(ROOT / "scripts" / "k8s-node.sh")]
AGENT = ROOT / "files" / "agent"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "agentops" / "k8s-images"

# The images the tests deploy: a good 1.0.0 built from files/agent, and one-layer images derived from it.
# Each bad one replaces one module, patched as the docker_agent scenario patches it.
GOOD = "1.0.0"
VARIANTS = {
    "1.1.0": None,  # good, a label only
    "1.2.0-crash": ("__init__.py", None, 'raise RuntimeError("side effect B crashes at import")\n'),
    "1.2.0-notready": ("api.py", r'(def _not_ready_reason\(request: Request\) -> str \| None:\n(\s+"""[^\n]*"""\n)?)',
                       '\\1    return "side effect C is never ready"\n'),
    "1.2.0-smoke500": ("api.py", r'(async def run_agent\(payload: AgentRequest, request: Request\) -> [^\n]*\n)',
                       '\\1    return error_response(500, "side_effect", "side effect E fails every request")\n'),
}


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


def run(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=True, timeout=1200).stdout


def base_image() -> str:
    """The agent-base image (debootstrap + docker import, cached by its recipe), loaded into the Docker Engine."""
    archive = run("bash", str(ROOT / "scripts" / "agent-base-image.sh")).strip()
    image = f"agentops/agent-base:{Path(archive + '.recipe').read_text().strip()}"
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode:
        run("docker", "load", "-i", archive)
    return image


def wheelhouse() -> str:
    """The lock's wheels for the base image's Python, from the controller's wheelhouse (agent_wheelhouse)."""
    args = {"lock": str(AGENT / "requirements.lock"), "cache_dir": str(Path.home() / ".cache" / "agentops" / "wheelhouse"),
            "python_version": "3.11", "machine": "x86_64"}
    out = run(str(ROOT / ".venv" / "bin" / "ansible"), "localhost", "-m", "agentops.deploy.agent_wheelhouse",
              "-a", json.dumps(args), "-o", cwd=ROOT)
    return json.loads(out.split("=>", 1)[1])["path"]


def images_key(base: str) -> str:
    digest = hashlib.sha256(base.encode())
    for path in sorted([*AGENT.joinpath("app").rglob("*.py"), AGENT / "Dockerfile", AGENT / "requirements.lock", Path(__file__)]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_images(base: str, archive: Path) -> None:
    with tempfile.TemporaryDirectory() as work:
        context = Path(work) / "agent"
        shutil.copytree(AGENT / "app", context / "app", ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("Dockerfile", "requirements.lock"):
            shutil.copy(AGENT / name, context / name)
        shutil.copy(wheelhouse(), context / "wheelhouse.tar")
        run("docker", "build", "--network", "none", "--build-arg", f"BASE_IMAGE={base}",
            "--build-arg", f"AGENT_VERSION={GOOD}", "-t", f"smart-agent:{GOOD}", str(context))
        for version, patch in VARIANTS.items():
            variant = Path(work) / version
            variant.mkdir()
            lines = [f"FROM smart-agent:{GOOD}", f"LABEL org.agentops.test={version}"]
            if patch:
                module, pattern, replacement = patch
                source = (AGENT / "app" / module).read_text()
                patched = source + replacement if pattern is None else __import__("re").sub(pattern, replacement, source, count=1)
                assert patched != source, f"files/agent/app/{module} changed under the test's patch of {version}"
                (variant / module).write_text(patched)
                lines.append(f"COPY {module} /app/app/{module}")
            (variant / "Dockerfile").write_text("\n".join(lines) + "\n")
            run("docker", "build", "--network", "none", "-t", f"smart-agent:{version}", str(variant))
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = archive.with_suffix(".partial")
        run("docker", "save", "-o", str(partial), f"smart-agent:{GOOD}", *(f"smart-agent:{v}" for v in VARIANTS))
        partial.rename(archive)


@pytest.fixture(scope="session")
def agent_images(cluster: dict) -> list[str]:
    """Every test image, loaded into the node's containerd; built only when files/agent or this recipe changed."""
    base = base_image()
    archive = CACHE / f"smart-agent-{images_key(base)}.tar"
    if not archive.exists():
        for stale in CACHE.glob("smart-agent-*.tar"):
            stale.unlink()
        build_images(base, archive)
    node("load", str(archive))
    return [GOOD, *VARIANTS]
