"""`elexirion serve --embedded`: the server starts, prints a working one-time login URL."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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
    workspace = tmp_path
    shutil.copy(REPO / "examples" / "sample_project" / "app.py", workspace / "app.py")
    shutil.copy(REPO / "examples" / "sample_project" / "utils.py", workspace / "utils.py")
    process = subprocess.Popen(
        [str(exe), "serve", "--embedded", "--port", str(port), "--store", store],
        cwd=workspace,
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
        chat = [str(exe), "chat", "--url", base, "--once"]
        remote = {**env, "ELEXIRION_API_KEY": key}
        first = subprocess.run(
            [*chat, "analyze the code in app.py", "--json"],
            cwd=tmp_path, env=remote, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert first.returncode == 0, first.stderr
        answer = json.loads(first.stdout)
        assert answer["agent"] == "analysis" and {58, 63} <= {f["line"] for f in answer["findings"]}
        follow = subprocess.run(
            [*chat, "now refactor it based on that analysis", "--session", answer["session_id"]],
            cwd=tmp_path, env=remote, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert follow.returncode == 0, follow.stderr
        assert "refactoring" in follow.stdout and "app.py:58" in follow.stdout
        denied = subprocess.run(
            [*chat, "hello"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        assert denied.returncode != 0 and "ELEXIRION_API_KEY" in denied.stderr
        assert key not in first.stderr + follow.stdout + follow.stderr
    finally:
        process.terminate()
        process.communicate(timeout=30)  # also closes the pipe


def test_proxy_choice_is_checked_and_sets_haproxy_mode(monkeypatch: Any) -> None:
    """`--proxy`: an unknown value and haproxy without API keys are refused (exit 2,
    naming the option); auto means HAProxy mode with keys and Serve's proxy without."""
    import typer
    from typer.testing import CliRunner

    from serve import cli_serve

    started: list[str | None] = []

    def fake_start(*args: Any) -> str:
        started.append(os.environ.get(cli_serve.HAPROXY_ENV))
        raise RuntimeError("stop here")  # the command reports it in one line, exit 1

    monkeypatch.setattr(cli_serve, "_start_cluster_app", fake_start)
    monkeypatch.delenv(cli_serve.HAPROXY_ENV, raising=False)
    app = typer.Typer()
    cli_serve.register(app)
    app.command("noop")(lambda: None)  # two commands: `serve` stays a subcommand
    runner = CliRunner()

    bad = runner.invoke(app, ["serve", "--proxy", "nginx"])
    assert bad.exit_code == 2 and "--proxy: 'nginx' is not one of" in bad.output
    unsafe = runner.invoke(app, ["serve", "--proxy", "haproxy", "--no-auth"])
    assert unsafe.exit_code == 2 and "--no-auth" in unsafe.output
    assert started == []
    for argv, expected in (
        (["serve"], "1"),
        (["serve", "--no-auth"], None),
        (["serve", "--proxy", "python"], None),
        (["serve", "--proxy", "haproxy"], "1"),
    ):
        result = runner.invoke(app, argv)
        assert result.exit_code == 1 and "stop here" in result.output, result.output
        assert started[-1] == expected, argv


def test_a_taken_haproxy_port_is_named(monkeypatch: Any) -> None:
    """Before Serve starts HAProxy on a new Ray head, a process holding its stats or
    metrics port is named in a clear error (Serve itself only says `ready()` failed)."""
    import pytest
    from ray.serve._private import constants

    from serve import cli_serve

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        monkeypatch.setattr(constants, "RAY_SERVE_HAPROXY_STATS_PORT", port)
        monkeypatch.setattr(constants, "RAY_SERVE_HAPROXY_METRICS_PORT", _free_port())
        with pytest.raises(RuntimeError, match=f"port {port}, which Serve's HAProxy needs"):
            cli_serve._check_haproxy_ports()
    cli_serve._check_haproxy_ports()  # released: nothing to say


def test_tree_size_follows_the_cpus_unless_given() -> None:
    from serve.cli_serve import tree_size

    assert tree_size(None, None, cpus=2) == (2, 1)
    assert tree_size(None, None, cpus=1) == (2, 1)
    assert tree_size(None, None, cpus=16) == (16, 8)
    assert tree_size(3, 5, cpus=2) == (3, 5)
