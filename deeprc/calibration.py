"""Scores -> probabilities one can threshold (Platt scaling), for the model and the baselines.

A model's raw score ranks repertoires but need not be a probability: DeepRC trains on sampled,
top-attended sequences and predicts on whole repertoires, so its logits can sit on one side of 0
for both classes (AUC 1.0 at balanced accuracy 0.5). A 1-D logistic map fitted on held-out
repertoires (validation, or inner cross-validation for the baselines) fixes the scale.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

__all__ = ["Platt"]


class Platt:
    """``log_odds = slope * score + intercept``, fitted by logistic regression.

    The score is standardised first so that the mild regularisation (C = 1) means the same on
    any scale and perfectly separated scores get a finite slope, and the slope is kept
    positive: the probability then ranks exactly as the score does, so the evaluated ranking is
    the model's own even where the fit is poor.
    """

    def __init__(self, slope: float = 1.0, intercept: float = 0.0) -> None:
        self.slope, self.intercept = slope, intercept

    def fit(self, score: np.ndarray, y: np.ndarray) -> Platt:
        score = np.asarray(score, dtype=np.float64)
        mean, sd = float(score.mean()), float(score.std()) or 1.0
        model = LogisticRegression(C=1.0).fit(((score - mean) / sd)[:, None], y)
        slope = max(float(model.coef_[0, 0]), 1e-6)
        self.slope = slope / sd
        self.intercept = float(model.intercept_[0]) - slope * mean / sd
        return self

    def __call__(self, score: np.ndarray) -> np.ndarray:
        return self.slope * np.asarray(score, dtype=np.float64) + self.intercept
