"""A small real HTTP controller on 127.0.0.1 for shipping tests: records what agents POST."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeController:
    """POST /api/v1/flows (and /api/v1/edges); answers with `statuses` in turn (then 200), keeps every accepted batch."""

    def __init__(self, port: int | None = None, statuses: list[int] | None = None, token: str = "s3cret") -> None:
        self.port = port or free_port()
        self.statuses = list(statuses or [])
        self.token = token
        self.batches: list[dict[str, Any]] = []
        self.requests = 0
        self.unauthorized = 0
        self.lock = threading.Lock()
        controller = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with controller.lock:
                    controller.requests += 1
                    if self.path not in ("/api/v1/flows", "/api/v1/edges"):
                        status = 404
                    elif self.headers.get("Authorization") != f"Bearer {controller.token}":
                        controller.unauthorized += 1
                        status = 401
                    elif controller.statuses:
                        status = controller.statuses.pop(0)
                    else:
                        status = 200
                    if status == 200:
                        controller.batches.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def flows(self) -> list[dict[str, Any]]:
        with self.lock:
            return [f for b in self.batches for f in b["flows"]]

    def __enter__(self) -> FakeController:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
