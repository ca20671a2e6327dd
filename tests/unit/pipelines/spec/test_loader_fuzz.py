"""Property tests: no YAML text or document shape makes the loader raise anything but ConfigError."""

from __future__ import annotations

import contextlib

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.errors import ConfigError
from pipelines.loader import load_pipeline_text
from pipelines.spec import STEP_TYPES

KEYS = [
    "name",
    "type",
    "prompt",
    "steps",
    "workflow",
    "condition",
    "value",
    "iterator",
    "data_source",
    "claude_options",
    "max_turns",
    "pipeline",
    "inputs",
    "outputs",
    "variables",
    "operations",
    "operation",
    "tool",
    "args",
    "content",
    "step",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from([*STEP_TYPES, "{{steps.a.x}}", "a > 1", "{{"]),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5),
    ),
    max_leaves=30,
)


def _only_config_errors(text: str) -> None:
    with contextlib.suppress(ConfigError):
        load_pipeline_text(text, source="fuzz.yaml")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text_raises_only_config_errors(text: str) -> None:
    """Any text either loads or raises a ConfigError (never TypeError, KeyError, ...)."""
    _only_config_errors(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_arbitrary_documents_raise_only_config_errors(document: object) -> None:
    """Any YAML-shaped data under any keys either loads or raises a ConfigError."""
    _only_config_errors(yaml.safe_dump({"workflow": document}))
    _only_config_errors(yaml.safe_dump(document))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "name": st.from_regex(r"[a-z]{1,6}", fullmatch=True),
                "type": st.sampled_from(STEP_TYPES),
            },
            optional={
                "prompt": scalars,
                "value": documents,
                "condition": scalars,
                "steps": st.just([]),
            },
        ),
        min_size=1,
        max_size=4,
    )
)
def test_step_lists_raise_only_config_errors(steps: list[dict[str, object]]) -> None:
    """Plausible step lists with random values load or raise a ConfigError."""
    _only_config_errors(yaml.safe_dump({"workflow": {"name": "f", "steps": steps}}))
