"""The execution environment's build context, made offline as `make ee-context` makes it.

The image itself is not built here: its base image sits in a registry this
machine cannot reach. What is checked is what the build would run on: the
generated Containerfile, the collection tarball in the context, and the
dependencies the builder's own introspection (the script the build runs)
reads from the installed collection.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CONTEXT = REPO_ROOT / ".cache" / "ee" / "context"
SPEC = yaml.safe_load((REPO_ROOT / "execution-environment.yml").read_text())
# Collection names as tasks and plugins use them: namespace.collection.plugin.
# Not a host name (awx.example.com): nothing of a URL or a longer dotted name around it.
FQCN = re.compile(r"(?<![\w./@-])([a-z_]+)\.([a-z_]+)\.[a-z_]+(?![\w./-])")
NOT_COLLECTIONS = {"ansible.builtin", "agentops.deploy"}


def requirement_lines(path: Path) -> list[str]:
    return [line.split("#")[0].strip() for line in path.read_text().splitlines() if line.split("#")[0].strip()]


@pytest.fixture(scope="module")
def context() -> Path:
    subprocess.run(["bash", "scripts/ee-context.sh"], cwd=REPO_ROOT, check=True, capture_output=True, text=True,
                   env={**os.environ, "VENV": str(BIN.parent)})
    return CONTEXT


def test_containerfile_builds_from_the_spec(context: Path) -> None:
    containerfile = (context / "Containerfile").read_text()
    assert f'ARG EE_BASE_IMAGE="{SPEC["images"]["base_image"]["name"]}"' in containerfile
    assert 'ARG PYCMD="/usr/bin/python3.11"' in containerfile
    # The collections come with the ansible package; Galaxy is not asked for them.
    assert 'ARG ANSIBLE_GALAXY_CLI_COLLECTION_OPTS="--no-deps"' in containerfile
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in containerfile
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert galaxy == {"collections": [{"name": "/build/collection/agentops-deploy.tar.gz", "type": "file"}]}


def test_the_context_holds_this_collection_at_this_version(context: Path) -> None:
    tarball = context / "_build" / "collection" / "agentops-deploy.tar.gz"
    with tarfile.open(tarball) as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))
        names = tar.getnames()
    version = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())["version"]
    assert (manifest["collection_info"]["namespace"], manifest["collection_info"]["name"]) == ("agentops", "deploy")
    assert manifest["collection_info"]["version"] == version
    for required in ("meta/execution-environment.yml", "meta/ee-requirements.txt", "meta/ee-bindep.txt",
                     "playbooks/deploy.yml", "playbooks/health.yml"):
        assert required in names, f"{required} missing from the collection in the context"


def test_the_builders_introspection_finds_the_collections_dependencies(context: Path, tmp_path: Path) -> None:
    collections = tmp_path / "collections"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-p", str(collections),
                    str(context / "_build" / "collection" / "agentops-deploy.tar.gz")],
                   check=True, capture_output=True, env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections)})
    pip_out, bindep_out = tmp_path / "requirements.txt", tmp_path / "bindep.txt"
    subprocess.run([sys.executable, str(context / "_build" / "scripts" / "introspect.py"), "introspect",
                    str(collections), f"--user-pip={context / '_build' / 'requirements.txt'}",
                    f"--write-pip={pip_out}", f"--write-bindep={bindep_out}"], check=True, capture_output=True)
    found_pip, found_bindep = requirement_lines(pip_out), requirement_lines(bindep_out)
    for line in requirement_lines(REPO_ROOT / "meta" / "ee-requirements.txt"):
        assert line in found_pip, f"{line} (meta/ee-requirements.txt) not found by the build's introspection"
    for line in requirement_lines(REPO_ROOT / "meta" / "ee-bindep.txt"):
        assert line in found_bindep, f"{line} (meta/ee-bindep.txt) not found by the build's introspection"
    assert [line for line in found_pip if line.startswith("ansible>=")], "the ansible package is not installed"


def test_the_image_pins_what_the_controller_pins() -> None:
    """The EE and the controller virtualenv run the same Ansible: one pin each, in step."""
    controller = {re.split(r"[<>=!~]", line)[0]: line for line in requirement_lines(REPO_ROOT / "requirements.txt")}
    image = {
        "ansible-core": SPEC["dependencies"]["ansible_core"]["package_pip"],
        "ansible-runner": SPEC["dependencies"]["ansible_runner"]["package_pip"],
        **{re.split(r"[<>=!~]", line)[0]: line for line in SPEC["dependencies"]["python"]},
    }
    for name in ("ansible", "ansible-core", "ansible-runner"):
        assert image[name] == controller[name], f"execution-environment.yml pins {image[name]}, requirements.txt {controller[name]}"


def test_every_collection_the_content_uses_comes_with_the_ansible_package() -> None:
    """The image installs this collection with --no-deps: what it uses must be bundled."""
    site = next((BIN.parent / "lib").glob("python3*/site-packages"))
    used = set()
    for path in [*REPO_ROOT.glob("roles/**/*.yml"), *REPO_ROOT.glob("playbooks/**/*.yml")]:
        used |= {f"{ns}.{name}" for ns, name in FQCN.findall(path.read_text())}
    used = {name for name in used if name.split(".")[0] in {"ansible", "community", "kubernetes", "amazon", "awx",
                                                            "containers", "grafana"}} - NOT_COLLECTIONS
    assert used, "no collection found in roles/ and playbooks/: the pattern is wrong"
    missing = sorted(name for name in used if not (site / "ansible_collections" / Path(*name.split("."))).is_dir())
    assert not missing, f"used but not bundled with the ansible package: {missing} (in {site})"
