"""Real receivers for the notification tests: an HTTP webhook receiver and an SMTP
server (aiosmtpd), both on free loopback ports in this process."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from tests.conftest import free_port


@dataclass
class Webhook:
    """Records every JSON body POSTed to it; answers 500 to the first `fail_first`."""

    url: str
    bodies: list[dict] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    fail_first: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def webhook_receiver(fail_first: int = 0) -> Iterator[Webhook]:
    port = free_port()
    hook = Webhook(url=f"http://127.0.0.1:{port}/hooks/T0/secret-token", fail_first=fail_first)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with hook.lock:
                failing = hook.fail_first > 0
                if failing:
                    hook.fail_first -= 1
                else:
                    hook.bodies.append(json.loads(body))
                    hook.paths.append(self.path)
            self.send_response(500 if failing else 200)
            self.end_headers()
            self.wfile.write(b"no" if failing else b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    port: int
    messages: list[Message] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)


class _Collect:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.box.messages.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    box = Mailbox(port=free_port())
    controller = Controller(_Collect(box), hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
