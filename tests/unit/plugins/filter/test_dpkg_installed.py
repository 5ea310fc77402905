"""dpkg_installed: which packages a dpkg-query answer says are on the host."""
from __future__ import annotations

import pytest

from ansible_collections.agentops.deploy.plugins.filter.dpkg_installed import dpkg_installed

# dpkg-query's answer, in its own format, for python3-venv (installed), docker.io
# (held), git (removed, its configuration kept), python3-setuptools (marked for
# removal, still installed) and docker-ce (never installed: known to the
# package lists only).
ANSWER = """python3-venv install ok installed
docker.io hold ok installed
git deinstall ok config-files
python3-setuptools deinstall ok installed
docker-ce unknown ok not-installed
"""


def test_installed_held_and_marked_for_removal_count_as_installed():
    assert dpkg_installed(ANSWER) == ['python3-venv', 'docker.io', 'python3-setuptools']


def test_reads_stdout_lines_as_well_as_text():
    assert dpkg_installed(ANSWER.splitlines()) == dpkg_installed(ANSWER)


@pytest.mark.parametrize('line', [
    'git deinstall ok config-files',
    'moby-engine unknown ok not-installed',
    'python3-venv install ok half-installed',
    'python3-venv install reinstreq half-installed',
    'python3-venv install ok unpacked',
    # dpkg-query's complaint about a name it does not know goes to stderr, but
    # a line without a status must not count either.
    'docker-ce',
    '',
])
def test_anything_not_fully_installed_is_missing(line):
    assert dpkg_installed([line]) == []


def test_no_answer_means_nothing_installed():
    assert dpkg_installed(None) == []
    assert dpkg_installed('') == []
