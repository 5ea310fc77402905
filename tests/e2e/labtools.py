"""What the end-to-end tests do on the lab: run playbooks, read what each agent serves, look inside a host."""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
INVENTORY = ROOT / "inventories" / "lab"
# Published ports of the lab agents on 127.0.0.1 (inventories/lab/host_vars).
AGENT_PORTS = {"agent-1": 8001, "agent-2": 8002, "agent-3": 8003}
LEDGERS = {"agent-1": "/opt/agent/releases.json", "agent-2": "/opt/agent/releases.json",
           "agent-3": "/opt/smart-agent/releases.json"}


def _command(name: str, args: tuple[str, ...], report_dir: Path | None) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    if report_dir is not None:
        env["AGENTOPS_REPORT_DIR"] = str(report_dir)
    return [str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(ROOT / "playbooks" / name), *args], env


def playbook(name: str, *args: str, report_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    command, env = _command(name, args, report_dir)
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False)
    # "PLAYBOOK <seconds>" lines: where a test's time goes, for the suite's timings (grep them from the log).
    print(f"--- {name} {' '.join(args)} -> {result.returncode}\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}\n"
          f"PLAYBOOK {time.monotonic() - started:6.1f} s  {name} {' '.join(args)}")
    return result


class Background:
    """A playbook run in its own process group, as a CI runner starts one, and can kill it."""

    def __init__(self, name: str, *args: str) -> None:
        command, env = _command(name, args, None)
        self.label = f"{name} {' '.join(args)}"
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, start_new_session=True)

    def kill(self) -> str:
        """SIGKILL the whole run at once (ansible-playbook, its workers, their connections)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        return self.finish()

    def finish(self, timeout: float = 900) -> str:
        output = self.process.communicate(timeout=timeout)[0]
        print(f"--- (background) {self.label} -> {self.process.returncode}\n{output[-6000:]}")
        return output

    @property
    def returncode(self) -> int | None:
        return self.process.returncode


def on_host(host: str, command: str) -> str:
    return subprocess.run(["docker", "exec", f"agentops-lab-{host}", "sh", "-c", command],
                          capture_output=True, text=True, check=False).stdout.strip()


def lab_state() -> dict[str, str]:
    """What a deploy or site.yml changes: each agent's process, current link, ledger and unit or container, and
    ops-1's load balancer, Prometheus and rsyslog configuration."""
    state = {}
    for host in ("agent-1", "agent-2"):
        state[host] = on_host(host, "systemctl show -p MainPID --value agent; readlink /opt/agent/current; "
                                    "sha256sum /opt/agent/releases.json /etc/systemd/system/agent.service")
    state["agent-3"] = on_host("agent-3", "docker inspect -f '{{.Id}} {{.Image}} {{.State.StartedAt}}' smart-agent; "
                                          "sha256sum /opt/smart-agent/releases.json")
    state["ops-1"] = on_host("ops-1", "sha256sum /etc/haproxy/haproxy.cfg; cd /etc/prometheus && find . -type f "
                                      "-exec sha256sum {} + | sort; cd /etc/rsyslog.d && sha256sum * | sort")
    return state


def runtime_api(command: str) -> str:
    """A command to HAProxy's runtime API on ops-1, the lab's load balancer."""
    return on_host("ops-1", f"echo '{command}' | socat stdio /run/haproxy/admin.sock")


def backends() -> dict[str, dict[str, str]]:
    """agent -> its row of HAProxy's `show stat` (status UP/DOWN/MAINT/DRAIN, stot: sessions so far, ...)."""
    rows = runtime_api("show stat").splitlines()
    if not rows:
        return {}
    header = rows[0].lstrip("# ").split(",")
    stats = [dict(zip(header, row.split(","))) for row in rows[1:] if row]
    return {row["svname"]: row for row in stats if row["pxname"] == "agents" and row["svname"] in AGENT_PORTS}


def server_states() -> dict[str, str]:
    return {name: row["status"] for name, row in backends().items()}


def started_at(host: str) -> float:
    """When the serving process of the host's agent started, seconds since the epoch."""
    if host == "agent-3":
        return float(on_host(host, "date -d \"$(docker inspect -f '{{.State.StartedAt}}' smart-agent)\" +%s.%N"))
    return float(on_host(host, "date -d \"$(systemctl show -p ExecMainStartTimestamp --value agent)\" +%s"))


def ledger(host: str, path: str | None = None) -> dict:
    text = on_host(host, f"cat {path or LEDGERS[host]}")
    return json.loads(text) if text else {}


def current_release(host: str) -> tuple[str | None, str | None]:
    """(name, status) of the release the ledger names current."""
    data = ledger(host)
    current = next((r for r in data.get("releases", []) if r["version"] == data.get("current")), None)
    return (current["version"], current["status"]) if current else (None, None)


def wait_on_host(host: str, condition: str, timeout: float, interval: float = 0.1, what: str = "condition") -> None:
    """Wait until the shell `condition` succeeds on the host, trying it every `interval` s inside the host.

    One `docker exec` for the whole wait. An exec per try costs a runc exec on the controller (about 0.1 CPU
    second on these 2-core machines): tests that polled every 0.05 s that way took a core from the deploys they
    were watching."""
    script = (f"end=$(( $(date +%s) + {math.ceil(timeout)} )); "
              f"until {condition}; do [ \"$(date +%s)\" -lt \"$end\" ] || exit 124; sleep {interval}; done")
    result = subprocess.run(["docker", "exec", f"agentops-lab-{host}", "sh", "-c", script],
                            capture_output=True, text=True, timeout=timeout + 60, check=False)
    if result.returncode != 0:
        raise AssertionError(f"{what} not reached in {timeout} s on {host} "
                             f"(exit {result.returncode}{': ' + result.stderr.strip()[-300:] if result.stderr else ''})")


def pool_state_is(host: str, *states: str) -> str:
    """A shell condition for wait_on_host on ops-1: HAProxy's state of `host` starts with one of `states`."""
    # `show stat` is CSV: proxy, server, ... and the state in the 18th column.
    return (f"echo 'show stat' | socat stdio /run/haproxy/admin.sock | awk -F, "
            f"'$1 == \"agents\" && $2 == \"{host}\" && $18 ~ /^({'|'.join(states)})/ {{found = 1}} END {{exit !found}}'")


def wait_for(condition, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Wait until `condition()` is true, trying it every `interval` s: for conditions read over HTTP; one read
    inside a host is wait_on_host's."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not reached in {timeout} s")


def served(host: str, path: str = "/ready") -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{AGENT_PORTS[host]}{path}", timeout=5) as response:
            return json.load(response)
    except OSError as error:
        return {"error": str(error)}


def served_versions() -> dict[str, str]:
    return {host: served(host).get("version", "unreachable") for host in AGENT_PORTS}


def broken_agent(directory: Path, on_host_live: str | None = None) -> Path:
    """The reference agent, made to crash at import: everywhere, or only on the host `on_host_live` names and
    only on its live port (8000), so that it passes its trial on a side port and fails after the switch."""
    source = directory / "agent"
    shutil.copytree(ROOT / "files" / "agent", source,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "tests"))
    crash = 'raise RuntimeError("e2e: this release crashes at import")'
    if on_host_live:
        crash = (f'import os, socket\nif socket.gethostname() == "{on_host_live}" '
                 f'and os.environ.get("AGENT_PORT", "8000") == "8000":\n    {crash}')
    with open(source / "app" / "__init__.py", "a", encoding="utf-8") as init:
        init.write(f"\n{crash}\n")
    return source
