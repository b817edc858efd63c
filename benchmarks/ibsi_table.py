"""IBSI 1 benchmark: pyradiomics vs the IBSI reference values; writes docs/ibsi_conformance.md.

Usage::

    .venv/bin/python benchmarks/ibsi_table.py [--data DIR] [--out docs/ibsi_conformance.md]

``DIR`` is the reference-data folder holding ``ibsi/`` (default: ``$HYBRIDRAD_DATA`` or
``../shared/data``). Takes about 15 s.

The harness: :data:`BENCHMARK_CONFIGS` (how each IBSI 1 data set, the digital phantom and
the CT phantom configurations A-E, is computed with pyradiomics through
``hybridrad.features.ibsi.extract_ibsi``), :func:`run_benchmark_config`,
:func:`load_reference` (the IBSI reference values of the shared reference data),
:func:`within_reference` (the IBSI comparison rule: tolerance, or the printed significant
digits for the digital phantom), :func:`compare_with_reference` (a verdict per reference
row, :data:`CONFIG_DEVIATIONS` giving the reasons of known deviations) and the markdown
writer :func:`build`. ``tests/test_ibsi_conformance.py`` imports it (pytest puts the
repository root on ``sys.path``) and runs the same comparison as tests.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import SimpleITK as sitk

from hybridrad.datasets.reference import reference_data_dir
from hybridrad.features.ibsi import extract_ibsi, load_ibsi_features
from hybridrad.features.radiomics import RadiomicsConfig

__all__ = [
    "BENCHMARK_CONFIGS",
    "CONFIG_DEVIATIONS",
    "BenchmarkConfig",
    "build",
    "compare_with_reference",
    "load_reference",
    "main",
    "printed_tolerance",
    "run_benchmark_config",
    "within_reference",
]

_TEXTURE_DIRECTIONAL = ("glcm", "glrlm")
_TEXTURE_SINGLE = ("glszm", "ngtdm", "gldm")


# --- comparison rule -----------------------------------------------------------------


def printed_tolerance(reference: float, digits: int = 3) -> float:
    """Half a unit in the last printed digit of an IBSI reference value.

    The IBSI manual prints reference values to 3 significant digits (integers exactly), so
    a value matches when it rounds to the printed one.

    Examples
    --------
    >>> printed_tolerance(0.503)
    0.0005
    >>> printed_tolerance(556.0)
    0.5
    >>> printed_tolerance(1200.0)
    5.0
    """
    if reference == 0 or not math.isfinite(reference):
        return 5e-4
    exponent = math.floor(math.log10(abs(reference))) - (digits - 1)
    return float(0.5 * 10.0**exponent)


def within_reference(
    value: float, reference: float, tolerance: float | None = None, *, digits: int = 3
) -> bool:
    """The IBSI match rule: ``|value - reference| <= tolerance``.

    Parameters
    ----------
    value, reference
        Measured and reference value.
    tolerance
        The IBSI tolerance (CT phantom configurations). ``None`` or NaN (digital phantom):
        the value must round to the printed reference (:func:`printed_tolerance`).
    digits
        Significant digits printed in the manual.

    Examples
    --------
    >>> within_reference(0.50278, 0.503)
    True
    >>> within_reference(2.645, -0.355)
    False
    >>> within_reference(358100.0, 358000.0, 5000.0)
    True
    """
    if not math.isfinite(value):
        return False
    if tolerance is None or not math.isfinite(tolerance):
        tolerance = printed_tolerance(reference, digits)
    return abs(value - reference) <= tolerance * (1 + 1e-9) + 1e-12


# --- the IBSI 1 benchmark (digital phantom, CT phantom configurations A-E) ------------

_C_BIN_ORIGIN = (
    "fixed bin size origin: pyradiomics numbers FBS bins from the bin of the ROI minimum "
    "(floor(min/25)*25 = -950 HU after interpolation), IBSI from the re-segmentation lower "
    "bound (-1000 HU), so every grey-level index is 2 lower; features weighted by the "
    "grey-level value deviate (no pyradiomics setting moves the bin origin)"
)
_C_CODES = (
    "60VM ZGXS QWB0 V3SW G3QZ HTZT GD3A IVPO 3KUM XMSY 5GN9 5RAI HW1V YH51 J17V NQ30 "
    "TL9H OAE7 EQ3F JA6D NBZI 9QMG"
).split()

#: Configuration-specific deviations (IBSI code -> reason) found on the IBSI 1 benchmark.
CONFIG_DEVIATIONS: dict[str, dict[str, str]] = {
    "digital_phantom": {},
    "A": {},
    "B": {},
    "C": dict.fromkeys(_C_CODES, _C_BIN_ORIGIN),
    "D": {},
    "E": {},
}


@dataclass(frozen=True)
class BenchmarkConfig:
    """How one IBSI 1 data set is computed with pyradiomics.

    Parameters
    ----------
    name
        ``digital_phantom`` or ``A``-``E`` (the ``config`` column of the reference table).
    preset
        Shipped radiomics preset (``configs/radiomics/<preset>.yaml``).
    phantom
        Folder under the IBSI data directory holding ``nifti/{image,mask}/*.nii.gz``.
    outlier_sigma
        Extra outlier filter (configuration E), see ``extract_ibsi``.
    with_2d
        Also compute the texture classes with ``force2D`` (the ``2.5D`` aggregations of
        the digital phantom).
    """

    name: str
    preset: str
    phantom: str
    outlier_sigma: float | None = None
    with_2d: bool = False


_CT = "ibsi_1_ct_radiomics_phantom"
#: The IBSI 1 data sets pyradiomics is checked against.
BENCHMARK_CONFIGS: tuple[BenchmarkConfig, ...] = (
    BenchmarkConfig("digital_phantom", "ibsi", "ibsi_1_digital_phantom", with_2d=True),
    BenchmarkConfig("A", "ibsi_ct_A", _CT),
    BenchmarkConfig("B", "ibsi_ct_B", _CT),
    BenchmarkConfig("C", "ibsi_ct_C", _CT),
    BenchmarkConfig("D", "ibsi_ct_D", _CT),
    BenchmarkConfig("E", "ibsi_ct_E", _CT, outlier_sigma=3.0),
)


def _first_nifti(folder: Path) -> Path:
    files = sorted(folder.glob("*.nii*"))
    if not files:
        raise FileNotFoundError(f"no NIfTI file in {folder}")
    return files[0]


def run_benchmark_config(
    ibsi_dir: Path, config: BenchmarkConfig, engine: str = "pyradiomics"
) -> pd.DataFrame:
    """Compute one IBSI 1 data set with pyradiomics; ``to_ibsi`` rows.

    Parameters
    ----------
    ibsi_dir
        The IBSI reference-data folder (``<reference data>/ibsi``).
    config
        Which data set (:data:`BENCHMARK_CONFIGS`).
    engine
        ``pyradiomics`` or ``native`` (``hybridrad.features.engine``).

    Returns
    -------
    pandas.DataFrame
        One row per (IBSI code, aggregation) computed.
    """
    root = Path(ibsi_dir) / config.phantom / "nifti"
    image = sitk.ReadImage(str(_first_nifti(root / "image")))
    mask = sitk.ReadImage(str(_first_nifti(root / "mask")))
    params = RadiomicsConfig.load(config.preset).params
    frames = [extract_ibsi(image, mask, params, outlier_sigma=config.outlier_sigma, engine=engine)]
    if config.with_2d:
        p2 = {**params, "setting": {**params["setting"], "force2D": True}}
        frames.append(
            extract_ibsi(
                image,
                mask,
                p2,
                classes=("firstorder", *_TEXTURE_DIRECTIONAL, *_TEXTURE_SINGLE),
                engine=engine,
            )
        )
    return pd.concat(frames, ignore_index=True).drop_duplicates(["ibsi_code", "aggregation"])


def load_reference(ibsi_dir: Path) -> pd.DataFrame:
    """The IBSI 1 long reference table, ``aggregation`` NaN replaced by ``""``."""
    path = Path(ibsi_dir) / "ibsi_1_reference_values" / "ibsi_1_reference_values_long.csv"
    ref = pd.read_csv(path)
    ref["aggregation"] = ref["aggregation"].fillna("")
    return ref


def compare_with_reference(
    measured: pd.DataFrame, reference: pd.DataFrame, config: str
) -> pd.DataFrame:
    """Every IBSI reference row of ``config`` with the pyradiomics value and a verdict.

    Parameters
    ----------
    measured
        :func:`run_benchmark_config` output.
    reference
        :func:`load_reference` output.
    config
        ``digital_phantom`` or ``A``-``E``.

    Returns
    -------
    pandas.DataFrame
        Reference columns plus ``measured``, ``pyradiomics``, ``match`` (bool or NA) and
        ``verdict``: ``agree``, ``corrected`` (matches after a documented correction),
        ``deviates`` (with ``reason``), ``no reference``, ``aggregation not available``
        (pyradiomics computes the feature, but not with this aggregation) or ``not
        computed`` (pyradiomics has no such feature).
    """
    ref = reference[reference["config"] == config]
    meas = measured.rename(columns={"value": "measured", "status": "map_status"})
    cols = ["ibsi_code", "aggregation", "measured", "pyradiomics", "map_status", "note"]
    out = ref.merge(meas[cols], on=["ibsi_code", "aggregation"], how="left")
    known = CONFIG_DEVIATIONS.get(config, {})
    mapped_codes = {f.code for f in load_ibsi_features()}
    verdicts, reasons, matches = [], [], []
    for row in out.itertuples(index=False):
        reason = ""
        match: bool | None = None
        if pd.isna(row.measured):
            verdict = (
                "aggregation not available" if row.ibsi_code in mapped_codes else "not computed"
            )
        elif pd.isna(row.value):
            verdict = "no reference"
        else:
            tol = None if pd.isna(row.tolerance) or config == "digital_phantom" else row.tolerance
            match = within_reference(float(row.measured), float(row.value), tol)
            if match:
                verdict = str(row.map_status)
                reason = str(row.note) if verdict == "corrected" else ""
            else:
                verdict = "deviates"
                reason = known.get(row.ibsi_code) or (
                    str(row.note) if row.map_status == "deviates" else "unexplained"
                )
        verdicts.append(verdict)
        reasons.append(reason)
        matches.append(match)
    out["match"] = matches
    out["verdict"] = verdicts
    out["reason"] = reasons
    return out.drop(columns=["map_status", "note"])


# --- docs/ibsi_conformance.md ------------------------------------------------------

_ORDER = ["agree", "corrected", "deviates", "no reference", "aggregation not available",
          "not computed"]  # fmt: skip


def _fmt(x: object) -> str:
    if x is None or (isinstance(x, float) and pd.isna(x)):
        return ""
    return f"{float(x):.4g}"  # type: ignore[arg-type]


def _table(frame: pd.DataFrame) -> str:
    lines = [
        "| IBSI code | family | feature | aggregation | pyradiomics | measured | reference "
        "| tolerance | verdict | reason / correction |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in frame.itertuples(index=False):
        feature = str(r.feature).replace("\\ :sup:`th`", "th").replace("|", "/")
        lines.append(
            f"| {r.ibsi_code} | {r.family} | {feature} | {r.aggregation} | "
            f"{r.pyradiomics if isinstance(r.pyradiomics, str) else ''} | {_fmt(r.measured)} | "
            f"{_fmt(r.value)} | {_fmt(r.tolerance)} | {r.verdict} | {r.reason} |"
        )
    return "\n".join(lines)


def build(ibsi_dir: Path, engine: str = "pyradiomics") -> str:
    """The markdown document (features computed by ``engine``)."""
    reference = load_reference(ibsi_dir)
    sections, summary = [], []
    for config in BENCHMARK_CONFIGS:
        start = time.perf_counter()
        table = compare_with_reference(
            run_benchmark_config(ibsi_dir, config, engine), reference, config.name
        )
        seconds = time.perf_counter() - start
        counts = table["verdict"].value_counts()
        summary.append(
            f"| {config.name} | `{config.preset}` | "
            + " | ".join(str(int(counts.get(v, 0))) for v in _ORDER)
            + f" | {seconds:.1f} |"
        )
        sections.append(f"## {config.name}\n\n{_table(table)}\n")
    import radiomics

    head = f"""# IBSI 1 conformance of the {engine} engine

Generated by `benchmarks/ibsi_table.py` (pyradiomics {radiomics.__version__}); do not edit
by hand. Regenerate with

```
.venv/bin/python benchmarks/ibsi_table.py      # writes docs/ibsi_conformance.md
.venv/bin/python -m pytest tests/test_ibsi_conformance.py  # the same comparison as tests
```

Reference values: IBSI 1 reference manual (Zwanenburg et al., Radiology 2020;295:328;
arXiv 1612.07003), table `ibsi_1_reference_values_long.csv` of the shared reference data.
A row per IBSI reference value (feature x aggregation). Digital phantom: the value must
round to the printed 3 significant digits (the listed tolerance is not used); CT phantom
configurations A-E: |measured - reference| <= tolerance.

How the data sets are computed (`run_benchmark_config` in `benchmarks/ibsi_table.py`;
the IBSI code of each pyradiomics feature: `hybridrad/features/data/ibsi_features.csv`):

- digital phantom: preset `ibsi` (bin width 1, no shift, distance 1, symmetric GLCM,
  `gldm_a: 0`), and again with `force2D` for the 2.5D texture aggregations;
- CT phantom A-E: presets `ibsi_ct_A` .. `ibsi_ct_E`. Intensities are rounded to integers
  first. pyradiomics cannot reproduce IBSI interpolation (grid-centre alignment, rounding
  of interpolated intensities, linear mask interpolation with partial-volume threshold
  0.5), so for B-E the image and mask are resampled by `ibsi_resample` (SimpleITK;
  linear, or B-spline for E) and pyradiomics runs with resampling off. For E the range
  [-1000, 400] HU is intersected with mean +/- 3 SD of the interpolated ROI (IBSI's
  outlier filter; pyradiomics allows only one re-segmentation mode).
- every texture class is computed with pyradiomics' default aggregation (GLCM/GLRLM
  averaged over directions: IBSI "3D, averaged" / "2.5D, direction-merged") and for
  GLCM/GLRLM again with `weightingNorm: no_weighting` (IBSI "merged").

Verdicts: **agree** (pyradiomics value within reference), **corrected** (within reference
after a documented correction, e.g. excess kurtosis = Kurtosis - 3, compactness from
sphericity, PCA axis lengths x sqrt(N/(N-1))), **deviates** (with the reason), **no
reference** (the manual gives none), **aggregation not available** (pyradiomics computes
the feature but has no per-slice 2D aggregation), **not computed** (pyradiomics has no
such feature: local intensity, most intensity-histogram features, IVH, GLDZM, several
morphological features, NGLDM dependence count energy/percentage, ...).

## Summary

| data set | preset | {" | ".join(_ORDER)} | seconds |
|---|---|{"---|" * len(_ORDER)}---|
"""
    return head + "\n".join(summary) + "\n\n" + "\n".join(sections)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="reference-data folder")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "docs" / "ibsi_conformance.md",
    )
    parser.add_argument(
        "--engine",
        choices=("pyradiomics", "native"),
        default="pyradiomics",
        help="feature engine (the table must come out identical with either)",
    )
    args = parser.parse_args(argv)
    data = args.data or reference_data_dir()
    if data is None or not (data / "ibsi").is_dir():
        print("IBSI reference data not found (set HYBRIDRAD_DATA or --data)", file=sys.stderr)
        return 2
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    args.out.write_text(build(data / "ibsi", args.engine), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
