"""Run inside a pod of the agent (python -c): no network path to the pods is assumed from the controller.

  probe.py smoke <base url> <timeout> <version> <input>
      GET /ready until it answers with the version, then POST /api/agent
  probe.py metrics <base url> <timeout>         GET /metrics
  probe.py ready <base url> <timeout>           GET /ready until it answers

Prints one JSON object; each answer has its status (0: no connection), body
and json (the body parsed, or null). HTTP errors are answers, not exceptions,
so the controller judges them and quotes them.
"""
import json
import sys
import time
import urllib.error
import urllib.request


def call(url, timeout, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status, text = answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode(errors="replace")
    except OSError as error:
        status, text = 0, str(error)
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return {"status": status, "body": text, "json": parsed if isinstance(parsed, dict) else None}


FIRST_ATTEMPT_SECONDS = 1.0
# The pause between two attempts; an attempt that would start past the
# deadline is not made.
RETRY_PAUSE_SECONDS = 0.5


def ready_answer(base, timeout, version=None):
    """GET /ready until it answers (with the version, when one is given) or the timeout passes.

    A node's proxy rules may send a request to a pod on its way out for a
    moment, where the connection hangs rather than fails. So one attempt may
    not spend the whole budget: the first waits a second, each next one twice
    as long (a slow answer still gets its time), none past the deadline.
    """
    until = time.monotonic() + timeout
    attempt = FIRST_ATTEMPT_SECONDS
    while True:
        ready = call(base + "/ready", max(min(attempt, until - time.monotonic()), 0.1))
        answered = (ready["json"] or {}).get("version")
        if (ready["status"] and (version is None or answered == version)) or time.monotonic() + RETRY_PAUSE_SECONDS > until:
            return ready
        attempt *= 2
        time.sleep(RETRY_PAUSE_SECONDS)


def main(mode, base, timeout, *rest):
    timeout = float(timeout)
    if mode == "metrics":
        return {"metrics": call(base + "/metrics", timeout)}
    if mode == "ready":
        return {"ready": ready_answer(base, timeout)}
    version, text = rest
    return {"ready": ready_answer(base, timeout, version), "smoke": call(base + "/api/agent", timeout, {"input": text})}


print(json.dumps(main(*sys.argv[1:])))
