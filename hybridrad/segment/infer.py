"""Inference: sliding windows on the foreground box, flip TTA, postprocessing, and
masks written back in each case's source geometry.

:class:`Segmenter` segments one case; :class:`SegmentTask` wraps it for the cohort
runner (:func:`hybridrad.runner.run_cohort`); :func:`segment_cohort` runs a whole
manifest and writes the masks plus a manifest naming them.
"""

from __future__ import annotations

import itertools
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

try:
    import torch
    from monai.data import MetaTensor
    from monai.inferers import SliceInferer, sliding_window_inference
    from monai.transforms import (
        FillHoles,
        Invertd,
        KeepLargestConnectedComponent,
        RemoveSmallObjects,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"segmentation needs PyTorch and MONAI ({exc.name} is missing): "
        "pip install 'hybridrad[deep]'"
    ) from exc

from hybridrad.errors import HybridradWarning
from hybridrad.io.images import write_image
from hybridrad.io.labels import LabelMap
from hybridrad.io.manifest import MASK, Case, Cohort, safe_filename, write_manifest
from hybridrad.provenance import canonical_json, config_hash, file_sha256, library_versions
from hybridrad.runner import CaseOutput, CohortResult, run_cohort, stage
from hybridrad.segment.config import InferenceConfig, PostprocessConfig, SegConfig
from hybridrad.segment.data import preprocess, read_case, resample_onto
from hybridrad.segment.labels import channels_to_labels
from hybridrad.segment.model import SegModel, load_model, weights_sha256

log = logging.getLogger(__name__)

Predictor = Callable[[torch.Tensor], torch.Tensor]


def predict_probabilities(
    network: torch.nn.Module,
    image: torch.Tensor,
    roi_size: Sequence[int],
    settings: InferenceConfig,
    device: torch.device | str = "cpu",
    spatial_dims: int = 3,
) -> torch.Tensor:
    """Sigmoid probabilities of a ``(B, C, x, y, z)`` input by sliding windows.

    Windows of ``roi_size`` are evaluated ``settings.sw_batch_size`` at a time and
    blended (``settings.mode``); with ``settings.tta`` the result is averaged over the
    flip combinations of the spatial axes (8 in 3D; 4 in-plane for a 2D network).
    A 2D network (``spatial_dims=2``) runs on the axial slices with MONAI's
    :class:`~monai.inferers.SliceInferer` (``roi_size[:2]`` windows in-plane).
    """
    x = torch.as_tensor(image).to(device)
    flips: list[tuple[int, ...]] = [()]
    axes = (2, 3, 4) if spatial_dims == 3 else (2, 3)
    if settings.tta:
        flips = [f for r in range(len(axes) + 1) for f in itertools.combinations(axes, r)]
    slicer = None
    if spatial_dims == 2:
        slicer = SliceInferer(
            roi_size=[int(r) for r in roi_size[:2]],
            sw_batch_size=settings.sw_batch_size,
            spatial_dim=2,
            overlap=settings.overlap,
            mode=settings.mode,
            progress=False,
        )
    total: torch.Tensor | None = None
    with torch.no_grad():
        for dims in flips:
            xi = torch.flip(x, dims) if dims else x
            if slicer is not None:
                logits = slicer(xi, network)
            else:
                logits = sliding_window_inference(
                    xi,
                    roi_size=list(roi_size),
                    sw_batch_size=settings.sw_batch_size,
                    predictor=network,
                    overlap=settings.overlap,
                    mode=settings.mode,
                )
            assert isinstance(logits, torch.Tensor)
            prob = torch.sigmoid(logits)
            prob = torch.flip(prob, dims) if dims else prob
            total = prob if total is None else total + prob
    assert total is not None
    return total / len(flips)


def _has_skimage() -> bool:
    try:
        import skimage.measure  # noqa: F401
    except ImportError:
        return False
    return True


def postprocess_channels(binary: torch.Tensor, settings: PostprocessConfig) -> torch.Tensor:
    """Clean each binary channel of ``(C, *spatial)`` independently.

    Small components are removed (MONAI RemoveSmallObjects), then only the largest
    component kept (KeepLargestConnectedComponent), then holes filled (FillHoles).
    MONAI's component transforms need scikit-image; without it the same operations
    (face connectivity) run on :func:`scipy.ndimage.label`.
    """
    use_monai = _has_skimage()
    out = []
    for ch in binary:
        c = ch[None].to(torch.uint8)
        if use_monai:
            if settings.min_size > 0:
                c = torch.as_tensor(RemoveSmallObjects(min_size=settings.min_size)(c))
            if settings.keep_largest:
                c = torch.as_tensor(KeepLargestConnectedComponent(applied_labels=[1])(c))
        else:
            c = torch.from_numpy(_components_scipy(c[0].numpy().astype(bool), settings)[None])
        if settings.fill_holes:
            c = torch.as_tensor(FillHoles(applied_labels=[1])(c.to(torch.uint8)))
        out.append(c[0].to(torch.uint8))
    return torch.stack(out)


def _components_scipy(mask: np.ndarray, settings: PostprocessConfig) -> np.ndarray:
    from scipy import ndimage

    labels, n = ndimage.label(mask)  # face connectivity, as MONAI's default
    if n == 0:
        return mask.astype(np.uint8)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    keep = sizes >= max(settings.min_size, 1)
    if settings.keep_largest:
        keep = np.zeros_like(keep)
        keep[int(np.argmax(sizes))] = True
    return keep[labels].astype(np.uint8)


@dataclass
class Segmenter:
    """Segments cases with a loaded model.

    Parameters
    ----------
    model
        A loaded :class:`SegModel`.
    inference
        Overrides the model's inference settings (window, batch, TTA, cropping).
    postprocess
        Overrides the model's postprocessing settings.
    device
        ``cpu``, ``cuda`` or ``auto``.
    """

    model: SegModel
    inference: InferenceConfig | None = None
    postprocess: PostprocessConfig | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        cfg = self.model.config
        self.config: SegConfig = replace(cfg, sequences=self.model.sequences)
        self.settings = self.inference or cfg.inference
        self.post = self.postprocess or cfg.postprocess
        dev = self.device
        if dev == "auto":
            dev = "cuda" if torch.cuda.is_available() else "cpu"
        self.torch_device = torch.device(dev)
        self.model.network.to(self.torch_device)
        self.roi_size = list(self.settings.roi_size or cfg.roi_size)
        self._pre = preprocess(self.config, with_label=False, crop=self.settings.crop_foreground)

    def check_sequences(self, cohort: Cohort) -> None:
        """Raise when the manifest lacks a sequence the model needs.

        Raises
        ------
        SequenceMismatchError
            Naming the missing sequences and the fix.
        """
        from hybridrad.segment.registry import check_inputs, model_name

        check_inputs(
            model_name(self.model.path), self.model.sequences, list(cohort.sequences), cohort.source
        )

    def predict_channels(self, image: MetaTensor) -> MetaTensor:
        """Binary region channels on the grid of ``image`` (``(C, x, y, z)`` MetaTensor)."""
        data = self._pre({"image": image})
        x = data["image"]
        prob = predict_probabilities(
            self.model.network,
            x[None],
            self.roi_size,
            self.settings,
            self.torch_device,
            self.config.spatial_dims,
        )[0].cpu()
        binary = postprocess_channels(prob > self.settings.threshold, self.post)
        pred = MetaTensor(binary.float(), meta=x.meta)
        pred.applied_operations = x.applied_operations
        if not x.applied_operations:  # nothing to undo (no foreground crop)
            return pred
        data["pred"] = pred
        inverted = Invertd(keys="pred", transform=self._pre, orig_keys="image")(data)
        out = inverted["pred"]
        assert isinstance(out, MetaTensor)
        return out

    def predict_case(self, case: Case) -> sitk.Image:
        """The label mask of ``case`` in the geometry of its first model sequence.

        Raises
        ------
        SegmentationInputError
            Missing sequence, or sequences on different grids.
        hybridrad.errors.ImageDimensionError
            An image that is not one 3D scalar volume (2D, 4D, RGB/vector), naming the
            case and the column.
        """
        image, _, ref, grid = read_case(case, self.model.sequences, spacing=self.config.spacing)
        channels = np.asarray(self.predict_channels(image)) > 0.5
        labels = channels_to_labels(channels, self.model.label_map)
        on_grid = sitk.GetImageFromArray(labels.transpose(2, 1, 0).copy())
        on_grid.CopyInformation(grid)
        mask = resample_onto(on_grid, ref, nearest=True)
        if mask is on_grid:  # same grid: take the source header verbatim
            mask.CopyInformation(ref)
        return mask


def region_volumes(mask: sitk.Image, label_map: LabelMap) -> dict[str, float]:
    """Volume (mL) of every region of a label mask (regions as
    :meth:`~hybridrad.io.labels.LabelMap.region_mask` reads them)."""
    arr = sitk.GetArrayViewFromImage(mask)
    voxel_ml = float(np.prod(mask.GetSpacing())) / 1000.0
    return {
        f"volume_ml_{name}": float(np.count_nonzero(label_map.region_mask(arr, name))) * voxel_ml
        for name in label_map.regions
    }


class SegmentTask:
    """Cohort-runner task: segment one case, write its mask, return region volumes.

    Picklable: the model is loaded lazily in each worker process.

    Parameters
    ----------
    model_dir
        Model directory (``None``: the default model).
    out_dir
        Masks are written to ``out_dir/masks/<name>.nii.gz``, ``<name>`` the case id
        made safe by :func:`hybridrad.io.manifest.safe_filename` (always inside
        ``out_dir/masks``).
    inference, postprocess
        Optional overrides of the model's settings.
    device
        ``cpu``, ``cuda`` or ``auto``.
    """

    stage_name = "segment"

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | None,
        out_dir: str | os.PathLike[str],
        *,
        inference: InferenceConfig | None = None,
        postprocess: PostprocessConfig | None = None,
        device: str = "auto",
    ) -> None:
        self.model = load_model(model_dir)
        self.model_dir = self.model.path
        self.out_dir = Path(out_dir)
        self.inference = inference
        self.postprocess = postprocess
        self.device = device
        self.weights_sha256 = weights_sha256(self.model_dir)
        self._segmenter: Segmenter | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_segmenter"] = None
        return state

    @property
    def segmenter(self) -> Segmenter:
        """The :class:`Segmenter`, built on first use."""
        if self._segmenter is None:
            self._segmenter = Segmenter(
                self.model, self.inference, self.postprocess, device=self.device
            )
        return self._segmenter

    def mask_path(self, case: Case) -> Path:
        """Where the mask of ``case`` is written (inside ``out_dir/masks`` whatever the id)."""
        return self.out_dir / "masks" / f"{safe_filename(case.case_id)}.nii.gz"

    def __call__(self, case: Case) -> CaseOutput:
        """Segment ``case``; features are the predicted region volumes (mL)."""
        with stage("inference"):
            mask = self.segmenter.predict_case(case)
        with stage("write"):
            path = write_image(mask, self.mask_path(case))
            digest = file_sha256(path)
        return CaseOutput(
            features=region_volumes(mask, self.model.label_map),
            diagnostics={
                "mask_path": str(path),
                "mask_sha256": digest,
                "model_weights_sha256": self.weights_sha256,
            },
        )

    def plan(self) -> dict[str, Any]:
        """Everything besides the inputs that decides the output."""
        seg = self.segmenter
        return {
            "stage": self.stage_name,
            "model_dir": str(self.model_dir),
            "weights_sha256": self.weights_sha256,
            "sequences": self.model.sequences,
            "inference": seg.settings.__dict__,
            "postprocess": seg.post.__dict__,
            "out_dir": str(self.out_dir.resolve()),
        }

    def cache_key(self, case: Case) -> str:
        """Content address of the inputs only: case id, input-file hashes and the plan
        (weights sha256, settings, output folder). Whether the mask exists is checked
        on a hit by :meth:`verify_cached`, never folded into the key."""
        import hashlib

        inputs = {s: file_sha256(case.images[s]) for s in self.model.sequences if s in case.images}
        payload = canonical_json({"case": case.case_id, "inputs": inputs, "plan": self.plan()})
        return hashlib.sha256(payload.encode()).hexdigest()

    def verify_cached(self, case: Case, output: CaseOutput) -> bool:
        """Whether a cached result still stands: its mask is where this run writes it and
        holds the bytes that run wrote (sha256). A deleted, truncated or overwritten mask
        makes the hit a miss, so the case is segmented again."""
        diag = output.diagnostics
        path = self.mask_path(case)
        recorded = diag.get("mask_path")
        if not recorded or not path.is_file() or Path(str(recorded)).resolve() != path.resolve():
            return False
        return bool(diag.get("mask_sha256")) and file_sha256(path) == diag["mask_sha256"]

    def cost(self, case: Case) -> int:
        """Bytes of the input images (largest cases start first)."""
        return sum(case.images[s].stat().st_size for s in self.model.sequences if s in case.images)


class EmptyPredictionWarning(HybridradWarning):
    """Some cases got an empty predicted mask."""


def _warn_empty(volumes: pd.DataFrame, model_dir: str | os.PathLike[str]) -> None:
    """One warning naming the cases whose predicted mask is empty: a scan unlike the
    model's training data (skull-stripped, other resolution or sequence) looks like this."""
    if volumes.empty:
        return
    empty = [str(c) for c, total in volumes.sum(axis=1).items() if total <= 0]
    if empty:
        from hybridrad.segment.registry import model_name

        warnings.warn(
            f"{len(empty)} of {len(volumes)} case(s) got an empty mask from model "
            f"{model_name(model_dir)!r}: {empty[:10]}{' ...' if len(empty) > 10 else ''}. "
            "Either no tumour is visible, or the scans differ from the model's training "
            "data (e.g. skull-stripped or BraTS-style scans for the glioma models, see "
            "docs/benchmarks.md); check them with `hybridrad seg-eval` on a few expert masks.",
            EmptyPredictionWarning,
            stacklevel=3,
        )


def segment_cohort(
    cohort: Cohort,
    out_dir: str | os.PathLike[str],
    *,
    model_dir: str | os.PathLike[str] | None = None,
    inference: InferenceConfig | None = None,
    postprocess: PostprocessConfig | None = None,
    device: str = "auto",
    jobs: int = 1,
    scheduler: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> tuple[CohortResult, Path]:
    """Segment every case of ``cohort`` and write a manifest naming the predicted masks.

    Parameters
    ----------
    cohort
        The cases (must provide the model's sequences).
    out_dir
        Output folder: ``masks/<case_id>.nii.gz`` (an id that is no plain file name is
        made safe by :func:`hybridrad.io.manifest.safe_filename`), ``manifest.csv`` (the
        input manifest with ``mask`` replaced by the predictions, ready for
        ``hybridrad extract``),
        ``volumes.parquet`` (+ diagnostics, failures, provenance).
    model_dir
        Model directory or shipped model name (``hybridrad models``); ``None`` picks the
        shipped real-data model with the best cross-validated Dice among those whose
        inputs the manifest has (:func:`hybridrad.segment.registry.pick_model`) and logs
        which.
    inference, postprocess
        Optional overrides of the model's settings.
    device
        ``cpu``, ``cuda`` or ``auto``.
    jobs, scheduler, cache_dir, progress
        As :func:`hybridrad.runner.run_cohort`.

    Returns
    -------
    result : CohortResult
        Region volumes per case, diagnostics (mask paths), failures.
    manifest : pathlib.Path
        The written manifest.

    Raises
    ------
    SequenceMismatchError
        The manifest lacks a sequence the model needs.
    """
    from hybridrad.segment.registry import pick_model, resolve_model

    if model_dir is None:
        picked = pick_model(list(cohort.sequences))
        log.info("segmenting with shipped model %s (inputs %s)", picked.name, picked.sequences)
        model_dir = picked.path
    else:
        model_dir = resolve_model(model_dir)
    out = Path(out_dir)
    task = SegmentTask(model_dir, out, inference=inference, postprocess=postprocess, device=device)
    task.segmenter.check_sequences(cohort)
    result = run_cohort(
        cohort, task, jobs=jobs, scheduler=scheduler, cache_dir=cache_dir, progress=progress
    )
    rows = []
    done = set(result.diagnostics.index)
    for case in cohort:
        if case.case_id not in done:
            continue
        row = case.row()
        row[MASK] = str(Path(str(result.diagnostics.loc[case.case_id, "mask_path"])).resolve())
        rows.append(row)
    manifest = write_manifest(pd.DataFrame(rows), out / "manifest.csv")
    _warn_empty(result.features, model_dir)
    result.save(
        out / "volumes.parquet",
        provenance={
            "command": "hybridrad segment",
            "manifest": str(cohort.source),
            "manifest_sha256": file_sha256(cohort.source) if cohort.source else None,
            "plan": task.plan(),
            "plan_hash": config_hash(task.plan()),
            "model_metadata": {
                k: task.model.metadata.get(k)
                for k in ("network", "sequences", "spacing", "label_map", "training_data")
            },
            "output_manifest": str(manifest),
            "versions": library_versions(),
        },
    )
    return result, manifest
