"""Do deep features carry subtype and survival signal? Pooling and pretraining ablation.

Not a test; prints its numbers. On synthetic cohorts with known truth, deep features
alone (no clinical covariates) are scored with hybridrad's own evaluation
(:func:`hybridrad.models.compare_feature_sets`: default study pipeline, nested 5-fold x
3-repeat CV, bootstrap CI, shuffled-label negative control) for IDH (AUC) and overall
survival (Harrell's C), beside the oracle (the true posterior / true risk):

- the shipped segmentation model's encoder, ``masked`` (ROI mean) vs ``meanstd``
  (ROI mean + SD) pooling;
- self-supervised (SimCLR) encoders pretrained on the cohort with and without random
  crop views (``crop_fraction`` 1.0 vs 0.6), several seeds, both poolings.

Usage::

    .venv/bin/python benchmarks/deep_signal.py [--cases 96] [--seeds 0,1,2]
        [--cohort-seed 0] [--work /tmp/deep-signal] [--skip-ssl]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd


def score(features: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """IDH AUC and Harrell's C of deep features alone, with the shuffled-label controls."""
    from hybridrad.models import StudyConfig, compare_feature_sets, survival_target

    X = features.loc[truth.index]
    out: dict[str, float] = {}
    for y, head in (
        (truth["idh_wt"].to_numpy(), "auc"),
        (survival_target(truth, time="os_months", event="death"), "harrell_c"),
    ):
        config = StudyConfig(feature_sets={"deep": ("deep",)}, covariates=(), n_boot=200)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table, _ = compare_feature_sets(X, y, config)
        out[head] = float(table.loc["deep", head])
        out[f"{head}_ci"] = f"{table.loc['deep', 'ci_low']:.2f}-{table.loc['deep', 'ci_high']:.2f}"
        out[f"{head}_shuffled"] = float(table.iloc[-1][head])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=96)
    ap.add_argument("--cohort-seed", type=int, default=0)
    ap.add_argument("--seeds", default="0,1,2", help="pretraining seeds")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "deep-signal")
    ap.add_argument("--skip-ssl", action="store_true")
    args = ap.parse_args()

    from hybridrad.datasets.synthetic import make_synthetic_cohort
    from hybridrad.features.deep import extract_deep
    from hybridrad.features.encoders import EncoderError
    from hybridrad.features.pretrain import PretrainConfig, pretrain
    from hybridrad.io.manifest import Cohort

    root = args.work / f"synthetic-{args.cases}-seed{args.cohort_seed}"
    syn = make_synthetic_cohort(root, n_cases=args.cases, seed=args.cohort_seed, overwrite=True)
    cohort = Cohort.from_csv(syn.manifest_path, label_map="brats")
    truth = syn.truth
    print(
        f"== {args.cases} synthetic cases (seed {args.cohort_seed}): oracle AUC(IDH) "
        f"{syn.oracle_auc_idh:.3f}, oracle C {syn.oracle_cindex:.3f}; chance 0.5"
    )
    runs: list[tuple[str, Any, dict[str, Any]]] = []
    try:
        from hybridrad.features.encoders import resolve_encoder

        seg = resolve_encoder(None)
        runs += [("segmentation", seg, {"pooling": p}) for p in ("masked", "meanstd")]
    except EncoderError as exc:
        print(f"segmentation encoder skipped: {exc}")
    if not args.skip_ssl:
        for crop in (1.0, 0.6):
            for seed in (int(s) for s in args.seeds.split(",")):
                out = args.work / f"ssl-{args.cases}-{args.cohort_seed}-crop{crop}-seed{seed}"
                t0 = time.perf_counter()
                cfg = PretrainConfig(epochs=args.epochs, seed=seed, crop_fraction=crop)
                pretrain(cohort, out, config=cfg, device="cpu")
                took = time.perf_counter() - t0
                for pooling in ("masked", "meanstd"):
                    label = f"ssl crop {crop} seed {seed} ({took:.0f} s)"
                    runs.append((label, str(out), {"pooling": pooling}))
    rows = []
    for label, encoder, kw in runs:
        res = extract_deep(cohort, encoder, batch_size=16, device="cpu", **kw)
        row = {"encoder": label, **kw, "n_features": res.features.shape[1]}
        row.update(score(res.features, truth))
        rows.append(row)
        print(
            f"{label:32s} {kw['pooling']:8s} {row['n_features']:4d} features: "
            f"AUC(IDH) {row['auc']:.3f} ({row['auc_ci']}; shuffled {row['auc_shuffled']:.3f})  "
            f"C {row['harrell_c']:.3f} ({row['harrell_c_ci']}; shuffled "
            f"{row['harrell_c_shuffled']:.3f})",
            flush=True,
        )
    table = pd.DataFrame(rows)
    if not args.skip_ssl:
        ssl = table[table["encoder"].str.startswith("ssl")].copy()
        ssl["crop"] = ssl["encoder"].str.extract(r"crop ([\d.]+)")[0]
        print("\nself-supervised, mean over seeds:")
        print(ssl.groupby(["crop", "pooling"])[["auc", "harrell_c"]].agg(["mean", "min"]).round(3))


if __name__ == "__main__":
    main()
