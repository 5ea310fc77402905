# -*- coding: utf-8 -*-
# Copyright: agentops.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: k8s_release_template
short_description: The pod template of one release, from a Deployment's ReplicaSets
version_added: 0.3.0
description:
  - Finds the ReplicaSet whose pod template carries the label C(agentops.deploy/release) with the given id, and returns
    that template without the C(pod-template-hash) label, ready to set as the Deployment's C(spec.template).
  - That is how an undo or a rollback returns a Deployment to a release, config and key included, the way
    C(kubectl rollout undo) does.
author:
  - agentops.deploy maintainers (@agentops)
options:
  _input:
    description: The Deployment's ReplicaSets, as C(kubernetes.core.k8s_info) lists them.
    type: list
    elements: dict
    required: true
  release:
    description: The release id.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Return the Deployment to a release
  kubernetes.core.k8s_json_patch:
    kind: Deployment
    namespace: agents
    name: smart-agent
    patch:
      - op: replace
        path: /spec/template
        value: "{{ replicasets.resources | agentops.deploy.k8s_release_template('r-1a2b3c4d5e') }}"
"""

RETURN = r"""
_value:
  description: The pod template; an empty dict when no ReplicaSet holds the release.
  type: dict
"""

from ansible_collections.agentops.deploy.plugins.module_utils.k8s_rollout import release_template


def k8s_release_template(replicasets, release):
    return release_template(list(replicasets or []), str(release))


class FilterModule:
    def filters(self):
        return {'k8s_release_template': k8s_release_template}
