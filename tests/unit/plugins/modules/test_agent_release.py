"""agent_release's main(): arguments, check mode, diff and failures."""
from __future__ import annotations

import os
from pathlib import Path

from ansible_collections.agentops.deploy.plugins.modules import agent_release


def test_states_in_order_with_check_and_diff(tmp_path: Path, run_module) -> None:
    for version in ('1.0.0', '1.1.0'):
        (tmp_path / 'releases' / version).mkdir(parents=True)
    staged = run_module(agent_release.main, {'root': str(tmp_path), 'version': '1.0.0', 'state': 'staged'})
    assert not staged.failed and staged.result['changed']
    for state in ('active', 'healthy'):
        assert run_module(agent_release.main, {'root': str(tmp_path), 'version': '1.0.0', 'state': state}).result['changed']
    run_module(agent_release.main, {'root': str(tmp_path), 'version': '1.1.0', 'state': 'staged'})

    checked = run_module(agent_release.main, {'root': str(tmp_path), 'version': '1.1.0', 'state': 'active',
                                              '_ansible_check_mode': True, '_ansible_diff': True})
    assert checked.result['changed'] and checked.result['current'] == '1.1.0'
    assert '"current": "1.0.0"' in checked.result['diff']['before']
    assert '"current": "1.1.0"' in checked.result['diff']['after']
    assert os.readlink(tmp_path / 'current').endswith('/1.0.0'), 'check mode switched the link'

    query = run_module(agent_release.main, {'root': str(tmp_path)})
    assert query.result['current'] == '1.0.0' and not query.result['changed'] and 'diff' not in query.result


def test_failures_are_one_sentence(tmp_path: Path, run_module) -> None:
    unsafe = run_module(agent_release.main, {'root': str(tmp_path), 'version': '../x', 'state': 'staged'})
    assert unsafe.failed and 'not a safe release name' in unsafe.result['msg']
    missing = run_module(agent_release.main, {'root': str(tmp_path), 'state': 'active'})
    assert missing.failed and 'version' in missing.result['msg']
    (tmp_path / 'releases.json').write_text('nope')
    corrupt = run_module(agent_release.main, {'root': str(tmp_path), 'version': '1', 'state': 'staged'})
    assert corrupt.failed and str(tmp_path / 'releases.json') in corrupt.result['msg']
    assert (tmp_path / 'releases.json').read_text() == 'nope'
