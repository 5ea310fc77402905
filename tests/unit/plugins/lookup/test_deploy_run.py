"""deploy_run: one name per ansible-playbook process, and whether a run's process is still alive."""
from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys

from ansible_collections.agentops.deploy.plugins.lookup import deploy_run


def _report_run(queue) -> None:
    queue.put(deploy_run.this_run())


def test_a_forked_worker_names_the_process_that_forked_it() -> None:
    # Ansible runs lookups in forked workers: every worker must name the same run.
    queue = multiprocessing.get_context('fork').Queue()
    worker = multiprocessing.get_context('fork').Process(target=_report_run, args=(queue,))
    worker.start()
    run = queue.get(timeout=30)
    worker.join()
    assert run == deploy_run.this_run()
    assert run['pid'] == deploy_run.run_process(os.getpid())
    assert run['id'].endswith(f"-{run['pid']}") and run['controller'] == socket.gethostname()


def test_a_live_run_is_alive_and_a_finished_one_is_gone() -> None:
    assert deploy_run.is_alive(deploy_run.this_run()) is True
    child = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True,
                           check=True)
    assert deploy_run.is_alive({'id': 'x', 'controller': socket.gethostname(), 'pid': int(child.stdout)}) is False


def test_a_reused_process_id_is_not_the_run() -> None:
    run = deploy_run.this_run()
    assert deploy_run.is_alive(dict(run, started='2001-01-01T00:00:00Z')) is False


def test_another_controller_cannot_tell() -> None:
    assert deploy_run.is_alive(dict(deploy_run.this_run(), controller='elsewhere.example')) is None
