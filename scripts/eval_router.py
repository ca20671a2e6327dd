"""Routing accuracy of the router's local classifier on the held-out set.

Trains on ``actors/agents/data/router_train.jsonl``, predicts every line of
``router_heldout.jsonl`` (never used for training) and prints the accuracy,
per-type precision and recall, the confusion matrix (rows: true type, columns:
predicted type), the training time and the mean predict latency. The local
classifier alone is measured: no LLM fallback, no context rule.

Usage: .venv/bin/python scripts/eval_router.py [--train PATH] [--heldout PATH] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from actors.agents.models import REQUEST_TYPES
from actors.agents.router import DEFAULT_TRAIN_PATH, HELDOUT_PATH, RequestClassifier, load_examples


def evaluate(train: Path, heldout: Path) -> dict[str, Any]:
    """Train on ``train``, measure on ``heldout``; a JSON-able report."""
    classifier = RequestClassifier.from_file(train)
    examples = load_examples(heldout)
    texts = [text for text, _ in examples]
    truth = [kind for _, kind in examples]
    started = time.perf_counter()
    predicted = [classifier.predict(text)[0] for text in texts]
    latency_ms = (time.perf_counter() - started) / len(texts) * 1000
    labels = list(REQUEST_TYPES)
    precision, recall, _, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0.0
    )
    matrix = confusion_matrix(truth, predicted, labels=labels)
    return {
        "train_examples": classifier.size,
        "heldout_examples": len(examples),
        "accuracy": float(accuracy_score(truth, predicted)),
        "per_type": {
            kind: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "support": int(support[i]),
            }
            for i, kind in enumerate(labels)
        },
        "labels": labels,
        "confusion_matrix": matrix.tolist(),
        "train_seconds": classifier.fit_seconds,
        "predict_ms_mean": latency_ms,
        "errors": [
            {"text": text, "type": kind, "predicted": guess}
            for text, kind, guess in zip(texts, truth, predicted, strict=True)
            if kind != guess
        ],
    }


def render(report: dict[str, Any], console: Console) -> None:
    """Print the report as tables."""
    console.print(
        f"Held-out accuracy: [bold]{report['accuracy']:.1%}[/bold] "
        f"({report['heldout_examples']} held-out, {report['train_examples']} training examples)"
    )
    console.print(
        f"Training: {report['train_seconds'] * 1000:.0f} ms; "
        f"predict: {report['predict_ms_mean']:.2f} ms mean"
    )
    per_type = Table(title="Per type")
    for column in ("type", "precision", "recall", "support"):
        per_type.add_column(column, justify="left" if column == "type" else "right")
    for kind, row in report["per_type"].items():
        per_type.add_row(
            kind, f"{row['precision']:.2f}", f"{row['recall']:.2f}", str(row["support"])
        )
    console.print(per_type)
    labels = report["labels"]
    matrix = Table(title="Confusion matrix (rows: true, columns: predicted)")
    matrix.add_column("true \\ pred")
    for kind in labels:
        matrix.add_column(kind, justify="right")
    for kind, row in zip(labels, report["confusion_matrix"], strict=True):
        matrix.add_row(kind, *(str(n) if n else "." for n in row))
    console.print(matrix)
    if report["errors"]:
        console.print("Misrouted:")
        for error in report["errors"]:
            console.print(f"  {error['type']} -> {error['predicted']}: {error['text']!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=DEFAULT_TRAIN_PATH)
    parser.add_argument("--heldout", type=Path, default=HELDOUT_PATH)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    report = evaluate(args.train, args.heldout)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        # Wide enough for the 8-column matrix even when piped (rich assumes 80 then).
        render(report, Console(highlight=False, width=max(Console().width, 110)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
