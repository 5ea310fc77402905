# -*- coding: utf-8 -*-
# Copyright: agentops.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy lock of a target, and the record of the runs that held it.

A deploy holds the lock of its target from staging to the end of its
verification or rollback, across many module calls, so it cannot be a
flock held by one process. It is a small JSON file naming the run that holds
it, with a lease: every call the run makes renews it. A lock is stale when
its lease ran out, when the controller that holds it reports the holder's
process gone, or when an operator breaks it by run id; a stale lock is taken
over and the takeover recorded. The ledger keeps the last runs with their
outcome and reason.

Pure logic: the caller reads and writes files (under the ledger's flock).
"""

from __future__ import annotations

import copy

RUNS_KEPT = 20
# What a holder record and a run entry keep of the run that a controller describes.
RUN_FIELDS = ('id', 'controller', 'user', 'pid', 'started', 'version')


class LockHeld(Exception):
    """Another live run holds the lock."""

    def __init__(self, message: str, holder: dict):
        super().__init__(message)
        self.holder = holder


class NotHolder(Exception):
    """This run does not hold the lock (any more): it must change nothing."""


def describe(run: dict | None) -> str:
    if not run:
        return 'no run'
    who = f"{run.get('user') or '?'}@{run.get('controller') or '?'}"
    started = f", started {run['started']}" if run.get('started') else ''
    version = f", deploying {run['version']}" if run.get('version') else ''
    return f"run {run.get('id')} ({who}, pid {run.get('pid', '?')}{started}{version})"


def check_run(run) -> dict:
    if not isinstance(run, dict) or not run.get('id'):
        raise ValueError('run must be a dict with at least an id (agentops.deploy.deploy_run gives one)')
    return {key: run.get(key) for key in RUN_FIELDS}


def holder_record(run: dict, lease: float, now: float, acquired: float | None = None) -> dict:
    return {'run': check_run(run), 'lease': lease, 'acquired': acquired if acquired is not None else now,
            'renewed': now, 'expires': now + lease}


def stale_reason(lock: dict, now: float, break_id: str | None, gone_id: str | None) -> str | None:
    """Why a lock held by another run may be taken over; None while its holder may be alive."""
    holder = lock['run']['id']
    if break_id and break_id == holder:
        return 'an operator broke its lock (agent_deploy_lock_break)'
    if gone_id and gone_id == holder:
        return 'its process is gone from the controller that started it'
    if now >= lock['expires']:
        return f"its lease of {lock['lease']:g} s ran out {now - lock['expires']:.0f} s ago"
    return None


def acquire(lock: dict | None, run: dict, lease: float, now: float,
            break_id: str | None = None, gone_id: str | None = None) -> tuple[dict, dict | None, str | None]:
    """(new lock, the holder taken over from or None, why it was stale).

    Raises LockHeld while another run may still be alive.
    """
    run = check_run(run)
    if lock is None:
        return holder_record(run, lease, now), None, None
    if lock['run']['id'] == run['id']:
        return holder_record(run, lease, now, acquired=lock.get('acquired')), None, None
    why = stale_reason(lock, now, break_id, gone_id)
    if why is None:
        raise LockHeld(
            f"{describe(lock['run'])} holds the deploy lock; its lease runs out in {lock['expires'] - now:.0f} s "
            f"if it stops renewing it. Wait for it, or, if you know it is gone, re-run with "
            f"-e agent_deploy_lock_break={lock['run']['id']}", lock['run'])
    return holder_record(run, lease, now), lock['run'], why


def require_holder(lock: dict | None, run_id: str, now: float, lease: float | None = None) -> dict:
    """The renewed lock when run_id holds it; NotHolder otherwise."""
    if lock is None or lock['run']['id'] != run_id:
        taken = f"{describe(lock['run'])} holds it now" if lock else 'nobody holds it now'
        raise NotHolder(f'run {run_id} no longer holds the deploy lock ({taken}): it was superseded, and changed '
                        f'nothing more')
    renewed = copy.deepcopy(lock)
    renewed['renewed'] = now
    renewed['expires'] = now + (lease if lease is not None else lock['lease'])
    return renewed


def blocks_unlocked_change(lock: dict | None, now: float) -> str | None:
    """A change made without a run id is refused while a live run holds the lock."""
    if lock is not None and now < lock['expires']:
        return (f"{describe(lock['run'])} holds the deploy lock: a change outside that run is refused "
                f"(pass run, or wait for it)")
    return None


def record_start(runs: list, run: dict, at: str, superseded: dict | None, why: str | None) -> list:
    """The runs list with this run started and, on a takeover, the previous holder's outcome."""
    runs = copy.deepcopy(runs or [])
    if superseded is not None:
        entry = next((r for r in reversed(runs) if r['id'] == superseded['id']), None)
        if entry is None:
            entry = {**check_run(superseded), 'release': None, 'outcome': 'running', 'reason': None, 'finished': None}
            runs.append(entry)
        if entry['outcome'] == 'running':
            entry.update(outcome='superseded', finished=at,
                         reason=f"superseded by run {run['id']} at {at}: {why}")
    if not any(r['id'] == run['id'] for r in runs):
        runs.append({**check_run(run), 'release': None, 'outcome': 'running', 'reason': None, 'finished': None})
    return runs[-RUNS_KEPT:]


def record_release(runs: list, run_id: str, release: str) -> list:
    runs = copy.deepcopy(runs or [])
    for entry in runs:
        if entry['id'] == run_id:
            entry['release'] = release
    return runs


def record_end(runs: list, run_id: str, outcome: str, reason: str | None, release: str | None, at: str) -> list:
    runs = copy.deepcopy(runs or [])
    for entry in runs:
        if entry['id'] == run_id:
            entry.update(outcome=outcome, reason=reason, finished=at)
            if release:
                entry['release'] = release
    return runs
