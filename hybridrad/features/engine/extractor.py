"""The native extractor: pyradiomics' parameter files in, pyradiomics' feature keys out.

:class:`NativeExtractor` is a drop-in for ``RadiomicsFeatureExtractor.execute`` on the
settings, image types and feature classes this engine implements (anything else is an
:class:`~hybridrad.errors.EngineUnsupportedError` when the extractor is built, never a
silent substitute). The work per case is:

1. :func:`~hybridrad.features.engine.prep.prepare_many`: normalise, resample, crop,
   check and re-segment the mask once, filter every image type of every sequence, and
   bin each image's ROI voxels: ``levels`` ``(B, N)`` for B = sequences x image types.
2. Shape once per mask.
3. Each texture class once per batch of image types that share its settings, from the
   ROI's paired voxel indices (:class:`~hybridrad.features.engine.roi.Roi`).

CPU seconds per step are summed in :attr:`NativeExtractor.timings`.
"""

from __future__ import annotations

import time
import warnings
from collections import OrderedDict, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import SimpleITK as sitk

from hybridrad.errors import EngineUnsupportedError, HybridradWarning
from hybridrad.features.engine.glcm import DEPRECATED as GLCM_DEPRECATED
from hybridrad.features.engine.gldm import GLDM_DEPRECATED
from hybridrad.features.engine.prep import IMAGE_TYPES

#: Feature classes the native engine computes.
FEATURE_CLASSES = ("firstorder", "shape", "shape2D", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
TEXTURE_CLASSES = ("glcm", "glrlm", "glszm", "gldm", "ngtdm")
#: pyradiomics settings the native engine honours (every other key is refused).
SETTINGS = frozenset(
    {
        "minimumROIDimensions",
        "minimumROISize",
        "geometryTolerance",
        "correctMask",
        "additionalInfo",
        "label",
        "binWidth",
        "binCount",
        "normalize",
        "normalizeScale",
        "removeOutliers",
        "resampledPixelSpacing",
        "interpolator",
        "padDistance",
        "distances",
        "force2D",
        "force2Ddimension",
        "resegmentRange",
        "resegmentMode",
        "resegmentShape",
        "preCrop",
        "sigma",
        "start_level",
        "level",
        "wavelet",
        "gradientUseSpacing",
        "voxelArrayShift",
        "symmetricalGLCM",
        "weightingNorm",
        "gldm_a",
    }
)
#: Features pyradiomics 3.0.1 lists but never computes (their methods raise a
#: DeprecationWarning and the key is left out of its output).
REMOVED = {"glcm": GLCM_DEPRECATED, "gldm": GLDM_DEPRECATED}
#: Settings a texture class reads (image types with equal values share one batch).
_CLASS_SETTINGS = (
    "distances",
    "symmetricalGLCM",
    "weightingNorm",
    "gldm_a",
    "force2D",
    "force2Ddimension",
    "voxelArrayShift",
)


def feature_names(cls: str) -> dict[str, bool]:
    """pyradiomics' feature names of class ``cls``, mapped to whether they are deprecated."""
    from radiomics import getFeatureClasses

    names: dict[str, bool] = getFeatureClasses()[cls].getFeatureNames()
    return names


def _fail(what: str) -> EngineUnsupportedError:
    return EngineUnsupportedError(
        f"the native feature engine does not implement {what}; set `engine: pyradiomics` in the "
        "config (or `--engine pyradiomics`) for this one"
    )


class NativeExtractor:
    """Compute pyradiomics features natively (vectorised numpy), batched per case.

    Parameters
    ----------
    params
        Validated pyradiomics parameters (``setting``, ``imageType``, ``featureClass``),
        as :class:`~hybridrad.features.radiomics.RadiomicsConfig` holds them.
    shape
        Compute the enabled shape classes (False: texture and first order only, as
        hybridrad's pyradiomics engine does for every sequence after the first).

    Raises
    ------
    EngineUnsupportedError
        For a setting, image type, feature class or feature this engine does not compute.

    Examples
    --------
    >>> ext = NativeExtractor({"imageType": {"Original": {}}, "featureClass": {"glcm": ["Contrast"]},
    ...                        "setting": {"binWidth": 25}})
    >>> ext.enabled
    {'glcm': ['Contrast']}
    >>> NativeExtractor({"imageType": {"LBP3D": {}}})
    Traceback (most recent call last):
    ...
    hybridrad.errors.EngineUnsupportedError: the native feature engine does not implement image type LBP3D; ...
    """

    def __init__(self, params: Mapping[str, Any], *, shape: bool = True) -> None:
        self.shape = shape
        if params.get("voxelSetting"):
            raise _fail("voxel-based extraction (voxelSetting)")
        self.settings: dict[str, Any] = dict(params.get("setting") or {})
        self.settings.pop("normalizeRegion", None)  # hybridrad's own key, applied before
        for key in self.settings:
            if key not in SETTINGS:
                raise _fail(f"setting {key!r}")
        image_types = params.get("imageType") or {"Original": {}}
        self.image_types: dict[str, dict[str, Any]] = {}
        for name, custom in image_types.items():
            if name not in IMAGE_TYPES:
                raise _fail(f"image type {name}")
            custom = dict(custom or {})
            for key in custom:
                if key not in SETTINGS:
                    raise _fail(f"setting {key!r} of image type {name}")
            self.image_types[name] = custom
        classes = params.get("featureClass")
        #: pyradiomics: no featureClass block enables every class (shape2D then only
        #: where it applies, 2D images)
        self._all_classes = not classes
        if not classes:
            classes = {c: None for c in FEATURE_CLASSES}
        self.enabled: dict[str, list[str]] = {}
        for cls, wanted in classes.items():
            if cls not in FEATURE_CLASSES:
                raise _fail(f"feature class {cls!r}")
            known = feature_names(cls)
            if wanted:
                unknown = [f for f in wanted if f not in known]
                if unknown:
                    raise _fail(f"{cls} feature(s) {unknown}")
                removed = [f for f in wanted if f in REMOVED.get(cls, ())]
                if removed:
                    warnings.warn(
                        f"{cls} feature(s) {removed} are removed from pyradiomics (each equals "
                        "another feature; see pyradiomics' 'removed features' page): neither "
                        "engine computes them, so they are left out of the output",
                        HybridradWarning,
                        stacklevel=2,
                    )
                self.enabled[cls] = [f for f in wanted if f not in removed]
            else:
                self.enabled[cls] = [f for f, deprecated in known.items() if not deprecated]
        self.timings: dict[str, float] = defaultdict(float)

    @contextmanager
    def _timed(self, step: str) -> Iterator[None]:
        start = time.process_time()
        try:
            yield
        finally:
            self.timings[step] += time.process_time() - start

    # --- public ------------------------------------------------------------------------

    def execute(
        self, image: sitk.Image, mask: sitk.Image, label: int | None = None
    ) -> OrderedDict[str, Any]:
        """Features of one image, keyed as pyradiomics keys them
        (``original_shape_Sphericity``, ``wavelet-LLH_glcm_Contrast``, ...)."""
        return self.execute_many({"image": image}, mask, label=label)["image"]

    def execute_many(
        self,
        images: Mapping[str, sitk.Image],
        mask: sitk.Image,
        *,
        label: int | None = None,
        shape: bool | None = None,
    ) -> dict[str, OrderedDict[str, Any]]:
        """Features of several images (sequences) of one case over one mask, batched.

        Shape features (mask only) are computed once and put in the first image's result
        (none when ``shape`` is False; None: the extractor's ``shape``). Returns one
        ordered mapping per image.
        """
        if shape is None:
            shape = self.shape
        from hybridrad.features.engine.prep import prepare_many

        label = int(label if label is not None else self.settings.get("label", 1))
        with self._timed("prepare"):
            prepared = prepare_many(images, mask, self.settings, self.image_types, label=label)
        results: dict[str, OrderedDict[str, Any]] = {seq: OrderedDict() for seq in images}
        first = next(iter(images))
        for seq, prep in prepared.items():
            for name, value in prep.diagnostics.items():
                results[seq][f"diagnostics_{name}"] = value
        if shape:
            results[first].update(self._shape(prepared[first]))
        # batches: sequences sharing one ROI x image types sharing the class settings
        groups: dict[tuple[Any, ...], list[tuple[str, int]]] = defaultdict(list)
        for seq, prep in prepared.items():
            for b, settings in enumerate(prep.settings):
                key = (id(prep.roi), *(_freeze(settings.get(k)) for k in _CLASS_SETTINGS))
                groups[key].append((seq, b))
        for members in groups.values():
            self._texture_batch(prepared, members, results)
        return {
            seq: self._in_pyradiomics_order(res, prepared[seq].names)
            for seq, res in results.items()
        }

    def _in_pyradiomics_order(
        self, result: OrderedDict[str, Any], names: Sequence[str]
    ) -> OrderedDict[str, Any]:
        """Diagnostics, shape, then image type by image type, class by class (the order of
        pyradiomics' own output)."""
        head = [k for k in result if k.startswith(("diagnostics_", "original_shape"))]
        body = [
            f"{name}_{cls}_{f}"
            for name in names
            for cls, feats in self.enabled.items()
            if not cls.startswith("shape")
            for f in feats
        ]
        return OrderedDict((k, result[k]) for k in (*head, *body))

    # --- internals ---------------------------------------------------------------------

    def _shape(self, prep: Any) -> OrderedDict[str, Any]:
        from hybridrad.features.engine import shape as shape_mod

        out: OrderedDict[str, Any] = OrderedDict()
        ndim = prep.shape_mask.ndim
        if "shape" in self.enabled:
            if ndim == 3:
                with self._timed("shape"):
                    values = shape_mod.shape_features(
                        prep.shape_mask, prep.shape_spacing, features=self.enabled["shape"]
                    )
                out.update((f"original_shape_{k}", values[k]) for k in self.enabled["shape"])
            else:  # as pyradiomics: 3D shape of a 2D image is left out, with a warning
                warnings.warn(
                    "shape features need a 3D image; this one is 2D, so they are left out "
                    "(enable shape2D for 2D shape)",
                    HybridradWarning,
                    stacklevel=3,
                )
        if "shape2D" in self.enabled:
            if ndim == 2:
                with self._timed("shape2D"):
                    values = shape_mod.shape2d_features(
                        prep.shape_mask[None],
                        prep.shape_spacing,
                        force2d_dimension=0,
                        features=self.enabled["shape2D"],
                    )
                out.update((f"original_shape2D_{k}", values[k]) for k in self.enabled["shape2D"])
            elif not self._all_classes:
                # pyradiomics 3.0.1 computes shape2D of 2D images only (for a 3D image it
                # logs a warning or raises, whatever force2D says)
                raise _fail("shape2D of a 3D image (pyradiomics 3.0.1 does not compute it either)")
        return out

    def _texture_batch(
        self,
        prepared: Mapping[str, Any],
        members: Sequence[tuple[str, int]],
        results: dict[str, OrderedDict[str, Any]],
    ) -> None:
        seq0, b0 = members[0]
        prep0 = prepared[seq0]
        roi = prep0.roi
        settings = prep0.settings[b0]
        levels = np.stack([prepared[s].levels[b] for s, b in members])
        names = [(s, prepared[s].names[b]) for s, b in members]
        for cls, feats in self.enabled.items():
            if cls.startswith("shape"):
                continue
            with self._timed(cls):
                if cls == "firstorder":
                    from hybridrad.features.engine.firstorder import firstorder_features

                    out = firstorder_features(
                        np.stack([prepared[s].values[b] for s, b in members]),
                        levels,
                        voxel_volume=float(np.prod(roi.spacing)),
                        voxel_array_shift=float(settings.get("voxelArrayShift", 0)),
                        features=feats,
                    )
                else:
                    out = _texture(cls, levels, roi, feats, settings)
            for row, (seq, name) in enumerate(names):
                results[seq].update((f"{name}_{cls}_{f}", out[f][row]) for f in feats)


def _texture(
    cls: str, levels: np.ndarray, roi: Any, feats: Sequence[str], settings: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """One texture class's features of a batch (pyradiomics' defaults where unset)."""
    from hybridrad.features.engine import glcm, gldm, glrlm, glszm, ngtdm

    force2d = int(settings.get("force2Ddimension", 0)) if settings.get("force2D") else None
    distances = [int(d) for d in settings.get("distances") or [1]]
    weighting = settings.get("weightingNorm")
    if cls == "glcm":
        return glcm.glcm_features(
            levels,
            roi,
            distances=distances,
            symmetrical=bool(settings.get("symmetricalGLCM", True)),
            weighting_norm=weighting,
            force2d_dimension=force2d,
            features=feats,
        )
    if cls == "glrlm":
        return glrlm.glrlm_features(
            levels, roi, weighting_norm=weighting, force2d_dimension=force2d, features=feats
        )
    if cls == "glszm":
        return glszm.glszm_features(levels, roi, force2d_dimension=force2d, features=feats)
    if cls == "gldm":
        return gldm.gldm_features(
            levels,
            roi,
            distances=distances,
            alpha=float(settings.get("gldm_a", 0)),
            force2d_dimension=force2d,
            features=feats,
        )
    if cls == "ngtdm":
        return ngtdm.ngtdm_features(
            levels, roi, distances=distances, force2d_dimension=force2d, features=feats
        )
    raise _fail(f"feature class {cls!r}")


def _freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(value)
    return value
