"""Every regular expression the roles and playbooks hand to Jinja compiles without a warning.

A pattern Python's re warns about (such as '[[]access[]]': "Possible nested
set") is compiled in a worker process, whose warning Ansible prints as
"WorkerProcess ... errantly sent data directly to stderr" on every run that
reaches the task: operators saw it under failed releases.
"""
from __future__ import annotations

import functools
import re
import warnings
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
# A string literal given to the search, match and regex tests or to the regex_* filters that take a pattern
# (regex_escape's argument is text, not a pattern).
LITERAL = r"'((?:[^'\\]|\\.)*)'"
PATTERN_USES = (re.compile(r"""\(\s*['"](?:search|match|regex)['"]\s*,\s*""" + LITERAL),
                re.compile(r"\b(?:search|match|regex)\(\s*" + LITERAL),
                re.compile(r"\bregex_(?:search|replace|findall)\(\s*" + LITERAL))


class _AnyTagLoader(yaml.SafeLoader):
    """Reads Ansible's YAML whatever its tags (!unsafe, !vault)."""


_AnyTagLoader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node)
                                    if isinstance(node, yaml.ScalarNode) else None)


def strings(value: object):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def jinja_literal(text: str) -> str:
    """The value of a Jinja string literal's body, unescaped as Jinja's lexer does it.

    Its DeprecationWarning for an escape it keeps as it is ('\\s') is not shown
    outside __main__ by default, in Ansible's workers either.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return text.encode("ascii", "backslashreplace").decode("unicode-escape")


@functools.cache
def patterns() -> tuple[tuple[str, str], ...]:
    """(file, pattern) for every pattern in the roles and playbooks; read once for the guard and the cases."""
    found = []
    files = [*REPO.glob("roles/*/tasks/*.yml"), *REPO.glob("roles/*/handlers/*.yml"), *REPO.glob("roles/*/vars/*.yml"),
             *REPO.glob("roles/*/defaults/*.yml"), *REPO.glob("playbooks/**/*.yml"), REPO / "site.yml"]
    for path in files:
        for text in strings(yaml.load(path.read_text(), Loader=_AnyTagLoader)):
            for use in PATTERN_USES:
                found += [(str(path.relative_to(REPO)), jinja_literal(match.group(1))) for match in use.finditer(text)]
    return tuple(found)


def test_the_search_finds_the_patterns_it_checks() -> None:
    # The log filter of the release flow is one of them: without it, the test below would check nothing.
    assert ("roles/_release/tasks/trial.yml", r"\[access\]") in patterns()


@pytest.mark.parametrize("where, pattern", patterns())
def test_the_pattern_compiles_without_a_warning(where: str, pattern: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        re.compile(pattern)
