#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: agentops.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: agent_release
short_description: Keep a host's release ledger and switch its current release atomically
version_added: 0.1.0
description:
  - Records releases of the agent service in a JSON ledger on the host (default C(<root>/releases.json))
    and keeps which one is current, which was previous and which was last verified healthy.
  - For O(kind=directory) releases (venv_systemd), switching renames a new symlink over C(<root>/current),
    so the link is never absent. For O(kind=image) releases (docker_agent) only the ledger changes and
    the module returns the artifact to run.
  - Every change happens under an exclusive lock and is written to a temporary file that is renamed
    over the ledger, so a crash leaves the previous ledger intact. A ledger that is not valid JSON or
    was not written by this module is never overwritten; the module fails and names the file.
author:
  - agentops.deploy maintainers (@agentops)
options:
  root:
    description: Deploy root holding the ledger, the releases directory and the current link.
    type: path
    required: true
  ledger:
    description: Path of the ledger. Defaults to C(<root>/releases.json).
    type: path
  releases_dir:
    description: Directory of directory releases. Defaults to C(<root>/releases).
    type: path
  current_link:
    description: The symlink pointing at the current directory release. Defaults to C(<root>/current).
    type: path
  version:
    description:
      - Release name. It names a directory, so it must start with a letter or digit and contain only
        letters, digits, V(.), V(_), V(+) and V(-), without V(..).
      - Required for O(state=staged), O(state=active), O(state=healthy) and O(state=failed). With O(state=rolled_back)
        it names the release expected to be current, which makes a repeated rollback a no-op.
    type: str
  artifact:
    description:
      - What the release runs. A directory for O(kind=directory) (default C(<releases_dir>/<version>)),
        an image reference or id for O(kind=image) (required there).
    type: str
  kind:
    description: Directory releases switch a symlink; image releases only update the ledger.
    type: str
    choices: [directory, image]
    default: directory
  metadata:
    description: Free-form facts stored with the release, such as an image id or a configuration digest.
    type: dict
  state:
    description:
      - V(staged) records a release (re-staging a failed one makes it staged again).
      - V(active) makes the release current; for directory releases the link is switched.
      - V(healthy) marks the current release verified and remembers it as last healthy.
      - V(rolled_back) marks the current release failed (or rolled back, if it had been verified) with
        O(reason) and makes the most recent healthy release current. With no healthy release to return to
        it fails and changes nothing.
      - V(failed) records that a release which is not current failed (its trial on a side port) with O(reason);
        nothing is switched.
      - V(pruned) removes the oldest releases beyond O(keep), never the current or last healthy one,
        and deletes their directories for O(kind=directory).
      - V(query) returns the ledger and changes nothing.
      - V(locked) takes the target's deploy lock for O(run) (or renews it), waiting up to O(lock_wait) seconds
        for another run to release it. A lock whose lease ran out, whose holder O(lock_gone) names, or that
        O(lock_break) names is taken over, and the previous holder's run is recorded as superseded.
        Returns the ledger, the lock and RV(interrupted).
      - V(unlocked) releases the lock O(run) holds and records the run's O(outcome) and O(reason).
      - With O(run) set, every state but V(query) first checks that O(run) holds the lock (and renews it), so a run
        that was superseded changes nothing. Without O(run), a change is refused while another run holds a live lock.
        In check mode no lock is taken or checked after V(locked), so a stale lock that run would take over does not
        stop it.
      - With no healthy release to return to, V(rolled_back) of a release that was never verified marks it failed and
        leaves no release current (for O(kind=directory) the current link is removed), so nothing claims to serve.
    type: str
    choices: [staged, active, healthy, failed, rolled_back, pruned, query, locked, unlocked]
    default: query
  reason:
    description: Why a release is rolled back; stored in the ledger.
    type: str
  to:
    description:
      - With O(state=rolled_back), the release to return to instead of the most recent healthy one, by its name or
        by its agent version (C(metadata.agent_version)), which picks the most recently verified release of that
        version. It must still be kept and must have passed verification once; otherwise the module fails
        naming the kept releases, newest first, and changes nothing.
      - The current release is marked rolled back (failed, if it was never verified); naming the current
        release changes nothing.
    type: str
  keep:
    description: Releases to keep with O(state=pruned), or with O(state=healthy) and O(prune=true).
    type: int
    default: 5
  prune:
    description:
      - With O(state=healthy), also prune the ledger as O(state=pruned) does, after marking the release healthy, in
        the same ledger write (the release just verified is the last healthy one, so it is kept).
    type: bool
    default: false
  lock_timeout:
    description: Seconds to wait for another module call's short lock on the ledger file (C(<ledger>.lock)).
    type: float
    default: 30
  run:
    description:
      - The deploy run making the change, as the P(agentops.deploy.deploy_run#lookup) lookup describes it, with
        C(id) (required), C(controller), C(user), C(pid), C(started) and C(version).
      - It is what the deploy lock C(<root>/deploy.lock) and the ledger's C(runs) record name.
    type: dict
  lock_lease:
    description:
      - Seconds the deploy lock stays held without a renewal. Every call with O(run) renews it; once it ran out,
        another run may take the lock over.
    type: float
    default: 900
  lock_wait:
    description: Seconds O(state=locked) waits for another live run to release the lock before it fails.
    type: float
    default: 0
  lock_break:
    description: Take the lock over from this run id, whatever its lease says (an operator who knows it is gone).
    type: str
  lock_gone:
    description: Take the lock over from this run id, which the controller that started it reports gone.
    type: str
  outcome:
    description:
      - With O(state=unlocked), the run's outcome recorded in the ledger's C(runs).
      - V(provider_failing) - the release serves, not verified, because the LLM provider failed the calls of its
        bake; it was not rolled back.
    type: str
    choices: [healthy, unchanged, failed, rolled_back, staging_failed, provider_failing, finished]
extends_documentation_fragment:
  - agentops.deploy.attributes
  - agentops.deploy.attributes.actiongroup_agent
attributes:
  check_mode:
    support: full
    details:
      - Computes the new ledger and link target and reports them without writing the ledger, switching the link or
        deleting a release directory.
      - Except with O(state=query) it still waits for the ledger's lock, so the prediction is not made against a ledger another deploy is
        changing; the empty lock file C(<ledger>.lock) is created when it is missing.
      - O(state=locked) waits for and reports another run's deploy lock as it would, but takes no lock.
  diff_mode:
    support: full
    details:
      - Shows the ledger and the current link target before and after.
  idempotent:
    support: full
    details:
      - A state that already holds reports C(changed=false) and writes nothing.
seealso:
  - module: agentops.deploy.agent_health
"""

EXAMPLES = r"""
- name: Record release 1.4.0 built in /opt/agent/releases/1.4.0
  agentops.deploy.agent_release:
    root: /opt/agent
    version: 1.4.0
    state: staged

- name: Switch /opt/agent/current to it
  agentops.deploy.agent_release:
    root: /opt/agent
    version: 1.4.0
    state: active

- name: Mark it healthy after verification
  agentops.deploy.agent_release:
    root: /opt/agent
    version: 1.4.0
    state: healthy

- name: Roll back to the last healthy release
  agentops.deploy.agent_release:
    root: /opt/agent
    version: 1.4.0
    state: rolled_back
    reason: readiness failed
  register: rollback

- name: Roll back to agent version 1.2.0, if a verified release of it is still kept
  agentops.deploy.agent_release:
    root: /opt/agent
    state: rolled_back
    to: 1.2.0
    reason: operator request

- name: Record an image release with its id
  agentops.deploy.agent_release:
    root: /opt/agent
    kind: image
    version: 1.4.0
    artifact: smart-agent:1.4.0
    metadata:
      image_id: sha256:0123abcd
    state: staged
"""

RETURN = r"""
current:
  description: The current release after the change.
  returned: always
  type: str
  sample: 1.4.0
previous:
  description: The release that was current before the last switch.
  returned: always
  type: str
  sample: 1.3.0
last_healthy:
  description: The release most recently verified healthy.
  returned: always
  type: str
artifact:
  description: Artifact of the current release (directory or image).
  returned: always
  type: str
  sample: /opt/agent/releases/1.4.0
metadata:
  description:
    - Metadata of the current release, as staged with O(metadata); V(null) when no release is current.
    - For an image release this is what a rollback needs to run the container again; the sample is one
      recorded by the docker_agent role (its C(container) trimmed here).
  returned: always
  type: dict
  sample:
    agent_version: 1.4.0
    image_id: sha256:9b1f0c3e5a7d2c4b6e8f0a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b
    image_tag: smart-agent:1.4.0
    image_source: build
    config_digest: 4e07408562bedb8b60ce05c1decfe3ad16b72230967de01f640b7e4729b49fce
    container:
      user: "10001:10001"
      published_ports: ["0.0.0.0:8000:8000"]
      restart_policy: always
      stop_timeout: 35
      read_only: true
      cap_drop: [ALL]
      memory: 512m
releases:
  description:
    - Every release in the ledger, oldest first.
    - The sample is the ledger of a venv_systemd host where 1.5.0 failed its verification and 1.4.0 was made
      current again.
  returned: always
  type: list
  elements: dict
  contains:
    version:
      description: Release name.
      type: str
    artifact:
      description: Its directory (O(kind=directory)) or image reference or id (O(kind=image)).
      type: str
    kind:
      description: V(directory) or V(image).
      type: str
    status:
      description:
        - V(staged), V(active) (current, not yet verified), V(healthy), V(failed), V(rolled_back), or V(retired)
          (switched away from before it was verified).
      type: str
    created:
      description: When it was first staged, UTC ISO 8601.
      type: str
    activated:
      description: When it last became current; V(null) if it never did.
      type: str
    verified:
      description: When it was marked healthy; V(null) if it never was.
      type: str
    reason:
      description: Why it was rolled back; V(null) otherwise.
      type: str
    metadata:
      description: What O(metadata) recorded when it was staged.
      type: dict
  sample:
    - version: 1.4.0+3f9c2a1e
      artifact: /opt/agent/releases/1.4.0+3f9c2a1e
      kind: directory
      status: healthy
      created: "2026-11-24T04:00:02.118532Z"
      activated: "2026-11-25T09:14:51.402210Z"
      verified: "2026-11-24T04:01:37.907114Z"
      reason: null
      metadata:
        agent_version: 1.4.0
        code_digest: 2f6c1a9d4e0b7c3f8a5d2e9b6c1f4a7d0e3b8c5f
        config_digest: 9c1d4f7a2e5b8c0d3f6a9e2b5c8d1f4a7e0b3c6d9f2a5e8b1c4d7f0a3e6b9c2d
    - version: 1.5.0+b71e04d9
      artifact: /opt/agent/releases/1.5.0+b71e04d9
      kind: directory
      status: failed
      created: "2026-11-25T09:12:40.553871Z"
      activated: "2026-11-25T09:13:02.004716Z"
      verified: null
      reason: "connection refused on 127.0.0.1:8000 for 8 s, past the start grace of 8 s (5 attempts)"
      metadata:
        agent_version: 1.5.0
        code_digest: 7a0e3c6f9b2d5a8c1e4f7b0d3a6c9e2f5b8d1a4c
        config_digest: 9c1d4f7a2e5b8c0d3f6a9e2b5c8d1f4a7e0b3c6d9f2a5e8b1c4d7f0a3e6b9c2d
removed:
  description: Releases removed by O(state=pruned) or O(prune=true).
  returned: always
  type: list
  elements: str
removed_releases:
  description: The ledger's entries of the releases in RV(removed), as they were before they were removed.
  returned: always
  type: list
  elements: dict
  sample:
    - version: 1.0.0+3f9a1c2e
      artifact: /opt/agent/releases/1.0.0+3f9a1c2e
      kind: directory
      status: healthy
rolled_back_from:
  description: The release that was rolled back.
  returned: when O(state=rolled_back)
  type: str
ledger:
  description: Path of the ledger.
  returned: always
  type: str
runs:
  description: The last 20 deploy runs with their outcome (V(running), V(healthy), V(failed), V(superseded)...) and reason.
  returned: when O(state) is V(locked), V(unlocked) or V(query)
  type: list
  elements: dict
lock:
  description: The deploy lock after the call (its C(run), C(acquired), C(expires)); V(null) when nobody holds it.
  returned: when O(state) is V(locked), V(unlocked) or V(query)
  type: dict
interrupted:
  description:
    - The current release when it was made current and never verified (status V(active)), with the C(run) that
      activated it; V(null) otherwise. Found while holding the lock, it is a run that stopped half-way.
  returned: when O(state) is V(locked), V(unlocked) or V(query)
  type: dict
taken_over:
  description: The run the lock was taken over from, and RV(taken_over_because) why it was stale.
  returned: when O(state=locked)
  type: dict
taken_over_because:
  description: Why the previous holder's lock was stale.
  returned: when O(state=locked)
  type: str
holder:
  description: The run holding the lock, when the module failed because of it.
  returned: failure
  type: dict
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agentops.deploy.plugins.module_utils.release_ledger import LedgerError, apply

ARGUMENT_SPEC = dict(
    root=dict(type='path', required=True),
    ledger=dict(type='path'),
    releases_dir=dict(type='path'),
    current_link=dict(type='path'),
    version=dict(type='str'),
    artifact=dict(type='str'),
    kind=dict(type='str', choices=['directory', 'image'], default='directory'),
    metadata=dict(type='dict'),
    state=dict(type='str', choices=['staged', 'active', 'healthy', 'failed', 'rolled_back', 'pruned', 'query', 'locked', 'unlocked'],
               default='query'),
    reason=dict(type='str'),
    to=dict(type='str'),
    keep=dict(type='int', default=5),
    prune=dict(type='bool', default=False),
    lock_timeout=dict(type='float', default=30),
    run=dict(type='dict'),
    lock_lease=dict(type='float', default=900),
    lock_wait=dict(type='float', default=0),
    lock_break=dict(type='str'),
    lock_gone=dict(type='str'),
    outcome=dict(type='str', choices=['healthy', 'unchanged', 'failed', 'rolled_back', 'staging_failed',
                                      'provider_failing', 'finished']),
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[('state', 'staged', ['version']), ('state', 'active', ['version']),
                     ('state', 'healthy', ['version']), ('state', 'failed', ['version']), ('state', 'locked', ['run']), ('state', 'unlocked', ['run'])],
        supports_check_mode=True,
    )
    try:
        result = apply(module.params, module.check_mode)
    except LedgerError as error:
        module.fail_json(msg=str(error), **error.details)
    except OSError as error:
        module.fail_json(msg=f'cannot update the release ledger under {module.params["root"]}: {error}',
                         exception=traceback.format_exc())
    diff = result.pop('diff', None)
    if module._diff and diff:
        result['diff'] = diff
    module.exit_json(**result)


if __name__ == '__main__':
    main()
