# -*- coding: utf-8 -*-
# Copyright: agentops.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: failure_cause
short_description: The one line of a tool's output or a service's log that says why it failed
version_added: 0.2.0
description:
  - Picks, from text or a list of lines, the line an operator should read first, so a failure message can lead with
    it before any tool output.
  - In order, the first line naming an operating system error (C([Errno N]), C(No space left on device),
    C(Permission denied)); else the last line naming a Python exception (such as C(RuntimeError)), which is how a
    traceback ends; else the first line starting with C(ERROR), C(error:) or C(fatal:); else the first line.
author:
  - agentops.deploy maintainers (@agentops)
options:
  _input:
    description: Text, or a list of lines.
    type: raw
    required: true
  exceptions_only:
    description:
      - Only consider lines that name an exception (C(...Error:), C(...Exception:), C(...Exit), C(...Interrupt)), as in a
        service's log, where other lines say nothing about why it died; an empty string when there is none.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Lead with why pip failed
  ansible.builtin.debug:
    msg: "{{ pip_result.stderr | agentops.deploy.failure_cause }}"
"""

RETURN = r"""
_value:
  description: The line, stripped and at most 300 characters long; an empty string when there is no text.
  type: str
"""

import re

_OS_ERROR = re.compile(r'\[Errno \d+\]|No space left on device|Permission denied|Read-only file system')
_EXCEPTION = re.compile(r'^([A-Za-z_]\w*\.)*[A-Za-z_]\w*(Error|Exception|Exit|Interrupt)(:|$)')
_ERROR_LINE = re.compile(r'^(ERROR|Error|error|FATAL|fatal|E)(:|\b)')
_MENTIONS_EXCEPTION = re.compile(r'(Error|Exception|Exit|Interrupt)(:|$)')


def failure_cause(value, exceptions_only: bool = False) -> str:
    if value is None:
        return ''
    lines = value if isinstance(value, (list, tuple)) else str(value).splitlines()
    lines = [str(line).strip() for line in lines if str(line).strip()]
    if exceptions_only:
        lines = [line for line in lines if _MENTIONS_EXCEPTION.search(line)]
    if not lines:
        return ''
    os_errors = [line for line in lines if _OS_ERROR.search(line)]
    exceptions = [line for line in lines if _EXCEPTION.match(line)]
    errors = [line for line in lines if _ERROR_LINE.match(line)]
    cause = os_errors[0] if os_errors else exceptions[-1] if exceptions else errors[0] if errors else lines[0]
    return cause[:300]


class FilterModule:
    def filters(self):
        return {'failure_cause': failure_cause}
