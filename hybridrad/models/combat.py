"""ComBat harmonisation of multi-site features as a fit-then-apply transformer.

ComBat (Johnson, Li & Rabinovic, Biostatistics 2007;8:118-127) models every feature
``g`` of case ``j`` at site ``i`` as

    y_ijg = alpha_g + x_j' beta_g + gamma_ig + delta_ig * eps_ijg,   eps ~ N(0, sigma_g^2)

(an additive and a multiplicative site effect on top of the biological covariates
``x``), estimates the site effects ``gamma_ig`` and ``delta_ig^2`` by empirical Bayes,
shrinking each site's per-feature estimates towards a prior fitted across features,
and removes them. This module follows R ``sva::ComBat`` (and neuroCombat) step by
step: OLS fit with the site indicators and covariates, pooled variance with
denominator n, standardisation, per-site method-of-moments estimates (sample
variance with n - 1), normal / inverse-gamma priors by the method of moments, the
iterative parametric posterior (convergence 1e-4 relative) or the non-parametric
Monte-Carlo-free integration over the other features' estimates.

Unlike ``sva::ComBat`` it is fit-then-apply (as ``neuroCombatFromTraining``): ``fit``
estimates everything on the training cases, ``transform`` harmonises any case of a
site seen in ``fit`` with the training estimates only, so it can sit inside a
cross-validated :class:`~sklearn.pipeline.Pipeline`.

API choice: the site label travels with the features as a column of the DataFrame
(``batch_col``, ``"site"`` by default, as in the cohort manifest); ComBat consumes it
and drops it from its output. Put ComBat first in a pipeline (or after steps with
pandas output that keep the site column); the features it harmonises must be numeric
and finite, so impute before (e.g. a ``ColumnTransformer`` that passes ``site``
through, with ``set_output(transform="pandas")``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["ComBat", "combat_estimates"]

_TINY = 1e-12


def _aprior(delta_hat: NDArray[np.float64]) -> float:
    """Method-of-moments shape of the inverse-gamma prior (sva's ``aprior``)."""
    m = float(np.mean(delta_hat))
    s2 = float(np.var(delta_hat, ddof=1))
    return (2.0 * s2 + m**2) / s2


def _bprior(delta_hat: NDArray[np.float64]) -> float:
    """Method-of-moments scale of the inverse-gamma prior (sva's ``bprior``)."""
    m = float(np.mean(delta_hat))
    s2 = float(np.var(delta_hat, ddof=1))
    return (m * s2 + m**3) / s2


def _postmean(
    g_hat: NDArray[np.float64],
    g_bar: float,
    n: float,
    d_star: NDArray[np.float64] | float,
    t2: float,
) -> NDArray[np.float64]:
    """Posterior mean of the additive effect (sva's ``postmean``)."""
    return np.asarray((t2 * n * g_hat + d_star * g_bar) / (t2 * n + d_star), dtype=np.float64)


def _postvar(sum2: NDArray[np.float64], n: float, a: float, b: float) -> NDArray[np.float64]:
    """Posterior mode of the multiplicative effect (sva's ``postvar``)."""
    return np.asarray((0.5 * sum2 + b) / (n / 2.0 + a - 1.0), dtype=np.float64)


def _it_sol(
    s_data: NDArray[np.float64],
    g_hat: NDArray[np.float64],
    d_hat: NDArray[np.float64],
    g_bar: float,
    t2: float,
    a: float,
    b: float,
    conv: float,
    max_iter: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Parametric EB: iterate posterior mean and variance to convergence (sva's ``it.sol``).

    ``s_data`` holds one site's standardised data, cases x features.
    """
    n = float(s_data.shape[0])
    g_old, d_old = g_hat.copy(), d_hat.copy()
    g_new, d_new = g_old, d_old
    for _ in range(max_iter):
        g_new = _postmean(g_hat, g_bar, n, d_old, t2)
        sum2 = ((s_data - g_new) ** 2).sum(axis=0)
        d_new = _postvar(sum2, n, a, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            change = max(
                float(np.nanmax(np.abs(g_new - g_old) / g_old)),  # signed, as in sva
                float(np.nanmax(np.abs(d_new - d_old) / d_old)),
            )
        g_old, d_old = g_new, d_new
        if change <= conv:
            break
    return g_new, d_new


def _int_eprior(
    s_data: NDArray[np.float64],
    g_hat: NDArray[np.float64],
    d_hat: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Non-parametric EB (sva's ``int.eprior``), vectorised and in log space.

    For feature ``g`` the posterior expectations of the site effects are averages of
    the other features' estimates ``(g_hat[k], d_hat[k])``, weighted by the Gaussian
    likelihood of feature ``g``'s data under them.
    """
    n = s_data.shape[0]
    s1 = s_data.sum(axis=0)  # per feature g
    sq = (s_data**2).sum(axis=0)
    # sum2[g, k] = sum_j (x_jg - g_hat[k])^2
    sum2 = sq[:, None] - 2.0 * s1[:, None] * g_hat[None, :] + n * g_hat[None, :] ** 2
    log_lh = -0.5 * n * np.log(2.0 * np.pi * d_hat)[None, :] - sum2 / (2.0 * d_hat[None, :])
    np.fill_diagonal(log_lh, -np.inf)  # leave feature g itself out
    log_lh -= log_lh.max(axis=1, keepdims=True)
    weights = np.exp(log_lh)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights @ g_hat, weights @ d_hat


def combat_estimates(
    Y: ArrayLike,
    batch: ArrayLike,
    covariates: ArrayLike | None = None,
    *,
    parametric: bool = True,
    mean_only: bool = False,
    eb: bool = True,
    conv: float = 1e-4,
    max_iter: int = 1000,
) -> dict[str, Any]:
    """Estimate the ComBat model on a matrix (the numerical core of :class:`ComBat`).

    Parameters
    ----------
    Y : array-like of shape (n_samples, n_features)
        Finite data (cases x features; note that sva uses features x cases).
    batch : array-like of shape (n_samples,)
        Integer site codes ``0 .. n_batches - 1``, every code present.
    covariates : array-like of shape (n_samples, n_covariates) or None, default=None
        Numeric biological covariates whose effects are preserved.
    parametric : bool, default=True
        Parametric (normal / inverse-gamma) priors, else non-parametric.
    mean_only : bool, default=False
        Only remove the additive site effects.
    eb : bool, default=True
        Empirical Bayes shrinkage; False uses the per-site estimates directly.
    conv : float, default=1e-4
        Relative convergence criterion of the parametric iteration.
    max_iter : int, default=1000
        Cap on the parametric iterations.
    Returns
    -------
    dict
        ``grand_mean`` (p,), ``var_pooled`` (p,), ``beta_cov`` (q, p), ``gamma_hat``,
        ``delta_hat``, ``gamma_star``, ``delta_star`` (B, p), ``gamma_bar``, ``t2``,
        ``a_prior``, ``b_prior`` (B,), ``adjusted`` (p,) bool: features that are
        harmonised (the others, constant overall or within a site, are left as they
        are), ``eb_used`` bool.

    Raises
    ------
    ValueError
        If covariates are confounded with the sites, or a site has a single case
        (unless ``mean_only``).
    """
    Ya = np.asarray(Y, dtype=np.float64)
    codes = np.asarray(batch, dtype=np.intp)
    n, p = Ya.shape
    n_batch = int(codes.max()) + 1
    onehot = np.zeros((n, n_batch))
    onehot[np.arange(n), codes] = 1.0
    counts = onehot.sum(axis=0)
    C = np.zeros((n, 0)) if covariates is None else np.asarray(covariates, dtype=np.float64)
    if C.ndim == 1:
        C = C[:, None]
    design = np.hstack([onehot, C])
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise ValueError(
            "the covariates are confounded with the sites (or collinear): the design "
            "matrix [site indicators, covariates] is rank deficient"
        )
    B_hat, *_ = np.linalg.lstsq(design, Ya, rcond=None)
    grand_mean = (counts / n) @ B_hat[:n_batch]
    beta_cov = B_hat[n_batch:]
    var_pooled = ((Ya - design @ B_hat) ** 2).mean(axis=0)
    stand_mean = grand_mean + C @ beta_cov

    scale_ref = np.maximum((Ya**2).mean(axis=0), np.finfo(np.float64).tiny)
    adjusted = var_pooled > _TINY * scale_ref
    sd = np.sqrt(np.where(adjusted, var_pooled, 1.0))
    s_data = (Ya - stand_mean) / sd

    gamma_hat = np.zeros((n_batch, p))
    delta_hat = np.ones((n_batch, p))
    for b in range(n_batch):
        rows = s_data[codes == b]
        gamma_hat[b] = rows.mean(axis=0)
        if not mean_only:
            if rows.shape[0] < 2:
                raise ValueError("a site has a single case: use mean_only=True")
            delta_hat[b] = rows.var(axis=0, ddof=1)
    if not mean_only:
        adjusted &= (delta_hat > _TINY).all(axis=0)

    gamma_star = np.zeros((n_batch, p))
    delta_star = np.ones((n_batch, p))
    gamma_bar = np.full(n_batch, np.nan)
    t2 = np.full(n_batch, np.nan)
    a_prior = np.full(n_batch, np.nan)
    b_prior = np.full(n_batch, np.nan)
    idx = np.flatnonzero(adjusted)
    eb_used = bool(eb) and len(idx) >= 2
    if eb and not eb_used and len(idx) == 1:
        warnings.warn(
            "ComBat with a single feature cannot estimate the empirical Bayes priors; "
            "using the per-site estimates (eb=False)",
            UserWarning,
            stacklevel=3,
        )
    for b in range(n_batch):
        g_hat = gamma_hat[b, idx]
        d_hat = delta_hat[b, idx]
        if not eb_used:
            gamma_star[b, idx] = g_hat
            delta_star[b, idx] = d_hat
            continue
        rows = s_data[codes == b][:, idx]
        gamma_bar[b] = float(g_hat.mean())
        t2[b] = float(g_hat.var(ddof=1))
        if not mean_only:
            with np.errstate(divide="ignore", invalid="ignore"):
                a_prior[b] = _aprior(d_hat)
                b_prior[b] = _bprior(d_hat)
        if parametric:
            if mean_only:
                g_star = _postmean(g_hat, gamma_bar[b], 1.0, 1.0, t2[b])
                d_star = np.ones_like(d_hat)
            elif np.isfinite(a_prior[b]) and np.isfinite(b_prior[b]):
                g_star, d_star = _it_sol(
                    rows, g_hat, d_hat, gamma_bar[b], t2[b], a_prior[b], b_prior[b], conv, max_iter
                )
            else:  # all per-site variances equal: a point-mass prior
                g_star = _postmean(g_hat, gamma_bar[b], float(rows.shape[0]), d_hat, t2[b])
                d_star = d_hat.copy()
        else:
            g_star, d_star = _int_eprior(rows, g_hat, d_hat)
            if mean_only:
                d_star = np.ones_like(d_hat)
        gamma_star[b, idx] = g_star
        delta_star[b, idx] = d_star
    return {
        "grand_mean": grand_mean,
        "var_pooled": var_pooled,
        "beta_cov": beta_cov,
        "gamma_hat": gamma_hat,
        "delta_hat": delta_hat,
        "gamma_star": gamma_star,
        "delta_star": delta_star,
        "gamma_bar": gamma_bar,
        "t2": t2,
        "a_prior": a_prior,
        "b_prior": b_prior,
        "adjusted": adjusted,
        "eb_used": eb_used,
    }


class ComBat(TransformerMixin, BaseEstimator):
    """Empirical Bayes ComBat harmonisation across sites, fitted on training cases.

    ``X`` is a DataFrame holding the features, the site label column ``batch_col``
    and, optionally, biological covariates. ``fit`` estimates the location/scale
    site effects of every harmonised feature (Johnson et al. 2007); ``transform``
    removes them from any case of a site seen in ``fit``, with the training
    estimates only, and returns the table without ``batch_col``. Transforming the
    training data gives exactly ``fit_transform``'s result.

    Parameters
    ----------
    batch_col : str, default="site"
        Column of X with the site (scanner, centre) of each case; consumed and dropped.
    covariates : sequence of str or None, default=None
        Numeric columns of X whose effects are preserved (e.g. ``["clin__age"]``);
        one-hot encode categorical ones first. They are passed through unchanged.
    blocks : sequence of str or None, default=None
        Harmonise only the columns of these blocks (name prefix before ``"__"``,
        e.g. ``("rad", "deep")``); the other columns pass through unchanged. None
        harmonises every column other than ``batch_col`` and ``covariates``.
    parametric : bool, default=True
        Parametric empirical Bayes priors; False uses the non-parametric version.
    mean_only : bool, default=False
        Only remove additive site effects (no variance scaling).
    eb : bool, default=True
        Shrink the site effects with empirical Bayes; False uses the per-site
        method-of-moments estimates (plain location/scale adjustment).
    conv : float, default=1e-4
        Convergence criterion of the parametric iteration (as in sva).
    max_iter : int, default=1000
        Cap on the parametric iterations.
    impute : bool, default=False
        Fill missing values of the harmonised columns with their training medians
        (what ``SimpleImputer(strategy="median")`` fitted on the same cases does) before
        estimating and removing the site effects, so ComBat can run before imputation
        inside a pipeline.

    Attributes
    ----------
    batches_ : numpy.ndarray
        The site labels seen in ``fit`` (sorted).
    batch_counts_ : numpy.ndarray of shape (n_batches,)
        Training cases per site.
    harmonized_features_ : numpy.ndarray of str objects
        Columns that are harmonised.
    adjusted_ : numpy.ndarray of shape (n_harmonized,)
        False for harmonised columns left unchanged because they are constant overall
        or within a site.
    grand_mean_, var_pooled_ : numpy.ndarray of shape (n_harmonized,)
        Pooled mean (covariates at 0) and pooled residual variance of each feature.
    beta_covariates_ : numpy.ndarray of shape (n_covariates, n_harmonized)
        Regression coefficients of the covariates.
    gamma_hat_, delta_hat_ : numpy.ndarray of shape (n_batches, n_harmonized)
        Per-site method-of-moments estimates on the standardised scale.
    gamma_star_, delta_star_ : numpy.ndarray of shape (n_batches, n_harmonized)
        Empirical Bayes estimates of the site effects that are removed.
    gamma_bar_, t2_, a_prior_, b_prior_ : numpy.ndarray of shape (n_batches,)
        Hyper-parameters of the priors (NaN when not used).
    medians_ : numpy.ndarray of shape (n_harmonized,)
        Training medians of the harmonised columns (``impute=True`` only).
    n_features_in_ : int
        Number of input columns (including ``batch_col``).
    feature_names_in_ : numpy.ndarray
        Input column names.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> site = np.repeat(["A", "B"], 50)
    >>> X = pd.DataFrame(rng.normal(size=(100, 20)) + (site == "B")[:, None] * 2.0,
    ...                  columns=[f"rad__f{i:02d}" for i in range(20)])
    >>> X["site"] = site
    >>> out = ComBat().fit_transform(X)
    >>> out.shape, "site" in out.columns
    ((100, 20), False)
    >>> gap = X[site == "A"].mean(numeric_only=True) - X[site == "B"].mean(numeric_only=True)
    >>> bool(gap.abs().min() > 1.0)
    True
    >>> bool((out[site == "A"].mean() - out[site == "B"].mean()).abs().max() < 0.5)
    True
    """

    def __init__(
        self,
        batch_col: str = "site",
        covariates: Sequence[str] | None = None,
        blocks: Sequence[str] | None = None,
        parametric: bool = True,
        mean_only: bool = False,
        eb: bool = True,
        conv: float = 1e-4,
        max_iter: int = 1000,
        impute: bool = False,
    ) -> None:
        self.batch_col = batch_col
        self.covariates = covariates
        self.blocks = blocks
        self.parametric = parametric
        self.mean_only = mean_only
        self.eb = eb
        self.conv = conv
        self.max_iter = max_iter
        self.impute = impute

    # ------------------------------------------------------------------ helpers
    def _check_frame(self, X: Any) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                f"ComBat needs a pandas DataFrame with the site column {self.batch_col!r}; "
                f"got {type(X).__name__}"
            )
        if self.batch_col not in X.columns:
            raise ValueError(f"X has no site column {self.batch_col!r}")
        return X

    def _covariate_list(self) -> list[str]:
        if self.covariates is None:
            return []
        if isinstance(self.covariates, str):
            return [self.covariates]
        return list(self.covariates)

    def _batch_codes(self, X: pd.DataFrame) -> NDArray[np.intp]:
        labels = X[self.batch_col]
        if labels.isna().any():
            raise ValueError(f"the site column {self.batch_col!r} has missing values")
        index = pd.Index(self.batches_)
        codes = index.get_indexer(labels.to_numpy())
        if (codes < 0).any():
            unseen = sorted({str(v) for v in labels[codes < 0]})
            raise ValueError(
                f"site(s) {unseen} were not seen in fit (ComBat knows {[str(b) for b in index]}); "
                "ComBat can only harmonise cases of the training sites"
            )
        return np.asarray(codes, dtype=np.intp)

    @staticmethod
    def _numeric(frame: pd.DataFrame, what: str) -> NDArray[np.float64]:
        bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        if bad:
            raise ValueError(f"{what} columns must be numeric; not numeric: {bad[:5]}")
        values = frame.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            cols = frame.columns[~np.isfinite(values).all(axis=0)].tolist()
            raise ValueError(f"{what} columns contain NaN or infinity (impute first): {cols[:5]}")
        return values

    # ------------------------------------------------------------------ API
    def fit(self, X: pd.DataFrame, y: Any = None) -> ComBat:
        """Estimate the site effects on the training cases.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_features)
            Features, the site column and the covariate columns.
        y : ignored
            Not used.

        Returns
        -------
        ComBat
            The fitted transformer.

        Raises
        ------
        ValueError
            Missing site column or labels, fewer than two sites, a site with one case
            (unless ``mean_only``), non-numeric or non-finite harmonised columns,
            covariates confounded with the sites.
        """
        X = self._check_frame(X)
        covs = self._covariate_list()
        missing = [c for c in covs if c not in X.columns]
        if missing:
            raise ValueError(f"covariate column(s) not in X: {missing}")
        if self.batch_col in covs:
            raise ValueError("the site column cannot also be a covariate")
        if (
            self.blocks is not None
            and not isinstance(self.blocks, str)
            and not all(isinstance(b, str) for b in self.blocks)
        ):
            raise ValueError(f"blocks must be a sequence of strings; got {self.blocks!r}")
        if not isinstance(self.conv, float | int) or not self.conv > 0:
            raise ValueError(f"conv must be a positive number; got {self.conv!r}")
        if not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer; got {self.max_iter!r}")
        validate_data(self, X, reset=True, skip_check_array=True)

        labels = X[self.batch_col]
        if labels.isna().any():
            raise ValueError(f"the site column {self.batch_col!r} has missing values")
        uniques = pd.unique(labels.to_numpy())
        self.batches_ = np.asarray(sorted(uniques, key=lambda v: (str(type(v)), v)), dtype=object)
        if len(self.batches_) < 2:
            raise ValueError(f"ComBat needs at least two sites; got {list(self.batches_)}")
        codes = self._batch_codes(X)
        counts = np.bincount(codes, minlength=len(self.batches_))
        if not self.mean_only and (counts < 2).any():
            single = [str(b) for b, c in zip(self.batches_, counts, strict=True) if c < 2]
            raise ValueError(
                f"site(s) {single} have a single case; ComBat needs >= 2 cases per site "
                "to estimate the scale effect (or use mean_only=True)"
            )

        harmonized = self._harmonized_columns(X, covs)
        if not harmonized:
            raise ValueError("no column to harmonise")
        frame = X[harmonized]
        if self.impute:
            frame = frame.astype(np.float64)
            medians = frame.median(skipna=True).to_numpy(np.float64)
            empty = [c for c, m in zip(harmonized, medians, strict=True) if np.isnan(m)]
            if empty:
                raise ValueError(f"harmonised column(s) with no value to impute: {empty[:5]}")
            self.medians_ = medians
            frame = frame.fillna(pd.Series(medians, index=harmonized))
        Y = self._numeric(frame, "harmonised")
        C = self._numeric(X[covs], "covariate") if covs else None
        est = combat_estimates(
            Y,
            codes,
            C,
            parametric=bool(self.parametric),
            mean_only=bool(self.mean_only),
            eb=bool(self.eb),
            conv=float(self.conv),
            max_iter=int(self.max_iter),
        )
        self.batch_counts_ = counts
        self.harmonized_features_ = np.asarray(harmonized, dtype=object)
        self.adjusted_ = est["adjusted"]
        self.grand_mean_ = est["grand_mean"]
        self.var_pooled_ = est["var_pooled"]
        self.beta_covariates_ = est["beta_cov"]
        self.gamma_hat_ = est["gamma_hat"]
        self.delta_hat_ = est["delta_hat"]
        self.gamma_star_ = est["gamma_star"]
        self.delta_star_ = est["delta_star"]
        self.gamma_bar_ = est["gamma_bar"]
        self.t2_ = est["t2"]
        self.a_prior_ = est["a_prior"]
        self.b_prior_ = est["b_prior"]
        return self

    def _harmonized_columns(self, X: pd.DataFrame, covs: list[str]) -> list[str]:
        skip = {self.batch_col, *covs}
        blocks = None
        if self.blocks is not None:
            blocks = (self.blocks,) if isinstance(self.blocks, str) else tuple(self.blocks)
        out = []
        for col in X.columns:
            if col in skip:
                continue
            if blocks is not None:
                head, sep, _ = str(col).partition("__")
                if not sep or head not in blocks:
                    continue
            out.append(col)
        return out

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Remove the training site effects from X.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_features_in_)
            The columns seen in ``fit``, with sites among ``batches_``.

        Returns
        -------
        DataFrame of shape (n_samples, n_features_in_ - 1)
            X without ``batch_col``, harmonised columns replaced; same index.

        Raises
        ------
        ValueError
            If a case belongs to a site not seen in ``fit`` (the message names it).
        """
        check_is_fitted(self, "gamma_star_")
        X = self._check_frame(X)
        validate_data(self, X, reset=False, skip_check_array=True)
        codes = self._batch_codes(X)
        covs = self._covariate_list()
        cols = list(self.harmonized_features_)
        frame = X[cols]
        if self.impute:
            frame = frame.astype(np.float64).fillna(pd.Series(self.medians_, index=cols))
        Y = self._numeric(frame, "harmonised")
        stand_mean = np.broadcast_to(self.grand_mean_, Y.shape).copy()
        if covs:
            stand_mean += self._numeric(X[covs], "covariate") @ self.beta_covariates_
        adj = self.adjusted_
        sd = np.sqrt(np.where(adj, self.var_pooled_, 1.0))
        s_data = (Y - stand_mean) / sd
        out = (s_data - self.gamma_star_[codes]) / np.sqrt(self.delta_star_[codes]) * sd
        out += stand_mean
        out[:, ~adj] = Y[:, ~adj]
        result = X.drop(columns=[self.batch_col])
        harmonized = pd.DataFrame(out, index=X.index, columns=cols)
        result[cols] = harmonized
        return result

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> NDArray[np.object_]:
        """The input column names without ``batch_col``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Must equal ``feature_names_in_`` when given.

        Returns
        -------
        numpy.ndarray of str objects
            Output column names.
        """
        check_is_fitted(self, "gamma_star_")
        names = np.asarray(self.feature_names_in_, dtype=object)
        if input_features is not None and not np.array_equal(
            np.asarray(input_features, dtype=object), names
        ):
            raise ValueError("input_features is not equal to feature_names_in_")
        return names[names != self.batch_col]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.allow_nan = bool(self.impute)
        return tags
