"""3D encoders for deep features, behind one interface (optional extra ``deep``).

Every encoder is an :class:`Encoder`: a :class:`torch.nn.Module` whose ``forward(x)``
takes a ``(B, C, x, y, z)`` patch batch and returns a list of stage feature maps
(highest resolution first), plus its name, expected input channels, stage names, the
sha256 of its weights and the patch it was built for (size, spacing, normalisation).

Sources (:func:`resolve_encoder` parses a spec string):

- ``segmentation[:MODEL_DIR]``: The down path of a hybridrad segmentation model (default:
  the shipped model).
- ``fmcib:WEIGHTS``: The FMCIB foundation model (MONAI ``resnet50(widen_factor=2,
  conv1_t_stride=2, n_input_channels=1, feed_forward=False)``; 4096-d ``layer4`` pooled
  output; 50^3 patches at 1 mm, input ``(HU + 1024) / 3072`` clipped to [0, 1]). The
  upstream checkpoint (a dict with ``trunk_state_dict`` and optionally ``head_state_dict``),
  a Lightning/Med3D-style dict with ``state_dict`` (``model.trunk.`` / ``module.`` prefixes)
  and a plain state dict are all read.
- ``medicalnet-resnetNN:WEIGHTS`` (NN in 10, 18, 34, 50, ...): MedicalNet 3D ResNets
  (``{"state_dict": {"module.conv1.weight": ...}}``); shortcut type A for resnet10/18/34 and
  B for deeper ones, 7^3 stride-2 stem. MedicalNet's dilated layer3/layer4 are run undilated
  (MONAI's ResNet has no dilation).
- ``resnetNN:WEIGHTS``: A MONAI ResNet state dict (``n_input_channels`` read from the
  weights).
- ``torchscript:FILE`` (or a ``.ts`` / ``.torchscript`` / ``.jit`` file): Any TorchScript
  module returning a tensor, a list of tensors or a dict of tensors. A TorchScript file
  holds code that runs when the module is used, so it is loaded only with
  ``trust_code=True`` (``--trust-code``); otherwise
  :class:`~hybridrad.errors.UntrustedCodeError` is raised before the file is opened.
- ``ENCODER_DIR`` (``encoder.json`` + ``encoder.pt``, e.g. from ``hybridrad pretrain``): A
  self-supervised encoder; a folder with ``model.json`` is a segmentation model.

Weights are read with ``torch.load(..., weights_only=True)`` (or safetensors) and metadata
from JSON; nothing is unpickled, no code from a file runs (TorchScript only with
``trust_code=True``) and nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"deep features need PyTorch and MONAI ({exc.name} is missing): "
        "pip install 'hybridrad[deep]'"
    ) from exc

from hybridrad.errors import HybridradError, UntrustedCodeError
from hybridrad.provenance import file_sha256, library_versions

ENCODER_FORMAT = "hybridrad-encoder/1"
ENCODER_METADATA = "encoder.json"
ENCODER_WEIGHTS = "encoder.pt"

#: MONAI ``resnet50`` arguments of the FMCIB foundation model (Pai et al. 2024).
FMCIB_KWARGS: dict[str, Any] = {
    "n_input_channels": 1,
    "widen_factor": 2,
    "conv1_t_stride": 2,
    "feed_forward": False,
    "bias_downsample": True,
}
#: Patch the FMCIB model was trained on: 50^3 voxels at 1 mm, CT scaled (HU+1024)/3072.
FMCIB_PATCH: dict[str, Any] = {
    "size": (50, 50, 50),
    "spacing": (1.0, 1.0, 1.0),
    "normalisation": "ct",
}
RESNET_ARCHS = ("resnet10", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")
#: Keys of task heads found in published checkpoints; dropped when loading a trunk.
HEAD_PREFIXES = ("fc.", "conv_seg.", "heads.", "head.", "classifier.")
TORCHSCRIPT_SUFFIXES = (".ts", ".torchscript", ".jit")
#: Why a TorchScript file needs explicit trust (the end of :class:`UntrustedCodeError`).
TRUST_HINT = (
    "TorchScript files run the code they contain when used; only load files from people "
    "you trust, then pass --trust-code (trust_code=True)"
)


class EncoderError(HybridradError, ValueError):
    """An encoder cannot be loaded or does not fit the input."""


class EncoderChannelError(EncoderError):
    """The patch has a different number of channels than the encoder takes."""


def sanitize_name(name: str) -> str:
    """A column-safe encoder/stage name (lowercase letters, digits, ``.`` and ``-``).

    Examples
    --------
    >>> sanitize_name("My Encoder__v2")
    'my-encoder-v2'
    """
    out = re.sub(r"[^a-z0-9.\-]+", "-", name.lower()).strip("-")
    return re.sub(r"-{2,}", "-", out) or "encoder"


class Encoder(nn.Module):
    """A 3D encoder with stage outputs, its provenance and its preferred patch.

    Parameters
    ----------
    module
        The network; ``module(x)`` returns a tensor or a list of tensors.
    name
        Short name used in column names (``deep__<name>__<stage>__<index>``).
    in_channels
        Input channels the network takes (``None``: unknown, not checked).
    stage_names
        One name per returned stage (default ``stage1 ...``).
    weights_sha256
        sha256 of the weights file (or of the state dict for in-memory encoders).
    patch
        Preferred patch settings (``size``, ``spacing``, ``normalisation``,
        ``sequences``, ``mask_channel``, ``stages``, ``pooling``); any may be left out.
    source
        Where the encoder came from (kind and path), for provenance.
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        name: str,
        in_channels: int | None,
        stage_names: list[str] | None = None,
        weights_sha256: str = "",
        patch: Mapping[str, Any] | None = None,
        source: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.module = module
        self.name = sanitize_name(name)
        self.in_channels = in_channels
        self.stage_names = [sanitize_name(s) for s in stage_names] if stage_names else []
        self.weights_sha256 = weights_sha256 or state_dict_sha256(module)
        self.patch = dict(patch or {})
        self.source = dict(source or {})

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps of every stage, ``[(B, c_i, *spatial_i)]`` (or ``(B, c_i)``).

        An encoder built without stage names (TorchScript) names them on its first call:
        the keys of a returned dict, else ``stage1 ...`` in the order returned.
        """
        out = self.module(x)
        if isinstance(out, torch.Tensor):
            out = [out]
        if isinstance(out, Mapping):
            keys = [str(k) for k, t in out.items() if isinstance(t, torch.Tensor)]
            stages = [t for t in out.values() if isinstance(t, torch.Tensor)]
            if not self.stage_names:
                self.stage_names = [sanitize_name(k) for k in keys]
        else:
            stages = [t for t in out if isinstance(t, torch.Tensor)]
        if not self.stage_names:
            self.stage_names = [f"stage{i + 1}" for i in range(len(stages))]
        if len(stages) != len(self.stage_names):
            raise EncoderError(
                f"encoder {self.name!r} returned {len(stages)} stage(s) but names "
                f"{self.stage_names}"
            )
        return stages

    def name_stages(self, in_channels: int, size: tuple[int, ...]) -> list[str]:
        """Name the stages by one forward pass of a zero patch, if not named yet.

        TorchScript encoders do not say what they return until they have run; this runs
        them once on ``(1, in_channels, *size)`` zeros so that stages can be chosen
        before any case is read.

        Raises
        ------
        EncoderError
            The encoder fails on a patch of this shape, or returns no tensor.
        """
        if self.stage_names:
            return self.stage_names
        param = next(iter(self.module.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
        x = torch.zeros(1, int(in_channels), *(int(v) for v in size), device=device)
        where = f" ({self.source['path']})" if self.source.get("path") else ""
        try:
            with torch.inference_mode():
                stages = self(x)
        except EncoderError:
            raise
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise EncoderError(
                f"encoder {self.name!r}{where} fails on a patch of shape {tuple(x.shape)} "
                f"(batch, channels, x, y, z): {first}; give the patch size and channels it "
                "was built for (--patch-size, --sequences, --mask-channel)"
            ) from exc
        if not stages:
            raise EncoderError(
                f"encoder {self.name!r}{where} returned no tensor, so it yields no feature; "
                "its forward must return a tensor, a list of tensors or a dict of tensors"
            )
        return self.stage_names

    def describe(self) -> dict[str, Any]:
        """Provenance: name, kind, path, channels, stages, weights hash, patch."""
        return {
            "name": self.name,
            **self.source,
            "in_channels": self.in_channels,
            "stages": list(self.stage_names),
            "weights_sha256": self.weights_sha256,
            "patch": {k: list(v) if isinstance(v, tuple) else v for k, v in self.patch.items()},
        }


class ResNetStages(nn.Module):
    """A MONAI ResNet run up to ``layer4``, returning ``[layer1, ..., layer4]``.

    The global average of ``layer4`` equals the network's own pooled output
    (``feed_forward=False``), e.g. the 4096-d FMCIB embedding.
    """

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        self.resnet = resnet

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps of the four residual stages."""
        r: Any = self.resnet
        x = r.act(r.bn1(r.conv1(x)))
        if not r.no_max_pool:
            x = r.maxpool(x)
        out = []
        for layer in (r.layer1, r.layer2, r.layer3, r.layer4):
            x = layer(x)
            out.append(x)
        return out


# --- weights files ----------------------------------------------------------------------


def load_weights_file(path: str | os.PathLike[str]) -> Any:
    """Read a weights file without unpickling objects (``weights_only=True``).

    Raises
    ------
    EncoderError
        The file is missing, or holds pickled objects other than tensors and containers.
    """
    p = Path(path)
    if not p.is_file():
        raise EncoderError(f"weights file {p} does not exist")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(p)))
    if is_torchscript_file(p):
        raise EncoderError(
            f"{p} is a TorchScript file (a program, not a weights file): give it as "
            "--encoder torchscript:PATH --trust-code, and only if you trust who made it "
            "(it runs the code it contains); or save a state_dict of tensors"
        )
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EncoderError(
            f"cannot read {p} as a weights file with torch.load(weights_only=True): "
            f"{str(exc).splitlines()[0]}. Save a state_dict of tensors (no pickled objects); "
            "a TorchScript file is read with --encoder torchscript:PATH --trust-code (it runs "
            "the code it contains: only for files from people you trust)"
        ) from exc


def is_torchscript_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip with ``code/`` and
    ``constants.pkl``), looked up in the zip's table of contents without loading it."""
    import zipfile

    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return any(n.endswith("/constants.pkl") or n == "constants.pkl" for n in names)


def trunk_state_dict(obj: Any) -> dict[str, torch.Tensor]:
    """The trunk weights of a checkpoint in any of the supported layouts.

    Handles FMCIB's ``{"trunk_state_dict": ..., "head_state_dict": ...}``, Lightning /
    Med3D / MedicalNet ``{"state_dict": ...}`` with ``module.``, ``model.trunk.`` or
    ``trunk.`` prefixes, and plain state dicts.

    Examples
    --------
    >>> sd = trunk_state_dict({"state_dict": {"module.conv1.weight": torch.zeros(1)}})
    >>> list(sd)
    ['conv1.weight']
    """
    if not isinstance(obj, Mapping):
        raise EncoderError(f"expected a state dict (a mapping), got {type(obj).__name__}")
    for key in ("trunk_state_dict", "state_dict", "model_state_dict", "model"):
        if key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue
        k = str(key)
        for prefix in ("module.", "model.trunk.", "trunk.", "model.", "encoder."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
        out[k] = value
    if not out:
        raise EncoderError("the checkpoint holds no tensors")
    return out


def load_into(module: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """Load ``state`` into ``module`` (built on the meta device or not), strictly.

    Head keys (``fc.``, ``conv_seg.`` ...) that the trunk lacks are ignored; any other
    missing or unexpected key, or a shape mismatch, is an :class:`EncoderError`.
    """
    own = module.state_dict()
    state = {k: v for k, v in state.items() if k in own or not k.startswith(HEAD_PREFIXES)}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs network {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        detail = "; ".join(
            part
            for part in (
                f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}" if missing else "",
                f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}"
                if unexpected
                else "",
                f"shape mismatch {shapes[:3]}" if shapes else "",
            )
            if part
        )
        raise EncoderError(f"the weights do not fit {what}: {detail}")
    module.load_state_dict(dict(state), strict=True, assign=True)
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        if tensor.is_meta:  # pragma: no cover - a non-persistent buffer
            raise EncoderError(f"{what}: tensor {name!r} was not initialised by the weights")


def state_dict_sha256(module: nn.Module) -> str:
    """sha256 over the names, shapes and bytes of a module's state dict."""
    import hashlib

    digest = hashlib.sha256()
    for key, value in module.state_dict().items():
        if value.is_meta:
            continue
        digest.update(key.encode())
        digest.update(str(tuple(value.shape)).encode())
        digest.update(value.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# --- MONAI ResNets ----------------------------------------------------------------------


def build_resnet(arch: str, *, meta: bool = False, **kwargs: Any) -> nn.Module:
    """A MONAI 3D ResNet trunk (``feed_forward=False``) by factory name or kwargs.

    Parameters
    ----------
    arch
        ``resnet10`` ... ``resnet152`` (MONAI factories) or ``ResNet`` (the class, with
        ``block``, ``layers``, ``block_inplanes`` in ``kwargs``).
    meta
        Build on the meta device (no initialisation; load weights with ``assign``).
    **kwargs
        Passed to MONAI.
    """
    from monai.networks import nets

    kwargs = {"feed_forward": False, "spatial_dims": 3, **kwargs}
    if arch == "ResNet":
        factory: Any = nets.ResNet
    elif arch in RESNET_ARCHS:
        factory = getattr(nets, arch)
        kwargs.setdefault("pretrained", False)
    else:
        raise EncoderError(f"unknown ResNet architecture {arch!r}; use one of {RESNET_ARCHS}")
    if meta:
        with torch.device("meta"):
            return factory(**kwargs)
    return factory(**kwargs)


def load_resnet_encoder(
    path: str | os.PathLike[str],
    arch: str,
    *,
    name: str | None = None,
    kwargs: Mapping[str, Any] | None = None,
    patch: Mapping[str, Any] | None = None,
    kind: str = "monai-resnet",
) -> Encoder:
    """A MONAI ResNet encoder from a local weights file (any supported layout).

    Parameters
    ----------
    path
        Weights file (``torch.save`` of a state dict / checkpoint dict, or safetensors).
    arch
        ``resnet10`` ... ``resnet152`` or ``ResNet``.
    name
        Column name of the encoder (default ``arch``).
    kwargs
        MONAI arguments; ``n_input_channels`` defaults to what ``conv1.weight`` says.
    patch
        Preferred patch settings recorded on the encoder.
    kind
        Provenance label.
    """
    state = trunk_state_dict(load_weights_file(path))
    kw = dict(kwargs or {})
    if "conv1.weight" in state:
        conv1 = state["conv1.weight"]
        kw.setdefault("n_input_channels", int(conv1.shape[1]))
        kw.setdefault("conv1_t_size", tuple(int(s) for s in conv1.shape[2:]))
    net = build_resnet(arch, meta=True, **kw)
    load_into(net, state, f"a MONAI {arch} with {kw}")
    net.eval()
    return Encoder(
        ResNetStages(net),
        name=name or arch,
        in_channels=int(kw.get("n_input_channels", 3)),
        stage_names=list(RESNET_STAGES),
        weights_sha256=file_sha256(path),
        patch={"stages": ["layer4"], **(patch or {})},
        source={"kind": kind, "path": str(Path(path).resolve()), "arch": arch, "kwargs": kw},
    )


def load_fmcib(path: str | os.PathLike[str]) -> Encoder:
    """The FMCIB foundation-model encoder from a local copy of its weights.

    The upstream ``model_weights.torch`` (``{"trunk_state_dict": ...}``), a Lightning
    checkpoint and a plain state dict are accepted. ``layer4`` pooled gives the 4096-d
    FMCIB feature vector.
    """
    kw = {k: v for k, v in FMCIB_KWARGS.items() if k != "feed_forward"}
    return load_resnet_encoder(
        path, "resnet50", name="fmcib", kwargs=kw, patch=FMCIB_PATCH, kind="fmcib"
    )


def load_medicalnet(path: str | os.PathLike[str], arch: str = "resnet18") -> Encoder:
    """A MedicalNet (Med3D) 3D ResNet from its ``.pth`` file (``module.`` prefixes)."""
    depth = int(arch.removeprefix("resnet"))
    kw: dict[str, Any] = {
        "shortcut_type": "A" if depth < 50 else "B",
        "conv1_t_stride": 2,
        "bias_downsample": False,
    }
    return load_resnet_encoder(
        path,
        arch,
        name=f"medicalnet-{arch}",
        kwargs=kw,
        patch={"normalisation": "zscore"},
        kind="medicalnet",
    )


# --- TorchScript --------------------------------------------------------------------------


def load_torchscript(
    path: str | os.PathLike[str], *, in_channels: int | None = None, trust_code: bool = False
) -> Encoder:
    """Any TorchScript module (``torch.jit.load``) as an encoder, on explicit trust only.

    A TorchScript file is a program: ``torch.jit.load`` builds its code and the module's
    ``forward`` runs it, with access to whatever TorchScript can reach. It is therefore
    loaded only with ``trust_code=True``.

    Parameters
    ----------
    path
        The TorchScript file.
    in_channels
        Input channels (default: those of the first 5-D weight, a Conv3d).
    trust_code
        Confirm that the file comes from someone you trust (``--trust-code``).

    Raises
    ------
    UntrustedCodeError
        ``trust_code`` is false (raised before the file is opened).
    EncoderError
        The file is missing or is not a TorchScript file.
    """
    p = Path(path)
    if not p.is_file():
        raise EncoderError(f"TorchScript file {p} does not exist")
    if not trust_code:
        raise UntrustedCodeError(f"encoder {p} is a TorchScript file: {TRUST_HINT}")
    try:
        with warnings.catch_warnings():  # torch's own API notice, not about the user's file
            warnings.filterwarnings(
                "ignore", r".*torch\.jit\.load.* is deprecated", DeprecationWarning
            )
            module = torch.jit.load(str(p), map_location="cpu")
    except Exception as exc:
        raise EncoderError(f"{p} is not a TorchScript file: {str(exc).splitlines()[0]}") from exc
    module.eval()
    if in_channels is None:
        for _, param in module.named_parameters():
            if param.ndim == 5:
                in_channels = int(param.shape[1])
                break
    return Encoder(
        module,
        name=p.stem,
        in_channels=in_channels,
        weights_sha256=file_sha256(p),
        source={"kind": "torchscript", "path": str(p.resolve())},
    )


# --- segmentation models ----------------------------------------------------------------------


def load_segmentation_encoder(model_dir: str | os.PathLike[str] | None = None) -> Encoder:
    """The encoder of a hybridrad segmentation model (``None``: the shipped default).

    Raises
    ------
    EncoderError
        ``hybridrad.segment`` is not available or the model directory is invalid.
    """
    try:
        from hybridrad.segment import model as segmodel
    except ImportError as exc:
        raise EncoderError(
            "the segmentation encoder needs hybridrad.segment (importing it failed: "
            f"{exc}); use another encoder (--encoder fmcib:WEIGHTS, "
            "--encoder ENCODER_DIR from `hybridrad pretrain`, --encoder torchscript:FILE)"
        ) from exc
    folder = Path(model_dir) if model_dir is not None else segmodel.DEFAULT_MODEL_DIR
    try:
        encoder = segmodel.load_encoder(folder)
        meta = segmodel.read_metadata(folder)
        sha = segmodel.weights_sha256(folder)
    except (HybridradError, OSError) as exc:
        raise EncoderError(f"cannot load the segmentation model in {folder}: {exc}") from exc
    net_name = str(meta["network"]["name"])
    n_stages = len(encoder(torch.zeros(1, int(meta["in_channels"]), 16, 16, 16)))
    roi = meta.get("roi_size") or [32, 32, 32]
    return Encoder(
        encoder,
        name=net_name,
        in_channels=int(meta["in_channels"]),
        stage_names=[f"enc{i + 1}" for i in range(n_stages)],
        weights_sha256=sha,
        patch={
            "size": tuple(int(v) for v in roi),
            "spacing": tuple(float(v) for v in meta.get("spacing") or (1.0, 1.0, 1.0)),
            "normalisation": "zscore",
            "sequences": tuple(meta.get("sequences") or ()),
            "mask_channel": False,
            # ROI mean + SD: the residual stage outputs are near-linear in intensity, so
            # their ROI means average texture away; the SDs keep it (docs/deep_features.md)
            "pooling": "meanstd",
        },
        source={"kind": "segmentation", "path": str(folder.resolve())},
    )


# --- encoder directories (self-supervised) ----------------------------------------------------------


def save_encoder_dir(
    folder: str | os.PathLike[str], network: nn.Module, metadata: Mapping[str, Any]
) -> dict[str, Any]:
    """Write ``encoder.pt`` (state dict, tensors only) and ``encoder.json`` atomically.

    ``metadata`` must hold ``architecture`` (``{"arch": ..., "kwargs": ...}``) and
    ``patch``; the format, versions and the weights' sha256 are added.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / ENCODER_WEIGHTS
    tmp = weights.with_name(f".{weights.name}.tmp")
    torch.save({k: v.detach().cpu() for k, v in network.state_dict().items()}, tmp)
    os.replace(tmp, weights)
    meta = {
        "format": ENCODER_FORMAT,
        **metadata,
        "weights": {"file": ENCODER_WEIGHTS, "sha256": file_sha256(weights)},
        "versions": library_versions(("hybridrad", "torch", "monai", "numpy", "SimpleITK")),
    }
    path = out / ENCODER_METADATA
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return meta


def load_encoder_dir(folder: str | os.PathLike[str]) -> Encoder:
    """An encoder directory written by :func:`save_encoder_dir` (e.g. ``pretrain``).

    The weights file must have the sha256 that ``encoder.json`` records: this catches a
    damaged or swapped file, not deliberate tampering (whoever can edit the weights can
    also edit the recorded hash).
    """
    root = Path(folder)
    meta_path = root / ENCODER_METADATA
    if not meta_path.is_file():
        raise EncoderError(f"{root} is not an encoder directory (no {ENCODER_METADATA})")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != ENCODER_FORMAT:
        raise EncoderError(f"{meta_path}: format {meta.get('format')!r}, expected {ENCODER_FORMAT}")
    arch = meta["architecture"]
    weights = root / meta.get("weights", {}).get("file", ENCODER_WEIGHTS)
    recorded = meta.get("weights", {}).get("sha256")
    if recorded and weights.is_file() and file_sha256(weights) != recorded:
        raise EncoderError(
            f"{weights} differs from the file {meta_path.name} describes (sha256 "
            f"{file_sha256(weights)[:12]}... instead of {str(recorded)[:12]}...): it was "
            "changed or damaged after it was written; copy the encoder directory again or "
            "re-run `hybridrad pretrain`"
        )
    encoder = load_resnet_encoder(
        weights,
        arch["arch"],
        name=meta.get("name", "ssl"),
        kwargs=arch.get("kwargs", {}),
        patch=meta.get("patch", {}),
        kind="encoder-dir",
    )
    encoder.source["path"] = str(root.resolve())
    return encoder


# --- spec strings -----------------------------------------------------------------------------------


def resolve_encoder(
    spec: str | os.PathLike[str] | Encoder | None = None, *, trust_code: bool = False
) -> Encoder:
    """An :class:`Encoder` from a spec string (see the module docstring).

    Parameters
    ----------
    spec
        ``None`` or ``"segmentation"``: the shipped segmentation model's encoder.
    trust_code
        Allow TorchScript files (they run the code they contain); see
        :func:`load_torchscript`.

    Raises
    ------
    UntrustedCodeError
        ``spec`` names a TorchScript file and ``trust_code`` is false.
    EncoderError
        Unknown spec, missing file, weights that do not fit.

    Examples
    --------
    >>> try:
    ...     resolve_encoder("nonsense:x")
    ... except EncoderError as exc:
    ...     print(str(exc)[:34])
    unknown encoder spec 'nonsense:x':
    """
    if isinstance(spec, Encoder):
        return spec
    text = "segmentation" if spec is None else str(spec)
    kind, _, arg = text.partition(":")
    if kind in ("segmentation", "seg", "segresnet"):
        return load_segmentation_encoder(arg or None)
    if kind == "fmcib" and arg:
        return load_fmcib(arg)
    if kind == "torchscript" and arg:
        return load_torchscript(arg, trust_code=trust_code)
    if kind in ("ssl", "dir") and arg:
        return load_encoder_dir(arg)
    if kind.startswith("medicalnet-") and arg:
        return load_medicalnet(arg, kind.removeprefix("medicalnet-"))
    if kind in RESNET_ARCHS and arg:
        return load_resnet_encoder(arg, kind)
    path = Path(text)
    if path.is_dir() and (path / ENCODER_METADATA).is_file():
        return load_encoder_dir(path)
    if path.is_dir() and (path / "model.json").is_file():
        return load_segmentation_encoder(path)
    if path.is_file() and path.suffix in TORCHSCRIPT_SUFFIXES:
        return load_torchscript(path, trust_code=trust_code)
    raise EncoderError(
        f"unknown encoder spec {text!r}: use segmentation[:MODEL_DIR], fmcib:WEIGHTS, "
        f"medicalnet-resnet18:WEIGHTS, resnet50:WEIGHTS, torchscript:FILE or an encoder "
        "directory written by `hybridrad pretrain`"
    )
