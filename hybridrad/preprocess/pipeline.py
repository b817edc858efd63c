"""The preprocessing pipeline: a validated YAML file of steps, run over a cohort.

A pipeline file (``configs/preprocess/<name>.yaml``, or any YAML file) names the steps to
run; a step left out (or ``null``) is off. The steps always run in this order, whatever
the order of the keys in the file:

1. ``reorient`` to one canonical direction (exact: axes are permuted and flipped);
2. ``resample`` to a target spacing;
3. ``coregister`` every sequence to the reference sequence (rigid, Mattes mutual
   information) when their geometries differ, or always;
4. ``bias_correction`` (N4);
5. ``denoise`` (curvature anisotropic diffusion);
6. ``brain_extraction`` (deepbet, or an intensity threshold), optionally zeroing
   everything outside the brain (``skull_strip``);
7. ``normalise`` (MRI: percentile clipping, then z-score inside the brain, the ROI or the
   whole image) or ``ct_window`` (CT);
8. ``crop`` to the brain, the ROI or the foreground, with a margin in mm.

The manifest's tumour mask is taken to lie on the reference sequence's grid (as
``hybridrad validate`` requires) and follows every geometric step with nearest-neighbour
interpolation. The pipeline file is validated up front (every problem with its key path,
like a study file) and hashed; the hash, the input files' hashes and the hybridrad
version key the per-case cache, so a rerun recomputes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import SimpleITK as sitk
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hybridrad.errors import HybridradError
from hybridrad.io.manifest import BRAIN_MASK, CASE_ID, MASK, Case, Cohort, safe_filename
from hybridrad.provenance import canonical_json, config_hash, file_sha256, library_versions
from hybridrad.runner import CaseOutput, CohortResult, run_cohort, stage

#: Shipped pipeline presets (``configs/preprocess/<name>.yaml``).
SHIPPED_PIPELINES = ("glioma_mri", "resample_only", "ct")

#: The order the steps run in.
STEP_ORDER = (
    "reorient",
    "resample",
    "coregister",
    "bias_correction",
    "denoise",
    "brain_extraction",
    "normalise",
    "ct_window",
    "crop",
)


class PreprocessConfigError(HybridradError, ValueError):
    """A preprocessing pipeline file cannot be used (unknown key, wrong type, bad value).

    ``key_problems`` holds one ``(key path, message)`` pair per problem.
    """

    def __init__(self, message: str, key_problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.key_problems = key_problems or []


class PreprocessError(HybridradError, ValueError):
    """One case cannot be preprocessed (e.g. none of the reference sequences is there)."""


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReorientStep(_Step):
    """Reorient every image to one direction (no interpolation)."""

    orientation: str = Field("LPS", description="three-letter code, e.g. LPS or RAS")

    @field_validator("orientation")
    @classmethod
    def _code(cls, value: str) -> str:
        value = value.upper()
        axes = [{"L": 0, "R": 0, "P": 1, "A": 1, "S": 2, "I": 2}.get(c) for c in value]
        if len(value) != 3 or None in axes or len(set(axes)) != 3:
            raise ValueError(
                f"{value!r} is not an orientation code: one letter of L/R, P/A and S/I each"
            )
        return value


class ResampleStep(_Step):
    """Resample to a target spacing (images linear or B-spline; masks nearest or
    interpolate-then-threshold)."""

    spacing: tuple[float, float, float] = Field(description="voxel spacing (mm), x y z")
    interpolator: Literal["linear", "bspline"] = "linear"
    mask_method: Literal["nearest", "threshold"] = "nearest"

    @field_validator("spacing")
    @classmethod
    def _positive(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if not all(0.01 <= v <= 100 for v in value):
            raise ValueError("each spacing must be between 0.01 and 100 mm")
        return value


class CoregisterStep(_Step):
    """Rigid registration of every other sequence onto the reference sequence."""

    when: Literal["geometry_differs", "always"] = Field(
        "geometry_differs",
        description="register only sequences whose grid differs from the reference's, or all",
    )
    seed: int = 0


class BiasStep(_Step):
    """N4 bias-field correction of each (MRI) sequence."""

    shrink_factor: int = Field(2, ge=1, le=8)
    iterations: tuple[int, ...] = Field((50, 50, 50, 50), min_length=1)
    sequences: list[str] | None = Field(None, description="sequences to correct (default: all)")


class DenoiseStep(_Step):
    """Curvature anisotropic diffusion."""

    iterations: int = Field(5, ge=1, le=100)
    conductance: float = Field(3.0, gt=0)
    sequences: list[str] | None = Field(None, description="sequences to denoise (default: all)")


class BrainStep(_Step):
    """Brain extraction on one sequence; the mask serves every sequence."""

    method: Literal["auto", "deepbet", "threshold"] = "auto"
    sequence: list[str] | None = Field(
        None,
        description="sequences to extract the brain from, first present wins "
        "(default: the reference)",
    )
    skull_strip: bool = Field(True, description="set voxels outside the brain to 0")


class NormaliseStep(_Step):
    """MRI intensity normalisation: optional percentile clipping, then z-score."""

    region: Literal["brain", "roi", "image"] = Field(
        "brain", description="where the statistics come from"
    )
    clip_percentiles: tuple[float, float] | None = Field(
        (0.5, 99.5), description="clip to these percentiles of the region first (null: off)"
    )

    @field_validator("clip_percentiles")
    @classmethod
    def _order(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 <= value[0] < value[1] <= 100:
            raise ValueError("need 0 <= low < high <= 100")
        return value


class CTWindowStep(_Step):
    """Clip CT intensities to a window (HU)."""

    level: float = 40.0
    width: float = Field(400.0, gt=0)


class CropStep(_Step):
    """Crop every image to a region's bounding box plus a margin: the brain mask, the ROI,
    or the foreground (the reference image's voxels above its Otsu threshold)."""

    to: Literal["brain", "roi", "foreground"] = "brain"
    margin_mm: float = Field(10.0, ge=0)


class PreprocessConfig(BaseModel):
    """A validated preprocessing pipeline. See the module docstring for the step order.

    Examples
    --------
    >>> cfg = PreprocessConfig.model_validate({"resample": {"spacing": [1, 1, 1]}})
    >>> cfg.steps()
    ['resample']
    >>> len(cfg.hash)
    16
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    modality: Literal["mri", "ct"] = "mri"
    reference: list[str] = Field(
        default_factory=list,
        description="reference sequences, first present wins (default: the manifest's first)",
    )
    reorient: ReorientStep | None = None
    resample: ResampleStep | None = None
    coregister: CoregisterStep | None = None
    bias_correction: BiasStep | None = None
    denoise: DenoiseStep | None = None
    brain_extraction: BrainStep | None = None
    normalise: NormaliseStep | None = None
    ct_window: CTWindowStep | None = None
    crop: CropStep | None = None

    def steps(self) -> list[str]:
        """The steps that are on, in the order they run."""
        return [s for s in STEP_ORDER if getattr(self, s) is not None]

    def canonical(self) -> dict[str, Any]:
        """The pipeline with every default filled in (what is hashed and recorded)."""
        return self.model_dump(mode="json")

    @property
    def hash(self) -> str:
        """Short hash of :meth:`canonical`."""
        return config_hash(self.canonical())

    def check(self) -> None:
        """Combinations that cannot work, each named."""
        problems: list[tuple[str, str]] = []
        if self.normalise is not None and self.normalise.region == "brain":
            if self.brain_extraction is None:
                problems.append(
                    ("normalise.region", "'brain' needs a brain_extraction step; or use 'roi'")
                )
        if self.crop is not None and self.crop.to == "brain" and self.brain_extraction is None:
            problems.append(("crop.to", "'brain' needs a brain_extraction step; or use 'roi'"))
        if self.modality == "ct":
            for name in ("bias_correction", "brain_extraction", "normalise"):
                if getattr(self, name) is not None:
                    problems.append((name, "is for MRI; a CT pipeline uses ct_window"))
        if self.modality == "mri" and self.ct_window is not None:
            problems.append(("ct_window", "is for CT; set modality: ct"))
        if problems:
            lines = "; ".join(f"{k}: {m}" for k, m in problems)
            raise PreprocessConfigError(f"{len(problems)} problem(s): {lines}", problems)


def shipped_pipeline(name: str) -> Path:
    """The shipped pipeline file ``hybridrad/configs/preprocess/<name>.yaml``."""
    return Path(__file__).resolve().parent.parent / "configs" / "preprocess" / f"{name}.yaml"


def parse_pipeline(data: Any, source: str = "pipeline") -> PreprocessConfig:
    """Validate a pipeline mapping; every problem is reported with its key path.

    Raises
    ------
    PreprocessConfigError
        Unknown key, wrong type, bad value or impossible combination.
    """
    if not isinstance(data, dict):
        raise PreprocessConfigError(f"{source}: a preprocessing file must be a mapping of steps")
    try:
        cfg = PreprocessConfig.model_validate(data)
    except ValidationError as exc:
        from hybridrad.io.yamlfile import key_problems

        problems = key_problems(exc.errors())
        lines = "; ".join(f"{k}: {m}" for k, m in problems)
        raise PreprocessConfigError(
            f"{source}: {len(problems)} problem(s): {lines}. Steps: {', '.join(STEP_ORDER)} "
            "(docs/preprocessing.md)",
            problems,
        ) from None
    try:
        cfg.check()
    except PreprocessConfigError as exc:
        raise PreprocessConfigError(f"{source}: {exc}", exc.key_problems) from None
    return cfg


def load_pipeline(config: str | os.PathLike[str]) -> tuple[PreprocessConfig, Path]:
    """Read and validate a pipeline YAML file, or a shipped preset by name.

    Raises
    ------
    FileNotFoundError
        Neither a file nor a shipped name.
    PreprocessConfigError
        The file breaks the schema.
    """
    from hybridrad.io.yamlfile import file_or_shipped, read_mapping

    shipped = {name: shipped_pipeline(name) for name in SHIPPED_PIPELINES}
    path = file_or_shipped(config, shipped, "preprocessing config", "preset")
    data = read_mapping(path, PreprocessConfigError, "preprocessing config")
    return parse_pipeline(data, source=str(path)), path.resolve()


# -- one case ------------------------------------------------------------------------------


@dataclass
class CaseImages:
    """The images of one case while the pipeline runs."""

    images: dict[str, sitk.Image]
    mask: sitk.Image | None = None
    brain: sitk.Image | None = None
    log: dict[str, Any] = field(default_factory=dict)


def _pick(wanted: Sequence[str], available: Sequence[str], what: str, case_id: str) -> str:
    if not wanted:
        return available[0]
    for name in wanted:
        if name in available:
            return name
    raise PreprocessError(
        f"case {case_id!r}: none of the {what} sequences {list(wanted)} is in the manifest "
        f"(it has {list(available)}); add one, or change `{what}` in the preprocessing config"
    )


def run_pipeline(
    cfg: PreprocessConfig,
    images: dict[str, sitk.Image],
    mask: sitk.Image | None = None,
    *,
    brain: sitk.Image | None = None,
    case_id: str = "case",
) -> CaseImages:
    """Run the pipeline on one case's images (and its ROI mask and brain mask, both on the
    reference grid). A given brain mask follows the geometric steps like the ROI mask;
    a ``brain_extraction`` step replaces it.

    Returns
    -------
    CaseImages
        The processed images, mask and brain mask, and ``log``: per step, its seconds and
        what it measured (registration results, normalisation statistics, brain volume).
    """
    from hybridrad.preprocess import geometry, intensity, register, resample

    if not images:
        raise PreprocessError(f"case {case_id!r} has no images")
    seqs = list(images)
    ref = _pick(cfg.reference, seqs, "reference", case_id)
    out = CaseImages(images=dict(images), mask=mask, brain=brain)
    timings: dict[str, float] = {}
    out.log["reference"] = ref

    @contextlib.contextmanager
    def timed(name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        timings[name] = round(time.perf_counter() - start, 3)

    if cfg.reorient is not None:
        with stage("reorient"), timed("reorient"):
            o = cfg.reorient.orientation
            out.images = {s: geometry.reorient(im, o) for s, im in out.images.items()}
            if out.mask is not None:
                out.mask = geometry.reorient(out.mask, o)
            if out.brain is not None:
                out.brain = geometry.reorient(out.brain, o)
    if cfg.resample is not None:
        with stage("resample"), timed("resample"):
            r = cfg.resample
            out.images = {
                s: resample.resample_image(im, r.spacing, interpolator=r.interpolator)
                for s, im in out.images.items()
            }
            if out.mask is not None:
                out.mask = resample.resample_image(
                    out.mask, r.spacing, is_mask=True, mask_method=r.mask_method
                )
            if out.brain is not None:
                out.brain = resample.resample_image(
                    out.brain, r.spacing, is_mask=True, mask_method=r.mask_method
                )
    if cfg.coregister is not None:
        with stage("coregister"), timed("coregister"):
            fixed = out.images[ref]
            reg_log: dict[str, Any] = {}
            for s in seqs:
                if s == ref:
                    continue
                moving = out.images[s]
                if cfg.coregister.when == "geometry_differs" and resample.same_grid(
                    moving, fixed, spacing_tol=1e-3, origin_tol=1e-3, direction_tol=1e-3
                ):
                    reg_log[s] = "same grid as the reference; not registered"
                    continue
                moved, result = register.coregister(moving, fixed, seed=cfg.coregister.seed)
                out.images[s] = moved
                reg_log[s] = {
                    "metric": float(result.metric),
                    "translation_mm": [float(v) for v in result.translation_mm],
                    "rotation_deg": float(result.rotation_deg),
                }
            out.log["coregister"] = reg_log
    if cfg.bias_correction is not None:
        from hybridrad.preprocess.bias import n4_bias_correction

        with stage("bias_correction"), timed("bias_correction"):
            b = cfg.bias_correction
            for s in b.sequences or seqs:
                if s in out.images:
                    out.images[s] = n4_bias_correction(
                        out.images[s],
                        shrink_factor=b.shrink_factor,
                        iterations=b.iterations,
                        name=f"case {case_id!r}, {s}",
                    )
    if cfg.denoise is not None:
        from hybridrad.preprocess.denoise import denoise

        with stage("denoise"), timed("denoise"):
            d = cfg.denoise
            for s in d.sequences or seqs:
                if s in out.images:
                    out.images[s] = denoise(
                        out.images[s], iterations=d.iterations, conductance=d.conductance
                    )
    if cfg.brain_extraction is not None:
        from hybridrad.preprocess.brain import extract_brain

        with stage("brain_extraction"), timed("brain_extraction"):
            be = cfg.brain_extraction
            wanted = [s for s in (be.sequence or [ref]) if s in seqs]
            copies = _copies(images, wanted)
            src = _pick(
                [s for s in wanted if s not in copies] or wanted,
                seqs,
                "brain_extraction.sequence",
                case_id,
            )
            found = extract_brain(out.images[src], method=be.method, name=f"case {case_id!r}")
            out.brain = found.mask
            out.log["brain_extraction"] = {
                "sequence": src,
                "method": found.method,
                "volume_ml": round(float(found.volume_ml), 3),
                "fallback_reason": found.fallback_reason,
                "skipped_copies": copies,
                "replaced_manifest_brain_mask": brain is not None,
            }
            if be.skull_strip:
                out.images = {s: _apply_mask(im, found.mask) for s, im in out.images.items()}
    if cfg.normalise is not None:
        with stage("normalise"), timed("normalise"):
            n = cfg.normalise
            region = (
                out.brain
                if n.region == "brain"
                else (_roi(out.mask, case_id) if n.region == "roi" else None)
            )
            stats: dict[str, Any] = {}
            for s, im in out.images.items():
                entry: dict[str, Any] = {}
                if n.clip_percentiles is not None:
                    im, clip_stats = intensity.clip_percentiles(
                        im,
                        region,
                        low=n.clip_percentiles[0],
                        high=n.clip_percentiles[1],
                        name=f"case {case_id!r}, {s}",
                    )
                    entry["clip"] = clip_stats.to_dict()
                im, z_stats = intensity.zscore(im, region, name=f"case {case_id!r}, {s}")
                if (
                    out.brain is not None
                    and cfg.brain_extraction
                    and cfg.brain_extraction.skull_strip
                ):
                    im = _apply_mask(im, out.brain)  # background stays 0 after the z-score
                entry["zscore"] = z_stats.to_dict()
                out.images[s] = im
                stats[s] = entry
            out.log["normalise"] = stats
    if cfg.ct_window is not None:
        with stage("ct_window"), timed("ct_window"):
            w = cfg.ct_window
            out.images = {
                s: intensity.ct_window(im, level=w.level, width=w.width)
                for s, im in out.images.items()
            }
    if cfg.crop is not None:
        with stage("crop"), timed("crop"):
            c = cfg.crop
            if c.to == "brain":
                region = out.brain
            elif c.to == "roi":
                region = _roi(out.mask, case_id)
            else:
                region = sitk.OtsuThreshold(out.images[ref], 0, 1)
            assert region is not None
            out.images = {
                s: geometry.crop_to_mask(im, region, c.margin_mm) for s, im in out.images.items()
            }
            if out.mask is not None:
                out.mask = geometry.crop_to_mask(out.mask, region, c.margin_mm)
            if out.brain is not None:
                out.brain = geometry.crop_to_mask(out.brain, region, c.margin_mm)
    out.log["seconds"] = timings
    return out


def _copies(images: dict[str, sitk.Image], names: Sequence[str]) -> dict[str, str]:
    """Which of ``names`` hold the same voxels as another sequence of the case (e.g. a
    T1c that is a copy of the FLAIR, as in several TCGA-LGG cases): name -> the original."""
    out: dict[str, str] = {}
    arrays = {s: sitk.GetArrayViewFromImage(im) for s, im in images.items()}
    for name in names:
        for other, arr in arrays.items():
            if (
                other != name
                and arr.shape == arrays[name].shape
                and np.array_equal(arr, arrays[name])
            ):
                out[name] = other
                break
    return out


def _roi(mask: sitk.Image | None, case_id: str) -> sitk.Image:
    if mask is None:
        raise PreprocessError(
            f"case {case_id!r} has no mask, and the pipeline normalises or crops to the ROI; "
            "fill the manifest's mask column or use region: brain / image"
        )
    return sitk.Cast(mask > 0, sitk.sitkUInt8)


def _apply_mask(image: sitk.Image, mask: sitk.Image) -> sitk.Image:
    """``image`` with voxels outside ``mask`` set to 0 (pixel type kept)."""
    arr = sitk.GetArrayFromImage(image)
    keep = sitk.GetArrayViewFromImage(mask) > 0
    out = sitk.GetImageFromArray(np.where(keep, arr, np.zeros((), arr.dtype)))
    out.CopyInformation(image)
    return out


# -- the cohort ----------------------------------------------------------------------------


class PreprocessTask:
    """Cohort-runner task: preprocess one case and write its images (picklable).

    Images go to ``out_dir/images/<case>/<sequence>.nii.gz``, with ``mask.nii.gz`` and
    ``brain_mask.nii.gz`` beside them when there are any.
    """

    stage_name = "preprocess"

    def __init__(self, config: PreprocessConfig, out_dir: str | os.PathLike[str]) -> None:
        self.config = config
        self.out_dir = Path(out_dir)

    def folder(self, case: Case) -> Path:
        """Where the case's files are written."""
        return self.out_dir / "images" / safe_filename(case.case_id)

    def plan(self) -> dict[str, Any]:
        """Everything besides the inputs that decides the output."""
        return {
            "stage": self.stage_name,
            "config": self.config.canonical(),
            "config_hash": self.config.hash,
            "out_dir": str(self.out_dir.resolve()),
            "versions": library_versions(),
        }

    def _inputs(self, case: Case) -> dict[str, str]:
        files = dict(case.images)
        if case.mask is not None:
            files[MASK] = case.mask
        if case.brain_mask is not None:
            files[BRAIN_MASK] = case.brain_mask
        return {k: file_sha256(p) for k, p in files.items()}

    def cache_key(self, case: Case) -> str:
        """Input-file hashes + the plan (config hash, versions, output folder)."""
        payload = canonical_json(
            {"case": case.case_id, "inputs": self._inputs(case), "plan": self.plan()}
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def cost(self, case: Case) -> int:
        """Bytes of the input images."""
        return sum(p.stat().st_size for p in case.images.values() if p.is_file())

    def verify_cached(self, case: Case, output: CaseOutput) -> bool:
        """A cache hit stands only while every file it wrote is there, unchanged."""
        diag = output.diagnostics
        names = [k.removeprefix("path__") for k in diag if k.startswith("path__")]
        if not names:
            return False
        for name in names:
            p = Path(str(diag[f"path__{name}"]))
            if p.parent != self.folder(case).resolve() or not p.is_file():
                return False
            if file_sha256(p) != diag.get(f"sha256__{name}"):
                return False
        return True

    def __call__(self, case: Case) -> CaseOutput:
        from hybridrad.io.images import write_image

        with stage("read"):
            images = {s: case.read(s) for s in case.images}
            mask = case.read_mask() if case.mask is not None else None
            brain = case.read_brain_mask() if case.brain_mask is not None else None
        result = run_pipeline(self.config, images, mask, brain=brain, case_id=case.case_id)
        folder = self.folder(case)
        diagnostics: dict[str, Any] = {}
        with stage("write"):
            items: list[tuple[str, sitk.Image | None]] = list(result.images.items())
            items += [(MASK, result.mask), (BRAIN_MASK, result.brain)]
            for name, image in items:
                if image is None:
                    continue
                path = write_image(image, folder / f"{name}.nii.gz")
                diagnostics[f"path__{name}"] = str(path.resolve())
                diagnostics[f"sha256__{name}"] = file_sha256(path)
        features: dict[str, float] = {
            f"seconds__{k}": float(v) for k, v in result.log["seconds"].items()
        }
        brain = result.log.get("brain_extraction")
        if brain:
            features["brain_volume_ml"] = float(brain["volume_ml"])
        diagnostics["log"] = json.dumps(result.log, default=str, sort_keys=True)
        diagnostics.update({f"input_sha256__{k}": v for k, v in self._inputs(case).items()})
        return CaseOutput(features=features, diagnostics=diagnostics)


def preprocess_cohort(
    cohort: Cohort,
    config: PreprocessConfig,
    out_dir: str | os.PathLike[str],
    *,
    jobs: int = 1,
    scheduler: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
    config_source: str | None = None,
) -> tuple[CohortResult, Path]:
    """Preprocess every case of ``cohort`` and write a manifest of the results.

    Parameters
    ----------
    cohort
        The cases.
    config
        The pipeline (:func:`load_pipeline`).
    out_dir
        Output folder: ``images/<case>/<sequence>.nii.gz`` (+ ``mask``, ``brain_mask``),
        ``manifest.csv`` (the processed cases, with a ``brain_mask`` column when the
        pipeline extracts the brain), ``steps.parquet`` (seconds per step and brain volume
        per case), ``steps.failures.csv``, ``steps.provenance.json`` (config, config hash,
        input hashes, versions) and ``log.jsonl`` (what each step measured, per case).
    jobs, scheduler, cache_dir, progress
        As :func:`hybridrad.runner.run_cohort`.

    Returns
    -------
    result : CohortResult
        Per-case step seconds; failures name the case, the step and the error.
    manifest : pathlib.Path
        The written manifest.
    """
    from hybridrad.io.manifest import write_manifest

    unknown = sorted(
        {
            name
            for step in (config.bias_correction, config.denoise)
            if step is not None
            for name in step.sequences or ()
        }
        - set(cohort.sequences)
    )
    if unknown:
        raise PreprocessConfigError(
            f"{config_source or 'pipeline'}: sequence(s) {unknown} named in bias_correction / "
            f"denoise are not in the manifest (its sequences: {list(cohort.sequences)}); "
            "fix the names or leave `sequences` out (all)"
        )
    out = Path(out_dir)
    task = PreprocessTask(config, out)
    result = run_cohort(
        cohort, task, jobs=jobs, scheduler=scheduler, cache_dir=cache_dir, progress=progress
    )
    rows = []
    logs = []
    for case in cohort:
        if case.case_id not in result.diagnostics.index:
            continue
        diag = result.diagnostics.loc[case.case_id]
        row: dict[str, Any] = {CASE_ID: case.case_id}
        for name in [*case.images, MASK, BRAIN_MASK]:
            value = diag.get(f"path__{name}")
            if isinstance(value, str) and value:
                row[name] = value
        if case.site is not None:
            row["site"] = case.site
        rows.append(row)
        logs.append({CASE_ID: case.case_id, **json.loads(str(diag["log"]))})
    manifest = write_manifest(pd.DataFrame(rows), out / "manifest.csv")
    with open(out / "log.jsonl", "w", encoding="utf-8") as fh:
        for entry in logs:
            fh.write(json.dumps(entry, default=str) + "\n")
    result.save(
        out / "steps.parquet",
        provenance={
            "command": "hybridrad preprocess",
            "manifest": str(cohort.source),
            "manifest_sha256": file_sha256(cohort.source) if cohort.source else None,
            "config_source": config_source,
            "config": config.canonical(),
            "config_hash": config.hash,
            "steps": config.steps(),
            "plan": task.plan(),
            "output_manifest": str(manifest),
            "versions": library_versions(),
        },
    )
    return result, manifest
