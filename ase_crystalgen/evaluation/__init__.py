"""Evaluation of generated crystals: match rate, RMSE and validity (see ``docs/evaluation.md``)."""

from .metrics import (
    MATCHER_OPTIONS,
    TOLERANCES,
    EvaluationResult,
    evaluate_structures,
    match_samples,
    structure_validity,
)

__all__ = [
    "MATCHER_OPTIONS",
    "TOLERANCES",
    "EvaluationResult",
    "evaluate_structures",
    "match_samples",
    "structure_validity",
]
