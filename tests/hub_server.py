"""A local stand-in for the Hugging Face hub's public HTTP API, for tests of `weights:
pretrained` on first contact: a model repository's files at a commit, served on 127.0.0.1 the
way the hub serves them, so huggingface_hub (pointed here by `HF_ENDPOINT`) lists and
downloads them through its real code path.

What it answers, as the hub documents and serves it:
- `GET /api/models/<repo>/revision/<commit>`: the repository's info (`sha`, `siblings`);
- `GET /api/models/<repo>/tree/<commit>`: the file listing, each file with its git blob id
  and size, and for large files the LFS pointer (`lfs.oid` is the content's sha256);
- `HEAD`/`GET /<repo>/resolve/<commit>/<path>`: the file, with `X-Repo-Commit`, an `ETag`
  (the git blob id; for LFS files `X-Linked-Etag`, the sha256, and `X-Linked-Size`) and
  Range support.
Every path a client asked for is recorded, so a test can prove which files were fetched.
"""

from __future__ import annotations

import hashlib
import json
import re
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tests.http_server import LocalServer

LFS_THRESHOLD_BYTES = 1024
"""Files from this size up are stored as LFS objects, as the hub's `.gitattributes` makes
weights files (a test's tiny weights too)."""
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


def git_blob_id(content: bytes) -> str:
    """The git object id of a file's content: what the hub's tree calls `oid`."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class HubServer(LocalServer):
    """Repositories at commits (`publish`), and the paths of every file GET (not HEAD) a
    client made, in order (`fetched`)."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], dict[str, bytes]] = {}
        self.fetched: list[str] = []
        super().__init__(_handler_for(self))

    @property
    def endpoint(self) -> str:
        return self.url()

    def publish(self, repo_id: str, commit: str, folder: Path) -> None:
        """Serve every file of `folder` as `repo_id` at `commit`."""
        self.repos[(repo_id, commit)] = {
            str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}

    def _files(self, repo_id: str, commit: str) -> dict[str, bytes] | None:
        return self.repos.get((repo_id, commit))


def _tree_entry(path: str, content: bytes) -> dict[str, object]:
    entry: dict[str, object] = {"type": "file", "path": path, "size": len(content),
                                "oid": git_blob_id(content)}
    if len(content) >= LFS_THRESHOLD_BYTES:
        entry["lfs"] = {"oid": hashlib.sha256(content).hexdigest(), "size": len(content),
                        "pointerSize": 134}
    return entry


def _handler_for(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    api = re.compile(r"/api/models/(?P<repo>[^/]+/[^/]+)/(?P<kind>revision|tree)/(?P<rev>[^/]+)"
                     r"(?:/.*)?")
    resolve = re.compile(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Silence the per-request log on stderr."""

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def _answer(self, send_body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            if match := api.fullmatch(path):
                files = hub._files(match["repo"], match["rev"])
                if files is None:
                    self._reply(404, b'{"error": "Revision Not Found"}',
                                {"X-Error-Code": "RevisionNotFound"}, send_body)
                elif match["kind"] == "tree":
                    self._reply(200, json.dumps([_tree_entry(p, c) for p, c in files.items()]
                                                ).encode(), {}, send_body)
                else:
                    self._reply(200, json.dumps({
                        "id": match["repo"], "sha": match["rev"],
                        "siblings": [{"rfilename": p} for p in files]}).encode(), {}, send_body)
                return
            match = resolve.fullmatch(path)
            files = hub._files(match["repo"], match["rev"]) if match else None
            if match is None or files is None or match["path"] not in files:
                self._reply(404, b"Entry not found", {"X-Error-Code": "EntryNotFound"},
                            send_body)
                return
            content = files[match["path"]]
            headers = {"X-Repo-Commit": match["rev"], "ETag": f'"{git_blob_id(content)}"',
                       "Accept-Ranges": "bytes"}
            if len(content) >= LFS_THRESHOLD_BYTES:
                headers |= {"X-Linked-Etag": f'"{hashlib.sha256(content).hexdigest()}"',
                            "X-Linked-Size": str(len(content))}
            status, start = 200, 0
            if (ranged := _RANGE.fullmatch(self.headers.get("Range", ""))) and send_body:
                start = int(ranged.group(1))
                status = 206
                headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
            if send_body:
                with hub._lock:
                    hub.fetched.append(match["path"])
            self._reply(status, content[start:], headers, send_body)

        def _reply(self, status: int, body: bytes, headers: dict[str, str],
                   send_body: bool) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)

    return Handler
