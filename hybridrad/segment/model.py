"""Model directories: network construction, weights + JSON metadata, encoder hook.

A model directory holds

- ``model.pt``: The network's ``state_dict`` (tensors only; read with ``torch.load(...,
  weights_only=True)``), or ``model.safetensors`` when safetensors is installed.
- ``model.json``: Metadata: format, network name and kwargs, sequences (channel order),
  spacing, crop size, normalisation, label map and regions (output channels), inference and
  postprocessing settings, a hash of the training data, metrics, versions and the sha256 of
  the weights file.
- ``checkpoint.pt`` / ``checkpoint.json``: Optional: the last training state, for
  ``seg-train --resume``.

Nothing is pickled.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

try:
    import torch
    from monai.networks.nets import DynUNet, SegResNet, UNet
    from torch import nn
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"segmentation needs PyTorch and MONAI ({exc.name} is missing): "
        "pip install 'hybridrad[deep]'"
    ) from exc

from hybridrad.io.labels import LabelMap
from hybridrad.provenance import file_sha256
from hybridrad.segment.config import SegConfig
from hybridrad.segment.errors import ModelDirError

FORMAT = "hybridrad-segmentation-model/1"
METADATA = "model.json"
WEIGHTS = "model.pt"
WEIGHTS_SAFETENSORS = "model.safetensors"

#: The model shipped with the package (trained by ``scripts/train_default_model.py``).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"


def build_network(
    name: str,
    in_channels: int,
    out_channels: int,
    kwargs: dict[str, Any] | None = None,
    spatial_dims: int = 3,
) -> nn.Module:
    """A MONAI network by class name (3D, or 2D for slice-wise models).

    Parameters
    ----------
    name
        ``SegResNet``, ``UNet`` or ``DynUNet``.
    in_channels, out_channels
        Input sequences and output region channels.
    spatial_dims
        3, or 2 for a network applied to axial slices.
    kwargs
        Further keyword arguments of the class. ``UNet`` defaults to
        ``channels=(16, 32, 64, 128), strides=(2, 2, 2), num_res_units=1``; ``DynUNet``
        to ``kernel_size=[3]*4, strides=[1, 2, 2, 2], upsample_kernel_size=[2, 2, 2]``.

    Raises
    ------
    ModelDirError
        Unknown network name or invalid kwargs.
    """
    kw = dict(kwargs or {})
    d = spatial_dims
    try:
        if name == "SegResNet":
            return SegResNet(
                spatial_dims=d, in_channels=in_channels, out_channels=out_channels, **kw
            )
        if name == "UNet":
            kw.setdefault("channels", (16, 32, 64, 128))
            kw.setdefault("strides", (2, 2, 2))
            kw.setdefault("num_res_units", 1)
            return UNet(spatial_dims=d, in_channels=in_channels, out_channels=out_channels, **kw)
        if name == "DynUNet":
            kw.setdefault("kernel_size", [3] * 4)
            kw.setdefault("strides", [1, 2, 2, 2])
            kw.setdefault("upsample_kernel_size", [2] * 3)
            return DynUNet(spatial_dims=d, in_channels=in_channels, out_channels=out_channels, **kw)
    except TypeError as exc:
        raise ModelDirError(f"invalid keyword arguments for {name}: {exc}") from exc
    raise ModelDirError(f"unknown network {name!r}; choose SegResNet, UNet or DynUNet")


@dataclass
class SegModel:
    """A loaded model: the network (eval mode, CPU) and its metadata.

    Attributes
    ----------
    network
        The MONAI network with the trained weights.
    metadata
        The content of ``model.json``.
    path
        The model directory.
    """

    network: nn.Module
    metadata: dict[str, Any]
    path: Path

    @property
    def sequences(self) -> list[str]:
        """Input sequences in channel order."""
        return list(self.metadata["sequences"])

    @property
    def label_map(self) -> LabelMap:
        """The label map whose regions are the output channels (in channel order)."""
        lm = LabelMap.from_dict(self.metadata["label_map"])
        order = self.metadata.get("regions") or list(lm.regions)
        return replace(lm, regions={r: lm.regions[r] for r in order})

    @property
    def config(self) -> SegConfig:
        """The configuration the model was trained with (inference settings included)."""
        return SegConfig.from_dict(self.metadata["config"])


def _has_safetensors() -> bool:
    try:
        import safetensors.torch  # noqa: F401
    except ImportError:
        return False
    return True


def save_weights(network: nn.Module, folder: Path) -> Path:
    """Write the state_dict (safetensors when installed, else ``model.pt``) atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    if _has_safetensors():
        from safetensors.torch import save_file

        path = folder / WEIGHTS_SAFETENSORS
        tmp = path.with_name(f".{path.name}.tmp")
        save_file(state, str(tmp))
    else:
        path = folder / WEIGHTS
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def write_metadata(folder: Path, metadata: dict[str, Any]) -> Path:
    """Write ``model.json`` atomically (indented; key order kept: region order matters)."""
    path = folder / METADATA
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(metadata, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path


def read_metadata(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a model directory.

    Raises
    ------
    ModelDirError
        No ``model.json``, or one of another format.
    """
    folder = Path(model_dir)
    path = folder / METADATA
    if not path.is_file():
        raise ModelDirError(
            f"{folder} is not a segmentation model directory (no {METADATA}); train one with "
            "`hybridrad seg-train MANIFEST --out MODEL_DIR` or leave --model out to use the "
            "default model."
        )
    try:
        meta: dict[str, Any] = json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelDirError(
            f"{path} is not valid JSON ({exc}); the model directory is damaged: copy it again "
            "or retrain the model."
        ) from exc
    if not isinstance(meta, dict):
        raise ModelDirError(f"{path} holds no JSON object; copy the model again or retrain it.")
    if meta.get("format") != FORMAT:
        raise ModelDirError(
            f"{path} has format {meta.get('format')!r}; this hybridrad reads {FORMAT!r}. "
            "Retrain the model with this version."
        )
    return meta


def load_state_dict(model_dir: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The weights of a model directory, loaded without unpickling objects."""
    folder = Path(model_dir)
    if (folder / WEIGHTS_SAFETENSORS).is_file() and _has_safetensors():
        from safetensors.torch import load_file

        return dict(load_file(str(folder / WEIGHTS_SAFETENSORS)))
    path = folder / WEIGHTS
    if not path.is_file():
        raise ModelDirError(f"{folder} has no weights file ({WEIGHTS}); retrain the model.")
    try:
        state: dict[str, torch.Tensor] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights-only unpickler refusals, damaged zip archives ...
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelDirError(
            f"{path} is not a plain tensor file and was not loaded ({first}). Model weights "
            "are read with torch.load(weights_only=True): nothing in them is executed. Copy "
            "the model again from its source, or retrain it."
        ) from exc
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ModelDirError(f"{path} holds no state_dict of tensors; copy or retrain the model.")
    return state


def weights_path(model_dir: str | os.PathLike[str]) -> Path:
    """The weights file of a model directory."""
    folder = Path(model_dir)
    st = folder / WEIGHTS_SAFETENSORS
    return st if st.is_file() else folder / WEIGHTS


def load_model(model_dir: str | os.PathLike[str] | None = None) -> SegModel:
    """Load a model directory (``None``: the default model shipped with hybridrad).

    Parameters
    ----------
    model_dir
        Folder written by :func:`hybridrad.segment.train.train_model`.

    Returns
    -------
    SegModel
        Network in eval mode on the CPU, and its metadata.

    Raises
    ------
    ModelDirError
        Missing/invalid metadata or weights, or weights that do not fit the network.
    """
    folder = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
    meta = read_metadata(folder)
    try:
        net_meta = meta["network"]
        network = build_network(
            net_meta["name"],
            meta["in_channels"],
            meta["out_channels"],
            net_meta["kwargs"],
            int(net_meta.get("spatial_dims", 3)),
        )
        expected = meta.get("weights", {}).get("sha256")
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ModelDirError(
            f"{folder / METADATA} lacks or garbles the network description ({exc!r}); copy "
            "the model again or retrain it."
        ) from exc
    if expected and weights_sha256(folder) != expected:
        raise ModelDirError(
            f"the weights file {weights_path(folder)} does not match the sha256 recorded in "
            f"{folder / METADATA}: it was changed or damaged after training. Copy the model "
            "again from its source, or retrain it."
        )
    try:
        network.load_state_dict(load_state_dict(folder))
    except RuntimeError as exc:
        raise ModelDirError(
            f"the weights in {folder} do not fit a {net_meta['name']} with "
            f"{net_meta['kwargs']}: {str(exc).splitlines()[0]}"
        ) from exc
    network.eval()
    return SegModel(network=network, metadata=meta, path=folder)


class SegmentationEncoder(nn.Module):
    """The down (encoder) path of a trained segmentation network.

    ``forward(x)`` takes ``(B, C, x, y, z)`` normalised input (channels in the model's
    sequence order, at its spacing) and returns a list of feature maps, one per encoder
    stage, from the highest resolution to the lowest (SegResNet with ``init_filters=f``:
    ``f, 2f, 4f, 8f`` channels at strides 1, 2, 4, 8).
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps of every encoder stage."""
        net = self.network
        if isinstance(net, SegResNet):
            _, down = net.encode(x)
            return list(down)
        if isinstance(net, DynUNet):
            feats = [net.input_block(x)]
            for block in net.downsamples:
                feats.append(block(feats[-1]))
            feats.append(net.bottleneck(feats[-1]))
            return feats
        if isinstance(net, UNet):
            from monai.networks.layers import SkipConnection

            feats = []
            level: nn.Module = net.model
            while True:
                assert isinstance(level, nn.Sequential)
                x = level[0](x)
                feats.append(x)
                sub = level[1].submodule if isinstance(level[1], SkipConnection) else level[1]
                if (
                    isinstance(sub, nn.Sequential)
                    and len(sub) == 3
                    and isinstance(sub[1], SkipConnection)
                ):
                    level = sub
                    continue
                feats.append(sub(x))
                return feats
        raise TypeError(f"no encoder path defined for {type(net).__name__}")


def load_encoder(model_dir: str | os.PathLike[str] | None = None) -> SegmentationEncoder:
    """The trained encoder of a segmentation model, for deep features.

    Parameters
    ----------
    model_dir
        Model directory (``None``: the default model).

    Returns
    -------
    SegmentationEncoder
        A :class:`torch.nn.Module` in eval mode whose ``forward(x)`` returns a list of
        stage tensors ``[(B, c_i, *spatial_i)]``, highest resolution first.

    Raises
    ------
    ModelDirError
        The model is 2D (slice-wise): deep features take 3D encoders.

    Examples
    --------
    >>> enc = load_encoder()  # doctest: +SKIP
    >>> [f.shape[1] for f in enc(torch.zeros(1, 4, 64, 64, 64))]  # doctest: +SKIP
    [8, 16, 32, 64]
    """
    model = load_model(model_dir)
    if int(model.metadata["network"].get("spatial_dims", 3)) != 3:
        raise ModelDirError(
            f"{model.path} is a 2D slice-wise model; deep features need a 3D encoder. Use a "
            "3D segmentation model (e.g. the synthetic-brats default, or one trained with "
            "`hybridrad seg-train` and spatial_dims: 3) or another --encoder."
        )
    encoder = SegmentationEncoder(model.network)
    encoder.eval()
    return encoder


def training_data_hash(paths: list[Path]) -> str:
    """sha256 of the sorted sha256 digests of the training files."""
    import hashlib

    digests = sorted(file_sha256(p) for p in paths)
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


def weights_sha256(model_dir: str | os.PathLike[str]) -> str:
    """sha256 of the weights file of a model directory."""
    return file_sha256(weights_path(model_dir))
