"""Benchmark: the selection steps of the modelling pipeline against the obvious alternative.

1. ``UnivariateCoxSelector`` (one vectorised Newton pass over all features) against a
   loop of scikit-survival ``CoxPHSurvivalAnalysis`` fits, one per feature.
2. ``CorrelationFilter`` (Spearman on ranks, greedy pruning) against pandas'
   ``DataFrame.corr("spearman")`` alone, the first step of a hand-written filter.

Same data in one run, ratios printed. Usage: .venv/bin/python benchmarks/selection_speed.py
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.util import Surv

from hybridrad.models.transformers import CorrelationFilter, UnivariateCoxSelector


def _timed(fn: object, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    rng = np.random.default_rng(0)
    n, p = 500, 2000
    X = rng.normal(size=(n, p))
    X[:, p // 2 :] = X[:, : p // 2] + 0.2 * rng.normal(size=(n, p // 2))
    lp = X[:, 0] - X[:, 1]
    t = rng.exponential(np.exp(-lp) * 10)
    c = rng.uniform(1, 30, n)
    y = Surv.from_arrays(t <= c, np.minimum(t, c))

    ours = _timed(lambda: UnivariateCoxSelector(k=10).fit(X, y))
    m = 100  # the per-feature loop on a subset, scaled to p

    def loop() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for j in range(m):
                CoxPHSurvivalAnalysis().fit(X[:, [j]], y)

    theirs = _timed(loop, repeats=1) * p / m
    print(
        f"univariate Cox, {n} x {p}: vectorised {ours:.3f} s, sksurv loop {theirs:.1f} s "
        f"(extrapolated from {m} features): ratio {theirs / ours:.0f}x"
    )

    ours = _timed(lambda: CorrelationFilter(threshold=0.9).fit(X, y))
    frame = pd.DataFrame(X)
    theirs = _timed(lambda: frame.corr("spearman"))
    print(
        f"correlation filter, {n} x {p}: full filter {ours:.3f} s, pandas Spearman matrix "
        f"alone {theirs:.3f} s: ratio {theirs / ours:.1f}x"
    )


if __name__ == "__main__":
    main()
