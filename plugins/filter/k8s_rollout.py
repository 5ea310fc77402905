# -*- coding: utf-8 -*-
# Copyright: agentops.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: k8s_rollout
short_description: Where a Deployment's rollout of one release stands, judged from its pods
version_added: 0.3.0
description:
  - Kubernetes reports a stalled rollout only after C(progressDeadlineSeconds) and never undoes it. This filter judges
    the pods of a Deployment (as C(kubernetes.core.k8s_info) lists them) so a release fails at once when one of its
    pods cannot pull its image, crash-loops or cannot be created, with the kubelet's reason.
  - The pods of a release carry the label C(agentops.deploy/release) with its id.
author:
  - agentops.deploy maintainers (@agentops)
options:
  _input:
    description: The Deployment's pods, old and new.
    type: list
    elements: dict
    required: true
  release:
    description: The id of the release rolling out.
    type: str
    required: true
  replicas:
    description: How many pods of the release must be ready.
    type: int
    required: true
"""

EXAMPLES = r"""
- name: Wait for the release, failing at once on a pod that cannot run
  kubernetes.core.k8s_info:
    kind: Pod
    namespace: agents
    label_selectors: ["app.kubernetes.io/instance=smart-agent"]
  register: pods
  until: (pods.resources | agentops.deploy.k8s_rollout(release='r-1a2b3c4d5e', replicas=3)).state != 'progressing'
  retries: 60
  delay: 2
"""

RETURN = r"""
_value:
  description:
    - C(state) (C(complete), C(failed) or C(progressing)), C(reason) (the failure, or why the slowest pod is not ready),
      C(pod), C(restarts), C(ready), C(desired), C(pods) and C(ready_pods) (the release's pod names), C(others) (pods of
      other releases still serving, that is not terminating).
  type: dict
"""

from ansible_collections.agentops.deploy.plugins.module_utils.k8s_rollout import rollout_state


def k8s_rollout(pods, release, replicas):
    return rollout_state(list(pods or []), str(release), int(replicas))


class FilterModule:
    def filters(self):
        return {'k8s_rollout': k8s_rollout}
