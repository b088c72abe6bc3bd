"""A raw-socket IMDS on 127.0.0.1 that sends exact bytes, however broken.

The emulator speaks HTTP through the standard library, which cannot drip a
status line or cut a chunked body; these answers need a server that writes
whatever bytes a test hands it.  One request per connection: every answer
ends with the connection closed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

TOKEN = b"AQAEAhostiletoken=="


def ok(body: bytes, *headers: str) -> bytes:
    """A well-formed 200 answer with *body* and extra header lines."""
    head = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", "Connection: close", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@dataclass(frozen=True)
class Answer:
    """Bytes to send, and the seconds between bytes (0: all at once)."""

    raw: bytes
    drip: float = 0.0


class HostileImds:
    """Answers ``(method, path)`` with an :class:`Answer`; 404 for anything else.

    The token PUT and the paths given to :meth:`start` answer well unless a
    test replaces them.  ``requests`` records ``(method, path)`` in order.
    """

    def __init__(self, answers: Dict[Tuple[str, str], Answer]) -> None:
        self.answers = {("PUT", "/latest/api/token"): Answer(ok(TOKEN)), **answers}
        self.requests: List[Tuple[str, str]] = []
        self._stop = threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> HostileImds:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(5)

    def count(self, method: str, path: str) -> int:
        return self.requests.count((method, path))

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            request = _read_head(conn)
            if request is None:
                return
            self.requests.append(request)
            answer = self.answers.get(request, Answer(b"HTTP/1.1 404 Not Found\r\n"
                                                      b"Content-Length: 0\r\n\r\n"))
            with contextlib.suppress(OSError):  # the client gave up: the point of most answers
                self._send(conn, answer)

    def _send(self, conn: socket.socket, answer: Answer) -> None:
        if not answer.drip:
            conn.sendall(answer.raw)
            return
        for i in range(len(answer.raw)):
            if self._stop.wait(answer.drip):
                return
            conn.sendall(answer.raw[i:i + 1])


def _read_head(conn: socket.socket) -> Optional[Tuple[str, str]]:
    """The request's method and path, once its head has arrived (None: closed first)."""
    conn.settimeout(10)
    data = b""
    deadline = time.monotonic() + 10
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        try:
            chunk = conn.recv(4096)
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    method, path = data.split(b"\r\n", 1)[0].decode("latin-1").split(" ")[:2]
    return method, path
