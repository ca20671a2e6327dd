"""Multi-node scenario, run in its own process by test_multinode.py (one Ray per process).

Head + 2 worker nodes on this machine (ray.cluster_utils.Cluster). Checks that
executors land on different nodes, then removes a worker node while runs are in
flight and checks every run still completes. Prints one JSON line of findings.
"""

from __future__ import annotations

import os

os.environ.setdefault("RAY_AUTH_MODE", "token")  # before ray is imported: Ray reads it once

import concurrent.futures
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from actors.app import execute_on_cluster, start_tree, stop_tree
from actors.config import TreeConfig


def _progress(what: str) -> None:
    sys.stderr.write(f"[scenario] {what}\n")
    sys.stderr.flush()


def main() -> int:
    # Default node addresses: Ray resolves a 127.0.0.1 bootstrap address to the node's
    # own IP anyway, so pinning the head to loopback makes the driver miss its GCS.
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    workers = [cluster.add_node(num_cpus=1, resources={f"w{i}": 1}) for i in range(2)]
    cluster.wait_for_nodes()
    ray.init(
        address=cluster.address, namespace="elexirion", logging_level="ERROR", log_to_driver=False
    )
    # The driver's view of the cluster can lag the nodes' registration: placement
    # is computed from it, so wait until all three nodes are visible and alive.
    deadline = time.monotonic() + 60
    while sum(1 for n in ray.nodes() if n.get("Alive")) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    findings: dict[str, object] = {
        "alive_nodes_at_start": sum(1 for n in ray.nodes() if n.get("Alive"))
    }
    db = Path(tempfile.mkdtemp()) / "elexirion.db"
    try:
        started = time.perf_counter()
        start_tree(
            # Placement and failover of executors is the subject: no agents subtree
            # (nine more processes on the head of a 3-node cluster on 2 cores).
            TreeConfig(
                store_url=f"sqlite:///{db}",
                shards=1,
                executors=3,
                spread_executors=True,
                agents=False,
            )
        )
        findings["tree_up_s"] = round(time.perf_counter() - started, 2)
        _progress("tree up")
        # An executor still starting (or restarting) on a busy machine is not in the
        # pool yet: wait (bounded) until all three are live before judging placement.
        executors = ray.get_actor("elexirion/executors")
        deadline = time.monotonic() + 120
        while True:
            loads = ray.get(executors.loads.remote(), timeout=60)
            if len(loads["nodes"]) == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        nodes = loads["nodes"]
        findings["executor_nodes"] = nodes
        findings["distinct_nodes"] = len(set(nodes.values()))
        worker_ids = {w.node_id for w in workers}
        victim = next((w for w in workers if w.node_id in set(nodes.values())), workers[0])
        findings["victim_hosts_executors"] = victim.node_id in set(nodes.values())
        _progress(f"executors on {findings['distinct_nodes']} nodes")
        yaml = "workflow:\n  name: slow\n  steps:\n" + "".join(
            f"    - {{name: s{i}, type: test_echo, delay_s: 0.4, value: {i}}}\n" for i in range(5)
        )
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            futures = [
                pool.submit(
                    execute_on_cluster, {"yaml": yaml, "source": "slow.yaml"}, {}, run_id=f"mn-{i}"
                )
                for i in range(8)
            ]
            time.sleep(1.0)
            cluster.remove_node(victim)
            findings["removed_node"] = victim.node_id
            _progress("node removed")
            results = [f.result(timeout=120) for f in futures]
        findings["runs_completed"] = sum(r["status"] == "succeeded" for r in results)
        findings["runs_total"] = len(results)
        findings["resumed_runs"] = sum(1 for r in results if r.get("resumed_at"))
        findings["finished_on_removed_node"] = sum(r.get("node") == victim.node_id for r in results)
        findings["worker_nodes"] = sorted(worker_ids)
        stop_tree()
    finally:
        ray.shutdown()
        cluster.shutdown()
    sys.stdout.write(json.dumps(findings) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
