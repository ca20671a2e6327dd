"""The roadmap's week-1 demo as a user types it: two `elexirion chat --once` calls."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.unit.serve.test_chat_terminal import offline_env

REPO = Path(__file__).resolve().parents[3]
PLANTED = {4, 28, 43, 49, 58, 61, 63}


def chat(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "elexirion"
    return subprocess.run(
        [str(exe), "chat", "--embedded", "--store", f"sqlite:///{store}", *args],
        cwd=REPO,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_week1_demo_offline(tmp_path: Path) -> None:
    store = tmp_path / "chat.db"
    first = chat("--once", "analyze the code in examples/sample_project/app.py", store=store)
    assert first.returncode == 0, first.stderr
    for line in sorted(PLANTED):
        assert f"examples/sample_project/app.py:{line}" in first.stdout
    as_json = chat(
        "--once", "analyze the code in examples/sample_project/app.py", "--json", store=store
    )
    answer = json.loads(as_json.stdout)
    assert {f["line"] for f in answer["findings"] if f["file"].endswith("app.py")} >= PLANTED
    follow = chat(
        "--once",
        "now refactor it based on that analysis",
        "--session",
        answer["session_id"],
        "--json",
        store=store,
    )
    assert follow.returncode == 0, follow.stderr
    refactoring = json.loads(follow.stdout)
    assert refactoring["agent"] == "refactoring"
    assert refactoring["session_id"] == answer["session_id"]
    assert {f["line"] for f in refactoring["findings"]} >= PLANTED
    assert any("ast.literal_eval" in d["diff"] for d in refactoring["details"]["diffs"])
