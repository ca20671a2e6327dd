"""OTP semantics with real actors: children killed mid-call are restarted per strategy; intensity escalates."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
import ray
from ray.exceptions import RayActorError

from actors._ray import NAMESPACE, actor_name, lookup
from actors.supervisor_actor import ChildDef

pytestmark = pytest.mark.ray


def start_supervisor(
    name: str, strategy: str, *, max_restarts: int = 3, period_s: float = 5.0
) -> Any:
    from actors.remote import actor_class

    children = [ChildDef(c, f"{name}/{c}", "health", (f"{name}/{c}",)) for c in ("a", "b", "c")]
    sup = (
        actor_class("supervisor")
        .options(
            name=actor_name(name),
            namespace=NAMESPACE,
            num_cpus=0,
            max_restarts=0,
            max_concurrency=1000,
        )
        .remote(name, children, strategy, max_restarts, period_s)
    )
    ray.get(sup.ready.remote(), timeout=60)
    return sup


def pids(name: str) -> dict[str, int]:
    return {
        c: ray.get(lookup(f"{name}/{c}").info.remote(), timeout=30)["pid"] for c in ("a", "b", "c")
    }


def kill_mid_call(path: str) -> None:
    """SIGKILL the child's process while a call to it is in flight; the caller must see the death."""
    handle = lookup(path)
    pending = handle.monitor.remote()  # never returns while the actor lives
    pid = ray.get(handle.info.remote(), timeout=30)["pid"]
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(RayActorError):
        ray.get(pending, timeout=30)


def wait_restarted(
    name: str, before: dict[str, int], expect_changed: set[str], timeout_s: float = 30
) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            now = pids(name)
        except (RayActorError, AttributeError, ray.exceptions.GetTimeoutError):
            time.sleep(0.1)
            continue
        changed = {c for c in now if now[c] != before[c]}
        if changed >= expect_changed:
            return now
        time.sleep(0.1)
    raise AssertionError(f"children {expect_changed} of {name} were not restarted")


def stop(sup: Any) -> None:
    ray.get(sup.stop.remote(), timeout=60)
    ray.kill(sup, no_restart=True)


@pytest.mark.parametrize(
    ("strategy", "restarted"),
    [("one_for_one", {"b"}), ("rest_for_one", {"b", "c"}), ("one_for_all", {"a", "b", "c"})],
)
def test_strategy_with_real_actors(
    ray_session: dict[str, Any], strategy: str, restarted: set[str]
) -> None:
    """Killing b mid-call restarts exactly the children the strategy names; the others keep their process."""
    name = f"t-{strategy.replace('_', '')}"
    sup = start_supervisor(name, strategy)
    try:
        before = pids(name)
        kill_mid_call(f"{name}/b")
        after = wait_restarted(name, before, restarted)
        time.sleep(0.5)  # a straggling restart of a sibling would show up now
        after = pids(name)
        assert {c for c in after if after[c] != before[c]} == restarted
        tree = ray.get(sup.tree.remote(), timeout=30)
        restarts = {c["id"]: c["restarts"] for c in tree["children"]}
        assert restarts["b"] == 1
    finally:
        stop(sup)


def test_intensity_exceeded_escalates(ray_session: dict[str, Any]) -> None:
    """More than max_restarts deaths within the period: children stopped, the supervisor reports escalation."""
    name = "t-intensity"
    sup = start_supervisor(name, "one_for_one", max_restarts=2, period_s=30.0)
    watch = sup.monitor.remote()
    try:
        for _ in range(2):  # two restarts are within the intensity of 2 in 30 s
            before = pids(name)
            kill_mid_call(f"{name}/a")
            wait_restarted(name, before, {"a"})
        kill_mid_call(f"{name}/a")  # the third would exceed it
        assert ray.get(watch, timeout=60) == "escalated"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(lookup(f"{name}/{c}") for c in ("b", "c")):
            time.sleep(0.1)
        assert lookup(f"{name}/b") is None and lookup(f"{name}/c") is None
    finally:
        ray.kill(sup, no_restart=True)
