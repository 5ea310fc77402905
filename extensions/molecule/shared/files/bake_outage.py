"""Start an LLM provider outage during a release's bake, with traffic to see it.

Runs on the test host beside a deploy: waits until the stand-in LLM has
answered `--after-smoke` more smoke requests (the trial's and the live one's),
so the release has passed its checks and its bake begins; then makes the
stand-in answer `--status` (503) to every call and sends requests to the
agent for `--load-seconds`, as clients would; with `--recover-after`, the
outage ends that many seconds after it began. Prints what the clients got.
"""
from __future__ import annotations

import argparse
import json
import os
import threading
import time
import urllib.error
import urllib.request


def stub_smoke_calls(stub: str) -> int:
    with urllib.request.urlopen(f"{stub}/stats", timeout=5) as answer:
        return json.load(answer)["smoke_calls"]


def client(agent: str, until: float, statuses: dict, lock: threading.Lock) -> None:
    body = json.dumps({"input": "A client's question during the bake."}).encode()
    while time.monotonic() < until:
        request = urllib.request.Request(f"{agent}/api/agent", data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status = answer.status
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError:
            status = "no answer"
        with lock:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", required=True)
    parser.add_argument("--stub", required=True)
    parser.add_argument("--outage-file", default="/run/llm-stub-outage")
    parser.add_argument("--status", default="503")
    parser.add_argument("--after-smoke", type=int, default=2)
    parser.add_argument("--load-seconds", type=float, default=15)
    parser.add_argument("--recover-after", type=float)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    wanted = stub_smoke_calls(args.stub) + args.after_smoke
    give_up = time.monotonic() + args.timeout
    while stub_smoke_calls(args.stub) < wanted:
        if time.monotonic() > give_up:
            raise SystemExit(f"no {args.after_smoke} smoke requests reached the stand-in in {args.timeout:.0f} s")
        time.sleep(0.2)

    with open(args.outage_file, "w", encoding="utf-8") as mark:
        mark.write(args.status)
    began = time.monotonic()
    statuses: dict = {}
    lock = threading.Lock()
    clients = [threading.Thread(target=client, args=(args.agent, began + args.load_seconds, statuses, lock))
               for _client in range(4)]
    for thread in clients:
        thread.start()
    recovered = None
    if args.recover_after is not None:
        time.sleep(max(0.0, began + args.recover_after - time.monotonic()))
        os.remove(args.outage_file)
        recovered = round(time.monotonic() - began, 1)
    for thread in clients:
        thread.join()
    print(json.dumps({"statuses": statuses, "recovered_after": recovered}))


if __name__ == "__main__":
    main()
