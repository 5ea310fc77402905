"""scripts/check-workflows.sh (run by `make lint`) passes the repository's workflows and fails broken ones."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PIPELINE = REPO_ROOT / "examples" / "cicd" / "agent-pipeline.yml"
CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2"


def check(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "scripts/check-workflows.sh", *map(str, files)], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "VENV": str(Path(sys.executable).parent.parent)})


def test_the_repositorys_workflows_pass() -> None:
    result = check()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok    {PIPELINE.relative_to(REPO_ROOT)}" in result.stdout
    assert "ok    .github/workflows/ci.yml" in result.stdout


def test_an_action_pinned_by_tag_fails(tmp_path: Path) -> None:
    assert CHECKOUT in PIPELINE.read_text(), "the pipeline's checkout pin changed: update this test"
    broken = tmp_path / "unpinned.yml"
    broken.write_text(PIPELINE.read_text().replace(CHECKOUT, "actions/checkout@v4", 1))
    result = check(broken)
    assert result.returncode == 1 and "unpinned-uses" in result.stdout, result.stdout


def test_a_workflow_the_schema_refuses_fails(tmp_path: Path) -> None:
    broken = tmp_path / "schema.yml"
    broken.write_text(PIPELINE.read_text().replace("timeout-minutes: 20", "timeout-minutes: soon", 1))
    result = check(broken)
    assert result.returncode == 1 and "'soon' is not of type 'number'" in result.stdout, result.stdout


def test_a_secret_expanded_inside_a_script_fails(tmp_path: Path) -> None:
    """The injection zizmor looks for: an expression GitHub pastes into the shell script."""
    text = PIPELINE.read_text()
    marker = "        run: python -m pip install -r requirements.txt -r requirements-dev.txt\n"
    assert marker in text, "the pipeline's install step changed: update this test"
    broken = tmp_path / "injection.yml"
    broken.write_text(text.replace(marker, "        run: echo \"${{ github.event.pull_request.title }}\"\n", 1))
    result = check(broken)
    assert result.returncode == 1 and "template-injection" in result.stdout, result.stdout
