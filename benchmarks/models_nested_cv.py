"""Benchmark: nested CV of the hybrid pipeline at scale, and the real LGG cohort.

1. Simulated 500 cases x 2,000 features (1,500 handcrafted-like, 500 deep-like, sparse
   true signal, correlated blocks): wall time of the default hybrid pipeline's repeated
   nested CV on 2 cores (outer folds in 2 processes) against 1 process.
2. ``--lgg``: ../shared/data/lgg-tcga (39 patients): radiomics with mri_glioma (cached),
   then IDH, 1p/19q and overall survival evaluated with nested CV and bootstrap CIs for
   the clinical (age), handcrafted and hybrid feature sets; add ``--deep deep.parquet``
   to include deep features.

Usage: .venv/bin/python benchmarks/models_nested_cv.py [--lgg] [--cache DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sksurv.util import Surv

from hybridrad.models import StudyConfig, compare_feature_sets, nested_cv
from hybridrad.models.pipelines import build_pipeline


def simulate(
    n: int = 500, p_rad: int = 1500, p_deep: int = 500, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 20))  # correlated blocks, as radiomic features are
    rad = latent[:, rng.integers(0, 20, p_rad)] + rng.normal(0, 0.7, (n, p_rad))
    deep = latent[:, rng.integers(0, 20, p_deep)] + rng.normal(0, 1.0, (n, p_deep))
    lp = 0.6 * latent[:, 0] - 0.5 * latent[:, 1] + 0.4 * latent[:, 2]
    t = rng.exponential(np.exp(-lp) * 24)
    c = rng.uniform(12, 80, n)
    X = pd.DataFrame(
        np.hstack([rad, deep, rng.normal(60, 10, (n, 1))]),
        columns=[f"rad__f{i:04d}" for i in range(p_rad)]
        + [f"deep__d{i:04d}" for i in range(p_deep)]
        + ["clin__age"],
    )
    X.index = pd.Index([f"s{i:04d}" for i in range(n)], name="case_id")
    return X, Surv.from_arrays(t <= c, np.minimum(t, c))


def bench_scale() -> None:
    X, y = simulate()
    config = StudyConfig(outer_repeats=1)
    pipe, grid = build_pipeline(config, "survival", n_features=X.shape[1])
    print(
        f"simulated: {X.shape[0]} cases x {X.shape[1]} features, {int(y['event'].sum())} "
        f"events; {config.outer_splits}-fold x {config.outer_repeats} repeat outer CV, "
        f"{config.inner_splits}-fold inner grid {grid}"
    )
    times = {}
    for n_jobs in (1, 2):
        settings = StudyConfig(outer_repeats=1, n_jobs=n_jobs).cv_settings()
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = nested_cv(pipe, X, y, param_grid=grid, settings=settings)
        times[n_jobs] = time.perf_counter() - start
        s = result.summary
        print(
            f"  n_jobs={n_jobs}: {times[n_jobs]:.1f} s, Harrell C "
            f"{s.loc['harrell_c', 'estimate']:.3f} "
            f"({s.loc['harrell_c', 'ci_low']:.3f}-{s.loc['harrell_c', 'ci_high']:.3f})"
        )
    print(f"  speed-up with 2 processes: {times[1] / times[2]:.2f}x")


def bench_lgg(cache: Path, deep: Path | None, targets: str = "idh,codel,os") -> None:
    from hybridrad.datasets.discover import discover_lgg_tcga
    from hybridrad.datasets.reference import reference_data_dir
    from hybridrad.features import extract_radiomics
    from hybridrad.io import Cohort, read_clinical, write_manifest
    from hybridrad.models import class_target, fuse, survival_target

    data = reference_data_dir()
    if data is None:
        print("reference data not found; skipping --lgg")
        return
    table, clinical_path = discover_lgg_tcga(data / "lgg-tcga")
    manifest = write_manifest(table, cache / "lgg_manifest.csv")
    cohort = Cohort.from_csv(manifest, label_map="binary")
    start = time.perf_counter()
    rad = extract_radiomics(cohort, "mri_glioma", jobs=2, cache_dir=cache / "radiomics")
    print(
        f"lgg-tcga radiomics: {rad.features.shape} in {time.perf_counter() - start:.0f} s "
        f"({len(rad.failures)} failures)"
    )
    clin = read_clinical(clinical_path)
    tables = [rad.features] + ([pd.read_parquet(deep)] if deep else [])
    X = fuse(tables, clinical=clin, covariates=["age"])
    sets = {"clinical": ("clin",), "handcrafted": ("rad",), "hybrid": ("rad", "deep", "clin")}
    if deep:
        sets["deep"] = ("deep",)
    common = dict(
        feature_sets=sets, outer_repeats=5, n_boot=500, screen_k=(5, 10), prescreen_k=100, n_jobs=2
    )
    for key, name, target, model in (
        (
            "idh",
            "IDH (mutant vs wild-type)",
            class_target(clin, "idh", list(X.index)).to_numpy(),
            "logistic",
        ),
        (
            "codel",
            "1p/19q codeletion",
            class_target(clin, "codeletion_1p19q", list(X.index)).to_numpy(),
            "logistic",
        ),
        (
            "os",
            "overall survival",
            survival_target(clin, "os_months", "death", list(X.index)),
            "cox",
        ),
    ):
        if key not in targets.split(","):
            continue
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            key_model = "model" if model == "cox" else "classifier"
            config = StudyConfig(**{key_model: model, **common})  # type: ignore[arg-type]
            table, _ = compare_feature_sets(X, target, config)
        print(f"\n{name} ({time.perf_counter() - start:.0f} s)")
        print(table.round(3).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lgg", action="store_true", help="also evaluate lgg-tcga")
    parser.add_argument("--only-lgg", action="store_true", help="skip the scale benchmark")
    parser.add_argument("--deep", type=Path, help="deep-feature table for lgg-tcga")
    parser.add_argument("--cache", type=Path, help="cache folder (default: temporary)")
    parser.add_argument("--targets", default="idh,codel,os", help="lgg targets to evaluate")
    args = parser.parse_args()
    if not args.only_lgg:
        bench_scale()
    if args.lgg or args.only_lgg:
        with tempfile.TemporaryDirectory() as tmp:
            cache = args.cache or Path(tmp)
            cache.mkdir(parents=True, exist_ok=True)
            bench_lgg(cache, args.deep, args.targets)


if __name__ == "__main__":
    main()
