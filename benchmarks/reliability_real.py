"""Benchmark: the reliability checks on the real reference data (BraTS and TCGA-LGG cases).

Three figures, each against the obvious alternative measured in the same run:

1. **Voxels used by the default label map.** Before issue 13, ``--labels binary`` (the
   default of every command) read only mask value 1, so on a BraTS mask (1 necrosis, 2
   oedema, 4 enhancing) extraction silently used a fraction of the tumour. Now binary
   means every non-zero voxel. Printed per dataset: tumour voxels, the voxels the old
   rule used, and the voxels used now.
2. **Cost of the image sanity checks** (header limits, NaN/Inf scan of float NIfTI,
   constant-image check): ``hybridrad.io.read_image`` against plain
   ``SimpleITK.ReadImage`` on every image and mask, best of ``--repeats`` passes.
3. **validate on every cohort**: problems found (real data should have none) and time.

The data is located with ``hybridrad.datasets.reference.reference_data_dir()``
(``$HYBRIDRAD_DATA`` or ``../shared/data``); without it the benchmark says so and exits 0.

Usage: .venv/bin/python benchmarks/reliability_real.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from hybridrad.datasets.discover import discover_brats, discover_lgg_tcga
from hybridrad.datasets.reference import reference_data_dir
from hybridrad.io import Cohort, read_image, write_manifest


def cohorts(data: Path, tmp: Path) -> dict[str, Cohort]:
    out: dict[str, Cohort] = {}
    brats = data / "brats-samples"
    for name in ("brats2018-fourmodal", "brats2015-multiclass", "brats2012-fourmodal"):
        folder = brats / name
        if not folder.is_dir():
            continue
        try:
            table = discover_brats(folder)
        except Exception as exc:  # a layout discover does not know: say so, go on
            print(f"  {name}: skipped ({type(exc).__name__}: {exc})")
            continue
        manifest = write_manifest(table, tmp / f"{name}.csv")
        out[name] = Cohort.from_csv(manifest, label_map="binary")
    lgg = data / "lgg-tcga"
    if lgg.is_dir():
        table, _ = discover_lgg_tcga(lgg)
        out["lgg-tcga"] = Cohort.from_csv(write_manifest(table, tmp / "lgg.csv"))
    return out


def voxel_figures(name: str, cohort: Cohort) -> None:
    total = old = 0
    values: set[int] = set()
    for case in cohort:
        if case.mask is None:
            continue
        arr = sitk.GetArrayFromImage(sitk.ReadImage(str(case.mask)))
        total += int(np.count_nonzero(arr))
        old += int(np.count_nonzero(arr == 1))
        values |= set(np.unique(arr).tolist())
    lm = cohort.label_map
    now = 0
    for case in cohort:
        if case.mask is None:
            continue
        arr = sitk.GetArrayFromImage(read_image(case.mask, warn_constant=False))
        now += int(np.count_nonzero(lm.region_mask(lm.check_values(arr, name), "tumor")))
    print(
        f"  {name:22s} {len(cohort):3d} cases, mask values {sorted(values)}: tumour "
        f"{total:>10,d} voxels; old binary (value 1 only) {old:>10,d} "
        f"({100 * old / max(total, 1):5.1f} %); now {now:>10,d} ({100 * now / max(total, 1):5.1f} %)"
    )


def read_cost(all_cohorts: dict[str, Cohort], repeats: int) -> None:
    paths = [
        p
        for cohort in all_cohorts.values()
        for case in cohort
        for p in [*case.images.values(), case.mask]
        if p is not None
    ]

    def best(read: object) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for p in paths:
                read(p)  # type: ignore[operator]
            times.append(time.perf_counter() - start)
        return min(times)

    plain = best(lambda p: sitk.ReadImage(str(p)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        checked = best(lambda p: read_image(p, warn_constant=False))
    print(
        f"  {len(paths)} files: SimpleITK.ReadImage {plain:.2f} s, hybridrad read_image "
        f"(header limits + NaN/Inf scan + constant check) {checked:.2f} s: "
        f"ratio {checked / plain:.2f}x"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = reference_data_dir()
    if data is None:
        print("reference data not found (set HYBRIDRAD_DATA or place ../shared/data): skipped")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        found = cohorts(data, Path(tmp))
        print("1. voxels used by the default label map (binary):")
        for name, cohort in found.items():
            voxel_figures(name, cohort)
        print("2. cost of the image sanity checks:")
        read_cost(found, args.repeats)
        print("3. validate (full read: geometry, mask values, NaN/Inf, constant images):")
        for name, cohort in found.items():
            start = time.perf_counter()
            report = cohort.validate(jobs=2)
            print(
                f"  {name:22s} {len(report.problems)} problem(s), "
                f"{len(report.warnings)} warning(s), {time.perf_counter() - start:.1f} s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
