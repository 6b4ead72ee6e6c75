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
    "evaluate_model",
    "MATCHER_OPTIONS",
    "TOLERANCES",
    "EvaluationResult",
    "evaluate_structures",
    "match_samples",
    "structure_validity",
]


def __getattr__(name):
    # evaluate_model samples with torch: imported on first use
    if name == "evaluate_model":
        from .evaluate import evaluate_model

        return evaluate_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
