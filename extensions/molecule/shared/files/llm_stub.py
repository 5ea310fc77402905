"""A stand-in for a remote OpenAI-compatible LLM, for the Molecule test host.

The real LLM is outside this machine; this answers POST /v1/chat/completions
like one would, and refuses any request whose bearer token is not one of the
keys in LLM_STUB_KEY (comma-separated), so a deploy that loses the key, or
brings one the provider does not know, fails its smoke request. While
the file LLM_STUB_OUTAGE names (/run/llm-stub-outage) exists, every request
is answered with the HTTP status written in it: a provider outage (503).
It listens on LLM_STUB_HOST: the agent runs in a container of the test
host's own engine and reaches it through the host gateway. GET /stats
counts the calls answered and, of those, the deploy's smoke requests, so a
test can start an outage right after a release passed its smoke request.
"""
from __future__ import annotations

import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EXPECTED_KEYS = set(os.environ["LLM_STUB_KEY"].split(","))
OUTAGE = os.environ.get("LLM_STUB_OUTAGE", "/run/llm-stub-outage")
# The release contract's default smoke_input ends with these words.
SMOKE_WORDS = "prove you are up"
STATS = {"calls": 0, "smoke_calls": 0}


def outage_status() -> int | None:
    try:
        with open(OUTAGE, encoding="utf-8") as mark:
            return int(mark.read().strip() or 503)
    except FileNotFoundError:
        return None


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/stats":
            self._send(200, STATS)
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        STATS["calls"] += 1
        if any(SMOKE_WORDS in str(message.get("content", "")) for message in body.get("messages", [])):
            STATS["smoke_calls"] += 1
        status = outage_status()
        if status is not None:
            self._send(status, {"error": {"message": "the stand-in is down", "type": "server_error"}})
            return
        if self.headers.get("Authorization") not in {f"Bearer {key}" for key in EXPECTED_KEYS}:
            self._send(401, {"error": {"message": "invalid api key", "type": "invalid_request_error"}})
            return
        prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        self._send(200, {
            "id": "chatcmpl-stub", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "stub"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": f"stub answer to: {prompt[-80:]}"}}],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 5,
                      "total_tokens": len(prompt.split()) + 5},
        })

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer((os.environ.get("LLM_STUB_HOST", "127.0.0.1"), int(os.environ.get("LLM_STUB_PORT", "8900"))), Handler).serve_forever()
