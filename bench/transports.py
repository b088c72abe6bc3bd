"""What one IMDS GET costs in CPU, by HTTP layer: ``python -m bench.transports``.

The per-request CPU of ``--onetime`` is almost all below imdsrender's own
code (see the cProfile tables in RESULTS.md).  This measures the same
sequential GET of one leaf through each layer, on one thread, against the
in-repo emulator, counting only the calling thread's CPU
(``time.thread_time``; the emulator's threads do not count), so the
saving of each possible change to the client is a number, not a guess:

- ``ImdsClient.get``: imdsrender's client as it is (token, limit, retries,
  body caps, observer) over urllib3's PoolManager;
- ``PoolManager.request``: the urllib3 call the client makes, alone;
- ``HTTPConnectionPool.urlopen``: urllib3 without the PoolManager (no URL
  parsing and pool-key normalising per request);
- ``http.client``: one persistent ``HTTPConnection`` (header parsing via
  the email package);
- ``socket``: one keep-alive socket, the request prebuilt, the answer parsed
  by hand (status line, Content-Length): the floor for Python.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

import urllib3

from imdsrender.emulator import Emulator
from imdsrender.fixture import default_fixture
from imdsrender.imds.client import ImdsClient
from imdsrender.imds.wire import TOKEN_HEADER
from imdsrender.model import ImdsSettings

PATH = "/meta-data/instance-id"


def transports(url: str, token: str) -> Dict[str, Callable[[], bytes]]:
    """Name -> a function doing one GET of PATH with the token, returning the body."""
    client = ImdsClient(ImdsSettings(), endpoint=url)
    headers = {TOKEN_HEADER: token}
    manager = urllib3.PoolManager(maxsize=1, retries=False)
    host, port = urlsplit(url).hostname or "", urlsplit(url).port or 80
    pool = urllib3.HTTPConnectionPool(host, port, maxsize=1, retries=False)
    connection = http.client.HTTPConnection(host, port)
    raw = _RawGet(host, port, token)

    def pool_manager() -> bytes:
        reply = manager.request("GET", url + "/latest" + PATH, headers=dict(headers),
                                redirect=False, retries=False, preload_content=False)
        body = reply.read()
        reply.release_conn()
        return body

    def connection_pool() -> bytes:
        reply = pool.urlopen("GET", "/latest" + PATH, headers=headers, redirect=False,
                             retries=False, preload_content=False)
        body = reply.read()
        reply.release_conn()
        return body

    def plain() -> bytes:
        connection.request("GET", "/latest" + PATH, headers=headers)
        return connection.getresponse().read()

    return {"ImdsClient.get": lambda: client.get(PATH),
            "PoolManager.request": pool_manager,
            "HTTPConnectionPool.urlopen": connection_pool,
            "http.client": plain,
            "socket": raw.get}


class _RawGet:
    """One keep-alive socket; answers parsed by Content-Length (the emulator sends it)."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request = (f"GET /latest{PATH} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                        f"{TOKEN_HEADER}: {token}\r\n\r\n").encode("ascii")
        self.buffer = b""

    def get(self) -> bytes:
        self.sock.sendall(self.request)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += self.sock.recv(65536)
        self.buffer = rest[length:]
        return rest[:length]


def cpu_per_call(call: Callable[[], bytes], count: int) -> float:
    """CPU seconds of this thread per call, after a warm-up."""
    for _ in range(20):
        call()
    started = time.thread_time()
    for _ in range(count):
        call()
    return (time.thread_time() - started) / count


def measure(count: int, rounds: int) -> List[Tuple[str, float]]:
    """(transport, median µs of CPU per GET), interleaved over *rounds*."""
    with Emulator(dict(default_fixture())) as emulator:
        token = urllib3.PoolManager().request(
            "PUT", emulator.url + "/latest/api/token",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"}).data.decode()
        table = transports(emulator.url, token)
        expected = table["socket"]()
        samples: Dict[str, List[float]] = {name: [] for name in table}
        for _ in range(rounds):
            for name, call in table.items():
                if call() != expected:
                    raise RuntimeError(f"{name}: wrong body")
                samples[name].append(cpu_per_call(call, count))
    return [(name, statistics.median(values) * 1e6) for name, values in samples.items()]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transports",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=500, help="GETs per sample")
    parser.add_argument("--rounds", type=int, default=5, help="samples per transport")
    args = parser.parse_args(argv)
    results = measure(args.count, args.rounds)
    base = dict(results)["ImdsClient.get"]
    print(f"CPU per sequential GET, this thread only (medians of {args.rounds} x {args.count})")
    for name, micros in results:
        print(f"  {name:28} {micros:7.1f} us  {micros / base:5.2f}x ImdsClient.get")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
