"""The README's setup on a bare Python: uv fetched from a package index, checked against the index's digest."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import json
import platform
import shutil
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts import bootstrap

FAKE_UV = b"#!/bin/sh\necho uv from the test index\n"


def _wheel() -> tuple[str, bytes]:
    name = f"uv-{bootstrap.UV_VERSION}-py3-none-manylinux_2_17_{platform.machine()}.whl"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"uv-{bootstrap.UV_VERSION}.data/scripts/uv", FAKE_UV)
        archive.writestr("uv/__init__.py", "")
    return name, buffer.getvalue()


@contextlib.contextmanager
def _index(digest_of: Any) -> Iterator[str]:
    """A PEP 691 index on loopback serving one uv wheel, with the sha256 `digest_of(payload)` claims for it."""
    name, payload = _wheel()
    other = f"uv-{bootstrap.UV_VERSION}-py3-none-win32.whl"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            base = f"http://127.0.0.1:{port}"
            if self.path == "/simple/uv/":
                files = [
                    {"filename": other, "url": f"{base}/files/{other}", "hashes": {"sha256": "0" * 64}},
                    {"filename": name, "url": f"{base}/files/{name}", "hashes": {"sha256": digest_of(payload)}},
                ]
                body = json.dumps({"files": files}).encode()
            elif self.path == f"/files/{name}":
                body = payload
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/simple"
    finally:
        server.shutdown()


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    tools = tmp_path / "tools"
    monkeypatch.setattr(bootstrap, "TOOLS", tools)
    monkeypatch.delenv("UV", raising=False)
    monkeypatch.delenv("UV_INDEX_URL", raising=False)
    monkeypatch.setattr(shutil, "which", lambda _: None)
    return tools


@pytest.mark.skipif(platform.system() != "Linux", reason="the fake wheel carries a Linux platform tag")
def test_uv_is_fetched_from_the_index_checked_and_unpacked(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with _index(lambda payload: hashlib.sha256(payload).hexdigest()) as index:
        monkeypatch.setenv("PIP_INDEX_URL", index)
        uv = bootstrap.find_uv()
    assert uv == isolated / "uv"
    assert uv.read_bytes() == FAKE_UV
    assert uv.stat().st_mode & 0o111, "executable"
    assert bootstrap.find_uv() == uv, "fetched once, then reused"


@pytest.mark.skipif(platform.system() != "Linux", reason="the fake wheel carries a Linux platform tag")
def test_a_wheel_that_does_not_match_the_index_digest_is_refused(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _index(lambda payload: hashlib.sha256(payload + b"tampered").hexdigest()) as index:
        monkeypatch.setenv("PIP_INDEX_URL", index)
        with pytest.raises(SystemExit, match="does not match the index's sha256"):
            bootstrap.find_uv()
    assert not (isolated / "uv").exists()


def test_a_uv_on_path_is_used_as_is(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: "/opt/bin/uv")
    assert bootstrap.find_uv() == Path("/opt/bin/uv")
    assert not isolated.exists(), "nothing fetched"


@pytest.mark.parametrize(
    ("system", "machine", "filename", "matches"),
    [
        ("linux", "x86_64", "uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", True),
        ("linux", "x86_64", "uv-0.13.9-py3-none-musllinux_1_1_x86_64.whl", False),
        ("linux", "aarch64", "uv-0.13.9-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", True),
        ("linux", "aarch64", "uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", False),
        ("darwin", "arm64", "uv-0.13.9-py3-none-macosx_11_0_arm64.whl", True),
        ("darwin", "x86_64", "uv-0.13.9-py3-none-macosx_11_0_arm64.whl", False),
        ("win32", "AMD64", "uv-0.13.9-py3-none-win_amd64.whl", True),
    ],
)
def test_the_wheel_for_this_platform_is_chosen(
    monkeypatch: pytest.MonkeyPatch, system: str, machine: str, filename: str, matches: bool
) -> None:
    monkeypatch.setattr(sys, "platform", system)
    monkeypatch.setattr(platform, "machine", lambda: machine)
    assert bootstrap._wheel_matches(filename) is matches
