"""Handcrafted radiomics through pyradiomics, per case x sequence x region.

The engine takes pyradiomics parameter files as they are (validated against
pyradiomics' own schema; unknown keys are errors) and names every output column

``rad__<sequence>__<region>__<image type>__<class>__<feature>``

e.g. ``rad__flair__WT__wavelet-LLH__glcm__Contrast``. Shape features depend on the mask
only, so they are computed once per region and named with the sequence ``mask``:
``rad__mask__WT__original__shape__Sphericity``. Provenance (versions, config hash, file
hashes, voxel counts, pyradiomics diagnostics) goes to a separate diagnostics table.
"""

from __future__ import annotations

import copy
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from hybridrad.errors import (
    BinEdgeOverflowWarning,
    EmptyROIError,
    ImageDimensionError,
    MaskGeometryError,
    NonFiniteImageError,
    RadiomicsConfigError,
    ROITooSmallError,
)
from hybridrad.features.engine import ENGINES
from hybridrad.io.images import Geometry
from hybridrad.io.labels import LabelMap
from hybridrad.io.manifest import Case, Cohort
from hybridrad.io.yamlfile import read_mapping
from hybridrad.provenance import canonical_json, config_hash, file_sha256, library_versions
from hybridrad.runner import CaseOutput, CohortResult, run_cohort, stage

log = logging.getLogger(__name__)

PREFIX = "rad"
SEP = "__"
SHAPE_CLASSES = ("shape", "shape2D")
#: Top-level keys of a pyradiomics parameter file (hybridrad adds ``engine``).
PYRADIOMICS_KEYS = ("setting", "imageType", "featureClass", "voxelSetting")
#: Versions that can change a radiomics value; part of every cache key.
RADIOMICS_PACKAGES = ("hybridrad", "pyradiomics", "SimpleITK", "numpy", "PyWavelets", "scipy")


def shipped_configs() -> dict[str, Path]:
    """The curated parameter files shipped in ``configs/radiomics/``, by name."""
    folder = resources.files("hybridrad") / "configs" / "radiomics"
    return {
        Path(str(p)).stem: Path(str(p))
        for p in folder.iterdir()
        if str(p).endswith((".yaml", ".yml"))
    }


#: hybridrad's own keys in a config's ``setting`` block (not passed to pyradiomics).
#: ``normalizeRegion: brain`` z-scores each image inside the case's brain mask (the
#: manifest's ``brain_mask`` column, written by ``hybridrad preprocess``) and scales it by
#: ``normalizeScale``; ``image`` (the default) leaves normalisation to pyradiomics'
#: ``normalize``, which z-scores over every voxel of the image, background included.
NORMALIZE_REGIONS = ("image", "brain")


def _validate_params(params: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Validate a parameter mapping against pyradiomics' schema (pykwalify); hybridrad's
    own ``setting`` keys (``normalizeRegion``) are checked here and kept."""
    own: dict[str, Any] = {}
    setting = params.get("setting")
    if isinstance(setting, Mapping) and "normalizeRegion" in setting:
        region = setting["normalizeRegion"]
        if region not in NORMALIZE_REGIONS:
            raise RadiomicsConfigError(
                f"invalid pyradiomics parameters in {source}: setting normalizeRegion "
                f"{region!r}; use one of {', '.join(NORMALIZE_REGIONS)}"
            )
        if region == "brain" and setting.get("normalize"):
            raise RadiomicsConfigError(
                f"invalid pyradiomics parameters in {source}: normalizeRegion: brain already "
                "z-scores inside the brain mask; set normalize: false (pyradiomics' normalize "
                "would z-score again over the whole image)"
            )
        own["normalizeRegion"] = region
        params = {**params, "setting": {k: v for k, v in setting.items() if k != "normalizeRegion"}}
    validated = _validate_pyradiomics(params, source)
    if own:
        validated["setting"] = {**(validated.get("setting") or {}), **own}
    return validated


def _validate_pyradiomics(params: Mapping[str, Any], source: str) -> dict[str, Any]:
    import pykwalify.core
    import pykwalify.errors
    from radiomics import getParameterValidationFiles

    schema_file, schema_funcs = getParameterValidationFiles()
    core = pykwalify.core.Core(
        source_data=copy.deepcopy(dict(params)),
        schema_files=[schema_file],
        extensions=[schema_funcs],
    )
    try:
        validated: dict[str, Any] = core.validate(raise_exception=True)
    except (pykwalify.errors.PyKwalifyException, ValueError, TypeError) as exc:
        detail = getattr(exc, "msg", None) or str(exc)
        raise RadiomicsConfigError(
            f"invalid pyradiomics parameters in {source}: {detail}. See the pyradiomics "
            "parameter-file documentation for the allowed keys and values."
        ) from exc
    return validated


@dataclass(frozen=True)
class RadiomicsConfig:
    """A validated pyradiomics parameter set.

    Parameters
    ----------
    params
        The parameter mapping (``setting``, ``imageType``, ``featureClass``,
        ``voxelSetting``), as in a pyradiomics YAML file.
    name
        Where it came from (file stem or preset name).

    Examples
    --------
    >>> cfg = RadiomicsConfig.load("ibsi")
    >>> cfg.params["setting"]["binWidth"]
    1.0
    >>> RadiomicsConfig({"setting": {"binWidht": 5}})
    Traceback (most recent call last):
    ...
    hybridrad.errors.RadiomicsConfigError: invalid pyradiomics parameters in <dict>: ...
    """

    params: dict[str, Any]
    name: str = "custom"

    def __post_init__(self) -> None:
        if not isinstance(self.params, Mapping):
            raise RadiomicsConfigError(f"{self.name}: parameters must be a mapping")
        source = "<dict>" if self.name == "custom" else self.name
        unknown = set(self.params) - {*PYRADIOMICS_KEYS, "engine"}
        if unknown:
            raise RadiomicsConfigError(
                f"invalid pyradiomics parameters in {source}: unknown top-level key(s) "
                f"{sorted(unknown)}; allowed: {', '.join(PYRADIOMICS_KEYS)}, engine"
            )
        engine = self.params.get("engine", ENGINES[0])
        if engine not in ENGINES:
            raise RadiomicsConfigError(
                f"invalid radiomics config {source}: engine {engine!r}; use one of "
                f"{', '.join(ENGINES)} (default {ENGINES[0]})"
            )
        params = {k: v for k, v in self.params.items() if k != "engine"}
        validated = _validate_params(params, source)
        if "engine" in self.params:
            validated["engine"] = engine
        object.__setattr__(self, "params", validated)
        if engine == "native":
            self.extractor()  # an unsupported setting is an error now, not at the first case

    @classmethod
    def load(
        cls, spec: str | os.PathLike[str] | Mapping[str, Any] | RadiomicsConfig
    ) -> RadiomicsConfig:
        """From a shipped preset name (``mri_glioma``, ``ct_default``, ``ibsi``), a YAML
        file, a mapping, or an existing config."""
        if isinstance(spec, RadiomicsConfig):
            return spec
        if isinstance(spec, Mapping):
            return cls(dict(spec))
        presets = shipped_configs()
        if isinstance(spec, str) and spec in presets:
            path = presets[spec]
        else:
            path = Path(spec)
            if not path.is_file():
                raise RadiomicsConfigError(
                    f"radiomics config {str(spec)!r} is neither a shipped preset "
                    f"({', '.join(sorted(presets))}) nor an existing YAML file"
                )
        data = read_mapping(
            path,
            RadiomicsConfigError,
            "radiomics config",
            "Write pyradiomics parameters (imageType, featureClass, setting), as in the presets.",
        )
        return cls(data, name=str(path))

    @property
    def engine(self) -> str:
        """``pyradiomics`` (the default) or ``native`` (:mod:`hybridrad.features.engine`)."""
        return str(self.params.get("engine", ENGINES[0]))

    def with_engine(self, engine: str | None) -> RadiomicsConfig:
        """This config computed by ``engine`` (None keeps the config's own)."""
        if engine is None or engine == self.engine:
            return self
        return RadiomicsConfig({**self.params, "engine": engine}, name=self.name)

    @property
    def settings(self) -> dict[str, Any]:
        """The ``setting`` block."""
        return dict(self.params.get("setting") or {})

    @property
    def hash(self) -> str:
        """Hash of the canonical parameters (first 16 hex digits of SHA-256)."""
        return config_hash(self.params)

    @property
    def normalize_region(self) -> str:
        """``brain`` (z-score inside the case's brain mask) or ``image`` (pyradiomics)."""
        return str(self.settings.get("normalizeRegion", "image"))

    @property
    def force2d(self) -> bool:
        """Whether features are computed slice by slice."""
        return bool(self.settings.get("force2D", False))

    def extractor(self, *, shape: bool = True) -> Any:
        """A configured ``RadiomicsFeatureExtractor``, or a
        :class:`~hybridrad.features.engine.NativeExtractor` for ``engine: native``
        (shape classes off if ``shape=False``)."""
        params = copy.deepcopy(self.params)
        params.pop("engine", None)
        if params.get("setting"):
            params["setting"].pop("normalizeRegion", None)
        if self.engine == "native":
            from hybridrad.features.engine import NativeExtractor

            return NativeExtractor(params, shape=shape)

        from radiomics.featureextractor import RadiomicsFeatureExtractor

        ext = RadiomicsFeatureExtractor(params)
        if not shape:
            enabled = {k: v for k, v in ext.enabledFeatures.items() if k not in SHAPE_CLASSES}
            ext.disableAllFeatures()
            ext.enableFeaturesByName(**enabled)
        return ext


def split_feature_key(key: str) -> tuple[str, str, str]:
    """Split a pyradiomics key into (image type, class, feature).

    Examples
    --------
    >>> split_feature_key("wavelet-LLH_glcm_Contrast")
    ('wavelet-LLH', 'glcm', 'Contrast')
    >>> split_feature_key("log-sigma-2-0-mm-3D_firstorder_Mean")
    ('log-sigma-2-0-mm-3D', 'firstorder', 'Mean')
    """
    image_type, cls, feature = key.rsplit("_", 2)
    return image_type, cls, feature


def column_name(sequence: str, region: str, key: str) -> str:
    """Namespaced column of a pyradiomics feature key."""
    return SEP.join((PREFIX, sequence, region, *split_feature_key(key)))


def _region_image(mask: sitk.Image, region: np.ndarray) -> sitk.Image:
    """A uint8 0/1 image of the boolean ``region`` array, on the grid of ``mask``."""
    out = sitk.GetImageFromArray(region.astype(np.uint8))
    out.CopyInformation(mask)
    return out


@dataclass
class RadiomicsTask:
    """The per-case radiomics job the cohort runner executes (picklable).

    Parameters
    ----------
    config
        The pyradiomics parameters.
    label_map
        Meaning of mask values.
    sequences
        Sequences to extract from (default: all of the cohort's).
    regions
        Regions of ``label_map`` to extract (default: all).
    tolerance
        Largest geometry difference between image and mask (mm / direction cosine).
    """

    config: RadiomicsConfig
    label_map: LabelMap
    sequences: tuple[str, ...]
    regions: tuple[str, ...] = ()
    tolerance: float = 1e-3
    stage_name: str = "radiomics"
    _extractors: dict[bool, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.regions:
            self.regions = tuple(self.label_map.regions)
        unknown = [r for r in self.regions if r not in self.label_map.regions]
        if unknown:
            raise RadiomicsConfigError(
                f"region(s) {unknown} not in label map {self.label_map.name!r} "
                f"(regions: {list(self.label_map.regions)})"
            )
        if not self.sequences:
            raise RadiomicsConfigError("no sequences to extract from")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_extractors"] = {}  # rebuilt lazily in each worker
        return state

    # --- runner protocol ---------------------------------------------------------------

    def plan(self) -> dict[str, Any]:
        """Everything besides the input files that determines the output."""
        return {
            "stage": self.stage_name,
            "config": self.config.params,
            "label_map": self.label_map.to_dict(),
            "sequences": list(self.sequences),
            "regions": list(self.regions),
            "tolerance": self.tolerance,
            "versions": library_versions(RADIOMICS_PACKAGES),
        }

    def input_hashes(self, case: Case) -> dict[str, str]:
        """SHA-256 of each input file of ``case`` (missing files are left out)."""
        files = {s: case.images.get(s) for s in self.sequences}
        files["mask"] = case.mask
        if self.config.normalize_region == "brain":
            files["brain_mask"] = case.brain_mask
        return {k: file_sha256(p) for k, p in files.items() if p is not None and p.exists()}

    def cache_key(self, case: Case) -> str:
        """Content-addressed key: input hashes + plan (config, versions ...)."""
        import hashlib

        payload = canonical_json({"inputs": self.input_hashes(case), "plan": self.plan()})
        return hashlib.sha256(payload.encode()).hexdigest()

    def cost(self, case: Case) -> int:
        """Relative cost, for scheduling the largest cases first (input bytes)."""
        paths = [case.images.get(s) for s in self.sequences] + [case.mask]
        return sum(p.stat().st_size for p in paths if p is not None and p.is_file())

    def read(self, case: Case) -> tuple[dict[str, sitk.Image], sitk.Image]:
        """The case's images (normalised inside its brain mask when the config says
        ``normalizeRegion: brain``) and its label mask, as extraction uses them."""
        with stage("read"):
            allow_2d = self.config.force2d  # 2D images only where features are 2D
            mask = case.read_mask(allow_2d=allow_2d)
            images = {s: case.read(s, allow_2d=allow_2d) for s in self.sequences}
        if self.config.normalize_region == "brain":
            with stage("normalise"):
                images = self._normalise_in_brain(case, images)
        return images, mask

    def __call__(self, case: Case) -> CaseOutput:
        images, mask = self.read(case)
        output = self.extract(case.case_id, images, mask)
        output.diagnostics.update({f"sha256__{k}": v for k, v in self.input_hashes(case).items()})
        return output

    def extract(self, cid: str, images: Mapping[str, sitk.Image], mask: sitk.Image) -> CaseOutput:
        """Features of already loaded images (one per sequence) and their label mask."""
        with stage("check"):
            region_masks = self._check(cid, images, mask)
        features: dict[str, float] = {}
        diagnostics: dict[str, Any] = {
            "config_name": Path(self.config.name).name,
            "config_hash": self.config.hash,
            "engine": self.config.engine,
            **{f"versions__{k}": v for k, v in library_versions(RADIOMICS_PACKAGES).items()},
        }
        for region, rmask in region_masks.items():
            diagnostics[f"voxels__{region}"] = int(
                np.count_nonzero(sitk.GetArrayViewFromImage(rmask))
            )
            for seq, result in self._execute(images, rmask, region):
                for key, value in result.items():
                    if key.startswith("diagnostics_"):
                        if not key.startswith(
                            ("diagnostics_Versions", "diagnostics_Configuration")
                        ):
                            diagnostics[SEP.join((seq, region, key))] = str(value)
                        continue
                    _, cls, _ = split_feature_key(key)
                    name_seq = "mask" if cls in SHAPE_CLASSES else seq
                    features[column_name(name_seq, region, key)] = float(value)
        return CaseOutput(features=features, diagnostics=diagnostics)

    # --- helpers ---------------------------------------------------------------------

    def _normalise_in_brain(
        self, case: Case, images: Mapping[str, sitk.Image]
    ) -> dict[str, sitk.Image]:
        """Each image z-scored inside the case's brain mask, times ``normalizeScale``."""
        from hybridrad.errors import GeometryError
        from hybridrad.preprocess.intensity import zscore

        brain = case.read_brain_mask()
        scale = float(self.config.settings.get("normalizeScale", 1.0))
        out: dict[str, sitk.Image] = {}
        for seq, image in images.items():
            problem = Geometry.of(brain).mismatch(Geometry.of(image), self.tolerance)
            if problem:
                raise GeometryError(
                    f"case {case.case_id!r}: the brain mask {case.brain_mask} is not on the grid "
                    f"of the {seq!r} image ({problem}); use the brain mask `hybridrad "
                    "preprocess` wrote with these images"
                )
            z, _ = zscore(image, brain)
            out[seq] = z * scale if scale != 1.0 else z
        return out

    def _execute(
        self, images: Mapping[str, sitk.Image], rmask: sitk.Image, region: str
    ) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """(sequence, pyradiomics-keyed result) of each sequence; shape with the first.

        The native engine takes all sequences of the region as one batch."""
        if self.config.engine == "native":
            with stage(f"extract:{region}"):
                batch = self._extractor(shape=True).execute_many(
                    {s: images[s] for s in self.sequences}, rmask, label=1
                )
            yield from batch.items()
            return
        for i, seq in enumerate(self.sequences):
            with stage(f"extract:{seq}/{region}"):
                result = self._extractor(shape=i == 0).execute(images[seq], rmask, label=1)
            yield seq, result

    def _extractor(self, *, shape: bool) -> Any:
        if shape not in self._extractors:
            self._extractors[shape] = self.config.extractor(shape=shape)
        return self._extractors[shape]

    def _check(
        self, cid: str, images: Mapping[str, sitk.Image], mask: sitk.Image
    ) -> dict[str, sitk.Image]:
        """Per-case input checks with messages that name the case and the fix."""
        settings = self.config.settings
        mgeom = Geometry.of(mask)
        tol = float(settings.get("geometryTolerance") or self.tolerance)
        for seq, img in images.items():
            if img.GetNumberOfComponentsPerPixel() != 1:
                raise ImageDimensionError(
                    f"case {cid!r}: {seq!r} has {img.GetNumberOfComponentsPerPixel()} "
                    "components per voxel; give one scalar volume per sequence"
                )
            size = img.GetSize()
            if not self.config.force2d and (img.GetDimension() < 3 or min(size) < 2):
                raise ImageDimensionError(
                    f"case {cid!r}: {seq!r} is 2D (size {size}) but config "
                    f"{Path(self.config.name).name} computes 3D features; set "
                    "'force2D: true' in its setting block, or give a 3D volume"
                )
            arr = sitk.GetArrayViewFromImage(img)
            if arr.dtype.kind == "f":
                bad = int(np.count_nonzero(~np.isfinite(arr)))
                if bad:
                    raise NonFiniteImageError(
                        f"case {cid!r}: {seq!r} has {bad} NaN/Inf voxels; fix the file or "
                        "replace them (e.g. with the background value) before extraction"
                    )
            why = Geometry.of(img).mismatch(mgeom, tol)
            if why:
                raise MaskGeometryError(
                    f"case {cid!r}: mask is not on the grid of {seq!r}: {why}. Resample the "
                    "mask onto the image (nearest neighbour) or raise geometryTolerance"
                )
        # The label map's own check, as `validate` runs it: values it does not name are an
        # error (never silently left out), ignored values become background, and a
        # nonzero map (binary) reads every non-zero voxel as its label.
        marr = self.label_map.check_values(sitk.GetArrayViewFromImage(mask), f"case {cid!r}: mask")
        present: set[int] | None = None
        union: np.ndarray | None = None
        min_dims = int(settings.get("minimumROIDimensions", 2))
        min_size = settings.get("minimumROISize")
        out = {}
        for region in self.regions:
            values = self.label_map.regions[region]
            region_arr = self.label_map.region_mask(marr, region)
            if not region_arr.any():
                if present is None:
                    present = {int(v) for v in np.unique(marr).tolist()}
                raise EmptyROIError(
                    f"case {cid!r}: region {region!r} (mask values "
                    f"{'any non-zero' if self.label_map.nonzero else list(values)}) is absent "
                    f"from the mask (values present: {sorted(present)}). Drop the region "
                    "(--regions), check the label map (--labels), or fix the mask"
                )
            rmask = _region_image(mask, region_arr)
            idx = np.nonzero(region_arr)
            n = len(idx[0])
            dims = sum(int(np.ptp(i) > 0) for i in idx)
            if dims < min_dims or (min_size is not None and n < int(min_size)):
                raise ROITooSmallError(
                    f"case {cid!r}: region {region!r} has {n} voxel(s) spanning {dims} "
                    f"dimension(s); the config needs at least {min_dims} dimension(s)"
                    + (f" and {min_size} voxels" if min_size is not None else "")
                    + ". Check the mask, or lower minimumROIDimensions/minimumROISize"
                )
            out[region] = rmask
            union = region_arr if union is None else union | region_arr
        if union is not None:
            self._warn_bin_edge_overflow(cid, images, union)
        return out

    def _warn_bin_edge_overflow(
        self, cid: str, images: Mapping[str, sitk.Image], roi: np.ndarray
    ) -> None:
        """One warning per sequence whose integer pixel type cannot hold pyradiomics' top
        bin edge: ``getBinEdges`` computes ``maximum + 2 * binWidth`` in the image's own
        pixel type, which wraps around (e.g. uint8 TCGA-LGG scans, max 255, binWidth 25)
        and leaves one bin for everything above the first edge. Both engines give those
        numbers (the native engine reproduces pyradiomics), so they are named here."""
        settings = self.config.settings
        if settings.get("normalize") or self.config.normalize_region == "brain":
            return  # normalised images are floating point
        if settings.get("binCount") is not None:
            return
        width = float(settings.get("binWidth", 25))
        for seq, img in images.items():
            arr = sitk.GetArrayViewFromImage(img)
            if arr.dtype.kind not in "iu":
                continue
            top = float(arr[roi].max()) + 2 * width
            if top > np.iinfo(arr.dtype).max:
                warnings.warn(
                    f"case {cid!r}: {seq!r} is {arr.dtype} and its ROI maximum + 2 x "
                    f"binWidth ({top:g}) overflows that type in pyradiomics' bin edges, so "
                    "the intensity features would be computed on wrapped-around bins; set "
                    "normalize: true, use binCount, or store the image as float or int16",
                    BinEdgeOverflowWarning,
                    stacklevel=2,
                )


def extract_radiomics(
    cohort: Cohort,
    config: str | os.PathLike[str] | Mapping[str, Any] | RadiomicsConfig = "mri_glioma",
    *,
    sequences: Sequence[str] | None = None,
    regions: Sequence[str] | None = None,
    jobs: int = 1,
    scheduler: str | Any | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
    tolerance: float = 1e-3,
) -> CohortResult:
    """Extract handcrafted features for every case of ``cohort``.

    Parameters
    ----------
    cohort
        Cases with masks.
    config
        Shipped preset (``mri_glioma``, ``ct_default``, ``ibsi``), YAML path, mapping or
        :class:`RadiomicsConfig`.
    sequences, regions
        What to extract (default: every sequence x every region of the label map).
    jobs
        Local worker processes (1 runs in this process).
    scheduler
        Address of a Dask distributed scheduler (``tcp://host:8786``) or a
        ``distributed.Client``; overrides ``jobs``.
    cache_dir
        Per-case result cache; a rerun recomputes nothing already finished.
    progress
        Show a progress bar.
    tolerance
        Image/mask geometry tolerance when the config sets no ``geometryTolerance``.

    Returns
    -------
    CohortResult
        ``features`` (indexed by case_id), ``diagnostics`` and ``failures`` tables.
    """
    task = RadiomicsTask(
        config=RadiomicsConfig.load(config),
        label_map=cohort.label_map,
        sequences=tuple(sequences or cohort.sequences),
        regions=tuple(regions or ()),
        tolerance=tolerance,
    )
    return run_cohort(
        cohort, task, jobs=jobs, scheduler=scheduler, cache_dir=cache_dir, progress=progress
    )


def add_extraction_arguments(parser: Any, *, cache_default: str) -> None:
    """The runner flags shared by ``extract`` and ``contour-agreement``: ``--jobs``,
    ``--scheduler``, ``--cache-dir`` (default ``cache_default``), ``--tolerance`` and
    ``--no-progress``."""
    parser.add_argument("--jobs", type=int, default=1, help="local worker processes (default 1)")
    parser.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    parser.add_argument(
        "--cache-dir", type=Path, help=f"per-case result cache (default: {cache_default})"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=1e-3,
        help="image/mask geometry tolerance if the config sets none",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
