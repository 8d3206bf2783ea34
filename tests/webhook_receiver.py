"""A webhook receiver on loopback for tests: records every POST (headers and exact body) and
answers from a script of responses (status, optional delay, headers); once the script is used up
it answers 200."""

from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Answer:
    status: int = 200
    delay: float = 0.0  # seconds before answering (longer than the sender's timeout: a timeout)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


class Receiver:
    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.script: list[Answer] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    answer = receiver.script.pop(0) if receiver.script else Answer()
                    receiver.deliveries.append(
                        Delivery(
                            self.path, {k.lower(): v for k, v in self.headers.items()}, body, answer.status
                        )
                    )
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the sender gave up (timeout) and closed the connection
                    pass

            def log_message(self, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)

    def url(self, path: str = "/hooks/videogen") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def answer(self, *answers: Answer) -> None:
        with self._lock:
            self.script.extend(answers)

    def received(self, path: str | None = None) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if path is None or d.path == path]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
