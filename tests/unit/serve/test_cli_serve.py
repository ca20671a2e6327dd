"""`elexirion serve --embedded`: the server starts, prints a working one-time login URL."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_prints_a_login_url_that_works(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    exe = Path(sys.executable).parent / "elexirion"
    store = f"sqlite:///{tmp_path / 'serve.db'}"
    process = subprocess.Popen(
        [str(exe), "serve", "--embedded", "--port", str(port), "--store", store],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 90
        assert process.stdout is not None
        while not any("login?token=" in line or "#token=" in line for line in lines):
            assert time.monotonic() < deadline and process.poll() is None, "".join(lines)
            lines.append(process.stdout.readline())
        url = re.search(r"http://\S+token=\S+", "".join(lines))
        assert url is not None, lines
        base = f"http://127.0.0.1:{port}"
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the server never answered"
        assert httpx.get(f"{base}/api/sessions").status_code == 401
        key = url.group(0).split("token=", 1)[1]
        listed = httpx.get(f"{base}/api/sessions", headers={"Authorization": f"Bearer {key}"})
        assert listed.status_code == 200 and listed.json() == {"sessions": []}
    finally:
        process.terminate()
        process.communicate(timeout=30)  # also closes the pipe
