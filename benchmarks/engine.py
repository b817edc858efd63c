"""Benchmark: the native feature engine against pyradiomics, in the same run.

``speed``
    CPU seconds per case (``time.process_time``, one process, ``OMP_NUM_THREADS`` as
    given) for ``--config`` (default ``mri_glioma``) on TCGA-LGG (3 sequences) and BraTS
    four-sequence cases, tumour mask = every non-zero label:

    - ``pyradiomics``: plain ``RadiomicsFeatureExtractor.execute`` once per sequence
      (what a pyradiomics user runs);
    - ``hybridrad-pyradiomics``: hybridrad's pyradiomics engine (shape once per region);
    - ``native``: ``engine: native``, all sequences of the case as one batch.

    Prints per case and in total the CPU seconds, the ratios pyradiomics / native and
    hybridrad-pyradiomics / native, the number of features that do not agree to
    relative 1e-6 (must be 0), and CPU seconds per step and feature class for both
    engines (pyradiomics' steps are timed by wrapping its functions).
``memory``
    Peak resident memory of one process per engine on the largest BraTS case (each in a
    fresh interpreter that imports the same modules), and the ratio.
``parity``
    Every shipped config on the data it is meant for (MRI configs and ``ct_default`` on
    the pyradiomics test cases, LGG and every BraTS case; the IBSI CT configs, whose HU
    re-segmentation ranges empty an MRI ROI, and ``ct_default`` on the IBSI CT phantom;
    ``ibsi`` on the IBSI digital phantom; all of them on synthetic cases),
    one row per (config, dataset): cases, features compared, mismatches, largest relative
    difference. ``--out`` writes every compared value (CSV).

The data is located with ``hybridrad.datasets.reference.reference_data_dir()``; without
it, ``speed``/``memory`` say so and exit 0 and ``parity`` runs the synthetic cases only.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/engine.py speed [--lgg 8] [--brats 3] [--config mri_glioma]
    .venv/bin/python benchmarks/engine.py memory
    .venv/bin/python benchmarks/engine.py parity [--out parity.csv]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import resource
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from hybridrad.datasets.discover import discover_brats, discover_lgg_tcga
from hybridrad.datasets.reference import reference_data_dir
from hybridrad.features.engine.parity import agrees, compare
from hybridrad.features.radiomics import RadiomicsConfig

logging.getLogger("radiomics").setLevel(logging.ERROR)

Case = tuple[str, dict[str, Path], Path]
BRATS_FOUR = ("brats2018-fourmodal", "brats2012-fourmodal")


def lgg_cases(data: Path, n: int) -> list[Case]:
    table, _ = discover_lgg_tcga(data / "lgg-tcga")
    return [
        (r.case_id, {s: Path(getattr(r, s)) for s in ("flair", "t1", "t1c")}, Path(r.mask))
        for r in table.head(n).itertuples()
    ]


def brats_cases(data: Path, folders: tuple[str, ...], n: int | None = None) -> list[Case]:
    out: list[Case] = []
    for name in folders:
        table = discover_brats(data / "brats-samples" / name)
        seqs = [c for c in table.columns if c not in ("case_id", "mask")]
        out += [
            (r["case_id"], {s: Path(r[s]) for s in seqs}, Path(r["mask"]))
            for _, r in table.iterrows()
        ]
    return out[:n] if n else out


def read_case(case: Case) -> tuple[dict[str, sitk.Image], sitk.Image]:
    _, files, mask_file = case
    mask = sitk.Cast(sitk.ReadImage(str(mask_file)) > 0, sitk.sitkUInt8)
    return {s: sitk.ReadImage(str(p)) for s, p in files.items()}, mask


# --- timing of pyradiomics' steps -----------------------------------------------------


class StepTimer:
    """CPU seconds of pyradiomics' steps, by wrapping its module functions."""

    WRAPPED = ("normalizeImage", "resampleImage", "checkMask", "cropToTumorMask", "resegmentMask")
    FILTERS = (
        "getOriginalImage",
        "getLoGImage",
        "getWaveletImage",
        "getSquareImage",
        "getSquareRootImage",
        "getLogarithmImage",
        "getExponentialImage",
        "getGradientImage",
    )

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        from radiomics import base, featureextractor, imageoperations

        saved: dict[tuple[Any, str], Any] = {}

        def wrap(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
            saved[(owner, name)] = getattr(owner, name)
            setattr(owner, name, make(saved[(owner, name)]))

        def timed(step: str) -> Callable[[Any], Any]:
            def make(fn: Any) -> Any:
                @functools.wraps(fn)
                def inner(*a: Any, **k: Any) -> Any:
                    start = time.process_time()
                    try:
                        return fn(*a, **k)
                    finally:
                        self.seconds[step] += time.process_time() - start

                return inner

            return make

        def timed_gen(step: str) -> Callable[[Any], Any]:
            def make(fn: Any) -> Any:
                @functools.wraps(fn)
                def inner(*a: Any, **k: Any) -> Any:
                    it = fn(*a, **k)
                    while True:
                        start = time.process_time()
                        try:
                            item = next(it)
                        except StopIteration:
                            return
                        finally:
                            self.seconds[step] += time.process_time() - start
                        yield item

                return inner

            return make

        for name in self.WRAPPED:
            wrap(imageoperations, name, timed(name))
        for name in self.FILTERS:
            wrap(imageoperations, name, timed_gen("filters"))

        def class_timed(fn: Any) -> Any:
            @functools.wraps(fn)
            def inner(obj: Any) -> Any:
                start = time.process_time()
                try:
                    return fn(obj)
                finally:
                    cls = type(obj).__module__.rsplit(".", 1)[-1]
                    if not cls.startswith("shape"):  # counted whole by computeShape
                        self.seconds[cls] += time.process_time() - start

            return inner

        wrap(base.RadiomicsFeaturesBase, "execute", class_timed)
        wrap(featureextractor.RadiomicsFeatureExtractor, "computeShape", timed("shape"))
        try:
            yield
        finally:
            for (owner, name), fn in saved.items():
                setattr(owner, name, fn)


def _features(result: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}


def run_speed(cases: list[Case], config: RadiomicsConfig) -> pd.DataFrame:
    """One row per case: CPU seconds per engine, ratio, mismatching features."""
    plain = config.extractor()
    no_shape = config.extractor(shape=False)
    native = config.with_engine("native").extractor()
    timer = StepTimer()
    rows = []
    for case in cases:
        images, mask = read_case(case)
        start = time.process_time()
        with timer.active():
            ref = {s: _features(plain.execute(img, mask)) for s, img in images.items()}
        t_pyrad = time.process_time() - start
        start = time.process_time()
        for i, img in enumerate(images.values()):
            (plain if i == 0 else no_shape).execute(img, mask)
        t_hybrid = time.process_time() - start
        start = time.process_time()
        out = native.execute_many(images, mask)
        t_native = time.process_time() - start
        mism, compared = 0, 0
        first = next(iter(images))
        for seq, feats in ref.items():
            got = _features(out[seq])
            for k, v in feats.items():
                if "_shape" in k and seq != first:
                    k_got = got.get(k, _features(out[first]).get(k, np.nan))
                else:
                    k_got = got.get(k, np.nan)
                compared += 1
                mism += int(not agrees(v, k_got))
        n_vox = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
        rows.append(
            {
                "case": case[0],
                "sequences": len(images),
                "roi_voxels": n_vox,
                "pyradiomics_s": t_pyrad,
                "hybridrad_pyradiomics_s": t_hybrid,
                "native_s": t_native,
                "ratio": t_pyrad / t_native,
                "ratio_vs_hybridrad": t_hybrid / t_native,
                "features": compared,
                "mismatches": mism,
            }
        )
        print(
            f"  {case[0]}: pyradiomics {t_pyrad:.2f} s, hybridrad-pyradiomics {t_hybrid:.2f} s, "
            f"native {t_native:.2f} s -> {t_pyrad / t_native:.1f}x ({mism} of {compared} "
            "features disagree)",
            flush=True,
        )
    frame = pd.DataFrame(rows)
    frame.attrs["pyradiomics_steps"] = dict(timer.seconds)
    frame.attrs["native_steps"] = dict(native.timings)
    return frame


def _steps_table(frame: pd.DataFrame) -> str:
    pyr = frame.attrs["pyradiomics_steps"]
    nat = frame.attrs["native_steps"]
    pyr_prep = sum(pyr.get(k, 0.0) for k in (*StepTimer.WRAPPED, "filters"))
    lines = ["| step / class | pyradiomics CPU s | native CPU s | ratio |", "|---|---|---|---|"]
    rows = [
        (
            "image side (normalise, resample, crop, filters, binning*)",
            pyr_prep,
            nat.get("prepare", 0.0),
        )
    ]
    for cls in ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm"):
        rows.append((cls, pyr.get(cls, 0.0), nat.get(cls, 0.0)))
    total_p = frame["pyradiomics_s"].sum()
    total_n = frame["native_s"].sum()
    rows.append(
        (
            "other (pyradiomics: diagnostics and image hashes, feature-class set-up; native: "
            "batching)",
            total_p - sum(r[1] for r in rows),
            total_n - sum(r[2] for r in rows),
        )
    )
    rows.append(("total (per-case wall of each engine, CPU)", total_p, total_n))
    for name, p, n in rows:
        ratio = f"{p / n:.1f}x" if n > 0 else "-"
        lines.append(f"| {name} | {p:.2f} | {n:.2f} | {ratio} |")
    lines.append(
        "\n*pyradiomics bins inside each feature class (counted there); the native engine "
        "bins once per image in `prepare`."
    )
    return "\n".join(lines)


def cmd_speed(args: argparse.Namespace) -> int:
    data = reference_data_dir()
    if data is None:
        print("reference data not found (set HYBRIDRAD_DATA); nothing to benchmark")
        return 0
    config = RadiomicsConfig.load(args.config)
    sets = [
        ("TCGA-LGG", lgg_cases(data, args.lgg)),
        ("BraTS four-sequence", brats_cases(data, BRATS_FOUR, args.brats)),
    ]
    for name, cases in sets:
        if not cases:
            continue
        print(f"\n## {name}: {len(cases)} cases, config {args.config}", flush=True)
        frame = run_speed(cases, config)
        tot_p, tot_h, tot_n = (
            frame[c].sum() for c in ("pyradiomics_s", "hybridrad_pyradiomics_s", "native_s")
        )
        print(
            f"\nCPU s per case: pyradiomics {tot_p / len(frame):.2f}, hybridrad-pyradiomics "
            f"{tot_h / len(frame):.2f}, native {tot_n / len(frame):.2f}; "
            f"ratio pyradiomics/native {tot_p / tot_n:.2f}x (per-case median "
            f"{frame['ratio'].median():.2f}x, min {frame['ratio'].min():.2f}x), "
            f"hybridrad-pyradiomics/native {tot_h / tot_n:.2f}x; "
            f"features disagreeing: {int(frame['mismatches'].sum())} of "
            f"{int(frame['features'].sum())}"
        )
        print(_steps_table(frame), flush=True)
    return 0


# --- memory ---------------------------------------------------------------------------


def cmd_memory(args: argparse.Namespace) -> int:
    data = reference_data_dir()
    if data is None:
        print("reference data not found (set HYBRIDRAD_DATA); nothing to benchmark")
        return 0
    cases = brats_cases(data, BRATS_FOUR)
    sizes = [int(np.count_nonzero(sitk.GetArrayViewFromImage(read_case(c)[1]))) for c in cases]
    case = cases[int(np.argmax(sizes))]
    peaks = {}
    for engine in ("pyradiomics", "native"):
        cmd = [
            sys.executable,
            __file__,
            "_peak",
            engine,
            args.config,
            json.dumps([case[0], {k: str(v) for k, v in case[1].items()}, str(case[2])]),
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        peaks[engine] = json.loads(out.strip().splitlines()[-1])
    base = {e: p["baseline_mb"] for e, p in peaks.items()}
    print(f"largest BraTS case {case[0]} ({max(sizes)} ROI voxels), config {args.config}:")
    for engine, p in peaks.items():
        print(
            f"  {engine}: peak RSS {p['peak_mb']:.0f} MB (after imports and reading "
            f"{base[engine]:.0f} MB; extraction adds {p['peak_mb'] - base[engine]:.0f} MB)"
        )
    ratio = peaks["native"]["peak_mb"] / peaks["pyradiomics"]["peak_mb"]
    print(f"peak native / pyradiomics: {ratio:.2f}")
    return 0


def _peak(engine: str, config: str, case_json: str) -> None:
    import radiomics.featureextractor  # noqa: F401  (both engines import pyradiomics)

    cid, files, mask = json.loads(case_json)
    images, mask_img = read_case((cid, {k: Path(v) for k, v in files.items()}, Path(mask)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cfg = RadiomicsConfig.load(config)
    if engine == "native":
        cfg.with_engine("native").extractor().execute_many(images, mask_img)
    else:
        ext, rest = cfg.extractor(), cfg.extractor(shape=False)
        for i, img in enumerate(images.values()):
            (ext if i == 0 else rest).execute(img, mask_img)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"baseline_mb": before, "peak_mb": peak}))


# --- parity ---------------------------------------------------------------------------

MRI_CONFIGS = ("mri_glioma", "mri_glioma_fast", "mri_glioma_brain")
CT_CONFIGS = ("ct_default", "ibsi_ct_A", "ibsi_ct_B", "ibsi_ct_C", "ibsi_ct_D", "ibsi_ct_E")


def _parity_sets(data: Path | None, brats: int | None, lgg: int) -> dict[str, list[Case]]:
    sets: dict[str, list[Case]] = {}
    if data is None:
        return sets
    images = data / "pyradiomics-testcases" / "images"
    pyrad: list[Case] = []
    for name in ("brain1", "brain2", "breast1"):
        pyrad.append(
            (name, {"image": images / f"{name}_image.nrrd"}, images / f"{name}_label.nrrd")
        )
    prostate = "prostate_phantom_subvolume"
    pyrad.append(
        (prostate, {"image": images / f"{prostate}.nrrd"}, images / f"{prostate}-label.nrrd")
    )
    sets["pyradiomics test cases"] = [c for c in pyrad if c[1]["image"].is_file()]
    sets["TCGA-LGG (FLAIR, T1, T1c)"] = lgg_cases(data, lgg)
    sets["BraTS (all sequences)"] = brats_cases(
        data,
        (
            "brats2018-fourmodal",
            "brats2012-fourmodal",
            "brats2018-wholetumour",
            "brats2015-multiclass",
        ),
        brats,
    )
    for kind in ("ct_radiomics_phantom", "digital_phantom"):
        folder = data / "ibsi" / f"ibsi_1_{kind}" / "nifti"
        img = sorted((folder / "image").glob("*.nii*"))
        msk = sorted((folder / "mask").glob("*.nii*"))
        if img and msk:
            sets[f"IBSI {kind.replace('_', ' ')}"] = [(kind, {"image": img[0]}, msk[0])]
    return sets


def _meant_for(config: str, dataset: str) -> bool:
    if dataset.startswith("synthetic"):
        return True
    if config == "ibsi":
        return dataset == "IBSI digital phantom"
    if config == "ct_default":  # no re-segmentation: runs on MRI as well
        return dataset != "IBSI digital phantom"
    if config in CT_CONFIGS:  # HU re-segmentation ranges: CT only
        return dataset == "IBSI ct radiomics phantom"
    return not dataset.startswith("IBSI")


def cmd_parity(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_engine_parity import synthetic_case  # the parity test's own generator

    data = reference_data_dir()
    sets = _parity_sets(data, args.brats, args.lgg)
    configs = args.configs.split(",") if args.configs else [*MRI_CONFIGS, *CT_CONFIGS, "ibsi"]
    frames, summary = [], []
    for config in configs:
        params = dict(RadiomicsConfig.load(config).params)
        params["setting"] = {k: v for k, v in params["setting"].items() if k != "normalizeRegion"}
        work: list[tuple[str, str, sitk.Image, sitk.Image, int]] = []
        for kind in ("mri", "ct"):
            for seed in range(args.synthetic):
                img, msk = synthetic_case(kind, seed)
                work.append((f"synthetic {kind}", f"{kind}{seed}", img, msk, 1))
        for dataset, cases in sets.items():
            if not _meant_for(config, dataset):
                continue
            for case in cases:
                imgs, msk = read_case(case)
                for seq, img in imgs.items():
                    work.append((dataset, f"{case[0]}/{seq}", img, msk, 1))
        by_set: dict[str, list[pd.DataFrame]] = defaultdict(list)
        for dataset, cid, img, msk, label in work:
            try:
                frame = compare(img, msk, params, label=label)
            except Exception as exc:
                print(f"  {config} {cid}: {type(exc).__name__}: {exc}", flush=True)
                frame = pd.DataFrame(
                    {
                        "feature": ["<error>"],
                        "pyradiomics": [np.nan],
                        "native": [np.nan],
                        "abs_diff": [np.nan],
                        "rel_diff": [np.nan],
                        "ok": [False],
                        "error": [f"{type(exc).__name__}: {exc}"],
                    }
                )
            frame.insert(0, "case", cid)
            frame.insert(0, "dataset", dataset)
            frame.insert(0, "config", config)
            by_set[dataset].append(frame)
            frames.append(frame)
        for dataset, parts in by_set.items():
            f = pd.concat(parts)
            rel = f["rel_diff"].replace(np.inf, np.nan)
            summary.append(
                {
                    "config": config,
                    "dataset": dataset,
                    "cases": f["case"].nunique(),
                    "values": len(f),
                    "mismatches": int((~f["ok"]).sum()),
                    "max_rel_diff": float(np.nanmax(rel)) if rel.notna().any() else 0.0,
                }
            )
            print(f"{config:16s} {dataset:28s} {summary[-1]}", flush=True)
    table = pd.DataFrame(summary)
    if args.out:
        pd.concat(frames).to_csv(args.out, index=False)
        print(f"every value: {args.out}")
    print("\n| config | data | cases | values | disagreeing | largest relative difference |")
    print("|---|---|---|---|---|---|")
    for r in table.itertuples(index=False):
        print(
            f"| `{r.config}` | {r.dataset} | {r.cases} | {r.values:,} | {r.mismatches} | "
            f"{r.max_rel_diff:.1e} |"
        )
    print(
        f"\nin all: {int(table['values'].sum()):,} values, "
        f"{int(table['mismatches'].sum())} disagreeing"
    )
    return 0 if table["mismatches"].sum() == 0 else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_peak":
        _peak(*argv[1:4])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("speed", help="CPU seconds per case, both engines")
    p.add_argument("--config", default="mri_glioma")
    p.add_argument("--lgg", type=int, default=8, help="LGG cases (default 8)")
    p.add_argument("--brats", type=int, default=3, help="BraTS four-sequence cases (default 3)")
    p.set_defaults(func=cmd_speed)
    p = sub.add_parser("memory", help="peak RSS per engine on the largest BraTS case")
    p.add_argument("--config", default="mri_glioma")
    p.set_defaults(func=cmd_memory)
    p = sub.add_parser("parity", help="every shipped config on every case, both engines")
    p.add_argument("--configs", help="comma-separated configs (default: every shipped one)")
    p.add_argument("--lgg", type=int, default=39, help="LGG cases (default all 39)")
    p.add_argument("--brats", type=int, help="BraTS cases (default all)")
    p.add_argument("--synthetic", type=int, default=3, help="synthetic cases per kind")
    p.add_argument("--out", type=Path, help="CSV of every compared value")
    p.set_defaults(func=cmd_parity)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
