"""The agent's images for the Kubernetes node (scripts/k8s-node.sh), built as the docker_agent role builds them.

The agent-base image from debootstrap (scripts/agent-base-image.sh), the lock's
wheels from the controller's wheelhouse (agentops.deploy.agent_wheelhouse),
no index and no network in the build: smart-agent:1.0.0 from files/agent, and
one-layer images derived from it that the tests deploy (a good 1.1.0, and
versions that crash, never get ready, or fail every request). Saved as one
archive under ~/.cache/agentops/k8s-images, named by a hash of its inputs:
built once per change of files/agent or of this recipe. Prints its path.

  scripts/k8s-agent-images.py            # build if needed, print the archive
  scripts/k8s-agent-images.py --load     # and load it into the running node
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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


def run(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=True, timeout=1200).stdout


def base_image() -> str:
    """The agent-base image (debootstrap + docker import, cached by its recipe), loaded into the Docker Engine."""
    base_archive = run("bash", str(ROOT / "scripts" / "agent-base-image.sh")).strip()
    image = f"agentops/agent-base:{Path(base_archive + '.recipe').read_text().strip()}"
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode:
        run("docker", "load", "-i", base_archive)
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


def build_images(base: str, target: Path) -> None:
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
                patched = source + replacement if pattern is None else re.sub(pattern, replacement, source, count=1)
                assert patched != source, f"files/agent/app/{module} changed under the test's patch of {version}"
                (variant / module).write_text(patched)
                lines.append(f"COPY {module} /app/app/{module}")
            (variant / "Dockerfile").write_text("\n".join(lines) + "\n")
            run("docker", "build", "--network", "none", "-t", f"smart-agent:{version}", str(variant))
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        run("docker", "save", "-o", str(partial), f"smart-agent:{GOOD}", *(f"smart-agent:{v}" for v in VARIANTS))
        partial.rename(target)


def archive() -> Path:
    """The archive of every image, built when its inputs changed."""
    base = base_image()
    path = CACHE / f"smart-agent-{images_key(base)}.tar"
    if not path.exists():
        for stale in CACHE.glob("smart-agent-*.tar"):
            stale.unlink()
        build_images(base, path)
    return path


if __name__ == "__main__":
    built = archive()
    if "--load" in sys.argv[1:]:
        subprocess.run(["bash", str(ROOT / "scripts" / "k8s-node.sh"), "load", str(built)], check=True)
    print(built)
