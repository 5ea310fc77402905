"""The collection builds into a clean tarball and installs with ansible-galaxy."""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Nothing the build machine or the tests use belongs in a release.
FORBIDDEN_PREFIXES = (
    "tests/", "inventories/", "bench/", ".ci/", ".github/", "scripts/",
    "extensions/molecule/", ".venv/", ".cache/", ".collections/", "files/agent/tests/",
)


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    run(str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), cwd=REPO_ROOT)
    galaxy = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())
    path = out / f"agentops-deploy-{galaxy['version']}.tar.gz"
    assert path.is_file(), f"expected {path.name}, found {[p.name for p in out.iterdir()]}"
    return path


def test_tarball_holds_no_test_lab_or_local_files(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    leaked = [n for n in names if n.startswith(FORBIDDEN_PREFIXES) or "__pycache__" in n]
    assert not leaked, f"files that must stay out of the tarball: {leaked[:20]}"
    for required in (
        "MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml", "playbooks/site.yml",
        "plugins/modules/agent_health.py", "plugins/modules/agent_release.py", "files/agent/Dockerfile",
    ):
        assert required in names, f"{required} missing from the tarball"


def test_tarball_installs_and_its_content_resolves(tarball: Path, tmp_path: Path) -> None:
    dest = tmp_path / "collections"
    # Only the temp path: the checkout's own link must not count as "already installed".
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(dest)}
    run(str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-p", str(dest), str(tarball),
        cwd=tmp_path, env=env)
    installed = dest / "ansible_collections" / "agentops" / "deploy"
    assert (installed / "MANIFEST.json").is_file()

    listing = run(str(BIN / "ansible-galaxy"), "collection", "list", "-p", str(dest), "agentops.deploy", cwd=tmp_path, env=env)
    version = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())["version"]
    assert f"agentops.deploy {version}" in " ".join(listing.stdout.split())

    modules = sorted(p.stem for p in (installed / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
    for module in modules:
        doc = run(str(BIN / "ansible-doc"), "-t", "module", f"agentops.deploy.{module}", cwd=tmp_path, env=env)
        assert f"agentops.deploy.{module}" in doc.stdout
