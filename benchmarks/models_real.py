"""Benchmark: the modelling layer on the real TCGA-LGG development cohort.

The 39-patient TCGA lower-grade glioma development split (``lgg-tcga`` in the shared
reference data, located through :func:`hybridrad.datasets.reference.reference_data_dir`,
i.e. ``$HYBRIDRAD_DATA`` or ``../shared/data``): T1, FLAIR and T1c volumes with a
FLAIR-abnormality mask, and IDH, 1p/19q and overall-survival labels (8 deaths).

Steps:

1. manifest with :func:`hybridrad.datasets.discover.discover_lgg_tcga`;
2. handcrafted features, ``mri_glioma`` preset (per-case cache; table saved as
   ``radiomics.parquet`` in the cache folder);
3. deep features (unless ``--no-deep``): the shipped segmentation encoder needs four
   sequences (t1, t1c, t2, flair) and this cohort has three, so a self-supervised
   SimCLR encoder (:func:`hybridrad.features.pretrain.pretrain`, small MONAI ResNet,
   random initialisation, no downloaded weights) is trained on the cohort's own
   ROI-centred patches (32^3 voxels at 2 mm, T1/FLAIR/T1c + mask channel, 60 epochs,
   seed 0; labels are never used) and its ``layer1,layer2`` activations are pooled
   with ``meanstd`` (saved as ``deep.parquet``; encoder and features cached);
4. fusion with the study's clinical covariates (age);
5. per target (IDH mutation, 1p/19q codeletion, overall survival): the default study's
   feature sets (clinical, handcrafted, deep, hybrid) compared with
   :func:`hybridrad.models.compare_feature_sets` on the same nested-CV folds, plus the
   permutation test of the widest set when ``n_permutations > 0``.

Printed per target: n cases, n positives / events, wall time, each set's AUC or
Harrell's C with its 95 % CI, the paired difference against the clinical set (with CI
and p-value) and the permutation p-value where this hybridrad version computes them.
Comparison tables are written to ``<cache>/results/``.

Usage::

    .venv/bin/python benchmarks/models_real.py [--repeats 3] [--permutations N]
        [--targets idh,codel,os] [--no-deep] [--jobs 2] [--cache DIR] [--config YAML]

Quick run (2 idle cores: about 3 minutes with an empty cache, of which 47 s radiomics,
10 s pretraining and 1 s deep features; about 2 minutes cached)::

    .venv/bin/python benchmarks/models_real.py --repeats 1 --permutations 0

The default study (3 outer repeats, 20 permutations of the widest set) takes about an
hour on 2 cores: each permutation is a full nested CV of the hybrid set.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import math
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import pandas as pd

from hybridrad.models import (
    StudyConfig,
    class_target,
    compare_feature_sets,
    fuse,
    survival_target,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "hybridrad-models-real"
#: Events per candidate variable below which a survival model is not supported.
MIN_EPV = 10.0
CLINICAL_SET = "clinical"  # the reference set where StudyConfig names none
HYBRID_SET = "hybrid"

#: Deep-feature settings (see the module docstring for why this encoder).
SSL_EPOCHS = 60
SSL_SEED = 0
PATCH_SIZE = (32, 32, 32)
PATCH_SPACING_MM = (2.0, 2.0, 2.0)


@dataclass(frozen=True)
class Target:
    """One prediction target of the cohort."""

    key: str
    title: str
    column: str
    positive: str | None = None  # classification: the positive label
    event: str | None = None  # survival: the event column


TARGETS: tuple[Target, ...] = (
    Target("idh", "IDH mutation (Mutant vs WT)", "idh", positive="Mutant"),
    Target("codel", "1p/19q codeletion (codel vs non-codel)", "codeletion_1p19q", positive="codel"),
    Target("os", "overall survival", "os_months", event="death"),
)


def locate_cohort() -> Path:
    """The ``lgg-tcga`` folder of the reference data; exits with a message when absent."""
    from hybridrad.datasets.reference import ENV_VAR, reference_data_dir

    data = reference_data_dir()
    folder = data / "lgg-tcga" if data is not None else None
    if folder is None or not (folder / "cases").is_dir():
        where = f"{data} has no lgg-tcga/cases" if data is not None else "no reference-data folder"
        sys.exit(
            f"TCGA-LGG reference data not found ({where}). Set "
            f"${ENV_VAR} to the folder holding lgg-tcga/ (default: ../shared/data beside "
            "the repository root); see its README for layout and terms."
        )
    return folder


def load_cohort(folder: Path, cache: Path) -> tuple[Any, pd.DataFrame]:
    """The cohort (manifest written to the cache folder) and its clinical table."""
    from hybridrad.datasets.discover import discover_lgg_tcga
    from hybridrad.io import Cohort, read_clinical, write_manifest

    table, clinical_path = discover_lgg_tcga(folder)
    manifest = write_manifest(table, cache / "lgg_manifest.csv")
    return Cohort.from_csv(manifest, label_map="binary"), read_clinical(clinical_path)


def report_failures(what: str, failures: pd.DataFrame) -> None:
    """Print a feature run's failed cases (they drop out of the fused table)."""
    if failures.empty:
        return
    print(f"  {what}: {len(failures)} case(s) failed and are left out:")
    print("    " + failures.to_string(index=False).replace("\n", "\n    "))


def handcrafted(cohort: Any, cache: Path, jobs: int) -> pd.DataFrame:
    """``mri_glioma`` radiomics of every case (cached); saved as ``radiomics.parquet``."""
    from hybridrad.features import extract_radiomics

    start = time.perf_counter()
    rad = extract_radiomics(cohort, "mri_glioma", jobs=jobs, cache_dir=cache / "radiomics")
    seconds = time.perf_counter() - start
    rad.save(cache / "radiomics.parquet", {"benchmark": "models_real", "config": "mri_glioma"})
    print(
        f"handcrafted (radiomics, mri_glioma, jobs={jobs}): {rad.features.shape[0]} cases x "
        f"{rad.features.shape[1]} features in {seconds:.1f} s ({rad.n_computed} computed, "
        f"{rad.n_cached} cached)"
    )
    report_failures("radiomics", rad.failures)
    return rad.features


def _encoder_is_current(folder: Path, case_ids: list[str]) -> bool:
    meta_path = folder / "encoder.json"
    if not (meta_path.is_file() and (folder / "encoder.pt").is_file()):
        return False
    training = json.loads(meta_path.read_text()).get("training", {})
    return bool(
        training.get("case_ids") == case_ids
        and training.get("epochs") == SSL_EPOCHS
        and training.get("seed") == SSL_SEED
    )


def deep(cohort: Any, cache: Path) -> pd.DataFrame:
    """Self-supervised (SimCLR) encoder trained on the cohort, then its pooled features.

    The encoder folder and the per-case features are cached; pretraining is seeded and
    reproducible on CPU.
    """
    from hybridrad.features.deep import PatchSpec, extract_deep
    from hybridrad.features.pretrain import PretrainConfig, pretrain

    enc_dir = cache / "ssl-encoder"
    patch = PatchSpec(
        size=PATCH_SIZE,
        spacing=PATCH_SPACING_MM,
        sequences=tuple(cohort.sequences),
        mask_channel=True,
    )
    start = time.perf_counter()
    if _encoder_is_current(enc_dir, list(cohort.case_ids)):
        how = "cached"
    else:
        config = PretrainConfig(epochs=SSL_EPOCHS, seed=SSL_SEED)
        pretrain(cohort, enc_dir, patch=patch, config=config, device="cpu")
        how = "trained"
    t_pre = time.perf_counter() - start
    start = time.perf_counter()
    res = extract_deep(cohort, str(enc_dir), batch_size=8, device="cpu", cache_dir=cache / "deep")
    t_ext = time.perf_counter() - start
    res.save(cache / "deep.parquet", {"benchmark": "models_real", "encoder": str(enc_dir)})
    print(
        f"deep (SimCLR encoder pretrained on the cohort's own scans without labels, "
        f"{SSL_EPOCHS} epochs, seed {SSL_SEED}, {'/'.join(cohort.sequences)} + mask, "
        f"{PATCH_SIZE[0]}^3 @ {PATCH_SPACING_MM[0]:g} mm; encoder {how} in {t_pre:.1f} s): "
        f"{res.features.shape[0]} cases x {res.features.shape[1]} features in {t_ext:.1f} s "
        f"({res.n_computed} computed, {res.n_cached} cached)"
    )
    report_failures("deep", res.failures)
    return res.features


def load_config(path: Path | None) -> StudyConfig:
    """The default study (``StudyConfig.load("default")`` where supported)."""
    if path is not None:
        return StudyConfig.load(path)
    try:
        return StudyConfig.load("default")
    except (OSError, ValueError):  # older versions read only file paths
        return StudyConfig.load(REPO / "configs" / "studies" / "default.yaml")


def task_config(
    base: StudyConfig, task: str, args: argparse.Namespace
) -> tuple[StudyConfig, list[str]]:
    """``base`` with the command-line overrides this version of StudyConfig supports."""
    names = {f.name for f in fields(StudyConfig)}
    changes: dict[str, Any] = {"n_jobs": args.jobs}
    notes: list[str] = []
    if args.repeats is not None:
        changes["outer_repeats"] = args.repeats
    if args.permutations is not None:
        if "n_permutations" in names:
            changes["n_permutations"] = args.permutations
        elif args.permutations > 0:
            notes.append("permutation test not available (StudyConfig has no n_permutations)")
    if task == "classification":
        changes["classifier" if "classifier" in names else "model"] = "logistic"
    return replace(base, **changes), notes


def build_target(target: Target, clin: pd.DataFrame, index: list[str]) -> tuple[Any, str, int, str]:
    """The target array, its task, and the number of positives or events (with a label)."""
    if target.event is not None:
        y = survival_target(clin, target.column, target.event, index)
        return y, "survival", int(y["event"].sum()), "events"
    assert target.positive is not None
    kwargs: dict[str, Any] = {}
    if "positive" in inspect.signature(class_target).parameters:
        kwargs["positive"] = target.positive
    y = class_target(clin, target.column, index, **kwargs).to_numpy()
    n_pos = int((clin.loc[index, target.column].astype(str) == target.positive).sum())
    return y, "classification", n_pos, f"positives ({target.positive})"


def _num(value: Any, digits: int = 3) -> str:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(x) else f"{x:.{digits}f}"


def _signed(value: Any) -> str:
    text = _num(value)
    return text if text == "n/a" or text.startswith("-") else f"+{text}"


def _p(value: Any) -> str:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(x) else (f"{x:.3f}" if x >= 0.001 else f"{x:.1e}")


def _is_control(name: Any) -> bool:
    """Rows that are null distributions, not models (shuffled labels, permutation null)."""
    return str(name).startswith(("negative control", "permutation null"))


def print_table(table: pd.DataFrame, head: str, reference: str, perms: int | None) -> None:
    """One line per feature set: headline metric + CI, paired delta, permutation p."""
    label = "Harrell C" if head == "harrell_c" else "AUC"
    has_delta = {"delta", "delta_ci_low", "delta_ci_high", "delta_p"} <= set(table.columns)
    has_perm = "perm_p" in table.columns
    width = max(len(str(name)) for name in table.index)
    print(
        f"  {'feature set':<{width}}  {'blocks':<13} {'n_feat':>6}  {label + ' (95% CI)':<22}"
        f"  {'delta vs clinical (95% CI), p':<34}  perm_p"
    )
    for name, row in table.iterrows():
        metric = f"{_num(row[head])} ({_num(row['ci_low'])}-{_num(row['ci_high'])})"
        if _is_control(name):
            delta = "(null distribution)"
        elif has_delta and name == reference:
            delta = "reference"
        elif has_delta:
            delta = (
                f"{_signed(row['delta'])} ({_signed(row['delta_ci_low'])} to "
                f"{_signed(row['delta_ci_high'])}), p={_p(row['delta_p'])}"
            )
        else:
            delta = "not available"
        if _is_control(name):
            perm = ""
        elif has_perm:  # only the widest set is permuted
            perm = "-" if pd.isna(row["perm_p"]) else _p(row["perm_p"])
        elif perms == 0:
            perm = "not run"
        else:
            perm = "not available"
        print(
            f"  {name!s:<{width}}  {row['blocks']!s:<13} {int(row['n_features']):>6}  "
            f"{metric:<22}  {delta:<34}  {perm}"
        )
    ci_method = table.attrs.get("ci_method")
    print(f"  CI: {ci_method}" if ci_method else "  CI method: not stated by this version")
    null_interval = table.attrs.get("permutation_null_interval")
    if null_interval and any(str(n).startswith("permutation null") for n in table.index):
        print(f"  permutation null row: mean permuted score ({null_interval})")
    if has_delta and HYBRID_SET in table.index and reference in table.index:
        row = table.loc[HYBRID_SET]
        used = ""
        if "imaging_folds" in table.columns and not pd.isna(row["imaging_folds"]):
            used = f"; the hybrid kept imaging features in {row['imaging_folds']:.0%} of folds"
        print(
            f"  hybrid - {reference} ({label}): {_signed(row['delta'])} "
            f"({_signed(row['delta_ci_low'])} to {_signed(row['delta_ci_high'])}), "
            f"p = {_p(row['delta_p'])} (paired, same folds){used}"
        )
    else:
        print("  hybrid - clinical paired difference: not available in this hybridrad version")


def epv_note(table: pd.DataFrame, n_cases: int, n_events: int) -> str | None:
    """A one-line warning when events per candidate variable fall below ``MIN_EPV``."""
    sets = [s for s in table.index if not _is_control(s)]
    epv = {s: n_events / max(int(table.loc[s, "n_features"]), 1) for s in sets}
    low = {s: v for s, v in epv.items() if v < MIN_EPV}
    if not low:
        return None
    shown = ", ".join(f"{s} {v:.2g}" for s, v in low.items())
    return (
        f"  note: events per candidate variable {shown} (< {MIN_EPV:g}): {n_cases} patients "
        f"with {n_events} events cannot support an imaging survival model; the C-indices "
        "are descriptive only."
    )


def print_warnings(caught: list[warnings.WarningMessage], most: int = 6) -> None:
    """hybridrad's own warnings in full (each once), the libraries' ones counted."""
    from hybridrad.errors import HybridradWarning

    own = list(
        dict.fromkeys(
            f"{w.category.__name__}: {w.message}"
            for w in caught
            if issubclass(w.category, HybridradWarning)
        )
    )
    for text in own[:most]:
        print(f"  warning: {text}")
    if len(own) > most:
        print(f"  ... and {len(own) - most} more hybridrad warning(s)")
    other = Counter(
        w.category.__name__ for w in caught if not issubclass(w.category, HybridradWarning)
    )
    if other:
        shown = ", ".join(f"{n} {kind}" for kind, n in other.most_common())
        print(f"  library warnings during CV (not shown): {shown}")


def evaluate(
    X: pd.DataFrame,
    clin: pd.DataFrame,
    target: Target,
    base: StudyConfig,
    args: argparse.Namespace,
    out: Path,
) -> None:
    """Compare the feature sets for one target and print the results."""
    y, task, n_pos, what = build_target(target, clin, list(X.index))
    config, notes = task_config(base, task, args)
    head = "harrell_c" if task == "survival" else "auc"
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:  # tiny folds: summarised below
        warnings.simplefilter("always")
        table, _ = compare_feature_sets(X, y, config, task=task)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    perms = getattr(config, "n_permutations", None)
    model = getattr(config, "classifier", None) if task == "classification" else None
    print(
        f"\n{target.title}: {len(X)} cases, {n_pos} {what}; model {model or config.model}, "
        f"{config.outer_splits}-fold x {config.outer_repeats} repeat nested CV, "
        f"{config.n_boot} bootstraps, permutations {perms if perms is not None else 'n/a'}; "
        f"wall {seconds:.1f} s"
    )
    for note in notes:
        print(f"  ({note})")
    reference = str(getattr(config, "reference_set", CLINICAL_SET))
    print_table(table, head, reference, perms)
    if task == "survival":
        epv = epv_note(table, len(X), n_pos)
        if epv:
            print(epv)
    print_warnings(caught)
    table.to_csv(out / f"comparison_{target.key}.csv")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        description=doc.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE, help=f"cache folder (default {DEFAULT_CACHE})"
    )
    parser.add_argument("--config", type=Path, help="study YAML (default: the default study)")
    parser.add_argument("--repeats", type=int, help="outer CV repeats (default: the study's)")
    parser.add_argument(
        "--permutations", type=int, help="permutation-test permutations (default: the study's)"
    )
    parser.add_argument(
        "--targets", default="idh,codel,os", help="comma-separated subset of idh,codel,os"
    )
    parser.add_argument("--no-deep", action="store_true", help="skip deep features")
    parser.add_argument("--jobs", type=int, default=2, help="processes (extraction and CV)")
    args = parser.parse_args(argv)
    wanted = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = sorted(set(wanted) - {t.key for t in TARGETS})
    if unknown:
        parser.error(f"unknown target(s) {unknown}; choose from idh, codel, os")
    handler = logging.StreamHandler()  # hybridrad's warnings only (pyradiomics logs INFO)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger("hybridrad").addHandler(handler)
    logging.getLogger("hybridrad").setLevel(logging.WARNING)

    folder = locate_cohort()
    cache: Path = args.cache
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "results").mkdir(exist_ok=True)
    print(f"cohort: {folder}\ncache: {cache}")
    cohort, clin = load_cohort(folder, cache)
    tables = [handcrafted(cohort, cache, args.jobs)]
    if not args.no_deep:
        tables.append(deep(cohort, cache))
    base = load_config(args.config)
    if args.no_deep:  # drop the deep block from every set (and sets left empty)
        kept = {k: tuple(b for b in v if b != "deep") for k, v in base.feature_sets.items()}
        base = replace(base, feature_sets={k: v for k, v in kept.items() if v})
    X = fuse(tables, clinical=clin, covariates=list(base.covariates or ("age",)))
    blocks = sorted({c.split("__", 1)[0] for c in X.columns})
    print(f"fused: {X.shape[0]} cases x {X.shape[1]} columns (blocks {', '.join(blocks)})")
    for target in TARGETS:
        if target.key in wanted:
            evaluate(X, clin, target, base, args, cache / "results")
    print(f"\ncomparison tables: {cache / 'results'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
