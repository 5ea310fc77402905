"""A small OpenAI-compatible HTTP server for tests: the only fake in the suite.

It speaks POST .../chat/completions over real HTTP on 127.0.0.1, so the agent
exercises its real provider client (ChatOpenAI / ChatDeepSeek -> openai SDK ->
httpx) end to end. Behaviour is switched per test.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STUB_PROMPT_TOKENS = 17
STUB_COMPLETION_TOKENS = 9


@dataclass
class StubBehaviour:
    status: int = 200
    delay_s: float = 0.0
    # Fail this many requests with `status` first, then answer 200.
    fail_times: int | None = None
    # Put this text in error bodies: real providers echo (part of) the key back.
    error_message: str = "stub failure"


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]


@dataclass
class OpenAIStub:
    behaviour: StubBehaviour = field(default_factory=StubBehaviour)
    received: list[ReceivedRequest] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> OpenAIStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def _send_json(self, status: int, document: dict[str, Any]) -> None:
                payload = json.dumps(document).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                headers = {name.lower(): value for name, value in self.headers.items()}
                stub.received.append(ReceivedRequest(self.path, headers, body))
                if not self.path.endswith("/chat/completions"):
                    self._send_json(404, {"error": {"message": "unknown path", "type": "invalid_request_error"}})
                    return
                behaviour = stub.behaviour
                if behaviour.delay_s:
                    time.sleep(behaviour.delay_s)
                failing = behaviour.status != 200 and (
                    behaviour.fail_times is None or len(stub.received) <= behaviour.fail_times
                )
                if failing:
                    self._send_json(behaviour.status, {
                        "error": {"message": behaviour.error_message, "type": "stub_error", "code": None},
                    })
                    return
                last_user = next(
                    (message.get("content") for message in reversed(body.get("messages", []))
                     if message.get("role") == "user"),
                    "",
                )
                self._send_json(200, {
                    "id": f"chatcmpl-stub-{len(stub.received)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "stub-model"),
                    "choices": [{
                        "index": 0,
                        "message": {"role": "assistant", "content": f"stub says: {last_user}"},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }],
                    "usage": {
                        "prompt_tokens": STUB_PROMPT_TOKENS,
                        "completion_tokens": STUB_COMPLETION_TOKENS,
                        "total_tokens": STUB_PROMPT_TOKENS + STUB_COMPLETION_TOKENS,
                    },
                })

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), name="openai-stub", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
