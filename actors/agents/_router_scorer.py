"""The router's fitted model as plain arrays, for one request at a time.

scikit-learn's ``predict_proba`` spends ~2 ms per single text on input validation
and dispatch around ~0.1 ms of arithmetic, on the path of every chat turn.
:class:`LinearScorer` reads the fitted pieces (each TF-IDF vectorizer's analyzer,
vocabulary and idf; the logistic regression's coefficients; the per-class sigmoid
calibrators) and computes the same probabilities directly. The router's tests check
it against ``predict_proba`` on every training and held-out text.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["LinearScorer"]


class LinearScorer:
    """Calibrated class probabilities of a fitted
    ``CalibratedClassifierCV(Pipeline([FeatureUnion(TfidfVectorizer...), LogisticRegression]),
    method="sigmoid", ensemble=False)``."""

    def __init__(self, model: Any) -> None:
        (calibrated,) = model.calibrated_classifiers_  # ensemble=False: exactly one
        if calibrated.method != "sigmoid":
            raise ValueError(f"only sigmoid calibration is supported, not {calibrated.method!r}")
        pipeline = calibrated.estimator
        self._parts: list[tuple[Callable[[str], list[str]], dict[str, int], Any, int, bool]] = []
        offset = 0
        for _, vectorizer in pipeline.named_steps["features"].transformer_list:
            if vectorizer.norm != "l2" or not vectorizer.use_idf:
                raise ValueError("only l2-normalised TF-IDF features are supported")
            vocabulary = dict(vectorizer.vocabulary_)
            self._parts.append(
                (
                    vectorizer.build_analyzer(),
                    vocabulary,
                    np.asarray(vectorizer.idf_, dtype=np.float64),
                    offset,
                    bool(vectorizer.sublinear_tf),
                )
            )
            offset += len(vocabulary)
        classifier = pipeline.named_steps["classifier"]
        coef = np.asarray(classifier.coef_, dtype=np.float64)
        if coef.shape != (len(classifier.classes_), offset):
            raise ValueError(f"unexpected coefficient shape {coef.shape}")
        self._weights = np.ascontiguousarray(coef.T)  # features x classes
        self._intercept = np.asarray(classifier.intercept_, dtype=np.float64)
        # Calibrator i belongs to the estimator's class i; the output order is the
        # calibrated model's classes (both sorted, but map explicitly).
        order = {str(c): i for i, c in enumerate(model.classes_)}
        self._positions = np.array([order[str(c)] for c in classifier.classes_])
        self._a = np.array([c.a_ for c in calibrated.calibrators], dtype=np.float64)
        self._b = np.array([c.b_ for c in calibrated.calibrators], dtype=np.float64)
        self.classes = tuple(str(c) for c in model.classes_)

    def proba(self, text: str) -> np.ndarray:
        """The calibrated probability of each class (``classes`` order) for ``text``."""
        scores = self._intercept.copy()
        for analyzer, vocabulary, idf, offset, sublinear in self._parts:
            counts = Counter(t for t in analyzer(text) if t in vocabulary)
            if not counts:
                continue
            index = np.fromiter((vocabulary[t] for t in counts), dtype=np.intp, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            values = (np.log(tf) + 1.0 if sublinear else tf) * idf[index]
            norm = math.sqrt(float(values @ values))
            if norm > 0.0:
                scores += (values / norm) @ self._weights[index + offset]
        calibrated = 1.0 / (1.0 + np.exp(self._a * scores + self._b))
        proba = np.zeros(len(self.classes))
        proba[self._positions] = calibrated
        total = float(proba.sum())
        return proba / total if total > 0.0 else np.full(len(self.classes), 1 / len(self.classes))
