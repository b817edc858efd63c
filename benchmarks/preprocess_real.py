"""Benchmark: the preprocessing pipeline on real scans (TCGA-LGG and BraTS four-sequence cases).

Two parts, each against the obvious alternative measured in the same run:

``steps``
    Seconds per case for every step of a pipeline with all MRI steps on (reorient,
    resample, coregister forced on every sequence, N4, denoising, brain extraction,
    brain-masked z-score, crop), on ``--cases`` cases of each cohort. Also, in the same
    run: N4 at shrink factor 2 (the preset) against no shrinking, and deepbet against the
    threshold fallback, as ratios; and the brain volume each method gives.
``icc``
    Per-feature ICC(1,1) of handcrafted features (``mri_glioma_fast``, FLAIR, tumour mask)
    under the robustness perturbations (translation, volume, contour, noise;
    ``hybridrad.features.robustness``), on the raw scans with pyradiomics' own
    ``normalize`` (z-score over every voxel) against the ``glioma_mri`` preset's images
    with ``normalizeRegion: brain``. ``--preprocessed`` is the output folder of
    ``hybridrad preprocess MANIFEST --config glioma_mri`` for the same cases.

``dice``
    Segmentation Dice of the shipped recipe (``glioma-flair``) in 5-fold CV, on the raw
    scans against the ``glioma_mri`` preset's images: reads the two folders that
    ``scripts/train_glioma_model.py cv`` wrote (``--raw WORK/cv-glioma-flair``, and
    ``--pre`` for the run with ``--manifest PRE/manifest.csv``); prints per-fold means and
    the paired per-patient difference with a bootstrap 95 % CI. Both runs use the same
    folds (``folds_of(case_ids, 5, seed=0)``), the same masks on the same grid.

The data is located with ``hybridrad.datasets.reference.reference_data_dir()``
(``$HYBRIDRAD_DATA`` or ``../shared/data``); without it the benchmark says so and exits 0.

Usage::

    .venv/bin/python benchmarks/preprocess_real.py steps [--cases 5]
    .venv/bin/python benchmarks/preprocess_real.py icc --preprocessed WORK/lgg-glioma_mri [--jobs 2]
    .venv/bin/python benchmarks/preprocess_real.py dice --raw WORK/cv-glioma-flair --pre WORK/cv-pre/cv-glioma-flair
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def _cohorts(data: Path, tmp: Path, n: int) -> dict[str, object]:
    from hybridrad.datasets.discover import discover_brats, discover_lgg_tcga
    from hybridrad.io import Cohort, write_manifest

    out: dict[str, object] = {}
    table, _ = discover_lgg_tcga(data / "lgg-tcga")
    out["lgg-tcga"] = Cohort.from_csv(write_manifest(table.head(n), tmp / "lgg.csv"))
    for name in ("brats2018-fourmodal", "brats2012-fourmodal"):
        folder = data / "brats-samples" / name
        if folder.is_dir():
            t = discover_brats(folder)
            out[name] = Cohort.from_csv(write_manifest(t.head(n), tmp / f"{name}.csv"))
    return out


def _best(fn: object, repeats: int = 1) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return min(times)


def run_steps(data: Path, n: int) -> None:
    """Seconds per case and step; N4 shrink and brain-extraction ratios."""
    from hybridrad.preprocess.bias import n4_bias_correction
    from hybridrad.preprocess.brain import deepbet_available, extract_brain
    from hybridrad.preprocess.pipeline import parse_pipeline, run_pipeline

    full = parse_pipeline(
        {
            "reference": ["flair", "t1c"],
            "reorient": {"orientation": "LPS"},
            "resample": {"spacing": [1.5, 1.5, 3.0], "interpolator": "bspline"},
            "coregister": {"when": "always"},
            "bias_correction": {"shrink_factor": 2},
            "denoise": {"iterations": 5},
            "brain_extraction": {"method": "auto", "sequence": ["t1c", "t1", "flair"]},
            "normalise": {"region": "brain", "clip_percentiles": [0.5, 99.5]},
            "crop": {"to": "brain", "margin_mm": 10},
        },
        source="benchmark pipeline",
    )
    print(f"deepbet installed: {deepbet_available()}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, cohort in _cohorts(data, Path(tmp), n).items():
            rows, extra = [], []
            for case in cohort:  # type: ignore[attr-defined]
                images = {s: case.read(s) for s in case.images}
                mask = case.read_mask() if case.mask is not None else None
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = run_pipeline(full, images, mask, case_id=case.case_id)
                rows.append({"case_id": case.case_id, **result.log["seconds"]})
                ref = images.get("flair") or next(iter(images.values()))
                t_n4_2 = _best(lambda ref=ref: n4_bias_correction(ref, shrink_factor=2))
                t_n4_1 = _best(lambda ref=ref: n4_bias_correction(ref, shrink_factor=1))
                src = images.get("t1c") or ref
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    deep = extract_brain(src, method="auto")
                t_deep = time.perf_counter() - t0
                t0 = time.perf_counter()
                thr = extract_brain(src, method="threshold")
                t_thr = time.perf_counter() - t0
                extra.append(
                    {
                        "n4_shrink1_s": t_n4_1,
                        "n4_shrink2_s": t_n4_2,
                        f"{deep.method}_s": t_deep,
                        "threshold_s": t_thr,
                        f"{deep.method}_ml": deep.volume_ml,
                        "threshold_ml": thr.volume_ml,
                    }
                )
            table = pd.DataFrame(rows).set_index("case_id")
            size = "x".join(str(v) for v in next(iter(images.values())).GetSize())
            print(f"\n{name}: {len(table)} cases (last {size}); seconds per case, mean (max):")
            for step in table.columns:
                print(f"  {step:17s} {table[step].mean():7.2f} ({table[step].max():.2f})")
            total = table.sum(axis=1)
            print(f"  {'total':17s} {total.mean():7.2f} ({total.max():.2f})")
            ex = pd.DataFrame(extra)
            print(
                f"  N4 on FLAIR: shrink 2 {ex['n4_shrink2_s'].mean():.2f} s vs shrink 1 "
                f"{ex['n4_shrink1_s'].mean():.2f} s: {ex['n4_shrink1_s'].mean() / ex['n4_shrink2_s'].mean():.1f}x faster"
            )
            method = "deepbet" if "deepbet_s" in ex else "threshold"
            if method == "deepbet":
                print(
                    f"  brain extraction (T1c): deepbet {ex['deepbet_s'].mean():.2f} s, "
                    f"{ex['deepbet_ml'].mean():.0f} mL; threshold {ex['threshold_s'].mean():.2f} s, "
                    f"{ex['threshold_ml'].mean():.0f} mL (deepbet/threshold time "
                    f"{ex['deepbet_s'].mean() / ex['threshold_s'].mean():.1f}x)"
                )


def run_icc(data: Path, preprocessed: Path, jobs: int, n_perturbations: int) -> None:
    """ICC under perturbations: raw + pyradiomics normalize vs glioma_mri + brain z-score."""
    from hybridrad.datasets.discover import discover_lgg_tcga
    from hybridrad.features.radiomics import RadiomicsConfig
    from hybridrad.features.robustness import robustness_icc
    from hybridrad.io import Cohort, write_manifest

    fast = RadiomicsConfig.load("mri_glioma_fast").params
    brain = {**fast, "setting": {**fast["setting"], "normalize": False, "normalizeRegion": "brain"}}
    pre = Cohort.from_csv(preprocessed / "manifest.csv")
    with tempfile.TemporaryDirectory() as tmp:
        table, _ = discover_lgg_tcga(data / "lgg-tcga")
        table = table[table["case_id"].isin(pre.case_ids)]
        raw = Cohort.from_csv(write_manifest(table, Path(tmp) / "lgg.csv"))
        results = {}
        for label, cohort, params in (
            ("raw, pyradiomics normalize", raw, fast),
            ("glioma_mri, brain z-score", pre, brain),
        ):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                icc, res = robustness_icc(
                    cohort,  # type: ignore[arg-type]
                    params,
                    n_perturbations=n_perturbations,
                    sequences=["flair"],
                    jobs=jobs,
                )
            results[label] = icc["icc"]
            print(
                f"{label}: {len(res.features)} cases, {len(icc)} features, "
                f"{time.perf_counter() - t0:.0f} s, {len(res.failures)} failed"
            )
    both = pd.DataFrame(results).dropna()
    # the same feature under both: drop the sequence/region prefix differences (none here)
    print(f"\nper-feature ICC(1,1), FLAIR, {n_perturbations} perturbations, {len(both)} features:")
    print(f"{'':28s} {'median':>7s} {'>=0.75':>8s} {'>=0.90':>8s}")
    for label, col in both.items():
        v = col.to_numpy()
        print(f"{label:28s} {np.median(v):7.3f} {np.mean(v >= 0.75):8.1%} {np.mean(v >= 0.9):8.1%}")
    diff = both.iloc[:, 1] - both.iloc[:, 0]
    print(
        f"paired difference (preprocessed - raw): median {diff.median():+.3f}, "
        f"features improved {np.mean(diff > 0):.0%}"
    )
    classes = both.index.to_series().str.split("__").str[-2]
    print("median ICC by feature class:")
    print(both.groupby(classes.to_numpy()).median().round(3).to_string())


def run_dice(raw: Path, pre: Path) -> None:
    """Per-fold and paired per-patient Dice: raw scans vs the glioma_mri preset."""
    tables = {}
    for label, folder in (("raw", raw), ("glioma_mri", pre)):
        files = sorted(folder.glob("fold*/scores.csv"))
        if not files:
            sys.exit(f"no fold*/scores.csv under {folder}")
        tables[label] = pd.concat([pd.read_csv(f) for f in files]).set_index("case_id")
    both = tables["raw"][["fold", "dice", "hd95_mm"]].join(
        tables["glioma_mri"][["dice", "hd95_mm"]], rsuffix="_pre", how="inner"
    )
    print(
        f"{len(both)} patients in both runs (folds {sorted(int(f) for f in both['fold'].unique())})"
    )
    per_fold = both.groupby("fold").agg(
        n=("dice", "size"), raw=("dice", "mean"), glioma_mri=("dice_pre", "mean")
    )
    print(per_fold.round(3).to_string())
    diff = (both["dice_pre"] - both["dice"]).to_numpy()
    rng = np.random.default_rng(0)
    boot = [rng.choice(diff, size=len(diff)).mean() for _ in range(2000)]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    print(
        f"mean Dice: raw {both['dice'].mean():.3f} (median {both['dice'].median():.3f}), "
        f"glioma_mri {both['dice_pre'].mean():.3f} (median {both['dice_pre'].median():.3f})"
    )
    print(
        f"median HD95 (mm): raw {both['hd95_mm'].median():.1f}, "
        f"glioma_mri {both['hd95_mm_pre'].median():.1f}"
    )
    print(
        f"paired difference (glioma_mri - raw): {diff.mean():+.3f} [{lo:+.3f}, {hi:+.3f}], "
        f"better in {np.mean(diff > 0):.0%} of patients"
    )
    worst = both.assign(diff=diff).sort_values("diff")
    print("largest changes:")
    print(
        pd.concat([worst.head(3), worst.tail(3)])[["fold", "dice", "dice_pre", "diff"]]
        .round(3)
        .to_string()
    )


def main() -> int:
    from hybridrad.datasets.reference import reference_data_dir

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=["steps", "icc", "dice"])
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--cases", type=int, default=5, help="steps: cases per cohort")
    p.add_argument("--preprocessed", type=Path, help="icc: glioma_mri output folder")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--perturbations", type=int, default=5)
    p.add_argument("--raw", type=Path, help="dice: CV folder of the raw scans")
    p.add_argument("--pre", type=Path, help="dice: CV folder of the preprocessed scans")
    args = p.parse_args()
    data = args.data or reference_data_dir()
    if data is None or not (data / "lgg-tcga").is_dir():
        print("reference data not found (set HYBRIDRAD_DATA); nothing to benchmark")
        return 0
    if args.part == "dice":
        if args.raw is None or args.pre is None:
            sys.exit("dice needs --raw and --pre (folders of scripts/train_glioma_model.py cv)")
        run_dice(args.raw, args.pre)
    elif args.part == "steps":
        run_steps(data, args.cases)
    else:
        if args.preprocessed is None:
            sys.exit(
                "icc needs --preprocessed (the output of hybridrad preprocess --config glioma_mri)"
            )
        run_icc(data, args.preprocessed, args.jobs, args.perturbations)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
