#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: agentops.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: agent_wheelhouse
short_description: Gather the wheels of a hash-locked requirements file once, on the controller
version_added: 0.2.0
description:
  - Downloads every wheel a lock made with C(pip-compile --generate-hashes) names, for the Python version and
    machine of the hosts, into one uncompressed tar in O(cache_dir) named after the lock's sha256 and those two.
    A wheelhouse already there is not fetched again.
  - Every run checks the wheelhouse against the lock, built now or long ago; a wheel whose sha256 the lock does
    not list, a wheel of a package the lock does not name, or a locked package without a wheel fails the module
    before anything is copied to a host.
  - "Run it on the controller (C(delegate_to: localhost)); the hosts then install with
    C(pip install --no-index --find-links <wheelhouse> --require-hashes) and need no package index."
author:
  - agentops.deploy maintainers (@agentops)
options:
  lock:
    description: The hash-locked requirements file on the controller.
    type: path
    required: true
  cache_dir:
    description: Where wheelhouses are kept.
    type: path
    required: true
  python_version:
    description: The hosts' Python, C(major.minor), for example V(3.11).
    type: str
    required: true
  machine:
    description: The hosts' machine, as C(uname -m) prints it, for example V(x86_64) or V(aarch64).
    type: str
    required: true
  pip_args:
    description:
      - More arguments for C(pip download), for example C(--index-url) of a mirror. The controller's own pip
        configuration (certificates, proxies, indexes) applies too.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - agentops.deploy.attributes
  - agentops.deploy.attributes.actiongroup_agent
attributes:
  check_mode:
    support: full
    details:
      - Reports whether the wheelhouse would be fetched, without fetching it; an existing one is checked as in a
        real run.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - A wheelhouse already in O(cache_dir) is checked, not fetched again, and reports C(changed=false).
notes:
  - "Wheels only (C(--only-binary=:all:)): a package without a wheel for the hosts fails with pip's message."
"""

EXAMPLES = r"""
- name: Gather the agent's wheels once
  agentops.deploy.agent_wheelhouse:
    lock: "{{ playbook_dir }}/files/agent/requirements.lock"
    cache_dir: "{{ lookup('env', 'HOME') }}/.cache/agentops/wheelhouse"
    python_version: "3.11"
    machine: x86_64
  delegate_to: localhost
  register: wheelhouse
"""

RETURN = r"""
path:
  description: The wheelhouse tar.
  returned: success
  type: str
  sample: /root/.cache/agentops/wheelhouse/3f2a9c0d1e4b5a67-cp311-x86_64.tar
key:
  description: The wheelhouse's name; a host keeps its copy under it.
  returned: always
  type: str
  sample: 3f2a9c0d1e4b5a67-cp311-x86_64
lock_sha256:
  description: The lock's sha256, to record with each release.
  returned: always
  type: str
sha256:
  description: The tar's sha256.
  returned: success, except in check mode when it would be fetched
  type: str
wheels:
  description: How many packages the lock names (one wheel each).
  returned: always
  type: int
"""

import hashlib
import os
import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agentops.deploy.plugins.module_utils.wheelhouse import (
    WheelhouseError, build, cache_key, parse_lock)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            'lock': {'type': 'path', 'required': True},
            'cache_dir': {'type': 'path', 'required': True},
            'python_version': {'type': 'str', 'required': True},
            'machine': {'type': 'str', 'required': True},
            'pip_args': {'type': 'list', 'elements': 'str', 'default': []},
        },
        supports_check_mode=True,
    )
    params = module.params
    params['lock'] = os.path.normpath(params['lock'])
    try:
        with open(params['lock'], 'rb') as stream:
            content = stream.read()
    except OSError as error:
        module.fail_json(msg=f'the lock {params["lock"]} cannot be read ({error.strerror}): generate it with '
                             f'pip-compile --generate-hashes, name another one, or install from an index instead')
    try:
        lock_digest = hashlib.sha256(content).hexdigest()
        locked = parse_lock(content.decode('utf-8', errors='replace'), params['lock'])
        key = cache_key(lock_digest, params['python_version'], params['machine'])
        path = os.path.join(params['cache_dir'], f'{key}.tar')
        if module.check_mode and not os.path.exists(path):
            module.exit_json(changed=True, key=key, lock_sha256=lock_digest, wheels=len(locked),
                             msg=f'check mode: the wheels of {params["lock"]} would be fetched into {path}')
        result = build(sys.executable, params['lock'], params['cache_dir'], params['python_version'],
                       params['machine'], params['pip_args'])
    except WheelhouseError as error:
        module.fail_json(msg=str(error))
    built = result.pop('built')
    module.exit_json(changed=built, **result)


if __name__ == '__main__':
    main()
