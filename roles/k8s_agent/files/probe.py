"""Run inside a pod of the agent (python -c): no network path to the pods is assumed from the controller.

  probe.py smoke <base url> <timeout> <input>   GET /ready, then POST /api/agent with the input
  probe.py metrics <base url> <timeout>         GET /metrics
  probe.py ready <base url> <timeout>           GET /ready

Prints one JSON object; HTTP errors are answers, not exceptions, so the
controller judges them and quotes them.
"""
import json
import sys
import urllib.error
import urllib.request


def call(url, timeout, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return {"status": answer.status, "body": answer.read().decode(errors="replace")}
    except urllib.error.HTTPError as error:
        return {"status": error.code, "body": error.read().decode(errors="replace")}
    except OSError as error:
        return {"status": 0, "body": str(error)}


def main(mode, base, timeout, *rest):
    timeout = float(timeout)
    if mode == "metrics":
        return {"metrics": call(base + "/metrics", timeout)}
    if mode == "ready":
        return {"ready": call(base + "/ready", timeout)}
    answers = {"ready": call(base + "/ready", timeout)}
    answers["smoke"] = call(base + "/api/agent", timeout, {"input": rest[0]})
    return answers


print(json.dumps(main(*sys.argv[1:])))
