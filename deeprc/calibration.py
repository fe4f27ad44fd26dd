"""Scores -> probabilities one can threshold (Platt scaling), for the model and the baselines.

A model's raw score ranks repertoires but need not be a probability: DeepRC trains on sampled,
top-attended sequences and predicts on whole repertoires, so its logits can sit on one side of 0
for both classes (AUC 1.0 at balanced accuracy 0.5). A 1-D logistic map fitted on held-out
repertoires (validation, or inner cross-validation for the baselines) fixes the scale.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_CALIBRATION_PER_CLASS", "Platt", "small_calibration_note"]

# Platt's targets are (n + 1) / (n + 2) and 1 / (n + 2): below 10 repertoires of a class they
# lie more than 0.08 from 0 and 1, and the probabilities are pulled towards 0.5 accordingly
MIN_CALIBRATION_PER_CLASS = 10


class Platt:
    """``log_odds = slope * score + intercept``, fitted by maximum likelihood against Platt's
    targets: a positive counts as (n+ + 1) / (n+ + 2), a negative as 1 / (n- + 2).

    Those targets keep the slope finite on perfectly separated scores without a penalty
    whose strength would depend on the sample size (a fixed L2 penalty squeezed the
    probabilities of a 5-repertoire validation set towards 0.5), and they say honestly that a
    handful of repertoires cannot vouch for a probability of 0.99. The slope is kept positive:
    the probability then ranks exactly as the score does, so the evaluated ranking is the
    model's own even where the fit is poor.
    """

    def __init__(self, slope: float = 1.0, intercept: float = 0.0) -> None:
        self.slope, self.intercept = slope, intercept

    def fit(self, score: np.ndarray, y: np.ndarray) -> Platt:
        score, y = np.asarray(score, dtype=np.float64), np.asarray(y)
        mean, sd = float(score.mean()), float(score.std()) or 1.0
        x = (score - mean) / sd
        n_positive = int((y == 1).sum())
        n_negative = len(y) - n_positive
        target = np.where(y == 1, (n_positive + 1) / (n_positive + 2), 1 / (n_negative + 2))
        features = np.column_stack([x, np.ones_like(x)])
        weights = np.zeros(2)
        for _ in range(100):  # Newton's method, halving steps that do not lower the loss
            p = 1 / (1 + np.exp(-features @ weights))
            hessian = features.T @ (features * (p * (1 - p))[:, None]) + 1e-9 * np.eye(2)
            step = np.linalg.solve(hessian, features.T @ (p - target))
            while _loss(features, weights - step, target) > _loss(features, weights, target):
                step = step / 2
                if np.abs(step).max() < 1e-12:
                    break
            weights = weights - step
            if np.abs(step).max() < 1e-10:
                break
        slope = max(float(weights[0]), 1e-6)
        self.slope = slope / sd
        self.intercept = float(weights[1]) - slope * mean / sd
        return self

    def __call__(self, score: np.ndarray) -> np.ndarray:
        return self.slope * np.asarray(score, dtype=np.float64) + self.intercept


def _loss(features: np.ndarray, weights: np.ndarray, target: np.ndarray) -> float:
    """Cross-entropy of soft targets, computed stably from the log-odds."""
    z = features @ weights
    return float(np.sum(np.logaddexp(0, z) - target * z))


def small_calibration_note(y: np.ndarray) -> str | None:
    """What a user must know when the calibration set is too small to trust probabilities."""
    n_positive = int((np.asarray(y) == 1).sum())
    n_negative = len(y) - n_positive
    if min(n_positive, n_negative) >= MIN_CALIBRATION_PER_CLASS:
        return None
    return (
        f"probabilities calibrated on only {len(y)} validation repertoires ({n_positive} "
        f"positive, {n_negative} negative; fewer than {MIN_CALIBRATION_PER_CLASS} of a class) "
        "are pulled towards 0.5 and their 0.5 threshold is rough: rank by the score, or give "
        "the validation split more repertoires (--validation-fraction)"
    )
