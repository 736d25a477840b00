"""Set up the project's virtualenv (`.venv`) on a machine that has nothing but a Python 3.11+ interpreter.

Stock Debian and Ubuntu Pythons refuse `pip install` outside a virtualenv (PEP 668, "externally managed
environment"), and may not even ship pip or the venv module. This script needs neither: it uses `uv`
from PATH if there is one, or else fetches the pinned uv wheel from the package index (checking the
index's sha256), unpacks its binary under `.tools/`, and runs `uv sync --frozen` with the interpreter
that runs this script, so uv neither downloads a Python of its own nor touches the system's packages.

Standard library only. Honours `UV` (a uv binary to use) and `PIP_INDEX_URL` / `UV_INDEX_URL` (a mirror).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

UV_VERSION = "0.13.9"
"""The uv that wrote uv.lock; any uv able to read that lock works too."""
DEFAULT_INDEX = "https://pypi.org/simple"
PROJECT = Path(__file__).resolve().parent.parent
TOOLS = PROJECT / ".tools" / f"uv-{UV_VERSION}"
MINIMUM_PYTHON = (3, 11)


def _say(message: str) -> None:
    print(f"bootstrap: {message}", file=sys.stderr, flush=True)


def _wheel_matches(filename: str) -> bool:
    """Whether a uv wheel's platform tag fits this machine."""
    machine = platform.machine().lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    if sys.platform.startswith("linux"):
        return "manylinux" in filename and arch in filename
    if sys.platform == "darwin":
        return "macosx" in filename and ("arm64" if arch == "aarch64" else "x86_64") in filename
    if sys.platform == "win32":
        return filename.endswith("win_amd64.whl") if arch == "x86_64" else filename.endswith("win_arm64.whl")
    return False


def _index_files(index: str) -> list[dict[str, object]]:
    """The index's files for uv, from its JSON simple API (PEP 691)."""
    request = urllib.request.Request(
        f"{index.rstrip('/')}/uv/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        files: list[dict[str, object]] = json.load(response)["files"]
    return files


def _download_uv() -> Path:
    binary = TOOLS / ("uv.exe" if sys.platform == "win32" else "uv")
    if binary.is_file():
        return binary
    index = os.environ.get("UV_INDEX_URL") or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX
    prefix = f"uv-{UV_VERSION}-"
    candidates = [
        f for f in _index_files(index) if str(f["filename"]).startswith(prefix) and _wheel_matches(str(f["filename"]))
    ]
    if not candidates:
        raise SystemExit(f"bootstrap: no uv {UV_VERSION} wheel for {sys.platform}/{platform.machine()} at {index}")
    wheel = candidates[0]
    _say(f"fetching {wheel['filename']} from {index}")
    with urllib.request.urlopen(str(wheel["url"]), timeout=300) as response:
        payload = response.read()
    expected = dict(wheel["hashes"]).get("sha256")  # type: ignore[call-overload]
    if expected is None or hashlib.sha256(payload).hexdigest() != expected:
        raise SystemExit(f"bootstrap: {wheel['filename']} does not match the index's sha256; not using it")
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        member = next(n for n in archive.namelist() if n.endswith(f".data/scripts/{binary.name}"))
        TOOLS.mkdir(parents=True, exist_ok=True)
        partial = binary.with_suffix(".partial")
        partial.write_bytes(archive.read(member))
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    partial.replace(binary)
    return binary


def find_uv() -> Path:
    """A uv to run: $UV, one on PATH, or the pinned one under .tools/ (fetched once)."""
    chosen = os.environ.get("UV") or shutil.which("uv")
    return Path(chosen) if chosen else _download_uv()


def main() -> int:
    if sys.version_info < MINIMUM_PYTHON:
        wanted = ".".join(map(str, MINIMUM_PYTHON))
        raise SystemExit(f"bootstrap: Python {wanted} or newer is needed, this is {platform.python_version()}")
    uv = find_uv()
    _say(f"syncing .venv with {uv} for Python {platform.python_version()} ({sys.executable})")
    # No bytecode compilation up front: compiling all 7,000 files of the SDKs costs more than every module
    # the planner imports costs to parse, and Python caches what it imports where it may write bytecode.
    command = [str(uv), "sync", "--frozen", "--python", sys.executable, "--no-compile-bytecode"]
    return subprocess.call(command, cwd=PROJECT)


if __name__ == "__main__":
    sys.exit(main())
