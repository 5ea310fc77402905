# -*- coding: utf-8 -*-
# Copyright: agentops.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: deploy_run
short_description: Who this deploy run is, and whether another run's controller process is still alive
version_added: 0.2.0
description:
  - Without terms, returns this run, that is the C(ansible-playbook) process on the controller, named the same for
    every host and every task of the run, so the deploy lock of each target (M(agentops.deploy.agent_release)
    O(agentops.deploy.agent_release#module:state=locked)) names it.
  - With a run (as a previous call returned it, for example the holder of a lock) as term, returns whether
    that run's process is alive. Only the controller that started a run can tell; elsewhere the answer is V(null).
author:
  - agentops.deploy maintainers (@agentops)
options:
  _terms:
    description: A run to check, as this lookup returned it. Without one, this run is described.
    required: false
notes:
  - The process is the topmost ancestor of the worker that runs the lookup with the same command line, which is
    the C(ansible-playbook) (or C(ansible-runner)) process. Its start time comes from C(/proc), so a reused
    process id is not mistaken for the run.
"""

EXAMPLES = r"""
- name: Name this run
  ansible.builtin.set_fact:
    deploy_run: "{{ lookup('agentops.deploy.deploy_run') }}"

- name: Is the holder of the lock still running on this controller?
  ansible.builtin.debug:
    msg: "{{ lookup('agentops.deploy.deploy_run', lock.run).alive }}"
"""

RETURN = r"""
_raw:
  description:
    - This run (C(id), C(controller), C(user), C(pid), C(started)), or for a given run the same with C(alive)
      (V(true), V(false), or V(null) when it was started on another controller).
  type: dict
"""

import getpass
import os
import socket
import time

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase


def _cmdline(pid: int) -> bytes | None:
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as handle:
            return handle.read()
    except OSError:
        return None


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f'/proc/{pid}/stat', encoding='utf-8') as handle:
            # The command name may hold spaces: the fields after it are split safely.
            return handle.read().rsplit(')', 1)[1].split()
    except (OSError, IndexError):
        return None


def run_process(pid: int | None = None) -> int:
    """The ansible-playbook process: the topmost ancestor with the worker's own command line."""
    pid = pid or os.getpid()
    own = _cmdline(pid)
    if own is None:
        return os.getppid()
    while True:
        fields = _stat(pid)
        parent = int(fields[1]) if fields else 0
        if parent <= 1 or _cmdline(parent) != own:
            return pid
        pid = parent


def process_started(pid: int) -> str | None:
    """The process's start time, UTC to the second, or None where /proc cannot tell."""
    fields = _stat(pid)
    try:
        with open('/proc/stat', encoding='utf-8') as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith('btime '))
        ticks = int(fields[19])  # starttime, field 22 of stat(5), counted after the command name
    except (OSError, StopIteration, TypeError, ValueError, IndexError):
        return None
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(boot + ticks // os.sysconf('SC_CLK_TCK')))


def this_run() -> dict:
    pid = run_process()
    controller = socket.gethostname()
    started = process_started(pid)
    stamp = started.replace('-', '').replace(':', '') if started else 'unknown'
    return {'id': f'{stamp}-{controller.split(".")[0]}-{pid}', 'controller': controller, 'user': getpass.getuser(),
            'pid': pid, 'started': started}


def is_alive(run: dict) -> bool | None:
    if run.get('controller') != socket.gethostname() or not run.get('pid'):
        return None
    pid = int(run['pid'])
    if _stat(pid) is None:
        # No /proc to tell the start time: the process id alone decides.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    # The same id with another start time is another process.
    return run.get('started') is None or process_started(pid) == run['started']


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        if not terms:
            return [this_run()]
        if len(terms) != 1 or not isinstance(terms[0], dict) or not terms[0].get('id'):
            raise AnsibleError('deploy_run takes at most one term: a run as this lookup returned it (with an id)')
        return [dict(terms[0], alive=is_alive(terms[0]))]
