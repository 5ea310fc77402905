"""Run ansible-playbook as an operator would and print what it did, as JSON.

Usage: run_playbook.py INVENTORY PLAYBOOK [ansible-playbook arguments...]
Prints {"rc", "changed" (all hosts), "ran" (names of tasks that ran on a
host, not skipped, without their "role : " prefix), "msg" (the first
failure message)}; reads the run from the ansible.posix.json callback.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys


def main() -> int:
    inventory, playbook, *args = sys.argv[1:]
    # Callbacks that print (profile_tasks when a scenario is being timed)
    # would mix their lines into the JSON document read below.
    env = {name: value for name, value in os.environ.items() if name != "ANSIBLE_CALLBACKS_ENABLED"}
    env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    run = subprocess.run(["ansible-playbook", "-i", inventory, playbook, *args],
                         env=env, capture_output=True, text=True, check=False)
    try:
        document = json.loads(run.stdout[run.stdout.index("{"):])
    except ValueError:
        print(json.dumps({"rc": run.returncode, "changed": 0, "ran": [],
                          "msg": (run.stdout + run.stderr)[-2000:]}))
        return 0
    ran, failures = [], []
    for play in document["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                if not result.get("skipped"):
                    ran.append(task["task"]["name"].split(" : ", 1)[-1])
                if result.get("failed"):
                    failures.append(str(result.get("msg", "")))
    print(json.dumps({
        "rc": run.returncode,
        "changed": sum(stats.get("changed", 0) for stats in document["stats"].values()),
        "ran": sorted(set(ran)),
        "msg": failures[0] if failures else "",
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
