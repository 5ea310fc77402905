# -*- coding: utf-8 -*-
# Copyright: agentops.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The logic of agentops.deploy.agent_release: a per-host release ledger.

The ledger is a JSON file listing releases and which one is current. Every
change happens under an exclusive lock and lands by an atomic rename, so a
crash leaves either the old or the new ledger, never half of one. Directory
releases also switch a `current` symlink by renaming a new link over it.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
import time
from datetime import datetime, timezone

from ansible_collections.agentops.deploy.plugins.module_utils import deploy_lock

SCHEMA = 'agentops.deploy/release-ledger'
SCHEMA_VERSION = 1
STATUSES = ('staged', 'active', 'healthy', 'failed', 'rolled_back', 'retired')
_SAFE_VERSION = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$')


class LedgerError(Exception):
    """A request the ledger refuses; the message says what to fix."""

    def __init__(self, message: str, **details):
        super().__init__(message)
        # Returned with the failure, e.g. the holder of a deploy lock.
        self.details = details


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def check_version(version: str) -> str:
    if not isinstance(version, str) or not _SAFE_VERSION.match(version) or '..' in version:
        raise LedgerError(
            f'version {version!r} is not a safe release name: use letters, digits, ".", "_", "+" '
            f'or "-", starting with a letter or digit, without ".." (it names a directory)')
    return version


def empty_ledger() -> dict:
    return {'schema': SCHEMA, 'schema_version': SCHEMA_VERSION, 'current': None, 'previous': None,
            'last_healthy': None, 'releases': []}


def validate(data, path: str) -> dict:
    """Refuse anything that is not a ledger this code wrote."""
    if not isinstance(data, dict) or data.get('schema') != SCHEMA:
        raise LedgerError(f'{path} is not an agentops.deploy release ledger (no "schema": "{SCHEMA}"); '
                          f'it was left untouched: move it aside or point the module at another ledger path')
    if data.get('schema_version') != SCHEMA_VERSION:
        raise LedgerError(f'{path} has schema_version {data.get("schema_version")!r}; this collection reads '
                          f'version {SCHEMA_VERSION}: upgrade the collection or move the ledger aside')
    releases = data.get('releases')
    if not isinstance(releases, list) or not all(
            isinstance(r, dict) and isinstance(r.get('version'), str) and r.get('status') in STATUSES
            for r in releases):
        raise LedgerError(f'{path} has a malformed "releases" list (each entry needs a version and a status '
                          f'among {", ".join(STATUSES)}); it was left untouched')
    names = [r['version'] for r in releases]
    if len(names) != len(set(names)):
        raise LedgerError(f'{path} lists a release twice; it was left untouched')
    for key in ('current', 'previous', 'last_healthy'):
        if data.get(key) is not None and data[key] not in names:
            raise LedgerError(f'{path}: "{key}" is {data[key]!r}, which is not a listed release; '
                              f'it was left untouched')
    return data


def read(path: str) -> dict:
    """The ledger at path; an empty one when the file does not exist."""
    try:
        with open(path, encoding='utf-8') as handle:
            text = handle.read()
    except FileNotFoundError:
        return empty_ledger()
    try:
        data = json.loads(text)
    except ValueError as error:
        raise LedgerError(f'{path} is not valid JSON ({error}); it was left untouched: '
                          f'restore it from a backup or move it aside') from None
    return validate(data, path)


def write_atomic(path: str, data: dict) -> None:
    """Temp file in the same directory, fsync, rename over, fsync the directory."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write('\n')
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def locked(path: str, timeout: float, sleep=time.sleep, clock=time.monotonic):
    """Exclusive lock on `<ledger>.lock`, waited for up to `timeout` seconds."""
    lock_path = path + '.lock'
    handle = open(lock_path, 'a+', encoding='utf-8')  # pylint: disable=consider-using-with
    try:
        give_up = clock() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if clock() >= give_up:
                    raise LedgerError(f'another deploy holds {lock_path} for more than {timeout:g} s; '
                                      f'wait for it to finish or raise lock_timeout') from None
                sleep(0.05)
        yield
    finally:
        handle.close()


def read_link(link: str) -> str | None:
    try:
        return os.readlink(link)
    except OSError:
        return None


def switch_link(link: str, target: str) -> None:
    """Point link at target by renaming a new symlink over it: never absent."""
    temp = f'{link}.new-{os.getpid()}'
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp)
    os.symlink(target, temp)
    os.replace(temp, link)


def _verified_at(release: dict) -> str:
    """When a release last passed verification, for ordering ('' if never)."""
    return release.get('verified') or ''


def _agent_version(release: dict):
    return (release.get('metadata') or {}).get('agent_version')


class Ledger:
    """Transitions of the release ledger, on an in-memory copy."""

    def __init__(self, data: dict, kind: str, clock=now_iso):
        self.data = copy.deepcopy(data)
        self.kind = kind
        self.clock = clock

    def find(self, version: str) -> dict | None:
        return next((r for r in self.data['releases'] if r['version'] == version), None)

    def require(self, version: str) -> dict:
        release = self.find(check_version(version))
        if release is None:
            raise LedgerError(f'release {version} is not in the ledger: stage it first (state=staged)')
        return release

    @property
    def current(self) -> dict | None:
        return self.find(self.data['current']) if self.data['current'] else None

    def stage(self, version: str, artifact: str, metadata: dict) -> None:
        check_version(version)
        release = self.find(version)
        if release is None:
            self.data['releases'].append({
                'version': version, 'artifact': artifact, 'kind': self.kind, 'status': 'staged',
                'created': self.clock(), 'activated': None, 'verified': None, 'reason': None,
                'metadata': metadata})
            return
        same = release['artifact'] == artifact and release.get('metadata') == metadata
        if release['status'] in ('active', 'healthy') and version == self.data['current'] and not same:
            raise LedgerError(f'release {version} is serving with a different artifact or metadata; '
                              f'stage the change under a new version')
        if release['status'] in ('failed', 'rolled_back', 'retired'):
            release.update(status='staged', reason=None)
        if not same:
            release.update(artifact=artifact, metadata=metadata)

    def activate(self, version: str) -> None:
        release = self.require(version)
        if self.data['current'] == version:
            return
        previous = self.current
        if previous is not None and previous['status'] == 'active':
            previous['status'] = 'retired'
        self.data['previous'] = self.data['current']
        self.data['current'] = version
        release.update(status='active', activated=self.clock(), reason=None)

    def mark_healthy(self, version: str) -> None:
        release = self.require(version)
        if self.data['current'] != version:
            raise LedgerError(f'release {version} is not the current release ({self.data["current"]}): '
                              f'only the serving release can be verified healthy')
        if release['status'] != 'healthy':
            release.update(status='healthy', verified=self.clock())
        self.data['last_healthy'] = version

    def reject(self, version: str, reason: str | None) -> None:
        """A release that failed before it was ever made current (its trial)."""
        release = self.require(version)
        if self.data['current'] == version:
            raise LedgerError(f'release {version} is current: roll it back (state=rolled_back) instead')
        release.update(status='failed', reason=reason or 'failed before it was made current')

    def rollback_target(self, failed: str) -> dict | None:
        healthy = [r for r in self.data['releases'] if r['status'] == 'healthy' and r['version'] != failed]
        last = self.find(self.data['last_healthy']) if self.data['last_healthy'] else None
        if last is not None and last in healthy:
            return last
        return max(healthy, key=_verified_at, default=None)

    def kept_verified(self) -> list:
        """Releases still kept that once passed verification: those a rollback may name."""
        return [r for r in self.data['releases'] if r.get('verified') and r['status'] != 'failed']

    def named_target(self, to: str) -> dict:
        """The kept, once-verified release named `to` (its name, or its agent version: the latest verified)."""
        kept = self.kept_verified()
        named = [r for r in kept if to in (r['version'], str(_agent_version(r) or ''))]
        if not named:
            listed = ', '.join(
                r['version'] + ('' if _agent_version(r) in (None, r['version']) else f' (version {_agent_version(r)})')
                for r in sorted(kept, key=_verified_at, reverse=True)) or 'none'
            raise LedgerError(f'release {to} is not kept on this host as a release that passed its checks; '
                              f'kept, newest first: {listed}. Nothing was changed.', kept=[r['version'] for r in kept])
        return max(named, key=_verified_at)

    def _step_down(self, failed: dict, reason: str) -> None:
        """The current release leaves: rolled back by choice if it had passed verification, else failed."""
        failed.update(status='rolled_back' if failed['status'] == 'healthy' else 'failed', reason=reason)
        self.data['previous'] = failed['version']

    def roll_back_to(self, to: str, reason: str | None) -> None:
        """Make the named kept release current; the current one is rolled back (or failed, if never verified)."""
        target = self.named_target(to)
        failed = self.current
        if failed is target:
            return  # already serving it
        if failed is not None:
            self._step_down(failed, reason or f'rolled back to {target["version"]}')
        self.data['current'] = self.data['last_healthy'] = target['version']
        target.update(status='healthy', activated=self.clock(), reason=None)

    def roll_back(self, version: str | None, reason: str | None) -> None:
        """Mark the current release failed and make the last healthy one current."""
        failed = self.current
        if version is not None and (failed is None or failed['version'] != version):
            release = self.require(version)
            if release['status'] in ('failed', 'rolled_back'):
                return  # already rolled back: nothing to do
            raise LedgerError(f'release {version} is not the current release ({self.data["current"]}); '
                              f'only the serving release can be rolled back')
        if failed is None:
            raise LedgerError('no release is current, so there is nothing to roll back')
        target = self.rollback_target(failed['version'])
        if target is None and failed['status'] == 'healthy':
            raise LedgerError(f'release {failed["version"]} cannot be rolled back: no other release was ever '
                              f'verified healthy. Nothing was changed.')
        self._step_down(failed, reason or 'rolled back')
        # A first release that failed leaves nothing current: nothing may claim to be serving.
        self.data['current'] = target['version'] if target else None
        if target is not None:
            self.data['last_healthy'] = target['version']
            target['activated'] = self.clock()

    def prune(self, keep: int) -> list:
        """Drop releases beyond `keep`; never current or last healthy.

        Releases that never passed verification go first, oldest first; then
        the oldest healthy ones, so the previous good release stays available
        for a rollback as long as possible.
        """
        protected = {self.data['current'], self.data['last_healthy']}
        candidates = sorted(
            (r for r in self.data['releases'] if r['version'] not in protected),
            key=lambda r: (r['status'] == 'healthy', r.get('created') or ''))
        excess = max(len(self.data['releases']) - keep, 0)
        removed = candidates[:excess]
        self.data['releases'] = [r for r in self.data['releases'] if r not in removed]
        # `previous` only says what was current before the last switch: a
        # pruned one is forgotten, or the ledger would name a missing release.
        if self.data['previous'] in {r['version'] for r in removed}:
            self.data['previous'] = None
        return removed


def current_release(data: dict) -> dict | None:
    return next((r for r in data['releases'] if r['version'] == data['current']), None)


def summary(data: dict) -> dict:
    current = current_release(data)
    return {
        'current': data['current'],
        'previous': data['previous'],
        'last_healthy': data['last_healthy'],
        'releases': data['releases'],
        'artifact': current['artifact'] if current else None,
        'metadata': current.get('metadata') if current else None,
    }


def remove_release_directory(artifact: str, releases_dir: str) -> None:
    """Delete a pruned release directory, only ever inside releases_dir."""
    real_dir = os.path.realpath(releases_dir)
    real = os.path.realpath(artifact)
    if os.path.dirname(real) != real_dir:
        raise LedgerError(f'refusing to delete {artifact}: it is not a directory directly under {releases_dir}')
    if os.path.isdir(real):
        shutil.rmtree(real)


def read_lock(path: str) -> dict | None:
    """The deploy lock at path; None when nobody holds it."""
    try:
        with open(path, encoding='utf-8') as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except ValueError as error:
        raise LedgerError(f'the deploy lock {path} is not valid JSON ({error}); it was left untouched: '
                          f'remove it once you are sure no deploy runs on this host') from None
    if not isinstance(data, dict) or not isinstance(data.get('run'), dict) or 'expires' not in data:
        raise LedgerError(f'{path} is not an agentops.deploy deploy lock; it was left untouched: '
                          f'remove it once you are sure no deploy runs on this host')
    return data


def interrupted(data: dict) -> dict | None:
    """The current release when a run made it current and stopped before verifying it."""
    current = current_release(data)
    if current is None or current['status'] != 'active':
        return None
    return {'version': current['version'], 'run': current.get('run'), 'activated': current.get('activated'),
            'artifact': current['artifact'], 'metadata': current.get('metadata'), 'created': current.get('created')}


def acquire_lock(params: dict, paths: dict, check_mode: bool, sleep=time.sleep, clock=time.time) -> dict:
    """state=locked: take (or renew) the deploy lock, waiting up to lock_wait for another run."""
    run = params.get('run')
    try:
        deploy_lock.check_run(run)
    except ValueError as error:
        raise LedgerError(f'state=locked needs {error}') from None
    give_up = clock() + (params.get('lock_wait') or 0)
    while True:
        with locked(paths['ledger'], params.get('lock_timeout', 30)):
            before = read(paths['ledger'])
            lock = read_lock(paths['lock'])
            try:
                new_lock, superseded, why = deploy_lock.acquire(
                    lock, run, params.get('lock_lease') or 900, clock(),
                    break_id=params.get('lock_break'), gone_id=params.get('lock_gone'))
            except deploy_lock.LockHeld as held:
                if clock() >= give_up:
                    waited = f' after waiting {params.get("lock_wait") or 0:g} s' if params.get('lock_wait') else ''
                    raise LedgerError(f'{held}{waited}. Nothing was changed on this host.',
                                      holder=held.holder) from None
            else:
                after = dict(before, runs=deploy_lock.record_start(before.get('runs'), run, now_iso(), superseded, why))
                if not check_mode:
                    write_atomic(paths['lock'], new_lock)
                    if after != before:
                        write_atomic(paths['ledger'], after)
                result = summary(after)
                result.update(changed=False, runs=after['runs'], lock=new_lock, interrupted=interrupted(after),
                              taken_over=superseded, taken_over_because=why)
                return result
        # Outside the ledger's flock: the holder needs it to finish.
        sleep(1)


def apply(params: dict, check_mode: bool) -> dict:
    """Run one state transition; returns the module result (changed, diff...)."""
    root = params['root']
    ledger_path = params.get('ledger') or os.path.join(root, 'releases.json')
    releases_dir = params.get('releases_dir') or os.path.join(root, 'releases')
    link = params.get('current_link') or os.path.join(root, 'current')
    lock_path = os.path.join(os.path.dirname(os.path.abspath(ledger_path)), 'deploy.lock')
    kind, state, version = params['kind'], params['state'], params.get('version')
    run = params.get('run')

    if state in ('staged', 'active', 'healthy', 'failed') and not version:
        raise LedgerError(f'state={state} needs a version')
    if version:
        check_version(version)
    if not os.path.isdir(os.path.dirname(os.path.abspath(ledger_path))):
        if state == 'query':  # a host never deployed to: an empty ledger
            return dict(summary(empty_ledger()), changed=False, removed=[], removed_releases=[], ledger=ledger_path, runs=[], lock=None,
                        interrupted=None, diff={})
        raise LedgerError(f'the directory of the ledger {ledger_path} does not exist: create {root} first')
    if state == 'locked':
        return acquire_lock(params, {'ledger': ledger_path, 'lock': lock_path}, check_mode)

    context = contextlib.nullcontext() if state == 'query' else locked(ledger_path, params.get('lock_timeout', 30))
    with context:
        before = read(ledger_path)
        lock_before = read_lock(lock_path)
        lock_after = lock_before
        if state != 'query':
            # Only the run that holds the deploy lock changes this host.
            if run and check_mode:
                # Check mode took no lock and writes nothing. Taking it
                # (state=locked) decided already: a live holder stopped the
                # run there, and a stale one (a killed run's) it would take
                # over still holds the file, which is no reason to fail here.
                pass
            elif run:
                try:
                    lock_after = deploy_lock.require_holder(lock_before, run.get('id'), time.time(),
                                                            params.get('lock_lease'))
                except deploy_lock.NotHolder as error:
                    raise LedgerError(str(error)) from None
            else:
                refusal = deploy_lock.blocks_unlocked_change(lock_before, time.time())
                if refusal:
                    raise LedgerError(refusal, holder=lock_before['run'])
        ledger = Ledger(before, kind)
        removed = []
        if state == 'staged':
            artifact = params.get('artifact') or (os.path.join(releases_dir, version) if kind == 'directory' else None)
            if not artifact:
                raise LedgerError('state=staged of an image release needs artifact (the image reference or id)')
            ledger.stage(version, artifact, params.get('metadata') or {})
        elif state == 'active':
            release = ledger.require(version)
            if kind == 'directory' and not os.path.isdir(release['artifact']):
                raise LedgerError(f'release {version} cannot be activated: its directory {release["artifact"]} '
                                  f'does not exist (stage it again)')
            switching = ledger.data['current'] != version
            ledger.activate(version)
            if run and switching:
                # Which run made it current: a later run that finds it unverified names it.
                release['run'] = run['id']
                ledger.data['runs'] = deploy_lock.record_release(ledger.data.get('runs'), run['id'], version)
        elif state == 'healthy':
            ledger.mark_healthy(version)
            if params.get('prune'):
                # Verified, then pruned: one ledger write, one module run fewer per release.
                removed = ledger.prune(params.get('keep', 5))
        elif state == 'rolled_back' and params.get('to'):
            ledger.roll_back_to(params['to'], params.get('reason'))
            artifact = ledger.current['artifact']
            if kind == 'directory' and not os.path.isdir(artifact):
                raise LedgerError(f'release {ledger.current["version"]} cannot be rolled back to: its directory '
                                  f'{artifact} does not exist. Nothing was changed.')
        elif state == 'rolled_back':
            ledger.roll_back(version, params.get('reason'))
        elif state == 'failed':
            ledger.reject(version, params.get('reason'))
        elif state == 'pruned':
            removed = ledger.prune(params.get('keep', 5))
        elif state == 'unlocked':
            if run:
                ledger.data['runs'] = deploy_lock.record_end(ledger.data.get('runs'), run['id'],
                                                             params.get('outcome') or 'finished',
                                                             params.get('reason'), version, now_iso())
            lock_after = None

        after = ledger.data
        link_before = read_link(link) if kind == 'directory' else None
        link_after = link_before
        # Switches move the link; other states only create it when it is missing.
        if kind == 'directory' and after['current'] and (state in ('active', 'rolled_back') or link_before is None):
            link_after = ledger.find(after['current'])['artifact']
        elif kind == 'directory' and after['current'] is None:
            link_after = None
        # The lock and the runs record are bookkeeping of the run, not a change to the host.
        changed = ({k: v for k, v in after.items() if k != 'runs'} != {k: v for k, v in before.items() if k != 'runs'}
                   or link_after != link_before)

        if not check_mode:
            if kind == 'directory' and link_after != link_before:
                if link_after is None:
                    os.unlink(link)
                else:
                    switch_link(link, link_after)
            for release in removed:
                if kind == 'directory' and release.get('artifact'):
                    remove_release_directory(release['artifact'], releases_dir)
            if after != before:
                write_atomic(ledger_path, after)
            if state == 'unlocked' and lock_before is not None:
                os.unlink(lock_path)
            elif lock_after is not None and lock_after != lock_before:
                write_atomic(lock_path, lock_after)

    result = summary(after)
    result.update(changed=changed, removed=[r['version'] for r in removed], removed_releases=removed, ledger=ledger_path)
    if state == 'rolled_back':
        result['rolled_back_from'] = after['previous']
    if state in ('query', 'unlocked'):
        result.update(runs=after.get('runs', []), lock=lock_after, interrupted=interrupted(after))
    result['diff'] = {
        'before': json.dumps({'current_link': link_before, **before}, indent=2, sort_keys=True) + '\n',
        'after': json.dumps({'current_link': link_after, **after}, indent=2, sort_keys=True) + '\n',
        'before_header': ledger_path, 'after_header': ledger_path,
    }
    return result
