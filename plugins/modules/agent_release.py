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
      - Required for O(state=staged), O(state=active) and O(state=healthy). With O(state=rolled_back)
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
      - V(pruned) removes the oldest releases beyond O(keep), never the current or last healthy one,
        and deletes their directories for O(kind=directory).
      - V(query) returns the ledger and changes nothing.
    type: str
    choices: [staged, active, healthy, rolled_back, pruned, query]
    default: query
  reason:
    description: Why a release is rolled back; stored in the ledger.
    type: str
  keep:
    description: Releases to keep with O(state=pruned).
    type: int
    default: 5
  lock_timeout:
    description: Seconds to wait for another deploy's lock on the ledger.
    type: float
    default: 30
attributes:
  check_mode:
    support: full
    description: Computes the new ledger and link target and reports them without writing.
  diff_mode:
    support: full
    description: Shows the ledger and the current link target before and after.
  idempotent:
    support: full
    description: A state that already holds reports C(changed=false) and writes nothing.
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
  description: Metadata of the current release.
  returned: always
  type: dict
releases:
  description: Every release in the ledger with version, artifact, kind, status, created, activated, verified, reason, metadata.
  returned: always
  type: list
  elements: dict
removed:
  description: Releases removed by O(state=pruned).
  returned: always
  type: list
  elements: str
rolled_back_from:
  description: The release that was rolled back.
  returned: when O(state=rolled_back)
  type: str
ledger:
  description: Path of the ledger.
  returned: always
  type: str
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
    state=dict(type='str', choices=['staged', 'active', 'healthy', 'rolled_back', 'pruned', 'query'],
               default='query'),
    reason=dict(type='str'),
    keep=dict(type='int', default=5),
    lock_timeout=dict(type='float', default=30),
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[('state', 'staged', ['version']), ('state', 'active', ['version']),
                     ('state', 'healthy', ['version'])],
        supports_check_mode=True,
    )
    try:
        result = apply(module.params, module.check_mode)
    except LedgerError as error:
        module.fail_json(msg=str(error))
    except OSError as error:
        module.fail_json(msg=f'cannot update the release ledger under {module.params["root"]}: {error}',
                         exception=traceback.format_exc())
    diff = result.pop('diff')
    if module._diff:
        result['diff'] = diff
    module.exit_json(**result)


if __name__ == '__main__':
    main()
