"""The shape of the application tree (no Ray started: only the child definitions)."""

from __future__ import annotations

from actors.config import TreeConfig
from actors.tree import tree_children


def test_default_tree_has_the_agents_subtree() -> None:
    children = {c.id: c for c in tree_children(TreeConfig(spread_executors=False))}
    assert list(children) == [
        "store", "telemetry", "gateway", "streams", "sessions", "executors", "agents", "health"
    ]  # fmt: skip
    agents = children["agents"]
    assert agents.args[2] == "rest_for_one"
    assert [c.id for c in agents.args[1]] == ["router", "general", "specialists"]
    specialists = agents.args[1][2]
    assert specialists.args[2] == "one_for_one"
    assert {c.path for c in specialists.args[1]} == {
        f"agents/{n}"
        for n in ("analysis", "refactoring", "testing", "planning", "code", "deployment")
    }
    assert agents.start_timeout_s == 60.0 * 9, "an allowance per descendant"


def test_a_pipeline_only_tree_leaves_the_agents_out() -> None:
    children = tree_children(TreeConfig(spread_executors=False, agents=False))
    assert "agents" not in {c.id for c in children}
