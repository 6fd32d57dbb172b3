"""Raw HTTP/1.1 load for the reliability tests: many requests over kept-alive connections, and slow clients.

Plain asyncio sockets, so the test process can hold a thousand connections and send tens of
thousands of requests in seconds, and send bytes as slowly as an attacker would.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Iterable, Iterator


def request(method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
    """The bytes of one HTTP/1.1 request (content-length set when there is a body)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def post_json(path: str, payload, headers: dict[str, str] | None = None) -> bytes:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return request("POST", path, body, {"Content-Type": "application/json", **(headers or {})})


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


async def _connection(port: int, requests: Iterator[bytes], statuses: Counter, timeout: float) -> None:
    reader = writer = None
    for raw in requests:
        for attempt in range(2):  # a connection the server closed (keep-alive ended): one reconnect
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(raw)
                status, headers, _ = await asyncio.wait_for(_read_response(reader), timeout)
                statuses[status] += 1
                if headers.get("connection", "").lower() == "close":
                    writer.close()
                    writer = None
                break
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                if writer is not None:
                    writer.close()
                writer = None
                if attempt == 1:
                    statuses["connection error"] += 1
            except asyncio.TimeoutError:
                statuses["timeout"] += 1
                writer.close()
                writer = None
                break
    if writer is not None:
        writer.close()


def hammer(port: int, requests: Iterable[bytes], connections: int = 32, timeout: float = 30.0) -> Counter:
    """Send every request, ``connections`` at a time over kept-alive connections; status → count."""
    shared = iter(requests)
    statuses: Counter = Counter()

    async def main():
        await asyncio.gather(*(_connection(port, shared, statuses, timeout) for _ in range(connections)))

    asyncio.run(main())
    return statuses


async def trickle(port: int, head: bytes, rest: bytes, interval: float, until: float) -> tuple[str, float]:
    """Send ``head`` at once, then ``rest`` a byte every ``interval`` s until the server answers or closes,
    or ``until`` (monotonic) passes. Returns (what happened, seconds): 'status 408', 'closed', 'open'."""
    start = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return "connect failed", 0.0
    try:
        writer.write(head)
        answer = asyncio.ensure_future(reader.read(64))
        for byte in rest:
            if time.monotonic() > until:
                return "open", time.monotonic() - start
            done, _ = await asyncio.wait({answer}, timeout=interval)
            if done:
                data = answer.result()
                return (f"status {data.split()[1].decode()}" if data.startswith(b"HTTP/") else "closed",
                        time.monotonic() - start)
            writer.write(bytes([byte]))
        return "sent all", time.monotonic() - start
    except (ConnectionError, OSError):
        return "closed", time.monotonic() - start
    finally:
        writer.close()
