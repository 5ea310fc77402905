# -*- coding: utf-8 -*-
# Copyright: agentops.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: dpkg_installed
short_description: The packages a dpkg-query answer says are on the host
version_added: 0.4.0
description:
  - Reads the lines of C(dpkg-query --show --showformat='${Package} ${Status}\n' NAME...) and returns the names of
    the packages whose files are on the host, so a role can run C(apt) only for what is missing.
  - A package counts as installed when its status ends in C(ok installed), whatever was selected for it; held
    (C(hold ok installed)) and marked for removal (C(deinstall ok installed)) packages are still on the host.
  - Packages removed with their configuration kept (C(config-files)), half installed or unknown to dpkg are not.
author:
  - agentops.deploy maintainers (@agentops)
options:
  _input:
    description: The query's output, as text or a list of lines (C(stdout_lines)).
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Read which of the packages are installed
  ansible.builtin.command:
    argv: "{{ ['dpkg-query', '--show', '--showformat=${Package} ${Status}\\n'] + packages }}"
  register: dpkg
  failed_when: dpkg.rc not in [0, 1]
  changed_when: false

- name: Install only the missing ones
  ansible.builtin.apt:
    name: "{{ packages | difference(dpkg.stdout_lines | agentops.deploy.dpkg_installed) }}"
"""

RETURN = r"""
_value:
  description: The names of the installed packages, in the order of the query's answer.
  type: list
  elements: str
"""


def dpkg_installed(value) -> list[str]:
    if value is None:
        return []
    lines = value if isinstance(value, (list, tuple)) else str(value).splitlines()
    installed = []
    for line in lines:
        fields = str(line).split()
        # ${Package} then ${Status}: want, error flag, state ("install ok installed").
        if len(fields) == 4 and fields[2:] == ['ok', 'installed']:
            installed.append(fields[0])
    return installed


class FilterModule:
    def filters(self):
        return {'dpkg_installed': dpkg_installed}
