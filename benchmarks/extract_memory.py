"""Benchmark: peak memory of one BraTS-sized case through `hybridrad extract` vs plain pyradiomics.

One synthetic case the size of a BraTS scan (240 x 240 x 155 voxels of 1 mm, four
sequences T1, T1c, T2, FLAIR stored as int16, and a BraTS label mask: necrosis 1, oedema
2, enhancing rim 4, the whole tumour an ellipsoid of 56 x 48 x 44 mm, 62 mL) is extracted
with the full default config (``mri_glioma``: 4 sequences x 3 regions, 13,146 features),
each way in a fresh process:

1. hybridrad: ``run_cohort`` with ``jobs=2`` (the case runs in a pool worker, as
   ``hybridrad extract --jobs 2`` does). Peak RSS of the worker, two ways: the runner's
   ``runner__peak_rss_mb`` diagnostic and ``getrusage(RUSAGE_CHILDREN)`` in its parent.
2. plain pyradiomics, the loop a user would write: per region a binary mask, per
   sequence ``RadiomicsFeatureExtractor.execute`` on the same files. Peak RSS of that
   process (``getrusage(RUSAGE_SELF)``).

Prints both peaks, their ratio (measured in the same run) and whether the hybridrad
worker stays under the limit (``--limit-mb``, default 2048); exits 1 when it does not.

Usage: .venv/bin/python benchmarks/extract_memory.py [--config mri_glioma] [--dtype int16]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

SHAPE = (240, 240, 155)  # x, y, z: the BraTS grid
SEQUENCES = ("t1", "t1c", "t2", "flair")


def _maxrss_mb(who: int) -> float:
    peak = resource.getrusage(who).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def _peak_self_mb() -> float:
    """Peak RSS of this process. On Linux ``VmHWM``: ``ru_maxrss`` of a process started
    by fork + exec also counts its parent's RSS at the fork, which would measure the
    launcher rather than the work."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return _maxrss_mb(resource.RUSAGE_SELF)


def _ellipsoid(
    grid: tuple[np.ndarray, ...], centre: tuple[float, ...], axes: tuple[float, ...]
) -> np.ndarray:
    total: np.ndarray = np.zeros(np.broadcast_shapes(*(g.shape for g in grid)), np.float32)
    for g, c, a in zip(grid, centre, axes, strict=True):
        total = total + ((g - c) / a) ** 2
    return np.asarray(total <= 1.0)


def make_case(folder: Path, dtype: str = "int16", seed: int = 0) -> Path:
    """Write one BraTS-sized case and its manifest into ``folder``; returns the manifest."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    nx, ny, nz = SHAPE
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij", sparse=True)
    grid = (x.astype(np.float32), y.astype(np.float32), z.astype(np.float32))
    centre = (nx / 2, ny / 2, nz / 2)
    brain = _ellipsoid(grid, centre, (68.0, 85.0, 62.0))
    tumour_at = (centre[0] + 28, centre[1] - 12, centre[2] + 8)
    whole = _ellipsoid(grid, tumour_at, (28.0, 24.0, 22.0)) & brain  # oedema and all within
    core = _ellipsoid(grid, tumour_at, (17.0, 15.0, 13.0))
    necrosis = _ellipsoid(grid, tumour_at, (10.0, 9.0, 8.0))
    labels = np.zeros((nz, ny, nx), np.uint8)
    labels[whole] = 2
    labels[core] = 4
    labels[necrosis] = 1
    # brain-like texture: smooth tissue variation plus fine noise, skull-stripped background
    tissue = ndimage.gaussian_filter(rng.standard_normal((nz, ny, nx)).astype(np.float32), 4.0)
    tissue /= tissue.std()
    means = {  # background tissue, oedema, enhancing rim, necrosis per sequence
        "t1": (600, 480, 520, 300),
        "t1c": (620, 500, 1300, 320),
        "t2": (700, 1300, 1100, 1600),
        "flair": (650, 1400, 1000, 700),
    }
    root = folder / "images" / "bench_0000"
    root.mkdir(parents=True)
    rows: dict[str, str] = {"case_id": "bench_0000"}
    for seq in SEQUENCES:
        bg, oedema, rim, nec = means[seq]
        img = np.full((nz, ny, nx), bg, np.float32)
        img[labels == 2], img[labels == 4], img[labels == 1] = oedema, rim, nec
        img += 60.0 * tissue + rng.normal(0.0, 25.0, img.shape).astype(np.float32)
        img[~brain] = 0.0
        arr = np.clip(img, 0, None).astype(dtype)
        image = sitk.GetImageFromArray(arr)
        image.SetSpacing((1.0, 1.0, 1.0))
        sitk.WriteImage(image, str(root / f"{seq}.nii.gz"))
        rows[seq] = f"images/bench_0000/{seq}.nii.gz"
    mask = sitk.GetImageFromArray(labels)
    mask.SetSpacing((1.0, 1.0, 1.0))
    sitk.WriteImage(mask, str(root / "mask.nii.gz"))
    rows["mask"] = "images/bench_0000/mask.nii.gz"
    manifest = folder / "manifest.csv"
    pd.DataFrame([rows]).to_csv(manifest, index=False)
    return manifest


def describe(manifest: Path, dtype: str) -> dict[str, object]:
    """The manifest and a line on the case (grid, tumour volumes)."""
    mask = sitk.GetArrayFromImage(
        sitk.ReadImage(str(manifest.parent / "images" / "bench_0000" / "mask.nii.gz"))
    )
    ml = {
        name: int(np.isin(mask, v).sum()) / 1000
        for name, v in {"whole tumour": (1, 2, 4), "core": (1, 4), "enhancing": (4,)}.items()
    }
    volumes = ", ".join(f"{k} {v:.1f} mL" for k, v in ml.items())
    return {
        "manifest": str(manifest),
        "case": f"case: {SHAPE[0]} x {SHAPE[1]} x {SHAPE[2]} voxels of 1 mm, 4 sequences "
        f"({dtype}); {volumes}",
    }


def child_hybridrad(manifest: Path, config: str, work: Path) -> dict[str, object]:
    """In a fresh process: the case through the runner's local pool (one worker)."""
    from hybridrad.features.radiomics import RadiomicsConfig, RadiomicsTask
    from hybridrad.io import Cohort
    from hybridrad.runner import run_cohort

    cohort = Cohort.from_csv(manifest, label_map="brats")
    task = RadiomicsTask(
        config=RadiomicsConfig.load(config),
        label_map=cohort.label_map,
        sequences=tuple(cohort.sequences),
    )
    start = time.perf_counter()
    result = run_cohort(cohort, task, jobs=2, cache_dir=work / "cache")
    seconds = time.perf_counter() - start
    if not result.ok:
        raise SystemExit(result.failures.to_string())
    return {
        "features": int(result.features.shape[1]),
        "seconds": round(seconds, 1),
        "worker_peak_rss_mb (runner diagnostic)": float(
            result.diagnostics["runner__peak_rss_mb"].iloc[0]
        ),
        "worker_peak_rss_mb (RUSAGE_CHILDREN)": round(_maxrss_mb(resource.RUSAGE_CHILDREN), 1),
        "parent_peak_rss_mb": round(_peak_self_mb(), 1),
    }


def child_plain(manifest: Path, config: str) -> dict[str, object]:
    """In a fresh process: plain pyradiomics on the same files, per region x sequence."""
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    from hybridrad.features.radiomics import RadiomicsConfig
    from hybridrad.io.labels import LabelMap

    row = pd.read_csv(manifest).iloc[0]
    root = manifest.parent
    regions = LabelMap.preset("brats").regions
    extractor = RadiomicsFeatureExtractor(RadiomicsConfig.load(config).params)
    start = time.perf_counter()
    mask = sitk.ReadImage(str(root / row["mask"]))
    n = 0
    for values in regions.values():
        arr = np.isin(sitk.GetArrayViewFromImage(mask), values).astype(np.uint8)
        region = sitk.GetImageFromArray(arr)
        region.CopyInformation(mask)
        for seq in SEQUENCES:
            out = extractor.execute(str(root / row[seq]), region, label=1)
            n += sum(1 for k in out if not k.startswith("diagnostics_"))
    return {
        "features (incl. shape per sequence)": n,
        "seconds": round(time.perf_counter() - start, 1),
        "peak_rss_mb": round(_peak_self_mb(), 1),
    }


def _child(
    mode: str, manifest: Path, config: str, work: Path, dtype: str = "int16"
) -> dict[str, object]:
    """Run one step in a fresh process (``--child MODE``); its JSON result."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, __file__, "--child", mode, "--manifest", str(manifest)]
    cmd += ["--config", config, "--work", str(work), "--dtype", dtype]
    out = subprocess.run(cmd, check=True, env=env, capture_output=True, text=True).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="mri_glioma", help="radiomics config (mri_glioma)")
    parser.add_argument("--dtype", default="int16", choices=["int16", "float32"])
    parser.add_argument("--limit-mb", type=float, default=2048.0, help="per-worker limit (2 GB)")
    parser.add_argument("--child", choices=["make", "hybridrad", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--manifest", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == "make":
            result = describe(make_case(args.work, args.dtype), args.dtype)
        elif args.child == "hybridrad":
            result = child_hybridrad(args.manifest, args.config, args.work)
        else:
            result = child_plain(args.manifest, args.config)
        print(json.dumps(result))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        made = _child("make", work / "case", args.config, work / "case", args.dtype)
        manifest = Path(str(made.pop("manifest")))
        print(f"{made['case']}; config {args.config}", flush=True)
        print("hybridrad (runner, jobs=2: one pool worker) ...", flush=True)
        ours = _child("hybridrad", manifest, args.config, work)
        print(json.dumps(ours, indent=2), flush=True)
        print("plain pyradiomics (fresh process) ...", flush=True)
        plain = _child("plain", manifest, args.config, work)
        print(json.dumps(plain, indent=2), flush=True)
    worker = max(
        float(str(ours["worker_peak_rss_mb (runner diagnostic)"])),
        float(str(ours["worker_peak_rss_mb (RUSAGE_CHILDREN)"])),
    )
    reference = float(str(plain["peak_rss_mb"]))
    under = worker < args.limit_mb
    print(
        f"\npeak RSS per worker: hybridrad {worker:.0f} MB, plain pyradiomics {reference:.0f} MB "
        f"(ratio {worker / reference:.2f}); under {args.limit_mb:.0f} MB: {'yes' if under else 'NO'}"
    )
    return 0 if under else 1


if __name__ == "__main__":
    raise SystemExit(main())
