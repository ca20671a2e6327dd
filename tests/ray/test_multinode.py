"""Multi-node: executors spread over nodes; removing a node mid-run still completes every run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray

SCENARIO = Path(__file__).with_name("multinode_scenario.py")


def test_executors_spread_and_survive_node_removal() -> None:
    """Head + 2 workers: executors on >1 node; a worker node removed mid-run; every run completes."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, str(SCENARIO)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    findings = json.loads(done.stdout.strip().splitlines()[-1])
    assert findings["distinct_nodes"] >= 2, findings
    assert findings["victim_hosts_executors"] is True
    assert findings["runs_completed"] == findings["runs_total"] == 8, findings
    assert findings["finished_on_removed_node"] == 0
