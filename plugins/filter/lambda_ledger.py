# -*- coding: utf-8 -*-
# Copyright: agentops.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: lambda_ledger
short_description: The lambda_agent ledger of a function, from amazon.aws.lambda_info
version_added: 0.4.0
description:
  - Reads what the lambda_agent role keeps on a function, from the result of C(amazon.aws.lambda_info) with
    C(query=all) - the version the alias serves, the healthy versions (a tag), the last failed one (a tag) and the
    published versions.
  - An absent function (or a failed lookup) gives an empty ledger with C(exists=false).
author:
  - agentops.deploy maintainers (@agentops)
options:
  _input:
    description: The registered result of C(amazon.aws.lambda_info).
    type: dict
    required: true
  alias:
    description: The alias callers invoke.
    type: str
    required: true
  tag_healthy:
    description: The tag holding the healthy versions.
    type: str
    required: true
  tag_failed:
    description: The tag holding the last failed version.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Take the ledger
  ansible.builtin.set_fact:
    ledger: "{{ info | agentops.deploy.lambda_ledger('live', 'agentops.deploy/healthy', 'agentops.deploy/failed') }}"
"""

RETURN = r"""
_value:
  description: >-
    exists, arn, live (version number or empty), live_app_version, healthy (list of version and app_version, oldest
    first), healthy_tag, failed, versions (published, as lambda_info lists them).
  type: dict
"""

from ansible_collections.agentops.deploy.plugins.module_utils import lambda_ledger as ledger_utils


def lambda_ledger(info, alias, tag_healthy, tag_failed):
    return ledger_utils.ledger(dict(info or {}), str(alias), str(tag_healthy), str(tag_failed))


def lambda_record_healthy(value, version, app_version, keep):
    return ledger_utils.record_healthy(str(value or ''), str(version), str(app_version), int(keep))


def lambda_version_of_release(versions, release, code_sha256=''):
    return ledger_utils.version_of_release(list(versions or []), str(release), str(code_sha256 or ''))


def lambda_rollback_target(current, rollback_to=''):
    return ledger_utils.rollback_target(dict(current or {}), str(rollback_to or ''))


class FilterModule:
    def filters(self):
        return {
            'lambda_ledger': lambda_ledger,
            'lambda_record_healthy': lambda_record_healthy,
            'lambda_version_of_release': lambda_version_of_release,
            'lambda_rollback_target': lambda_rollback_target,
        }
