"""The release ledger: transitions, atomic writes, locking, refusal of bad input."""
from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from ansible_collections.agentops.deploy.plugins.module_utils import release_ledger as rl


def params(root: Path, state: str, version: str | None = None, **extra) -> dict:
    return {'root': str(root), 'ledger': None, 'releases_dir': None, 'current_link': None, 'version': version,
            'artifact': None, 'kind': 'directory', 'metadata': None, 'state': state, 'reason': None, 'keep': 5,
            'lock_timeout': 5, **extra}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for version in ('1.0.0', '1.1.0', '1.2.0'):
        (tmp_path / 'releases' / version).mkdir(parents=True)
    return tmp_path


def deploy(root: Path, version: str, healthy: bool = True) -> dict:
    rl.apply(params(root, 'staged', version), False)
    result = rl.apply(params(root, 'active', version), False)
    if healthy:
        result = rl.apply(params(root, 'healthy', version), False)
    return result


def ledger(root: Path) -> dict:
    return json.loads((root / 'releases.json').read_text())


def status(root: Path, version: str) -> str:
    return next(r['status'] for r in ledger(root)['releases'] if r['version'] == version)


def test_stage_records_once(root: Path) -> None:
    first = rl.apply(params(root, 'staged', '1.0.0', metadata={'digest': 'a'}), False)
    second = rl.apply(params(root, 'staged', '1.0.0', metadata={'digest': 'a'}), False)
    assert first['changed'] and not second['changed']
    entry = ledger(root)['releases'][0]
    assert entry['status'] == 'staged' and entry['artifact'] == str(root / 'releases' / '1.0.0')
    assert entry['metadata'] == {'digest': 'a'} and entry['created'].endswith('Z')
    assert not (root / 'current').exists(), 'staging must not switch anything'


def test_activate_switches_the_link_atomically_and_is_idempotent(root: Path) -> None:
    deploy(root, '1.0.0')
    rl.apply(params(root, 'staged', '1.1.0'), False)
    result = rl.apply(params(root, 'active', '1.1.0'), False)
    again = rl.apply(params(root, 'active', '1.1.0'), False)
    assert result['changed'] and not again['changed']
    assert os.readlink(root / 'current') == str(root / 'releases' / '1.1.0')
    assert result['current'] == '1.1.0' and result['previous'] == '1.0.0'
    assert status(root, '1.0.0') == 'healthy' and status(root, '1.1.0') == 'active'
    assert not list(root.glob('current.new-*')), 'no temporary link is left behind'


def test_activate_refuses_a_missing_directory(root: Path) -> None:
    rl.apply(params(root, 'staged', '9.9.9'), False)
    with pytest.raises(rl.LedgerError, match='directory .* does not exist'):
        rl.apply(params(root, 'active', '9.9.9'), False)


def test_healthy_only_for_the_current_release(root: Path) -> None:
    deploy(root, '1.0.0')
    rl.apply(params(root, 'staged', '1.1.0'), False)
    with pytest.raises(rl.LedgerError, match='not the current release'):
        rl.apply(params(root, 'healthy', '1.1.0'), False)
    assert rl.apply(params(root, 'healthy', '1.0.0'), False)['changed'] is False


def test_rollback_returns_to_the_last_healthy_release(root: Path) -> None:
    deploy(root, '1.0.0')
    deploy(root, '1.1.0')
    deploy(root, '1.2.0', healthy=False)
    result = rl.apply(params(root, 'rolled_back', '1.2.0', reason='HTTP 503: not ready'), False)
    assert result['changed'] and result['current'] == '1.1.0' and result['rolled_back_from'] == '1.2.0'
    assert result['artifact'] == str(root / 'releases' / '1.1.0')
    assert os.readlink(root / 'current') == str(root / 'releases' / '1.1.0')
    failed = next(r for r in ledger(root)['releases'] if r['version'] == '1.2.0')
    assert failed['status'] == 'failed' and failed['reason'] == 'HTTP 503: not ready'
    repeat = rl.apply(params(root, 'rolled_back', '1.2.0', reason='again'), False)
    assert not repeat['changed'], 'a repeated rollback of the same release changes nothing'


def test_rollback_of_a_verified_release_is_recorded_as_rolled_back(root: Path) -> None:
    deploy(root, '1.0.0')
    deploy(root, '1.1.0')
    rl.apply(params(root, 'rolled_back', reason='operator request'), False)
    assert status(root, '1.1.0') == 'rolled_back' and ledger(root)['current'] == '1.0.0'


def test_rollback_to_a_named_release_skips_the_last_healthy_one(root: Path) -> None:
    for version in ('1.0.0', '1.1.0', '1.2.0'):
        deploy(root, version)
    result = rl.apply(params(root, 'rolled_back', to='1.0.0', reason='operator request'), False)
    assert result['changed'] and result['current'] == '1.0.0' and result['rolled_back_from'] == '1.2.0'
    assert os.readlink(root / 'current') == str(root / 'releases' / '1.0.0')
    assert status(root, '1.2.0') == 'rolled_back' and status(root, '1.1.0') == 'healthy'
    assert ledger(root)['last_healthy'] == '1.0.0'
    again = rl.apply(params(root, 'rolled_back', to='1.0.0', reason='operator request'), False)
    assert not again['changed'], 'naming the release that serves changes nothing'
    # A rolled-back release passed its checks once: it can be named again.
    forward = rl.apply(params(root, 'rolled_back', to='1.2.0'), False)
    assert forward['current'] == '1.2.0' and status(root, '1.2.0') == 'healthy'
    assert status(root, '1.0.0') == 'rolled_back'


def test_rollback_to_an_agent_version_picks_its_latest_verified_release(root: Path) -> None:
    for name in ('1.0.0+aaa', '1.0.0+bbb', '1.1.0+ccc'):
        (root / 'releases' / name).mkdir()
        rl.apply(params(root, 'staged', name, metadata={'agent_version': name.split('+', maxsplit=1)[0]}), False)
        rl.apply(params(root, 'active', name), False)
        rl.apply(params(root, 'healthy', name), False)
    result = rl.apply(params(root, 'rolled_back', to='1.0.0'), False)
    assert result['current'] == '1.0.0+bbb'


@pytest.mark.parametrize('to', ['0.9.0', '1.1.0'])
def test_rollback_to_a_release_not_kept_or_never_verified_is_refused(root: Path, to: str) -> None:
    deploy(root, '1.0.0')
    deploy(root, '1.1.0', healthy=False)
    rl.apply(params(root, 'rolled_back', '1.1.0', reason='HTTP 503'), False)  # 1.1.0 failed
    deploy(root, '1.2.0')
    before = (root / 'releases.json').read_text()
    with pytest.raises(rl.LedgerError) as refused:
        rl.apply(params(root, 'rolled_back', to=to), False)
    assert str(refused.value) == (f'release {to} is not kept on this host as a release that passed its checks; '
                                  f'kept, newest first: 1.2.0, 1.0.0. Nothing was changed.')
    assert refused.value.details['kept'] == ['1.0.0', '1.2.0']
    assert (root / 'releases.json').read_text() == before
    assert os.readlink(root / 'current') == str(root / 'releases' / '1.2.0')


def test_a_failed_first_release_leaves_nothing_current(root: Path) -> None:
    deploy(root, '1.0.0', healthy=False)
    result = rl.apply(params(root, 'rolled_back', '1.0.0', reason='crashed at import'), False)
    assert result['current'] is None and result['rolled_back_from'] == '1.0.0'
    assert status(root, '1.0.0') == 'failed' and ledger(root)['current'] is None
    assert next(r['reason'] for r in ledger(root)['releases']) == 'crashed at import'
    # Nothing claims to be serving: the link is gone with it.
    assert not os.path.lexists(root / 'current')


def test_reverting_the_only_verified_release_changes_nothing(root: Path) -> None:
    deploy(root, '1.0.0')
    before = (root / 'releases.json').read_text()
    with pytest.raises(rl.LedgerError, match='no other release was ever verified healthy'):
        rl.apply(params(root, 'rolled_back', reason='x'), False)
    assert (root / 'releases.json').read_text() == before
    assert os.readlink(root / 'current') == str(root / 'releases' / '1.0.0')


def test_restaging_a_failed_release_makes_it_staged(root: Path) -> None:
    deploy(root, '1.0.0')
    deploy(root, '1.1.0', healthy=False)
    rl.apply(params(root, 'rolled_back', '1.1.0', reason='x'), False)
    assert rl.apply(params(root, 'staged', '1.1.0'), False)['changed']
    assert status(root, '1.1.0') == 'staged'


def test_prune_keeps_current_and_last_healthy(root: Path) -> None:
    for index in range(6):
        (root / 'releases' / f'2.0.{index}').mkdir()
    deploy(root, '2.0.0')                    # the last healthy one, oldest of all
    for index in range(1, 6):
        deploy(root, f'2.0.{index}', healthy=False)
        if index < 5:
            rl.apply(params(root, 'rolled_back', f'2.0.{index}', reason='bad'), False)
    result = rl.apply(params(root, 'pruned', keep=2), False)
    kept = {r['version'] for r in ledger(root)['releases']}
    assert kept == {'2.0.0', '2.0.5'}, kept
    assert set(result['removed']) == {'2.0.1', '2.0.2', '2.0.3', '2.0.4'}
    assert not (root / 'releases' / '2.0.1').exists() and (root / 'releases' / '2.0.0').is_dir()
    assert not rl.apply(params(root, 'pruned', keep=2), False)['changed']


def test_healthy_with_prune_verifies_and_prunes_in_one_call(root: Path) -> None:
    for index in range(4):
        (root / 'releases' / f'2.0.{index}').mkdir()
        deploy(root, f'2.0.{index}')
    (root / 'releases' / '2.1.0').mkdir()
    rl.apply(params(root, 'staged', '2.1.0'), False)
    rl.apply(params(root, 'active', '2.1.0'), False)
    result = rl.apply(params(root, 'healthy', '2.1.0', keep=2, prune=True), False)
    assert result['changed'] and result['last_healthy'] == '2.1.0'
    assert result['removed'] == ['2.0.0', '2.0.1', '2.0.2']
    # What the method's prune step needs of each: its artifact, gone from the ledger now.
    assert [r['artifact'] for r in result['removed_releases']] == [str(root / 'releases' / f'2.0.{i}') for i in range(3)]
    assert {r['version'] for r in ledger(root)['releases']} == {'2.0.3', '2.1.0'}
    assert status(root, '2.1.0') == 'healthy' and not (root / 'releases' / '2.0.0').exists()
    # Without prune, healthy prunes nothing.
    (root / 'releases' / '2.2.0').mkdir()
    deploy(root, '2.2.0')
    assert len(ledger(root)['releases']) == 3


def test_prune_drops_failed_releases_before_an_older_healthy_one(root: Path) -> None:
    deploy(root, '1.0.0')
    deploy(root, '1.1.0', healthy=False)
    rl.apply(params(root, 'rolled_back', '1.1.0', reason='bad'), False)
    (root / 'releases' / '2.0.0').mkdir()
    deploy(root, '1.2.0')
    deploy(root, '2.0.0')
    result = rl.apply(params(root, 'pruned', keep=3), False)
    assert result['removed'] == ['1.1.0']
    assert {r['version'] for r in ledger(root)['releases']} == {'1.0.0', '1.2.0', '2.0.0'}
    assert rl.apply(params(root, 'pruned', keep=2), False)['removed'] == ['1.0.0']


def test_prune_never_deletes_outside_the_releases_directory(root: Path, tmp_path_factory) -> None:
    outside = tmp_path_factory.mktemp('precious')
    rl.apply(params(root, 'staged', 'x1', artifact=str(outside)), False)
    deploy(root, '1.0.0')
    deploy(root, '1.1.0')
    with pytest.raises(rl.LedgerError, match='refusing to delete'):
        rl.apply(params(root, 'pruned', keep=2), False)
    assert outside.is_dir()


def test_check_mode_reports_but_writes_nothing(root: Path) -> None:
    deploy(root, '1.0.0')
    rl.apply(params(root, 'staged', '1.1.0'), False)
    before = (root / 'releases.json').read_text()
    result = rl.apply(params(root, 'active', '1.1.0'), True)
    assert result['changed'] and result['current'] == '1.1.0'
    assert (root / 'releases.json').read_text() == before
    assert os.readlink(root / 'current') == str(root / 'releases' / '1.0.0')


def test_diff_shows_ledger_and_link_before_and_after(root: Path) -> None:
    deploy(root, '1.0.0')
    rl.apply(params(root, 'staged', '1.1.0'), False)
    diff = rl.apply(params(root, 'active', '1.1.0'), True)['diff']
    before, after = json.loads(diff['before']), json.loads(diff['after'])
    assert before['current_link'].endswith('/1.0.0') and after['current_link'].endswith('/1.1.0')
    assert before['current'] == '1.0.0' and after['current'] == '1.1.0'


@pytest.mark.parametrize('version', ['../etc', 'a/b', '.hidden', 'x' * 200, '1..2', 'v 1'])
def test_unsafe_versions_are_refused(root: Path, version: str) -> None:
    with pytest.raises(rl.LedgerError, match='not a safe release name'):
        rl.apply(params(root, 'staged', version), False)
    assert not (root / 'releases.json').exists()


@pytest.mark.parametrize(('content', 'message'), [
    ('{"releases": [', 'not valid JSON'),
    ('{"hello": "world"}', 'not an agentops.deploy release ledger'),
    ('[1, 2]', 'not an agentops.deploy release ledger'),
    (json.dumps({**rl.empty_ledger(), 'schema_version': 99}), 'schema_version 99'),
    (json.dumps({**rl.empty_ledger(), 'releases': [{'version': 'a', 'status': 'weird'}]}), 'malformed'),
    (json.dumps({**rl.empty_ledger(), 'current': 'ghost'}), 'not a listed release'),
])
def test_corrupt_or_foreign_ledgers_are_never_overwritten(root: Path, content: str, message: str) -> None:
    (root / 'releases.json').write_text(content)
    with pytest.raises(rl.LedgerError, match=message):
        rl.apply(params(root, 'staged', '1.0.0'), False)
    assert (root / 'releases.json').read_text() == content


def test_a_crash_before_the_rename_leaves_the_old_ledger(root: Path, monkeypatch) -> None:
    deploy(root, '1.0.0')
    before = (root / 'releases.json').read_text()

    def crash(*_args):
        raise OSError('power cut')
    monkeypatch.setattr(rl.os, 'replace', crash)
    with pytest.raises(OSError, match='power cut'):
        rl.write_atomic(str(root / 'releases.json'), {'garbage': True})
    monkeypatch.undo()
    assert (root / 'releases.json').read_text() == before
    assert rl.read(str(root / 'releases.json'))['current'] == '1.0.0'
    assert not list(root.glob('.releases.json.*.tmp')), 'the temp file is cleaned up'


def test_a_leftover_temp_file_does_not_disturb_the_ledger(root: Path) -> None:
    deploy(root, '1.0.0')
    (root / '.releases.json.abc.tmp').write_text('{"half": ')
    assert rl.apply(params(root, 'query'), False)['current'] == '1.0.0'


def _stage_many(root: str, prefix: str, count: int) -> None:
    for index in range(count):
        rl.apply({**params(Path(root), 'staged', f'{prefix}{index}'), 'kind': 'image', 'artifact': 'img'}, False)


def test_two_writers_lose_no_update(root: Path) -> None:
    context = multiprocessing.get_context('fork')
    writers = [context.Process(target=_stage_many, args=(str(root), prefix, 25)) for prefix in ('a', 'b')]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    assert len(ledger(root)['releases']) == 50


def test_lock_timeout_names_the_lock(root: Path) -> None:
    import fcntl
    lock = open(root / 'releases.json.lock', 'a+', encoding='utf-8')
    fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
    try:
        with pytest.raises(rl.LedgerError, match='releases.json.lock'):
            rl.apply({**params(root, 'staged', '1.0.0'), 'lock_timeout': 0.3}, False)
    finally:
        lock.close()


def test_image_releases_only_touch_the_ledger(root: Path) -> None:
    image = {'kind': 'image'}
    rl.apply({**params(root, 'staged', '1.0.0', artifact='agent:1.0.0', metadata={'image_id': 'sha256:a'}), **image}, False)
    rl.apply({**params(root, 'active', '1.0.0'), **image}, False)
    rl.apply({**params(root, 'healthy', '1.0.0'), **image}, False)
    rl.apply({**params(root, 'staged', '1.1.0', artifact='agent:1.1.0', metadata={'image_id': 'sha256:b'}), **image}, False)
    rl.apply({**params(root, 'active', '1.1.0'), **image}, False)
    result = rl.apply({**params(root, 'rolled_back', '1.1.0', reason='bad'), **image}, False)
    assert result['artifact'] == 'agent:1.0.0' and result['metadata'] == {'image_id': 'sha256:a'}
    assert not (root / 'current').exists()


def test_a_release_that_failed_its_trial_is_recorded_without_a_switch(root: Path) -> None:
    deploy(root, '1.0.0')
    rl.apply(params(root, 'staged', '1.1.0'), False)
    result = rl.apply(params(root, 'failed', '1.1.0', reason='crashed on its trial port'), False)
    assert result['changed'] and result['current'] == '1.0.0'
    assert status(root, '1.1.0') == 'failed' and os.readlink(root / 'current') == str(root / 'releases' / '1.0.0')
    with pytest.raises(rl.LedgerError, match='is current: roll it back'):
        rl.apply(params(root, 'failed', '1.0.0', reason='x'), False)


def test_pruning_the_previous_release_leaves_a_readable_ledger(root: Path) -> None:
    deploy(root, '1.0.0')
    deploy(root, '1.1.0', healthy=False)
    rl.apply(params(root, 'rolled_back', '1.1.0', reason='failed'), False)
    assert ledger(root)['previous'] == '1.1.0'
    result = rl.apply(params(root, 'pruned', keep=1), False)
    assert result['removed'] == ['1.1.0'] and ledger(root)['previous'] is None
    # The next run reads it without complaint.
    assert rl.apply(params(root, 'query'), False)['current'] == '1.0.0'
