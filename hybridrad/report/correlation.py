"""How strongly handcrafted and deep features correlate (Spearman), summarised.

With thousands of handcrafted and hundreds of deep features, the full matrix says
little by itself; :func:`feature_correlation` summarises it per handcrafted feature (its
largest absolute correlation with any deep feature) and compares that with the same
summary after the case pairing is shuffled, since the largest of many correlations on
few cases is large by chance alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["FeatureCorrelation", "feature_correlation", "strength"]


@dataclass(frozen=True)
class FeatureCorrelation:
    """Spearman correlations between two feature tables on their common cases.

    Attributes
    ----------
    matrix
        Spearman r, one row per handcrafted feature and one column per deep feature.
    max_abs
        Per handcrafted feature, the largest ``|r|`` with any deep feature (descending).
    partner
        Per handcrafted feature, the deep feature reaching ``max_abs``.
    null_max_abs
        The same maxima with the rows of the deep table shuffled (case pairing broken):
        what chance alone gives with this many features and cases.
    n_cases
        Cases in both tables.
    dropped
        Columns left out: not numeric, missing values or constant.
    """

    matrix: pd.DataFrame
    max_abs: pd.Series
    partner: pd.Series
    null_max_abs: pd.Series
    n_cases: int
    dropped: list[str] = field(default_factory=list)

    def top(self, n: int = 20) -> pd.DataFrame:
        """The sub-matrix of the ``n`` handcrafted features with the largest ``max_abs``
        and the ``n`` deep features most correlated with them."""
        rows = list(self.max_abs.index[:n])
        sub = self.matrix.loc[rows]
        cols = sub.abs().max(axis=0).sort_values(ascending=False).index[:n]
        return sub[list(cols)]

    def by_group(self, level: int = -2) -> pd.DataFrame:
        """Median and largest ``max_abs`` per group of handcrafted features.

        Parameters
        ----------
        level
            Part of the ``__``-separated name that names the group: ``-2`` (default)
            is the feature class of ``rad__<seq>__<region>__<image type>__<class>__<name>``.

        Returns
        -------
        pandas.DataFrame
            ``n``, ``median_max_abs_r`` and ``max_abs_r`` per group.
        """

        def group(name: str) -> str:
            parts = str(name).split("__")
            return parts[level] if len(parts) >= abs(level) + 1 else "(other)"

        g = self.max_abs.groupby(self.max_abs.index.map(group))
        return (
            pd.DataFrame({"n": g.size(), "median_max_abs_r": g.median(), "max_abs_r": g.max()})
            .sort_values("median_max_abs_r", ascending=False)
            .rename_axis("group")
        )


def _usable(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    numeric = table.apply(pd.to_numeric, errors="coerce")
    bad = [
        str(c)
        for c in table.columns
        if numeric[c].isna().any() or numeric[c].nunique(dropna=True) < 2
    ]
    return numeric.drop(columns=bad).astype(float), bad


def _standardised_ranks(table: pd.DataFrame) -> np.ndarray:
    ranks = table.rank(axis=0, method="average").to_numpy(float)
    ranks -= ranks.mean(axis=0)
    norm = np.sqrt((ranks**2).sum(axis=0))
    return ranks / norm


def feature_correlation(
    handcrafted: pd.DataFrame, deep: pd.DataFrame, *, seed: int = 0
) -> FeatureCorrelation:
    """Spearman correlation of every handcrafted with every deep feature.

    Parameters
    ----------
    handcrafted, deep
        Feature tables indexed by case id (one row per case). Columns with missing
        values, constant columns and columns that are not numbers are left out (named in
        ``dropped``).
    seed
        Seed of the shuffle behind ``null_max_abs``.

    Returns
    -------
    FeatureCorrelation
        The matrix and its summaries.

    Raises
    ------
    ValueError
        Fewer than 3 common cases, or no usable column in a table.
    """
    common = [c for c in handcrafted.index if c in set(deep.index)]
    if len(common) < 3:
        raise ValueError(
            f"the handcrafted and deep tables share {len(common)} case(s); at least 3 are "
            "needed for a correlation"
        )
    a, dropped_a = _usable(handcrafted.loc[common])
    b, dropped_b = _usable(deep.loc[common])
    if a.shape[1] == 0 or b.shape[1] == 0:
        raise ValueError(
            "no usable column (numeric, complete, not constant) in the "
            + ("handcrafted" if a.shape[1] == 0 else "deep")
            + " table"
        )
    za, zb = _standardised_ranks(a), _standardised_ranks(b)
    r = np.clip(za.T @ zb, -1.0, 1.0)
    matrix = pd.DataFrame(r, index=a.columns, columns=b.columns)
    abs_r = np.abs(r)
    best = abs_r.argmax(axis=1)
    max_abs = pd.Series(abs_r.max(axis=1), index=a.columns, name="max_abs_r")
    partner = pd.Series(b.columns[best], index=a.columns, name="deep_feature")
    order = max_abs.sort_values(ascending=False, kind="stable").index
    perm = np.random.default_rng(seed).permutation(len(common))
    null = np.abs(za.T @ zb[perm]).max(axis=1)
    return FeatureCorrelation(
        matrix=matrix,
        max_abs=max_abs[order],
        partner=partner[order],
        null_max_abs=pd.Series(null, index=a.columns, name="null_max_abs_r")[order],
        n_cases=len(common),
        dropped=dropped_a + dropped_b,
    )


def strength(r: float) -> str:
    """Words for an absolute correlation: ``very weakly`` (< 0.2), ``weakly`` (< 0.4),
    ``moderately`` (< 0.6), ``strongly`` (< 0.8), else ``very strongly``."""
    r = abs(float(r))
    for bound, word in (
        (0.2, "very weakly"),
        (0.4, "weakly"),
        (0.6, "moderately"),
        (0.8, "strongly"),
    ):
        if r < bound:
            return word
    return "very strongly"
