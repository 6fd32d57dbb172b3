"""A header timeout for uvicorn, the HTTP server inside each BentoML worker.

uvicorn bounds only the idle time between requests (keep-alive): a connection that is opened
and sends nothing, or sends a request's headers a byte at a time, is kept for as long as the
client likes, and each holds a file descriptor. ``HeaderTimeoutProtocol`` closes a connection
whose request headers are not complete ``header_timeout_s`` after it opened, or after the
request's first byte arrived. (The body's deadline is the request guard's, ``serving/guard.py``.)

BentoML starts uvicorn itself and offers no way to choose its protocol class, so ``install``
points uvicorn's ``"auto"`` protocol at this class; it must run in the worker before uvicorn
loads its config, which is after the service module is imported: ``serving/service.py`` calls
it at import. With h11 instead of httptools (not this project's setup) it changes nothing.
"""

from __future__ import annotations

import asyncio
import logging

from serving import rejections

log = logging.getLogger(__name__)

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is a dependency of the project and of the Bento
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


if HttpToolsProtocol is not None:

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, closing connections whose request headers take too long."""

        header_timeout_s = 10.0
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_timer()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_timer is None:  # a keep-alive connection starts its next request
                self._arm_header_timer()

        def on_headers_complete(self) -> None:
            self._cancel_header_timer()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_timer()
            super().connection_lost(exc)

        def _arm_header_timer(self) -> None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_timed_out)

        def _cancel_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_timed_out(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                rejections.record(408, "-", "-", "header_timeout")
                self.transport.close()
else:  # pragma: no cover
    HeaderTimeoutProtocol = None  # type: ignore[assignment,misc]


def install(header_timeout_s: float) -> bool:
    """Make uvicorn's ``"auto"`` HTTP protocol the header-timeout one; False when httptools is not in use."""
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    if HeaderTimeoutProtocol is None or AutoHTTPProtocol is not HttpToolsProtocol:
        log.warning("no header timeout: uvicorn does not use httptools here")
        return False
    HeaderTimeoutProtocol.header_timeout_s = float(header_timeout_s)
    HTTP_PROTOCOLS["auto"] = f"{__name__}:HeaderTimeoutProtocol"
    return True
