"""A local HTTP file server for download tests.

It serves given bytes at given paths on 127.0.0.1, answers Range requests (206 with
Content-Range, 416 past the end) unless told not to, can cut one response short after N
body bytes (a dropped connection), can answer a few error statuses first, can redirect, and
counts the body bytes it sends, so a test can prove that a resumed download did not fetch
the same bytes twice. Use `FileServer` as a context manager, or the `http_server` fixture
(load it with `pytest_plugins = ["tests.http_server"]` in the root conftest.py; loaded from a
test module that also imports from here, pytest warns that it cannot rewrite this module).
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import pytest

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass
class Resource:
    """What the server answers at one path."""

    body: bytes = b""
    ranges: bool = True
    drop_after_bytes: int | None = None
    """Cut the next response after this many body bytes (once), then serve normally."""
    fail_statuses: list[int] = field(default_factory=list)
    """Statuses to answer first, one per request, before serving the body."""
    location: str | None = None
    """Answer 302 to this URL instead of serving a body."""


@dataclass(frozen=True)
class Request:
    path: str
    range: str | None


class LocalServer:
    """A threaded HTTP server on an ephemeral port of 127.0.0.1, answering with `handler`;
    a context manager that starts and stops it."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,),
                                        daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def url(self, path: str = "") -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"


class FileServer(LocalServer):
    """Given bytes at given paths (`serve`), with the faults a test asks for."""

    def __init__(self) -> None:
        self.resources: dict[str, Resource] = {}
        self.requests: list[Request] = []
        self.bytes_served = 0
        super().__init__(_handler_for(self))

    def serve(self, path: str, body: bytes = b"", *, ranges: bool = True,
              drop_after_bytes: int | None = None, fail_statuses: tuple[int, ...] = (),
              location: str | None = None) -> str:
        """Register what `path` answers; return its URL."""
        self.resources[path] = Resource(body, ranges, drop_after_bytes, list(fail_statuses),
                                        location)
        return self.url(path)

    def requests_for(self, path: str) -> list[Request]:
        return [request for request in self.requests if request.path == path]

    def _count(self, request: Request | None, sent: int = 0) -> None:
        with self._lock:
            if request is not None:
                self.requests.append(request)
            self.bytes_served += sent


def _handler_for(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Silence the per-request log on stderr."""

        def do_GET(self) -> None:
            resource = server.resources.get(self.path)
            server._count(Request(self.path, self.headers.get("Range")))
            if resource is None:
                self._reply_empty(404)
                return
            if resource.fail_statuses:
                self._reply_empty(resource.fail_statuses.pop(0))
                return
            if resource.location is not None:
                self._reply_empty(302, {"Location": resource.location})
                return
            body, total = resource.body, len(resource.body)
            start, end = 0, total - 1
            match = _RANGE.fullmatch(self.headers.get("Range", ""))
            if resource.ranges and match:
                start = int(match.group(1))
                end = min(int(match.group(2) or total - 1), total - 1)
                if start >= total:
                    self._reply_empty(416, {"Content-Range": f"bytes */{total}"})
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{total}")
            else:
                self.send_response(200)
            if resource.ranges:
                self.send_header("Accept-Ranges", "bytes")
            payload = body[start:end + 1]
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if resource.drop_after_bytes is not None:
                payload = payload[:resource.drop_after_bytes]
                resource.drop_after_bytes = None
                self.close_connection = True
            # Counted before the write: once the client has read the last byte it may check
            # the count at once, before this thread would get to count after writing.
            server._count(None, len(payload))
            self.wfile.write(payload)

        def _reply_empty(self, status: int, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def unused_port() -> int:
    """A local port nothing listens on, so connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def http_server() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server
