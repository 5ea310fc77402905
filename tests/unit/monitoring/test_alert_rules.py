"""The monitoring role's alert rules, rendered with the role's defaults and
unit-tested with promtool (`promtool test rules`, alerts_test.yml).

Annotations are checked here, not by promtool: promtool compares rendered
annotation text exactly, which would make every case repeat each summary.
The rules promtool tests are the shipped ones with their annotations left
out; expressions, `for:` and labels are untouched.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "monitoring"
CASES = Path(__file__).with_name("alerts_test.yml")
PROMTOOL = os.environ.get("PROMTOOL") or str(ROOT / ".cache" / "tools" / "promtool" / "usr" / "bin" / "promtool")
# Watchdog fires by design: it has no silent case.
ALWAYS_FIRING = {"Watchdog"}


def role_context(overrides: dict | None = None) -> dict:
    """The role's defaults and vars as the rule templates see them."""
    context = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    internal = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    context.update({k: v for k, v in internal.items() if "{{" not in str(v)})
    context.update(overrides or {})
    context["_monitoring_alert_for"] = {**internal["_monitoring_alert_for_defaults"], **context["monitoring_alert_for"]}
    context["ansible_managed"] = "rendered by test_alert_rules.py"
    return context


def render_rules(context: dict) -> dict[str, str]:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(ROLE / "templates" / "rules")),
        variable_start_string="[[", variable_end_string="]]",
        block_start_string="[%", block_end_string="%]",
        trim_blocks=True, undefined=jinja2.StrictUndefined,
    )
    return {name: env.get_template(f"{name}.rules.yml.j2").render(context) for name in context["_monitoring_rule_files"]}


def alerting_rules(rendered: dict[str, str]) -> list[dict]:
    return [rule for text in rendered.values() for group in yaml.safe_load(text)["groups"]
            for rule in group["rules"] if "alert" in rule]


@pytest.fixture(scope="module")
def promtool() -> str:
    if not Path(PROMTOOL).is_file():
        pytest.fail(f"promtool not found at {PROMTOOL}: run `make promtool` (or set PROMTOOL)")
    return PROMTOOL


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return render_rules(role_context())


def test_shipped_rules_pass_promtool_check(promtool: str, rendered: dict[str, str], tmp_path: Path) -> None:
    for name, text in rendered.items():
        path = tmp_path / f"{name}.rules.yml"
        path.write_text(text)
        result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"


def test_alerts_fire_and_stay_silent_as_specified(promtool: str, rendered: dict[str, str], tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    for name, text in rendered.items():
        document = yaml.safe_load(text)
        for group in document["groups"]:
            for rule in group["rules"]:
                rule.pop("annotations", None)
        (rules_dir / f"{name}.rules.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    shutil.copy(CASES, tmp_path / CASES.name)
    result = subprocess.run([promtool, "test", "rules", CASES.name], cwd=tmp_path,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_silent_case(rendered: dict[str, str]) -> None:
    cases = yaml.safe_load(CASES.read_text())["tests"]
    checks = [check for case in cases for check in case["alert_rule_test"]]
    for name in sorted({rule["alert"] for rule in alerting_rules(rendered)}):
        fired = [c for c in checks if c["alertname"] == name and c.get("exp_alerts")]
        silent = [c for c in checks if c["alertname"] == name and not c.get("exp_alerts")]
        assert fired, f"no case in {CASES.name} where {name} fires"
        assert silent or name in ALWAYS_FIRING, f"no case in {CASES.name} where {name} stays silent"


def test_every_alert_is_documented(rendered: dict[str, str]) -> None:
    for rule in alerting_rules(rendered):
        name = rule["alert"]
        assert rule["labels"].get("severity") in {"critical", "warning", "none"}, f"{name}: severity"
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            assert annotations.get(key), f"{name} has no {key}"
        runbook = annotations["runbook_url"].rsplit("/", 1)[-1]
        assert annotations["runbook_url"].endswith(f"/{name}.md"), f"{name}: runbook_url {annotations['runbook_url']}"
        text = (ROOT / "docs" / "runbooks" / runbook).read_text()
        for heading in ("## What it means", "## First three commands", "## Roll back"):
            assert heading in text, f"docs/runbooks/{runbook} lacks '{heading}'"


def test_alert_for_overrides_reach_the_rules() -> None:
    """The Molecule scenario shortens `for:` through this variable."""
    rendered = render_rules(role_context({"monitoring_alert_for": {"AgentDown": "10s"}}))
    durations = {rule["alert"]: rule["for"] for rule in alerting_rules(rendered)}
    assert durations["AgentDown"] == "10s"
    assert durations["AgentProbeFailed"] == "2m"


def test_slo_target_sets_the_burn_thresholds() -> None:
    rendered = render_rules(role_context({"monitoring_slo_availability_target": 99.9}))
    burn = [rule["expr"] for rule in alerting_rules(rendered) if rule["alert"] == "AgentErrorBudgetBurn"]
    assert "(14.4 * 0.001)" in burn[0]
    assert "agent:slo_errors:ratio_rate3d > 0.001 " in burn[1]
