"""serving/http_protocol.py with a real uvicorn on 127.0.0.1: slow headers are cut off, normal requests are not."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import uvicorn

from serving.http_protocol import HeaderTimeoutProtocol
from tests.servers import free_port


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def server():
    HeaderTimeoutProtocol.header_timeout_s = 0.5
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=HeaderTimeoutProtocol, log_level="warning",
                            lifespan="off", timeout_keep_alive=30)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.02)
    yield port
    srv.should_exit = True
    thread.join(5)


def _closed_after(sock: socket.socket, limit: float) -> float | None:
    """Seconds until the server closed ``sock`` (None if it stayed open for ``limit`` s)."""
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(1024):
            pass
    except socket.timeout:
        return None
    return time.monotonic() - start


def test_a_connection_that_sends_nothing_or_trickles_headers_is_closed(server):
    idle = socket.create_connection(("127.0.0.1", server))
    assert _closed_after(idle, 3) < 1.5
    slow = socket.create_connection(("127.0.0.1", server))
    start = time.monotonic()
    for byte in b"GET / HTTP/1.1\r\nHost: x\r\n":  # every byte resets nothing: the deadline is per request
        try:
            slow.send(bytes([byte]))
        except OSError:
            break
        time.sleep(0.05)
        if time.monotonic() - start > 2:
            break
    assert _closed_after(slow, 3) is not None and time.monotonic() - start < 2


def test_complete_requests_on_a_kept_alive_connection_are_answered(server):
    sock = socket.create_connection(("127.0.0.1", server))
    for _ in range(3):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = b""
        while not reply.endswith(b"ok"):
            chunk = sock.recv(1024)
            assert chunk, reply  # the server must not close a connection whose requests are complete
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 200")
        time.sleep(0.7)  # idle longer than the header timeout between requests: only keep-alive applies
    sock.close()
