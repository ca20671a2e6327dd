"""The router: what type a request is, which agent serves it, with which pipeline.

Three steps per request, all in this process (no Ray here; the session shard
calls :meth:`Router.classify_request` before it hands the turn to an agent):

1. **Context.** A short confirmation ("yes", "apply the diff") while the session
   holds a ``pending_change`` is a ``code`` request with confidence 1.0.
2. **Classification.** A local scikit-learn model (word and character TF-IDF,
   calibrated logistic regression) trained from ``data/router_train.jsonl``
   gives the type and a calibrated confidence. Below the threshold an optional
   LLM is asked; a valid answer replaces the classifier's and is recorded so it
   can become a labelled example. An LLM failure or an invalid answer keeps the
   classifier's answer.
3. **Agent choice.** ``0.7 * capability match + 0.3 * historical success`` of
   each agent for the type (:func:`choose_agent`).

Errors: :class:`ValueError` for bad training data or capability tables (user
errors, raised at construction). At request time nothing raises: the LLM, the
recorder and the history source are best-effort and failures are logged.
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from threadpoolctl import threadpool_limits

from actors.agents._router_scorer import LinearScorer
from actors.agents.models import REQUEST_TYPES, Classification
from pipelines.observability import get_logger

__all__ = [
    "CAPABILITY_WEIGHT",
    "DATA_DIR",
    "DEFAULT_CAPABILITIES",
    "DEFAULT_PIPELINES",
    "DEFAULT_THRESHOLD",
    "DEFAULT_TRAIN_PATH",
    "HELDOUT_PATH",
    "HISTORY_PRIOR",
    "HISTORY_WEIGHT",
    "Capabilities",
    "History",
    "HistorySource",
    "LLMClassifier",
    "Recorder",
    "RequestClassifier",
    "Router",
    "choose_agent",
    "default_classifier",
    "is_confirmation",
    "load_examples",
]

_log = get_logger("router")

DATA_DIR = Path(__file__).parent / "data"
DEFAULT_TRAIN_PATH = DATA_DIR / "router_train.jsonl"
#: Labelled requests never used for training: the routing accuracy is measured on them.
HELDOUT_PATH = DATA_DIR / "router_heldout.jsonl"
DEFAULT_THRESHOLD = 0.45

#: Agent name -> {request type: how well the agent serves it, in [0, 1]}.
#: A type missing from an agent's mapping means the agent does not serve it.
Capabilities = Mapping[str, Mapping[str, float]]
#: (agent, request type) -> historical success rate in [0, 1] (from telemetry).
History = Mapping[tuple[str, str], float]
#: ``(text, context) -> {"type": ..., "confidence": ...}``: the LLM fallback.
LLMClassifier = Callable[[str, Mapping[str, Any]], Awaitable[Mapping[str, Any]]]
#: Receives ``{"text", "classifier": {...}, "llm": {...}}`` for each LLM answer used.
Recorder = Callable[[dict[str, Any]], Awaitable[None]]
#: Returns the current :data:`History` (e.g. from the telemetry actor).
HistorySource = Callable[[], Awaitable[History]]

DEFAULT_CAPABILITIES: dict[str, dict[str, float]] = {
    "analysis": {"analysis": 1.0, "general": 0.2},
    "refactoring": {"refactoring": 1.0, "code": 0.5, "analysis": 0.2},
    "testing": {"testing": 1.0, "code": 0.3},
    "planning": {"planning": 1.0, "deployment": 0.3},
    "code": {"code": 1.0, "refactoring": 0.6, "testing": 0.3},
    "deployment": {"deployment": 1.0, "planning": 0.3},
    "general": {**dict.fromkeys(REQUEST_TYPES, 0.3), "general": 1.0},
}

#: Request type -> the library pipeline its agent runs by default.
DEFAULT_PIPELINES: dict[str, str] = {
    "analysis": "code_analysis",
    "refactoring": "refactoring",
    "testing": "test_generation",
    "planning": "planning",
    "code": "refactoring",
    "deployment": "deployment",
    "general": "general_chat",
}

CAPABILITY_WEIGHT = 0.7
HISTORY_WEIGHT = 0.3
#: Success rate assumed for an (agent, type) pair telemetry has not seen yet.
HISTORY_PRIOR = 0.5
_TIE = 1e-9


def load_examples(path: str | Path) -> list[tuple[str, str]]:
    """``(text, type)`` pairs from a JSONL file; raises ValueError on a bad line."""
    examples: list[tuple[str, str]] = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            text, kind = record["text"], record["type"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: expected {{'text', 'type'}}: {exc}") from exc
        if kind not in REQUEST_TYPES or not isinstance(text, str):
            raise ValueError(f"{path}:{number}: unknown type {kind!r} or non-string text")
        examples.append((text, kind))
    return examples


class RequestClassifier:
    """A local request classifier with calibrated per-type probabilities.

    Fitting runs at construction (a few hundred examples: well under a second)
    and is deterministic: the calibration folds are not shuffled and the solver
    (newton-cg) has no random component.
    """

    def __init__(self, examples: Iterable[tuple[str, str]], *, random_state: int = 0) -> None:
        pairs = list(examples)
        texts = [text for text, _ in pairs]
        labels = [kind for _, kind in pairs]
        missing = set(REQUEST_TYPES) - set(labels)
        if missing:
            raise ValueError(f"no training examples for types {sorted(missing)}")
        started = time.perf_counter()
        # ensemble=False: one model on all the data, calibrated on out-of-fold
        # predictions; predicting then costs one pipeline, not five (~2 ms).
        self._model = CalibratedClassifierCV(
            _base_pipeline(random_state), method="sigmoid", cv=5, ensemble=False
        )
        # The problem is tiny: BLAS threads only contend (4-10x slower on a busy host).
        with threadpool_limits(limits=1, user_api="blas"):
            self._model.fit(texts, labels)
        self.fit_seconds = time.perf_counter() - started
        self.classes: tuple[str, ...] = tuple(str(c) for c in self._model.classes_)
        self.size = len(pairs)
        self._scorer = LinearScorer(self._model)

    @classmethod
    def from_file(cls, path: str | Path, *, random_state: int = 0) -> RequestClassifier:
        """Train on a JSONL file of ``{"text", "type"}`` lines."""
        return cls(load_examples(path), random_state=random_state)

    def predict(self, text: str) -> tuple[str, float, dict[str, float]]:
        """``(type, confidence, {type: probability})`` for one request."""
        probabilities = self._scorer.proba(text)  # = predict_proba([text])[0], ~20x cheaper
        scores = {kind: float(p) for kind, p in zip(self.classes, probabilities, strict=True)}
        best = max(scores, key=scores.__getitem__)
        return best, min(max(scores[best], 0.0), 1.0), scores

    def predict_many(self, texts: Sequence[str]) -> list[str]:
        """The most likely type of each text (for evaluation)."""
        return [str(kind) for kind in self._model.predict(list(texts))]


def _base_pipeline(random_state: int) -> Pipeline:
    # Words carry the intent ("deploy", "refactor"); character n-grams survive
    # typos ("refactr", "anlayze") and file names ("Dockerfile", "test_x.py").
    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
            (
                "chars",
                TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
            ),
        ]
    )
    # newton-cg fits this sparse, wide problem ~10x faster than lbfgs. C: 5-fold
    # cross-validation on the training file scores C = 1..100 within 2% of each other.
    classifier = LogisticRegression(
        C=10.0, solver="newton-cg", max_iter=1000, random_state=random_state
    )
    return Pipeline([("features", features), ("classifier", classifier)])


@functools.cache
def default_classifier() -> RequestClassifier:
    """The classifier trained on the shipped training file (trained once, cached)."""
    return RequestClassifier.from_file(DEFAULT_TRAIN_PATH)


def choose_agent(
    request_type: str,
    capabilities: Capabilities = DEFAULT_CAPABILITIES,
    history: History | None = None,
) -> tuple[str, dict[str, float]]:
    """The best agent for a type and the score of every agent that serves it.

    ``score = 0.7 * capability + 0.3 * success``, where ``success`` comes from
    ``history`` (``HISTORY_PRIOR`` when unknown). Agents whose capability for
    the type is 0 or missing are not candidates. Ties go to the agent named
    like the type, then to the first agent in ``capabilities``. Raises
    ValueError when no agent serves the type.
    """
    history = history or {}
    scores: dict[str, float] = {}
    for agent, serves in capabilities.items():
        match = _unit(serves.get(request_type, 0.0))
        if match <= 0.0:
            continue
        success = _unit(history.get((agent, request_type), HISTORY_PRIOR))
        scores[agent] = CAPABILITY_WEIGHT * match + HISTORY_WEIGHT * success
    if not scores:
        raise ValueError(f"no agent serves request type {request_type!r}")
    top = max(scores.values())
    tied = [agent for agent, score in scores.items() if top - score <= _TIE]
    return (request_type if request_type in tied else tied[0]), scores


def _unit(value: float) -> float:
    return min(max(float(value), 0.0), 1.0)


_CONFIRM_WORDS = frozenset(
    [
        "yes",
        "yeah",
        "yep",
        "y",
        "sure",
        "ok",
        "okay",
        "please",
        "go",
        "ahead",
        "apply",
        "confirm",
        "confirmed",
        "do",
        "it",
        "the",
        "diff",
        "patch",
        "change",
        "changes",
        "that",
        "this",
        "them",
        "those",
        "now",
        "lgtm",
    ]
)
_CONFIRM_TRIGGERS = frozenset(
    ["yes", "yeah", "yep", "sure", "apply", "confirm", "confirmed", "ahead", "lgtm"]
)
_MAX_CONFIRM_WORDS = 6


def is_confirmation(text: str) -> bool:
    """Whether ``text`` is a short go-ahead ("yes", "apply it", "go ahead", "confirm").

    Only confirmation words may appear, so "no, don't apply it" is not one.
    """
    words = re.findall(r"[a-z]+", text.lower())
    if not words or len(words) > _MAX_CONFIRM_WORDS:
        return False
    if not set(words) <= _CONFIRM_WORDS:
        return False
    return bool(_CONFIRM_TRIGGERS & set(words)) or words[-2:] == ["do", "it"]


class Router:
    """Classifies a request and picks its agent and pipeline.

    ``llm``, ``history`` and ``record`` are optional async callables the caller
    wires to a pipeline run, the telemetry actor and the store; see the
    :data:`LLMClassifier`, :data:`HistorySource` and :data:`Recorder` aliases.
    """

    def __init__(
        self,
        classifier: RequestClassifier | None = None,
        capabilities: Capabilities = DEFAULT_CAPABILITIES,
        threshold: float = DEFAULT_THRESHOLD,
        *,
        llm: LLMClassifier | None = None,
        history: HistorySource | None = None,
        record: Recorder | None = None,
        pipelines: Mapping[str, str] = DEFAULT_PIPELINES,
    ) -> None:
        self.classifier = classifier or default_classifier()
        for kind in REQUEST_TYPES:
            choose_agent(kind, capabilities)  # raises now if a type has no agent
        self.capabilities = capabilities
        self.threshold = threshold
        self.pipelines = pipelines
        self._llm = llm
        self._history = history
        self._record = record

    async def classify_request(
        self, text: str, context: Mapping[str, Any] | None = None
    ) -> Classification:
        """Type, confidence, agent and pipeline for ``text``; never raises on I/O."""
        context = context or {}
        scores: dict[str, float] = {}
        if context.get("pending_change") and is_confirmation(text):
            kind, confidence, source = "code", 1.0, "context"
        else:
            kind, confidence, scores = self.classifier.predict(text)
            source = "classifier"
            if confidence < self.threshold and self._llm is not None:
                answer = await self._ask_llm(text, context)
                if answer is not None:
                    await self._save(text, (kind, confidence, scores), answer)
                    (kind, confidence), source = answer, "llm"
        agent, _ = choose_agent(kind, self.capabilities, await self._load_history())
        return Classification(
            type=kind,  # type: ignore[arg-type]  # checked against REQUEST_TYPES
            confidence=confidence,
            agent=agent,
            pipeline=self.pipelines.get(kind),
            source=source,
            scores=scores,
        )

    async def _ask_llm(self, text: str, context: Mapping[str, Any]) -> tuple[str, float] | None:
        """The LLM's ``(type, confidence)``, or None when it failed or answered nonsense."""
        assert self._llm is not None  # noqa: S101 - callers check; narrows the type
        try:
            answer = await self._llm(text, context)
        except Exception as exc:  # noqa: BLE001 - any LLM failure falls back to the classifier
            _log.warning("router_llm_failed", error=type(exc).__name__, detail=str(exc)[:200])
            return None
        if answer is None:
            return None  # no model available (offline): nothing to log
        parsed = _parse_llm_answer(answer)
        if parsed is None:
            _log.warning("router_llm_invalid", answer=repr(answer)[:200])
        return parsed

    async def _save(
        self, text: str, local: tuple[str, float, dict[str, float]], answer: tuple[str, float]
    ) -> None:
        if self._record is None:
            return
        kind, confidence, scores = local
        example = {
            "text": text,
            "classifier": {"type": kind, "confidence": confidence, "scores": scores},
            "llm": {"type": answer[0], "confidence": answer[1]},
        }
        try:
            await self._record(example)
        except Exception as exc:  # noqa: BLE001 - recording is best-effort, routing goes on
            _log.warning("router_record_failed", error=type(exc).__name__)

    async def _load_history(self) -> History:
        if self._history is None:
            return {}
        try:
            return await self._history()
        except Exception as exc:  # noqa: BLE001 - without history every agent gets the prior
            _log.warning("router_history_failed", error=type(exc).__name__)
            return {}


def _parse_llm_answer(answer: Any) -> tuple[str, float] | None:
    """``(type, confidence)`` from a structured LLM answer, or None if it is invalid."""
    if not isinstance(answer, Mapping):
        return None
    kind, confidence = answer.get("type"), answer.get("confidence")
    if kind not in REQUEST_TYPES:
        return None
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        return None
    if math.isnan(confidence):
        return None
    return str(kind), min(max(float(confidence), 0.0), 1.0)
