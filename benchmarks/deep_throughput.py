"""Deep-feature throughput (batched vs naive per-case loop) and LGG subtype signal.

Not a test; prints its numbers. Sections:

1. CPU throughput on a synthetic cohort: patches per second of the batched path
   (:func:`hybridrad.features.deep.extract_deep` with ``batch_size`` and DataLoader
   workers) against a naive per-case loop (the same task, one case per encoder call,
   as the runner's per-case path does), and the largest difference between the two
   feature tables (relative to each column's scale).
2. FMCIB architecture: FLOPs of one 50^3 forward (counted with
   ``torch.utils.flop_counter`` on the meta device, ~25.7 GFLOP); where CUDA is
   available, patches/s with bf16 autocast + channels-last-3d at several batch sizes
   against the roofline ``peak TFLOP/s / FLOP per patch`` (random weights; only the
   speed is measured).
3. ``--lgg``: cross-validated IDH and 1p/19q AUC from deep features alone on
   TCGA-LGG (``/work/shared/data/lgg-tcga``): a SimCLR encoder is pretrained on the
   cohort's own scans (no labels), features are extracted, and a standardized
   logistic regression is scored by repeated stratified 5-fold CV.

Usage::

    .venv/bin/python benchmarks/deep_throughput.py [--cases 96] [--repeats 3] [--batch-size 8]
        [--num-workers N] [--threads 2] [--batched-threads N] [--encoder segmentation] [--work /tmp/deep-bench]
    .venv/bin/python benchmarks/deep_throughput.py --lgg [--data /work/shared/data/lgg-tcga]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Dense bf16 tensor-core peak (TFLOP/s) by device-name fragment, for the roofline.
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


def synthetic_cohort(work: Path, n: int) -> Any:
    from hybridrad.datasets.synthetic import make_synthetic_cohort
    from hybridrad.io.manifest import Cohort

    root = work / f"synthetic-{n}"
    if not (root / "manifest.csv").is_file():
        make_synthetic_cohort(root, n_cases=n, seed=0, overwrite=True)
    return Cohort.from_csv(root / "manifest.csv", label_map="brats")


def cpu_throughput(args: argparse.Namespace) -> None:
    import torch

    from hybridrad.features.deep import available_cores, extract_deep
    from hybridrad.features.encoders import resolve_encoder

    cohort = synthetic_cohort(args.work, args.cases)
    encoder = resolve_encoder(args.encoder)
    torch.set_num_threads(args.threads)
    extract_deep(cohort.subset(cohort.case_ids[:2]), encoder, batch_size=2, device="cpu")  # warm-up
    t_naive, t_batched = [], []
    for _ in range(args.repeats):  # interleaved, so that machine load hits both alike
        t0 = time.perf_counter()
        naive = extract_deep(cohort, encoder, batch_size=1, device="cpu", threads=args.threads)
        t_naive.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        batched = extract_deep(
            cohort,
            encoder,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            device="cpu",
            threads=args.batched_threads,
        )
        t_batched.append(time.perf_counter() - t0)
    ratios = [a / b for a, b in zip(t_naive, t_batched, strict=True)]
    n = len(cohort)
    a = batched.features.to_numpy()
    b = naive.features.loc[batched.features.index, batched.features.columns].to_numpy()
    rel = float(np.max(np.abs(a - b) / np.maximum(np.abs(b).max(axis=0), 1e-12)))
    diag = batched.diagnostics.iloc[0]
    print(
        f"\n== CPU throughput: encoder {encoder.name}, {n} cases, patch {diag['patch__size']} "
        f"at {diag['patch__spacing_mm']} mm, {a.shape[1]} features, {available_cores()} core(s)"
    )
    print(
        f"naive per-case loop ({args.threads} encoder thread(s)): "
        f"{n / min(t_naive):6.2f} patches/s (best of {len(t_naive)})"
    )
    print(
        f"batched (batch {args.batch_size}, {diag['deep__num_workers']} worker(s), "
        f"{diag['deep__threads']} encoder thread(s)): {n / min(t_batched):6.2f} patches/s"
    )
    print(
        "speed-up per repeat : "
        + ", ".join(f"{r:.2f}x" for r in ratios)
        + f" (median {float(np.median(ratios)):.2f}x)"
    )
    print(f"max |batched - per-case| / column scale: {rel:.2e}")

    # where the time goes: reading + resampling vs the encoder, per case
    from hybridrad.features.deep import DeepFeatureTask

    task = DeepFeatureTask(encoder=encoder, threads=args.threads).with_sequences(cohort.sequences)
    t0 = time.perf_counter()
    patches = [task.prepare(case) for case in cohort]
    t_prep = (time.perf_counter() - t0) / n
    bs = args.batch_size
    timings = {}
    for size in (1, bs):
        t0 = time.perf_counter()
        for i in range(0, n, size):
            task.encode(*task.batch_tensors(patches[i : i + size]))
        timings[size] = (time.perf_counter() - t0) / n
    import SimpleITK as sitk

    from hybridrad.io import read_image

    files = [case.images[s] for case in cohort for s in task.spec.sequences]
    t0 = time.perf_counter()
    for f in files:
        sitk.ReadImage(str(f))
    t_itk = time.perf_counter() - t0
    t0 = time.perf_counter()
    for f in files:
        read_image(f)
    t_ours = time.perf_counter() - t0
    print(
        f"NIfTI-gz read: hybridrad {1000 * t_ours / len(files):.1f} ms vs sitk.ReadImage "
        f"{1000 * t_itk / len(files):.1f} ms per file ({t_itk / t_ours:.2f}x)"
    )
    print(
        f"per case: read + patch {1000 * t_prep:.1f} ms; encoder {1000 * timings[1]:.1f} ms "
        f"at batch 1 vs {1000 * timings[bs]:.1f} ms at batch {bs} "
        f"({timings[1] / timings[bs]:.1f}x)"
    )


def fmcib_flops() -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from hybridrad.features.encoders import FMCIB_KWARGS, build_resnet

    net = build_resnet("resnet50", meta=True, **FMCIB_KWARGS)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.empty(1, 1, 50, 50, 50, device="meta"))
    return float(counter.get_total_flops())


def fmcib_gpu(args: argparse.Namespace, flops: float) -> None:
    import torch

    from hybridrad.features.encoders import FMCIB_KWARGS, ResNetStages, build_resnet

    if not torch.cuda.is_available():
        print("CUDA not available: FMCIB GPU throughput skipped")
        return
    name = torch.cuda.get_device_name(0)
    peak = args.peak_tflops or next(
        (v for k, v in PEAK_BF16_TFLOPS.items() if k in name), float("nan")
    )
    torch.backends.cudnn.benchmark = True
    net: Any = ResNetStages(build_resnet("resnet50", **FMCIB_KWARGS)).cuda().eval()
    net = net.to(memory_format=torch.channels_last_3d)
    print(
        f"\n== FMCIB on {name}: roofline {peak:.0f} TFLOP/s bf16 -> "
        f"{peak * 1e12 / flops:,.0f} patches/s"
    )
    for bs in (16, 64, 128):
        x = torch.rand(bs, 1, 50, 50, 50, device="cuda").contiguous(
            memory_format=torch.channels_last_3d
        )
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            for _ in range(3):
                net(x)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            reps = 10
            for _ in range(reps):
                net(x)
            torch.cuda.synchronize()
        rate = bs * reps / (time.perf_counter() - t0)
        print(
            f"batch {bs:4d}: {rate:8.1f} patches/s = {rate * flops / 1e12:6.1f} TFLOP/s "
            f"({100 * rate * flops / (peak * 1e12):.1f} % of peak)"
        )


def lgg(args: argparse.Namespace) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import RepeatedStratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from hybridrad.datasets.discover import discover_lgg_tcga
    from hybridrad.features.deep import PatchSpec, extract_deep
    from hybridrad.features.pretrain import PretrainConfig, pretrain
    from hybridrad.io import write_manifest
    from hybridrad.io.manifest import Cohort

    table, clinical_path = discover_lgg_tcga(args.data)
    manifest = write_manifest(table, args.work / "lgg" / "manifest.csv")
    cohort = Cohort.from_csv(manifest, label_map="binary")
    clinical = pd.read_csv(clinical_path).set_index("case_id")
    patch = PatchSpec(
        size=(32, 32, 32),
        spacing=(2.0, 2.0, 2.0),
        sequences=tuple(cohort.sequences),
        mask_channel=True,
    )
    enc_dir = args.work / "lgg" / "ssl-encoder"
    t0 = time.perf_counter()
    meta = pretrain(
        cohort, enc_dir, patch=patch, config=PretrainConfig(epochs=args.epochs), device="auto"
    )
    t_pre = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = extract_deep(cohort, str(enc_dir), batch_size=8, device="auto")
    t_ext = time.perf_counter() - t0
    X = res.features
    print(
        f"\n== TCGA-LGG: {len(X)} cases, {X.shape[1]} deep features (SimCLR encoder "
        f"pretrained {meta['training']['epochs_run']} epochs in {t_pre:.0f} s on the cohort, "
        f"no labels; extraction {t_ext:.1f} s); {len(res.failures)} failure(s)"
    )
    targets = {
        "IDH (WT vs mutant)": clinical["idh"].map({"WT": 1, "Mutant": 0}),
        "1p/19q (codel vs non-codel)": clinical["codeletion_1p19q"].map(
            {"codel": 1, "non-codel": 0}
        ),
    }
    for label, series in targets.items():
        y_all = series.reindex(X.index)
        keep = y_all.notna().to_numpy()
        Xk, y = X.to_numpy()[keep], y_all.to_numpy()[keep].astype(int)
        cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=5, random_state=0)
        aucs = []
        for train, test in cv.split(Xk, y):
            model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))
            model.fit(Xk[train], y[train])
            aucs.append(roc_auc_score(y[test], model.predict_proba(Xk[test])[:, 1]))
        print(
            f"{label:28s}: n={len(y)} ({int(y.sum())} positive), CV AUC "
            f"{np.mean(aucs):.3f} +- {np.std(aucs):.3f} (5x5-fold)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=96)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--num-workers", type=int, help="batched path (default: extract_deep's)")
    ap.add_argument("--threads", type=int, default=2, help="naive loop's encoder threads")
    ap.add_argument("--batched-threads", type=int, help="default: extract_deep's")
    ap.add_argument("--encoder", default="segmentation")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "deep-bench")
    ap.add_argument("--peak-tflops", type=float, help="bf16 peak for the roofline")
    ap.add_argument("--lgg", action="store_true", help="TCGA-LGG IDH and 1p/19q AUC")
    ap.add_argument(
        "--data", type=Path, help="lgg-tcga folder (default: the shared reference data)"
    )
    ap.add_argument("--epochs", type=int, default=60, help="--lgg pretraining epochs")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.data is None:
        from hybridrad.datasets.reference import reference_data_dir

        root = reference_data_dir()
        args.data = root / "lgg-tcga" if root else None
    if args.lgg and args.data is None:
        raise SystemExit("reference data not found: set HYBRIDRAD_DATA or pass --data")
    if not args.skip_throughput:
        cpu_throughput(args)
        flops = fmcib_flops()
        print(f"\nFMCIB forward of one 50^3 patch: {flops / 1e9:.1f} GFLOP (counted)")
        fmcib_gpu(args, flops)
    if args.lgg:
        lgg(args)


if __name__ == "__main__":
    main()
