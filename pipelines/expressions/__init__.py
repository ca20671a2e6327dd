"""The safe expression language of conditions and ``{{...}}`` templates.

Text is tokenised (:mod:`._lexer`), parsed into frozen dataclass nodes
(:mod:`._parser`, cached; the nodes are in :mod:`._nodes`) and walked (:mod:`._evaluator`) against a
:class:`Scope`; only the functions in :data:`FUNCTIONS` can be called. No
``eval``, ``exec`` or ``literal_eval`` is involved. Every problem is a
:class:`~pipelines.errors.ConditionError` carrying the expression and, for
syntax errors, the column.
"""

from __future__ import annotations

from pipelines.expressions._evaluator import evaluate, evaluate_condition
from pipelines.expressions._lexer import MAX_LENGTH
from pipelines.expressions._nodes import Expr, unparse
from pipelines.expressions._parser import MAX_DEPTH, parse, references
from pipelines.expressions.functions import FUNCTIONS, Function, to_text, truthy
from pipelines.expressions.scope import ROOTS, Scope

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "ROOTS",
    "Expr",
    "Function",
    "Scope",
    "evaluate",
    "evaluate_condition",
    "parse",
    "references",
    "to_text",
    "truthy",
    "unparse",
]
