"""The pure supervision core: restart rules, exit plans, restart intensity, config and specs."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from supervision.child import ChildSpec, Exit, ExitKind, RestartType
from supervision.errors import PolicyConfigError
from supervision.strategy import (
    RestartIntensity,
    RestartPlan,
    Strategy,
    SupervisorConfig,
    plan_exit,
    should_restart,
)
from supervision.testing import FakeChildFactory, FakeClock

ORDER = ("a", "b", "c")
POSITIONS = {"first": "a", "middle": "b", "last": "c"}
STRATEGY_NAMES: tuple[Strategy, ...] = ("one_for_one", "one_for_all", "rest_for_one")
RESTART_TYPES: tuple[RestartType, ...] = ("permanent", "transient", "temporary")

# OTP restart rules, written out rather than derived: (restart type, exit kind) -> restarts?
RESTARTS = {
    ("permanent", ExitKind.NORMAL): True,
    ("permanent", ExitKind.ABNORMAL): True,
    ("permanent", ExitKind.SHUTDOWN): False,
    ("transient", ExitKind.NORMAL): False,
    ("transient", ExitKind.ABNORMAL): True,
    ("transient", ExitKind.SHUTDOWN): False,
    ("temporary", ExitKind.NORMAL): False,
    ("temporary", ExitKind.ABNORMAL): False,
    ("temporary", ExitKind.SHUTDOWN): False,
}
# A child that does not restart leaves the supervisor unless it is permanent.
REMOVED_IF_NOT_RESTARTED = {"permanent": False, "transient": True, "temporary": True}
# (strategy, failed child) -> (siblings stopped, children started), with permanent siblings.
RESTART_SHAPE: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    ("one_for_one", "a"): ((), ("a",)),
    ("one_for_one", "b"): ((), ("b",)),
    ("one_for_one", "c"): ((), ("c",)),
    ("one_for_all", "a"): (("c", "b"), ("a", "b", "c")),
    ("one_for_all", "b"): (("c", "a"), ("a", "b", "c")),
    ("one_for_all", "c"): (("b", "a"), ("a", "b", "c")),
    ("rest_for_one", "a"): (("c", "b"), ("a", "b", "c")),
    ("rest_for_one", "b"): (("c",), ("b", "c")),
    ("rest_for_one", "c"): ((), ("c",)),
}

CASES = list(itertools.product(STRATEGY_NAMES, RESTART_TYPES, ExitKind, POSITIONS))


def expected_plan(strategy: str, restart: str, kind: ExitKind, failed: str) -> RestartPlan:
    if not RESTARTS[(restart, kind)]:
        removed = (failed,) if REMOVED_IF_NOT_RESTARTED[restart] else ()
        return RestartPlan(stop=(), start=(), remove=removed, restart_counts=False)
    stop, start = RESTART_SHAPE[(strategy, failed)]
    return RestartPlan(stop=stop, start=start, remove=(), restart_counts=True)


@pytest.mark.parametrize(
    ("strategy", "restart", "kind", "position"),
    CASES,
    ids=[f"{s}-{r}-{k}-{p}" for s, r, k, p in CASES],
)
def test_plan_exit_table(
    strategy: Strategy, restart: RestartType, kind: ExitKind, position: str
) -> None:
    """Every strategy x restart type x exit kind x position gives OTP's stop/start/remove."""
    failed = POSITIONS[position]
    types: dict[str, RestartType] = {"a": "permanent", "b": "permanent", "c": "permanent"}
    types[failed] = restart
    plan = plan_exit(strategy, ORDER, failed, Exit(kind, "why"), types)
    assert plan == expected_plan(strategy, restart, kind, failed)


@pytest.mark.parametrize(("restart", "kind"), list(RESTARTS), ids=str)
def test_should_restart_follows_otp(restart: RestartType, kind: ExitKind) -> None:
    """permanent restarts unless shut down, transient only when abnormal, temporary never."""
    assert should_restart(restart, Exit(kind)) is RESTARTS[(restart, kind)]


@pytest.mark.parametrize(
    ("strategy", "failed", "expected"),
    [
        ("one_for_all", "a", RestartPlan(("c", "t"), ("a", "c"), ("t",), True)),
        ("one_for_all", "c", RestartPlan(("t", "a"), ("a", "c"), ("t",), True)),
        ("rest_for_one", "a", RestartPlan(("c", "t"), ("a", "c"), ("t",), True)),
        ("rest_for_one", "c", RestartPlan((), ("c",), (), True)),
        ("one_for_one", "a", RestartPlan((), ("a",), (), True)),
    ],
    ids=[
        "one_for_all-first",
        "one_for_all-last",
        "rest_for_one-first",
        "rest_for_one-last",
        "one_for_one",
    ],
)
def test_stopped_temporary_siblings_are_removed(
    strategy: Strategy, failed: str, expected: RestartPlan
) -> None:
    """A temporary sibling that a plan stops is removed, not restarted."""
    types: dict[str, RestartType] = {"a": "permanent", "t": "temporary", "c": "transient"}
    assert plan_exit(strategy, ("a", "t", "c"), failed, Exit(ExitKind.ABNORMAL), types) == expected


def test_crashed_temporary_child_touches_no_sibling() -> None:
    """A temporary child's crash under rest_for_one only removes that child."""
    types: dict[str, RestartType] = {"a": "permanent", "t": "temporary", "c": "permanent"}
    plan = plan_exit("rest_for_one", ("a", "t", "c"), "t", Exit(ExitKind.ABNORMAL), types)
    assert plan == RestartPlan(stop=(), start=(), remove=("t",), restart_counts=False)


def test_plan_touches_only_the_given_order() -> None:
    """Children left out of ``order`` (held stopped) are neither stopped nor started."""
    types: dict[str, RestartType] = {"a": "permanent", "b": "permanent", "c": "permanent"}
    plan = plan_exit("one_for_all", ("a", "c"), "a", Exit(ExitKind.ABNORMAL), types)
    assert plan == RestartPlan(stop=("c",), start=("a", "c"), remove=(), restart_counts=True)


def test_plan_refuses_unknown_child_strategy_and_type() -> None:
    """An unknown failed child or strategy is a ValueError; a missing restart type a KeyError."""
    types: dict[str, RestartType] = {"a": "permanent"}
    with pytest.raises(ValueError, match="'z' is not among"):
        plan_exit("one_for_one", ("a",), "z", Exit(ExitKind.ABNORMAL), types)
    with pytest.raises(ValueError, match="unknown strategy"):
        plan_exit("all_for_none", ("a",), "a", Exit(ExitKind.ABNORMAL), types)  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        plan_exit("one_for_all", ("a", "b"), "a", Exit(ExitKind.ABNORMAL), types)


# ----------------------------------------------------------------- restart intensity


def test_intensity_allows_exactly_max_restarts_in_period() -> None:
    """max_restarts restarts within the period are fine; one more exceeds the intensity."""
    clock = FakeClock()
    intensity = RestartIntensity(3, 5.0, clock=clock)
    results = []
    for _ in range(4):
        results.append(intensity.record())
        clock.advance(1.0)
    assert results == [False, False, False, True]
    assert intensity.recent() == 4


def test_old_restarts_age_out() -> None:
    """A restart stops counting once period_s has passed since it, not a moment before."""
    clock = FakeClock()
    intensity = RestartIntensity(2, 5.0, clock=clock)
    assert not intensity.record() and not intensity.record()
    clock.advance(4.999)
    assert intensity.recent() == 2
    clock.advance(0.001)
    assert intensity.recent() == 0
    assert not intensity.record() and not intensity.record()
    assert intensity.record()


def test_zero_restarts_means_the_first_one_exceeds() -> None:
    """With max_restarts=0 any restart escalates."""
    assert RestartIntensity(0, 5.0, clock=FakeClock()).record()


@pytest.mark.parametrize(
    ("max_restarts", "period_s"),
    [(-1, 5.0), (1.5, 5.0), (True, 5.0), (3, 0.0), (3, -1.0), (3, math.inf), (3, math.nan)],
    ids=["negative", "float", "bool", "zero-period", "negative-period", "inf-period", "nan-period"],
)
def test_intensity_rejects_bad_settings(max_restarts: Any, period_s: float) -> None:
    """Impossible intensity settings are a PolicyConfigError, in the intensity and the config."""
    with pytest.raises(PolicyConfigError):
        RestartIntensity(max_restarts, period_s, clock=FakeClock())
    with pytest.raises(PolicyConfigError):
        SupervisorConfig(max_restarts=max_restarts, period_s=period_s)


# ------------------------------------------------------------------- config and specs


@pytest.mark.parametrize(
    "kwargs",
    [
        {"strategy": "all_for_none"},
        {"restart_backoff_s": -1.0},
        {"restart_backoff_s": 6.0, "restart_backoff_max_s": 5.0},
        {"restart_backoff_max_s": math.inf},
        {"restart_backoff_s": math.nan},
    ],
    ids=["strategy", "negative-backoff", "backoff-above-max", "inf-max", "nan-backoff"],
)
def test_config_rejects_bad_settings(kwargs: dict[str, Any]) -> None:
    """A bad strategy or backoff is a PolicyConfigError at construction."""
    with pytest.raises(PolicyConfigError):
        SupervisorConfig(**kwargs)


def test_backoff_doubles_and_caps() -> None:
    """The backoff doubles per consecutive restart up to its cap, and is 0 when off."""
    config = SupervisorConfig(restart_backoff_s=0.5, restart_backoff_max_s=3.0)
    assert [config.backoff_s(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert config.backoff_s(10_000) == 3.0
    assert SupervisorConfig().backoff_s(3) == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"id": ""},
        {"restart": "forever"},
        {"type": "manager"},
        {"shutdown_timeout_s": -1.0},
        {"shutdown_timeout_s": math.nan},
    ],
    ids=["empty-id", "restart", "type", "negative-timeout", "nan-timeout"],
)
def test_child_spec_rejects_bad_settings(kwargs: dict[str, Any]) -> None:
    """A child spec with an empty id, unknown type or bad timeout is a PolicyConfigError."""
    start = FakeChildFactory().spec("x").start
    with pytest.raises(PolicyConfigError):
        ChildSpec(**{"id": "x", "start": start, **kwargs})
