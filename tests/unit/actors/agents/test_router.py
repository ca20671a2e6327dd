"""The router: local classifier accuracy and data hygiene, LLM fallback, agent choice."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from actors.agents.models import REQUEST_TYPES
from actors.agents.router import (
    DEFAULT_CAPABILITIES,
    DEFAULT_PIPELINES,
    DEFAULT_TRAIN_PATH,
    HELDOUT_PATH,
    History,
    RequestClassifier,
    Router,
    choose_agent,
    default_classifier,
    is_confirmation,
    load_examples,
)

#: Token Jaccard above which a held-out line counts as a near-duplicate of a training line.
MAX_JACCARD = 0.6
CLEAR_REQUESTS = [
    "write unit tests for the payment module and measure coverage",
    "deploy the service to production with a kubernetes rollout",
    "refactor this class to remove duplicated code",
    "hello, how are you?",
]
GIBBERISH = ["qzxv blorp wug", "zzkq vvmp rrtx", "lkjh poiu mnbv"]


@pytest.fixture(scope="module")
def classifier() -> RequestClassifier:
    return default_classifier()


class FakeLLM:
    """Answers every classification with one scripted answer (or raises it)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[tuple[str, Mapping[str, Any]]] = []

    async def __call__(self, text: str, context: Mapping[str, Any]) -> Any:
        self.calls.append((text, context))
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


class Recorder:
    def __init__(self) -> None:
        self.examples: list[dict[str, Any]] = []

    async def __call__(self, example: dict[str, Any]) -> None:
        self.examples.append(example)


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def _jaccard(a: str, b: str) -> float:
    left, right = _tokens(a), _tokens(b)
    return len(left & right) / len(left | right) if left | right else 1.0


# --- data and accuracy ---------------------------------------------------------


def test_heldout_accuracy_is_at_least_90_percent(classifier: RequestClassifier) -> None:
    """The local classifier alone routes >= 90% of the held-out requests correctly."""
    examples = load_examples(HELDOUT_PATH)
    predicted = classifier.predict_many([text for text, _ in examples])
    correct = sum(guess == kind for guess, (_, kind) in zip(predicted, examples, strict=True))
    assert correct / len(examples) >= 0.90


def test_heldout_has_no_near_duplicates_of_training_lines() -> None:
    """No held-out text shares more than 60% of its tokens (Jaccard) with a training text."""
    train = [text for text, _ in load_examples(DEFAULT_TRAIN_PATH)]
    heldout = [text for text, _ in load_examples(HELDOUT_PATH)]
    leaks = [(h, t) for h in heldout for t in train if _jaccard(h, t) > MAX_JACCARD]
    assert leaks == []


@pytest.mark.parametrize(("path", "minimum"), [(DEFAULT_TRAIN_PATH, 40), (HELDOUT_PATH, 20)])
def test_every_type_has_enough_examples(path: Path, minimum: int) -> None:
    """Training has >= 40 and held-out >= 20 examples of every request type, no duplicates."""
    examples = load_examples(path)
    counts = Counter(kind for _, kind in examples)
    assert {kind: counts[kind] >= minimum for kind in REQUEST_TYPES} == dict.fromkeys(
        REQUEST_TYPES, True
    )
    texts = [text.lower() for text, _ in examples]
    assert len(set(texts)) == len(texts)


def test_load_examples_rejects_an_unknown_type(tmp_path: Path) -> None:
    """A training line with a type outside REQUEST_TYPES is a ValueError naming the line."""
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"text": "hi", "type": "poetry"}) + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        load_examples(path)


# --- the classifier ------------------------------------------------------------


def test_training_is_fast(classifier: RequestClassifier) -> None:
    """Fitting on the shipped training file takes under two seconds."""
    assert classifier.fit_seconds < 2.0


def test_confidence_is_a_probability_and_lower_on_gibberish(
    classifier: RequestClassifier,
) -> None:
    """Confidences lie in [0, 1], scores sum to 1, and clear requests beat gibberish."""
    clear = [classifier.predict(text) for text in CLEAR_REQUESTS]
    noise = [classifier.predict(text) for text in GIBBERISH]
    for _, confidence, scores in clear + noise:
        assert 0.0 <= confidence <= 1.0
        assert set(scores) == set(REQUEST_TYPES)
        assert sum(scores.values()) == pytest.approx(1.0)
    assert [kind for kind, _, _ in clear] == ["testing", "deployment", "refactoring", "general"]
    assert min(c for _, c, _ in clear) > max(c for _, c, _ in noise)


def test_fast_scorer_matches_scikit_learn(classifier: RequestClassifier) -> None:
    """The per-request scorer gives scikit-learn's probabilities on every shipped text,
    on edge cases (empty, unknown words only, long, non-ASCII) and on misspellings."""
    texts = [t for t, _ in load_examples(DEFAULT_TRAIN_PATH) + load_examples(HELDOUT_PATH)]
    texts += ["", "   ", "qzxv", "x" * 5000, "Überprüfe die Datei 日本語 app.py", "refactr ths"]
    for text in texts:
        expected = classifier._model.predict_proba([text])[0]
        got = classifier._scorer.proba(text)
        assert list(got) == pytest.approx(list(expected), abs=1e-12), text


def test_training_is_deterministic(classifier: RequestClassifier) -> None:
    """Two classifiers trained on the same file give identical scores."""
    again = RequestClassifier.from_file(DEFAULT_TRAIN_PATH)
    for text in [*CLEAR_REQUESTS, *GIBBERISH]:
        assert again.predict(text) == classifier.predict(text)


# --- agent choice --------------------------------------------------------------


def test_each_type_goes_to_its_own_agent_without_history() -> None:
    """With the default table and no telemetry, every type is served by its namesake."""
    for kind in REQUEST_TYPES:
        agent, scores = choose_agent(kind, DEFAULT_CAPABILITIES, {})
        assert agent == kind
        assert scores[kind] == pytest.approx(0.7 * 1.0 + 0.3 * 0.5)


def test_failing_specialist_loses_to_strong_secondary() -> None:
    """0.7*1 + 0.3*0 = 0.70 < 0.7*0.6 + 0.3*1 = 0.72: the refactoring agent takes code."""
    history: History = {("code", "code"): 0.0, ("refactoring", "code"): 1.0}
    capabilities = {"code": {"code": 1.0}, "refactoring": {"code": 0.6}}
    agent, scores = choose_agent("code", capabilities, history)
    assert agent == "refactoring"
    assert scores == pytest.approx({"code": 0.70, "refactoring": 0.72})


def test_ties_break_toward_the_agent_named_like_the_type() -> None:
    """Equal scores go to the agent whose name is the request type."""
    capabilities = {"general": {"code": 1.0}, "code": {"code": 1.0}}
    assert choose_agent("code", capabilities)[0] == "code"


def test_agents_that_do_not_serve_a_type_are_not_candidates() -> None:
    """A perfect history cannot make an agent with no capability for the type win."""
    history: History = {("deployment", "analysis"): 1.0, ("analysis", "analysis"): 0.0}
    agent, scores = choose_agent("analysis", DEFAULT_CAPABILITIES, history)
    assert agent == "analysis"
    assert "deployment" not in scores
    with pytest.raises(ValueError, match="no agent serves"):
        choose_agent("testing", {"code": {"code": 1.0}})


def test_router_rejects_a_table_that_leaves_a_type_unserved(
    classifier: RequestClassifier,
) -> None:
    """A capability table without an agent for some type fails at construction."""
    with pytest.raises(ValueError, match="no agent serves"):
        Router(classifier, {"code": {"code": 1.0}})


# --- the router ----------------------------------------------------------------


async def test_confident_request_uses_the_classifier(classifier: RequestClassifier) -> None:
    """Above the threshold the LLM is not asked and the classifier's answer is used."""
    llm = FakeLLM({"type": "general", "confidence": 1.0})
    router = Router(classifier, threshold=0.0, llm=llm)
    result = await router.classify_request("write unit tests for parser.py")
    assert (result.type, result.agent, result.source) == ("testing", "testing", "classifier")
    assert result.pipeline == DEFAULT_PIPELINES["testing"] == "test_generation"
    assert llm.calls == []
    assert result.scores


async def test_below_threshold_the_llm_answer_is_used_and_recorded(
    classifier: RequestClassifier,
) -> None:
    """Below the threshold the LLM decides, and its answer is recorded with the classifier's."""
    llm, record = FakeLLM({"type": "deployment", "confidence": 0.8}), Recorder()
    router = Router(classifier, threshold=1.0, llm=llm, record=record)
    result = await router.classify_request("hmm, the thing with the boxes", {"x": 1})
    assert llm.calls == [("hmm, the thing with the boxes", {"x": 1})]
    assert (result.type, result.confidence, result.source) == ("deployment", 0.8, "llm")
    assert (result.agent, result.pipeline) == ("deployment", "deployment")
    [example] = record.examples
    assert example["text"] == "hmm, the thing with the boxes"
    assert example["llm"] == {"type": "deployment", "confidence": 0.8}
    assert example["classifier"]["type"] in REQUEST_TYPES


@pytest.mark.parametrize(
    "answer",
    [
        {"type": "poetry", "confidence": 0.9},
        {"type": "code"},
        {"type": "code", "confidence": "high"},
        {"type": "code", "confidence": float("nan")},
        "code",
        None,
    ],
)
async def test_an_invalid_llm_answer_keeps_the_classifier_answer(
    classifier: RequestClassifier, answer: Any
) -> None:
    """An answer without a known type and a numeric confidence is ignored, not recorded."""
    record = Recorder()
    router = Router(classifier, threshold=1.0, llm=FakeLLM(answer), record=record)
    text = "refactor the parser module"
    expected, confidence, _ = classifier.predict(text)
    result = await router.classify_request(text)
    assert (result.type, result.confidence, result.source) == (expected, confidence, "classifier")
    assert record.examples == []


async def test_an_llm_failure_falls_back_to_the_classifier(
    classifier: RequestClassifier, capsys: pytest.CaptureFixture[str]
) -> None:
    """Any exception from the LLM leaves the classifier's answer and logs a warning."""
    router = Router(classifier, threshold=1.0, llm=FakeLLM(TimeoutError("slow")))
    result = await router.classify_request("deploy the api to prod")
    assert (result.type, result.source) == ("deployment", "classifier")
    assert "router_llm_failed" in capsys.readouterr().err


async def test_recorder_and_history_failures_do_not_break_routing(
    classifier: RequestClassifier,
) -> None:
    """A failing recorder or history source is logged; routing still answers."""

    async def broken_record(example: dict[str, Any]) -> None:
        raise OSError("store down")

    async def broken_history() -> History:
        raise OSError("telemetry down")

    router = Router(
        classifier,
        threshold=1.0,
        llm=FakeLLM({"type": "planning", "confidence": 0.7}),
        record=broken_record,
        history=broken_history,
    )
    result = await router.classify_request("something vague")
    assert (result.type, result.agent, result.source) == ("planning", "planning", "llm")


async def test_history_steers_the_agent_choice(classifier: RequestClassifier) -> None:
    """Telemetry where the code agent always fails sends code requests to refactoring."""

    async def history() -> History:
        return {("code", "code"): 0.0, ("refactoring", "code"): 1.0}

    capabilities = {**DEFAULT_CAPABILITIES, "refactoring": {"refactoring": 1.0, "code": 0.6}}
    router = Router(classifier, capabilities, threshold=0.0, history=history)
    result = await router.classify_request("implement a function that parses dates")
    assert (result.type, result.agent) == ("code", "refactoring")


@pytest.mark.parametrize("text", ["yes", "Yes, apply it!", "go ahead", "apply the diff", "confirm"])
async def test_confirmation_with_a_pending_change_is_code(
    classifier: RequestClassifier, text: str
) -> None:
    """A short go-ahead while a change is pending is a code request with confidence 1."""
    llm = FakeLLM({"type": "general", "confidence": 1.0})
    router = Router(classifier, threshold=1.0, llm=llm)
    result = await router.classify_request(text, {"pending_change": {"diff": "..."}})
    assert (result.type, result.confidence, result.source) == ("code", 1.0, "context")
    assert result.agent == "code"
    assert llm.calls == []


async def test_confirmation_without_a_pending_change_is_classified(
    classifier: RequestClassifier,
) -> None:
    """Without a pending change a "yes" goes through the classifier like any text."""
    result = await Router(classifier).classify_request("yes", {"pending_change": None})
    assert result.source == "classifier"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", True),
        ("yes please, go ahead", True),
        ("ok do it", True),
        ("LGTM, apply the patch.", True),
        ("no, don't apply it", False),
        ("ok", False),
        ("yes but first add tests for the parser", False),
        ("", False),
    ],
)
def test_is_confirmation(text: str, expected: bool) -> None:
    """Only short texts made of confirmation words are confirmations."""
    assert is_confirmation(text) is expected
