"""Benchmark: `hybridrad extract --jobs 2` against plain pyradiomics, serial and batch -j 2.

Prints wall times and ratios measured in the same run (absolute times on shared
machines are noise; ratios are not):

1. hybridrad extract --jobs 2 (CLI, empty cache)            -> T_h
2. the same work serially through plain pyradiomics calls    -> T_serial   (target T_serial / T_h >= 1.8)
3. pyradiomics' own batch CLI with -j 2                      -> T_batch    (target T_batch / T_h >= 1.0)
   and a check that its outputs equal hybridrad's
4. hybridrad extract rerun on the warm cache (CLI and API)   -> target >= 50x faster than 1.
5. peak RSS per worker (from the diagnostics table)

Data: ../shared/data/brats-samples (four-sequence: brats2018-fourmodal + brats2012;
two-sequence: brats2018-wholetumour + brats2015) and a synthetic cohort.
Usage: .venv/bin/python benchmarks/radiomics_extract.py [--cases N] [--config mri_glioma]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from hybridrad.datasets import make_synthetic_cohort
from hybridrad.datasets.discover import discover_brats
from hybridrad.datasets.reference import reference_data_dir
from hybridrad.features import RadiomicsConfig, extract_radiomics
from hybridrad.features.radiomics import column_name
from hybridrad.io import Cohort, write_manifest

BIN = Path(sys.executable).parent


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _region_masks(cohort: Cohort, folder: Path) -> list[dict[str, str]]:
    """Binary region masks on disk, one batch row per case x sequence x region (not timed)."""
    rows = []
    for case in cohort:
        mask = sitk.ReadImage(str(case.mask))
        for region, values in cohort.label_map.regions.items():
            arr = np.isin(sitk.GetArrayViewFromImage(mask), values).astype(np.uint8)
            if not arr.any():
                continue
            img = sitk.GetImageFromArray(arr)
            img.CopyInformation(mask)
            path = folder / f"{case.case_id}_{region}.nii.gz"
            sitk.WriteImage(img, str(path))
            for seq in cohort.sequences:
                rows.append(
                    {
                        "ID": f"{case.case_id}|{seq}|{region}",
                        "Image": str(case.images[seq]),
                        "Mask": str(path),
                        "Label": "1",
                    }
                )
    return rows


def _plain_serial(cohort: Cohort, config: RadiomicsConfig) -> float:
    """What a user would write: a loop over cases x regions x sequences with pyradiomics."""
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    start = time.perf_counter()
    extractor = RadiomicsFeatureExtractor(config.params)
    for case in cohort:
        mask = sitk.ReadImage(str(case.mask))
        for values in cohort.label_map.regions.values():
            arr = np.isin(sitk.GetArrayViewFromImage(mask), values).astype(np.uint8)
            region = sitk.GetImageFromArray(arr)
            region.CopyInformation(mask)
            if not arr.any():
                continue
            for seq in cohort.sequences:
                extractor.execute(str(case.images[seq]), region, label=1)
    return time.perf_counter() - start


def _compare_batch(batch_csv: Path, ours: pd.DataFrame) -> tuple[int, float]:
    """Number of values compared and the largest relative difference."""
    table = pd.read_csv(batch_csv)
    n, worst = 0, 0.0
    for _, row in table.iterrows():
        cid, seq, region = str(row["ID"]).split("|")
        for key, value in row.items():
            key = str(key)
            if key.startswith(("diagnostics_", "ID", "Image", "Mask", "Label")):
                continue
            col = column_name("mask" if "_shape_" in key else seq, region, key)
            mine = float(ours.loc[cid, col])
            ref = float(value)
            worst = max(worst, abs(mine - ref) / max(abs(ref), 1e-12))
            n += 1
    return n, worst


def bench(name: str, cohort_csv: Path, labels: str, config: str, work: Path) -> dict[str, object]:
    cohort = Cohort.from_csv(cohort_csv, label_map=labels)
    cfg = RadiomicsConfig.load(config)
    out = work / name / "features.parquet"
    cache = work / name / "cache"
    cmd = [
        str(BIN / "hybridrad"),
        "extract",
        str(cohort_csv),
        "--config",
        config,
        "--labels",
        labels,
        "--out",
        str(out),
        "--jobs",
        "2",
        "--cache-dir",
        str(cache),
        "--no-progress",
    ]
    t_h = _timed(cmd)
    ours = pd.read_parquet(out)
    diag = pd.read_parquet(out.with_name("features.diagnostics.parquet"))
    t_cached_cli = _timed(cmd)
    start = time.perf_counter()
    extract_radiomics(cohort, cfg, cache_dir=cache)
    t_cached_api = time.perf_counter() - start

    t_serial = _plain_serial(cohort, cfg)

    masks = work / name / "regions"
    masks.mkdir(parents=True)
    rows = _region_masks(cohort, masks)
    batch_in = work / name / "batch.csv"
    with open(batch_in, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["ID", "Image", "Mask", "Label"])
        writer.writeheader()
        writer.writerows(rows)
    params = work / name / "params.yaml"
    params.write_text(Path(cfg.name).read_text())
    batch_out = work / name / "batch_out.csv"
    t_batch = _timed(
        [
            str(BIN / "pyradiomics"),
            str(batch_in),
            "-p",
            str(params),
            "-j",
            "2",
            "-o",
            str(batch_out),
            "-f",
            "csv",
        ]
    )
    n_cmp, worst = _compare_batch(batch_out, ours)
    rss = pd.to_numeric(diag["runner__peak_rss_mb"])
    return {
        "set": name,
        "cases": len(cohort),
        "features": ours.shape[1],
        "hybridrad_j2_s": round(t_h, 1),
        "plain_serial_s": round(t_serial, 1),
        "pyradiomics_batch_j2_s": round(t_batch, 1),
        "x_vs_serial": round(t_serial / t_h, 2),
        "x_vs_batch": round(t_batch / t_h, 2),
        "cached_cli_s": round(t_cached_cli, 2),
        "x_cached_cli": round(t_h / t_cached_cli, 1),
        "cached_api_s": round(t_cached_api, 3),
        "x_cached_api": round(t_h / t_cached_api, 1),
        "values_compared": n_cmp,
        "max_rel_diff_vs_batch": f"{worst:.2e}",
        "peak_rss_per_worker_mb": round(float(rss.max()), 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=4, help="cases per real set (default 4)")
    parser.add_argument("--synthetic", type=int, default=6, help="synthetic cases (default 6)")
    parser.add_argument("--config", default="mri_glioma")
    args = parser.parse_args()
    data = reference_data_dir()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sets: list[tuple[str, Path, str]] = []
        if data is None:
            print("reference data not found: only the synthetic cohort is benchmarked")
        else:
            brats = data / "brats-samples"
            four = pd.concat([discover_brats(brats / "brats2018-fourmodal")])
            two = discover_brats(brats / "brats2018-wholetumour").head(args.cases)
            sets.append(
                ("brats-4seq", write_manifest(four.head(args.cases), work / "four.csv"), "brats")
            )
            sets.append(("brats-2seq", write_manifest(two, work / "two.csv"), "binary"))
        syn = make_synthetic_cohort(work / "syn", n_cases=args.synthetic, seed=0)
        sets.append(("synthetic", syn.manifest_path, "brats"))
        for name, manifest, labels in sets:
            print(f"running {name} ...", flush=True)
            results.append(bench(name, manifest, labels, args.config, work))
            print(pd.DataFrame(results[-1:]).T.to_string(header=False), flush=True)
    table = pd.DataFrame(results)
    print("\nsummary (ratios > 1 mean hybridrad is faster)")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
