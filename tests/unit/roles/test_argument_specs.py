"""Each role's argument_specs, defaults and README describe the same variables.

After prometheus.prometheus, which checks this in CI: a variable added to
defaults but not to the spec escapes validation, and one missing from the
README is a knob nobody finds.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES_DIR = Path(__file__).resolve().parents[3] / "roles"
ROLES = sorted(p.name for p in ROLES_DIR.iterdir() if (p / "meta" / "argument_specs.yml").is_file()) if ROLES_DIR.is_dir() else []


def load(role: str) -> tuple[dict, dict, str]:
    spec = yaml.safe_load((ROLES_DIR / role / "meta" / "argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((ROLES_DIR / role / "defaults" / "main.yml").read_text()) or {}
    readme = (ROLES_DIR / role / "README.md").read_text()
    return options, defaults, readme


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_specified_and_prefixed(role: str) -> None:
    options, defaults, _readme = load(role)
    unprefixed = [name for name in defaults if not name.startswith(f"{role}_")]
    assert not unprefixed, f"{role}: defaults without the role prefix: {unprefixed}"
    missing = sorted(set(defaults) - set(options))
    assert not missing, f"{role}: in defaults/main.yml but not in meta/argument_specs.yml: {missing}"


@pytest.mark.parametrize("role", ROLES)
def test_every_optional_variable_has_the_same_default(role: str) -> None:
    options, defaults, _readme = load(role)
    for name, option in options.items():
        if option.get("required"):
            assert name not in defaults, f"{role}: {name} is required, so it must not have a default"
            continue
        assert name in defaults, f"{role}: {name} is optional but has no value in defaults/main.yml"
        assert option.get("default") == defaults[name], (
            f"{role}: {name} defaults to {defaults[name]!r} but the spec says {option.get('default')!r}")
        assert option.get("description"), f"{role}: {name} has no description"


@pytest.mark.parametrize("role", ROLES)
def test_readme_lists_every_variable(role: str) -> None:
    options, _defaults, readme = load(role)
    missing = [name for name in options if f"`{name}`" not in readme]
    assert not missing, f"roles/{role}/README.md does not list: {missing}"
