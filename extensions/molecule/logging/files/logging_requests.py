"""Send requests with known X-Request-IDs to the agent, optionally forcing
log rotations and restarting the local rsyslog while they run.

Prints one JSON document: ids sent, HTTP failures, rotations done, start time.
"""
from __future__ import annotations

import argparse
import json
import queue
import subprocess
import threading
import time
import urllib.request


def send(url: str, request_id: str) -> int:
    request = urllib.request.Request(url, headers={"X-Request-ID": request_id})
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.headers.get("X-Request-ID") != request_id:
            raise RuntimeError(f"request id not echoed for {request_id}")
        return response.status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000/health")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rotate", type=int, default=0,
                        help="forced logrotate runs, spread evenly over the requests while they are sent")
    parser.add_argument("--rotate-config", default="/etc/logrotate.d/agentops-agent")
    parser.add_argument("--restart-rsyslog-at", type=int, default=-1,
                        help="restart rsyslog after this many requests")
    args = parser.parse_args()

    started = time.time()
    work: queue.Queue[int] = queue.Queue()
    for number in range(args.count):
        work.put(number)
    failures: list[str] = []
    done = [0]
    lock = threading.Lock()
    restart = threading.Event()
    restarted = threading.Event()

    def worker() -> None:
        while True:
            try:
                number = work.get_nowait()
            except queue.Empty:
                return
            request_id = f"{args.prefix}-{number:05d}"
            try:
                status = send(args.url, request_id)
                if status != 200:
                    failures.append(f"{request_id}: HTTP {status}")
            except Exception as error:  # noqa: BLE001 - every failure is reported
                failures.append(f"{request_id}: {error}")
            with lock:
                done[0] += 1
                if done[0] == args.restart_rsyslog_at:
                    restart.set()
            if restart.is_set() and not restarted.is_set():
                restarted.wait(60)

    rotations: list[dict] = []
    threads = [threading.Thread(target=worker) for _worker in range(args.threads)]
    for thread in threads:
        thread.start()
    if args.restart_rsyslog_at >= 0:
        restart.wait(120)
        subprocess.run(["systemctl", "restart", "rsyslog"], check=True)
        restarted.set()
    if args.rotate:
        # Rotation k runs once k/(rotate+1) of the requests are done, while
        # the workers keep sending the rest.
        for number in range(1, args.rotate + 1):
            while done[0] < args.count * number // (args.rotate + 1):
                time.sleep(0.001)
            result = subprocess.run(["logrotate", "--force", args.rotate_config],
                                    check=False, capture_output=True, text=True)
            rotations.append({"rc": result.returncode,
                              "while_sending": any(thread.is_alive() for thread in threads)})
            if result.returncode != 0:
                failures.append(f"logrotate: {result.stderr.strip()}")
    for thread in threads:
        thread.join()
    print(json.dumps({
        "started": started,
        "finished": time.time(),
        "sent": args.count,
        "failures": failures,
        "rotations": rotations,
        "restarted_rsyslog": restarted.is_set(),
    }))


if __name__ == "__main__":
    main()
