# -*- coding: utf-8 -*-
# Copyright: agentops.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: k8s_bake
short_description: The bake's metrics gate over the /metrics of every pod of a release
version_added: 0.3.0
description:
  - Adds up the agent's C(http_requests_total) of every pod, leaving out the probes' routes (C(/ready), C(/health),
    C(/metrics)), and compares the share of 5xx answers with the largest the bake allows.
author:
  - agentops.deploy maintainers (@agentops)
options:
  _input:
    description: The Prometheus text of each pod's C(/metrics).
    type: list
    elements: str
    required: true
  max_error_ratio:
    description: The largest share of 5xx answers that passes.
    type: float
    required: true
"""

EXAMPLES = r"""
- name: Judge the bake
  ansible.builtin.assert:
    that: (metrics | agentops.deploy.k8s_bake(max_error_ratio=0.05)).passed
"""

RETURN = r"""
_value:
  description: C(requests), C(errors), C(ratio) and C(passed).
  type: dict
"""

from ansible_collections.agentops.deploy.plugins.module_utils.k8s_rollout import bake_verdict


def k8s_bake(metrics_texts, max_error_ratio):
    return bake_verdict([str(text) for text in metrics_texts or []], float(max_error_ratio))


class FilterModule:
    def filters(self):
        return {'k8s_bake': k8s_bake}
