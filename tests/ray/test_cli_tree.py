"""The tree commands of the CLI against the running test tree: up (idempotent), status, run --cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.ray


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    import ray

    address = ray.get_runtime_context().gcs_address
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    exe = Path(sys.executable).parent / "elexirion"
    return subprocess.run(
        [str(exe), *args, "--address", address],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_up_is_idempotent_and_status_lists_the_tree(tree: dict[str, Any], tmp_path: Path) -> None:
    """`up` on a running tree reuses it; `status --json` lists every path with its fields."""
    done = cli("up", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "tree up" in done.stdout and "dashboard" in done.stdout.lower()
    status = cli("status", "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)
    paths = {r["path"] for r in rows}
    assert {"app", "store", "sessions/shard-0", "executors/executor-1", "health"} <= paths
    assert set(rows[0]) == {"path", "class", "node", "pid", "state", "restarts", "uptime"}


def test_run_cluster_runs_on_an_executor(tree: dict[str, Any], tmp_path: Path) -> None:
    """`run --cluster FILE --json` runs the file on an executor and prints its step results."""
    (tmp_path / "p.yaml").write_text(
        "workflow:\n  name: c\n  steps:\n    - {name: e, type: test_echo, value: '{{inputs.x}}'}\n"
    )
    done = cli("run", "--cluster", "p.yaml", "--input", "x=7", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["e"]["value"] == 7
    bad = cli("run", "--cluster", "missing.yaml", cwd=tmp_path)
    assert bad.returncode == 2 and "missing.yaml" in bad.stderr


def test_chat_once_talks_to_the_running_tree(tree: dict[str, Any]) -> None:
    """`chat --once` finds the running tree (no embedded fallback) and a follow-up with
    `--session` continues the same conversation there."""
    repo = Path(__file__).resolve().parents[2]
    first = cli(
        "chat", "--once", "analyze the code in examples/sample_project/app.py", "--json", cwd=repo
    )
    assert first.returncode == 0, first.stderr
    assert "tree" in first.stderr.lower() and "embedded" not in first.stderr.lower()
    answer = json.loads(first.stdout)
    assert answer["agent"] == "analysis", (
        answer["summary"][:300],
        answer.get("fallback_reason"),
        answer.get("routing"),
    )
    assert {58, 63} <= {f["line"] for f in answer["findings"]}
    follow = cli(
        "chat",
        "--once",
        "now refactor it based on that analysis",
        "--session",
        answer["session_id"],
        "--json",
        cwd=repo,
    )
    assert follow.returncode == 0, follow.stderr
    second = json.loads(follow.stdout)
    assert second["agent"] == "refactoring" and second["session_id"] == answer["session_id"]
    assert {58, 63} <= {f["line"] for f in second["findings"]}
