"""Shipped glioma models on real scans: inference speed, and Dice on another source.

1. Inference seconds per case of ``hybridrad segment``'s settings for the shipped
   ``glioma-flair`` model (MONAI ``SliceInferer``, ``sw_batch_size`` slices per call)
   against the obvious alternative, MONAI's default ``sw_batch_size=1`` (one slice per
   network call), on the TCGA-LGG development cases, measured in the same run. Dice
   of both is printed too (they must agree).
2. Out-of-distribution Dice: ``glioma-flair`` on the BraTS 2018 FLAIR cases of
   ``brats-samples`` (``brats2018-wholetumour``: GT_W; ``brats2018-fourmodal``: labels
   1, 2, 4 = whole tumour). BraTS is skull-stripped, 1 mm isotropic and high-grade;
   the model was trained on non-skull-stripped 5 mm TCGA-LGG slices. Reported as-is.

The cross-validated Dice of each shipped model is in its ``model.json``
(``hybridrad models``); it comes from ``scripts/train_glioma_model.py cv``.

Not a test. Usage::

    .venv/bin/python benchmarks/segment_glioma.py [--model glioma-flair] [--cases 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time

import numpy as np
import pandas as pd
import SimpleITK as sitk


def _metrics(truth: np.ndarray, pred: np.ndarray, spacing: tuple[float, ...]) -> dict[str, float]:
    from hybridrad.segment.evaluate import region_metrics

    return region_metrics(truth, pred, spacing)


def _brats_cases(root):  # type: ignore[no-untyped-def]
    """(case_id, flair path, whole-tumour truth array) of the BraTS 2018 samples."""
    out = []
    wt = root / "brats2018-wholetumour"
    for case in sorted(p for p in wt.glob("case_*") if p.is_dir()):
        out.append((f"wt/{case.name}", case / "FLAIR.nii.gz", case / "GT_W.nii.gz"))
    for case in sorted(p for p in (root / "brats2018-fourmodal").glob("*") if p.is_dir()):
        flair = next(case.glob("*_flair.nii.gz"), None)
        seg = next(case.glob("*_seg.nii.gz"), None)
        if flair and seg:
            out.append((f"4m/{case.name}", flair, seg))
    return out


def main() -> int:
    """Run both measurements and print the figures."""
    from hybridrad.datasets.discover import discover_lgg_tcga
    from hybridrad.datasets.reference import reference_data_dir
    from hybridrad.io.manifest import Case, Cohort
    from hybridrad.segment.infer import Segmenter
    from hybridrad.segment.model import load_model
    from hybridrad.segment.registry import resolve_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="glioma-flair", help="shipped name or model directory")
    p.add_argument("--cases", type=int, default=20, help="LGG cases timed")
    p.add_argument("--repeats", type=int, default=3, help="timing repeats (best is kept)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    shared = reference_data_dir()
    if shared is None:
        raise SystemExit("reference data not found: set HYBRIDRAD_DATA")
    model = load_model(resolve_model(args.model))
    ours = Segmenter(model, device="cpu")
    default = Segmenter(
        model, inference=dataclasses.replace(ours.settings, sw_batch_size=1), device="cpu"
    )
    seqs = model.sequences

    table, _ = discover_lgg_tcga(shared / "lgg-tcga")
    cohort = Cohort(table, shared / "lgg-tcga", sequences=seqs, label_map="binary")
    rows = []
    for case in cohort.cases[: args.cases]:
        truth = sitk.GetArrayFromImage(case.read_mask()) > 0
        rec: dict[str, object] = {"case_id": case.case_id, "slices": truth.shape[0]}
        for name, seg in (("ours", ours), ("monai_default", default)):
            best = np.inf
            for _ in range(args.repeats):
                t = time.perf_counter()
                mask = seg.predict_case(case)
                best = min(best, time.perf_counter() - t)
            rec[f"{name}_s"] = best
            rec[f"{name}_dice"] = _metrics(
                truth, sitk.GetArrayFromImage(mask) > 0, (5, 1.875, 1.875)
            )["dice"]
        rows.append(rec)
    speed = pd.DataFrame(rows)
    print(
        f"inference on {len(speed)} TCGA-LGG cases ({args.model}, torch threads = "
        f"{__import__('torch').get_num_threads()}):"
    )
    print(
        json.dumps(
            {
                "seconds_per_case_ours": round(float(speed["ours_s"].mean()), 3),
                "seconds_per_case_monai_default": round(float(speed["monai_default_s"].mean()), 3),
                "speedup": round(float(speed["monai_default_s"].sum() / speed["ours_s"].sum()), 2),
                "max_seconds_ours": round(float(speed["ours_s"].max()), 3),
                "dice_equal": bool(np.allclose(speed["ours_dice"], speed["monai_default_dice"])),
                "note": "in-sample Dice (the shipped model saw these cases); see CV in model.json",
            },
            indent=1,
        )
    )

    brats = shared / "brats-samples"
    ood = []
    for cid, flair, truth_path in _brats_cases(brats):
        case = Case(case_id=cid, images={"flair": flair}, mask=None)
        t = time.perf_counter()
        mask = ours.predict_case(case)
        seconds = time.perf_counter() - t
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(truth_path))) > 0
        pred = sitk.GetArrayFromImage(mask) > 0
        spacing = tuple(reversed(mask.GetSpacing()))
        m = _metrics(truth, pred, spacing)
        ood.append({"case_id": cid, "seconds": seconds, **m})
    if ood:
        t = pd.DataFrame(ood)
        print(f"\nout of distribution: {args.model} on {len(t)} BraTS 2018 FLAIR cases")
        print(
            t[["case_id", "dice", "hd95_mm", "volume_true_ml", "volume_pred_ml", "seconds"]]
            .round(3)
            .to_string(index=False)
        )
        print(
            json.dumps(
                {
                    "mean_dice": round(float(t["dice"].mean()), 3),
                    "median_dice": round(float(t["dice"].median()), 3),
                    "median_hd95_mm": round(float(t["hd95_mm"].median()), 1),
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
