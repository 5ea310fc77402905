"""The Lambda method (roles/lambda_agent) through the playbooks, against moto, with the function really run.

Each case runs playbooks/deploy.yml, rollback.yml or health.yml from an
inventory whose agent is a Lambda function, as an operator would, and then
reads the account back through the AWS API (boto3 on moto).

What moto 5.2 cannot show, and how the tests meet it:
- moto ignores the Qualifier of an invocation and always runs $LATEST. The
  smoke call asks for the new version, which is $LATEST at that moment, so a
  deploy's verdict is real; after a rollback, which version the alias runs is
  asserted from the alias (get_alias), not from an answer.
- moto labels an error at import "Handled" where Lambda says "Unhandled"; the
  tests read the message, not the label.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import runpy
import shutil
import subprocess
from pathlib import Path

from conftest import AWS_ENV, REGION

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = "smart-agent"
KEY = "sk-lambda-test-0123456789"
# The faulty versions the Kubernetes images are made of, applied to the zip's source here.
VARIANTS = runpy.run_path(str(ROOT / "scripts" / "k8s-agent-images.py"))["VARIANTS"]


def source_of(version: str, tmp_path: Path) -> Path:
    """files/agent/app, or a copy with one module patched as the faulty images patch it."""
    patch = VARIANTS.get(version)
    if patch is None:
        return ROOT / "files" / "agent" / "app"
    module, pattern, replacement = patch
    copy = tmp_path / f"src-{version}" / "app"
    shutil.copytree(ROOT / "files" / "agent" / "app", copy, ignore=shutil.ignore_patterns("__pycache__"))
    text = (copy / module).read_text()
    patched = text + replacement if pattern is None else re.sub(pattern, replacement, text, count=1)
    assert patched != text, f"files/agent/app/{module} changed under the test's patch of {version}"
    (copy / module).write_text(patched)
    return copy


def inventory(moto: dict, tmp_path: Path, **settings: object) -> Path:
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": str(ROOT / ".venv" / "bin" / "python"),
        "ansible_become": False,
        "agent_deploy_method": "lambda_agent",
        "agent_provider": "offline",
        "agent_api_key": KEY,
        "lambda_agent_region": REGION,
        "lambda_agent_endpoint_url": moto["endpoint"],
        "lambda_agent_build_dir": str(tmp_path / "build"),
        "lambda_agent_wheelhouse_cache": str(moto["wheelhouse_cache"]),
        "lambda_agent_memory_size": 512,
        **settings,
    }
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"all": {"children": {"agents": {"hosts": {"fn-1": host}}}}}))
    return path


def playbook(name: str, hosts: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **AWS_ENV, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
    return subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(hosts),
                           str(ROOT / "playbooks" / name), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)


def deploy(moto: dict, tmp_path: Path, version: str, *args: str, **settings: object) -> subprocess.CompletedProcess[str]:
    hosts = inventory(moto, tmp_path, lambda_agent_source=str(source_of(version, tmp_path)), **settings)
    return playbook("deploy.yml", hosts, "-e", f"agent_version={version}", "-e", "agent_rollout_force=true", *args)


def changed(result: subprocess.CompletedProcess[str]) -> int:
    match = re.search(r"fn-1\s*:\s*ok=\d+\s+changed=(\d+)", result.stdout)
    assert match, result.stdout[-3000:]
    return int(match.group(1))


def live(moto: dict) -> str:
    return moto["client"]("lambda").get_alias(FunctionName=FUNCTION, Name="live")["FunctionVersion"]


def tags(moto: dict) -> dict:
    lam = moto["client"]("lambda")
    return lam.list_tags(Resource=lam.get_function(FunctionName=FUNCTION)["Configuration"]["FunctionArn"])["Tags"]


def test_a_version_goes_live_only_after_it_answered_and_rolls_back_from_the_functions_ledger(
        moto: dict, tmp_path: Path) -> None:
    lam = moto["client"]("lambda")
    # Check mode creates nothing, on an account without the function, from a controller with no wheels cached yet.
    dry = deploy(moto, tmp_path, "1.0.0", "--check")
    assert dry.returncode == 0, dry.stdout[-5000:]
    assert not lam.list_functions()["Functions"] and not moto["client"]("iam").list_roles()["Roles"]

    first = deploy(moto, tmp_path, "1.0.0")
    assert first.returncode == 0, first.stdout[-5000:]
    assert live(moto) == "1"
    config = lam.get_function_configuration(FunctionName=FUNCTION, Qualifier="1")
    assert (config["Runtime"], config["MemorySize"], config["Handler"]) == ("python3.13", 512, "app.lambda_handler.handler")
    # The key is in Secrets Manager, named to the function; never in its environment or the run's output.
    variables = config["Environment"]["Variables"]
    assert variables["AGENT_API_KEY_SECRET_ID"] == f"{FUNCTION}/api-key"
    assert KEY not in json.dumps(variables) and KEY not in first.stdout + first.stderr
    assert moto["client"]("secretsmanager").get_secret_value(SecretId=f"{FUNCTION}/api-key")["SecretString"] == KEY
    # What was uploaded is the zip built on the controller, byte for byte.
    built = (tmp_path / "build" / f"{FUNCTION}.zip").read_bytes()
    assert config["CodeSha256"] == base64.b64encode(hashlib.sha256(built).digest()).decode()
    assert tags(moto)["agentops.deploy/healthy"] == "1=1.0.0"
    assert re.search(r"fn-1\s+lambda_agent\s+1\.0\.0\s+healthy", first.stdout), first.stdout[-3000:]

    again = deploy(moto, tmp_path, "1.0.0")
    assert again.returncode == 0 and changed(again) == 0, again.stdout[-5000:]
    assert len(lam.list_versions_by_function(FunctionName=FUNCTION)["Versions"]) == 2  # $LATEST and 1

    # Check mode reports the new version without publishing it or moving the alias.
    dry = deploy(moto, tmp_path, "1.1.0", "--check")
    assert dry.returncode == 0 and changed(dry) > 0, dry.stdout[-5000:]
    assert live(moto) == "1" and len(lam.list_versions_by_function(FunctionName=FUNCTION)["Versions"]) == 2

    # A settings change alone is a new release, so a new version; verified by GET /ready this time (no LLM call).
    second = deploy(moto, tmp_path, "1.1.0", agent_temperature=0.5, agent_smoke_request=False)
    assert second.returncode == 0, second.stdout[-5000:]
    assert live(moto) == "2"
    assert lam.get_function_configuration(FunctionName=FUNCTION, Qualifier="2")["Environment"]["Variables"][
        "AGENT_TEMPERATURE"] == "0.5"
    assert tags(moto)["agentops.deploy/healthy"] == "1=1.0.0 2=1.1.0"

    hosts = inventory(moto, tmp_path)
    refused = playbook("rollback.yml", hosts, "-e", "agent_rollback_to=0.9.0")
    assert refused.returncode != 0 and live(moto) == "2", refused.stdout[-3000:]
    assert "0.9.0 is not a release this function keeps as healthy; it keeps 1.0.0 (version 1), 1.1.0 (version 2)" in refused.stdout

    back = playbook("rollback.yml", hosts)
    assert back.returncode == 0, back.stdout[-5000:]
    # moto runs $LATEST whatever the alias says: the alias is the proof.
    assert live(moto) == "1"

    health = playbook("health.yml", hosts)
    assert health.returncode == 0 and re.search(r"fn-1\s+lambda_agent\s+\S+\s+healthy", health.stdout), health.stdout[-3000:]

    # site.yml runs no host role on the controller that stands for the function, and 1.0.0 serves already.
    site = playbook("site.yml", hosts, "-e", "agent_version=1.0.0")
    assert site.returncode == 0 and changed(site) == 0, site.stdout[-5000:]
    assert live(moto) == "1"


def test_versions_that_fail_never_take_the_alias(moto: dict, tmp_path: Path) -> None:
    lam = moto["client"]("lambda")
    good = deploy(moto, tmp_path, "1.0.0")
    assert good.returncode == 0 and live(moto) == "1", good.stdout[-5000:]

    smoke500 = deploy(moto, tmp_path, "1.2.0-smoke500")
    assert smoke500.returncode != 0
    assert "it answered 500 side_effect: side effect E fails every request" in smoke500.stdout, smoke500.stdout[-5000:]
    assert "The alias live stays on version 1 (1.0.0), which serves." in smoke500.stdout
    assert live(moto) == "1"

    crash = deploy(moto, tmp_path, "1.2.0-crash")
    assert crash.returncode != 0
    assert "the function failed (RuntimeError): side effect B crashes at import" in crash.stdout, crash.stdout[-5000:]
    assert "The alias live stays on version 1 (1.0.0), which serves." in crash.stdout
    assert live(moto) == "1"
    # The ledger on the function: the healthy version, and the last that failed.
    assert tags(moto) == {"agentops.deploy/healthy": "1=1.0.0", "agentops.deploy/failed": "3=1.2.0-crash"}

    # A secret that holds no key fails the new version's cold start, naming the secret.
    secrets = moto["client"]("secretsmanager")
    secrets.create_secret(Name="agents/wrong", SecretString=json.dumps({"token": "not the key"}))
    wrong = deploy(moto, tmp_path, "1.0.1", agent_api_key="", lambda_agent_api_key_secret_id="agents/wrong")
    assert wrong.returncode != 0 and live(moto) == "1", wrong.stdout[-5000:]
    assert "AGENT_API_KEY_SECRET_ID: the secret 'agents/wrong' holds no key" in wrong.stdout

    # A secret that does not exist is refused before anything changes.
    versions = len(lam.list_versions_by_function(FunctionName=FUNCTION)["Versions"])
    missing = deploy(moto, tmp_path, "1.0.2", agent_api_key="", lambda_agent_api_key_secret_id="agents/missing")
    assert missing.returncode != 0
    assert "lambda_agent_api_key_secret_id names agents/missing, which Secrets Manager does not hold" in missing.stdout
    assert len(lam.list_versions_by_function(FunctionName=FUNCTION)["Versions"]) == versions and live(moto) == "1"


def test_a_first_release_refused_or_failing_leaves_nothing_serving(moto: dict, tmp_path: Path) -> None:
    lam = moto["client"]("lambda")
    refused = deploy(moto, tmp_path, "1.0.0", lambda_agent_max_zip_size=1048576)
    assert refused.returncode != 0
    assert "lambda_agent_max_zip_size" in refused.stdout and "Nothing was changed" in refused.stdout, refused.stdout[-3000:]
    assert not lam.list_functions()["Functions"]
    assert not moto["client"]("secretsmanager").list_secrets()["SecretList"]

    failed_first = deploy(moto, tmp_path, "1.2.0-smoke500")
    assert failed_first.returncode != 0
    assert "Nothing serves: the function has no healthy version yet" in failed_first.stdout, failed_first.stdout[-5000:]
    assert not lam.list_aliases(FunctionName=FUNCTION)["Aliases"]
