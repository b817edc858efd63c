"""Train the default segmentation model shipped in ``hybridrad/segment/default_model``.

Reproducible: generates a synthetic cohort with a fixed seed, trains with
``configs/segmentation/synthetic.yaml`` (fixed seed) on the CPU, writes weights + JSON
into the package, and prints the held-out Dice.

Usage::

    .venv/bin/python scripts/train_default_model.py [--cases 24] [--seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    """Generate the cohort, train, copy weights + metadata into the package."""
    from hybridrad.datasets.synthetic import make_synthetic_cohort
    from hybridrad.io.manifest import Cohort
    from hybridrad.segment.config import SegConfig
    from hybridrad.segment.evaluate import evaluate_masks
    from hybridrad.segment.infer import segment_cohort
    from hybridrad.segment.model import DEFAULT_MODEL_DIR
    from hybridrad.segment.train import train_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-cases", type=int, default=6)
    parser.add_argument("--config", type=Path, default=ROOT / "configs/segmentation/synthetic.yaml")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--max-minutes", type=float, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        train = make_synthetic_cohort(work / "train", args.cases, args.seed)
        test = make_synthetic_cohort(work / "test", args.test_cases, args.seed + 1000)
        cohort = Cohort.from_csv(train.manifest_path, label_map="brats", sequences=SEQS)
        t0 = time.perf_counter()
        meta = train_model(
            cohort,
            work / "model",
            SegConfig.load(args.config),
            device="cpu",
            max_minutes=args.max_minutes,
        )
        seconds = time.perf_counter() - t0
        test_cohort = Cohort.from_csv(test.manifest_path, label_map="brats", sequences=SEQS)
        segment_cohort(test_cohort, work / "pred", model_dir=work / "model", device="cpu")
        table = evaluate_masks(test_cohort, work / "pred")
        dice = table.groupby("region", sort=False)["dice"].mean()
        args.out.mkdir(parents=True, exist_ok=True)
        for name in ("model.pt", "model.json"):
            shutil.copy2(work / "model" / name, args.out / name)
    print(f"trained in {seconds:.0f} s; validation Dice {meta['metrics']['val_dice']}")
    print(f"held-out Dice ({args.test_cases} cases, seed {args.seed + 1000}):")
    print(dice.round(3).to_string())
    size = sum(p.stat().st_size for p in args.out.iterdir()) / 1e6
    print(f"model -> {args.out} ({size:.2f} MB)")
    return 0


SEQS = ["t1", "t1c", "t2", "flair"]

if __name__ == "__main__":
    raise SystemExit(main())
