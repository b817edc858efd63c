"""Label maps: what the integer values of a segmentation mask mean.

A :class:`LabelMap` names the voxel values (``labels``) and the regions built from
them (``regions``), e.g. the BraTS evaluation regions whole tumour (WT), tumour core
(TC) and enhancing tumour (ET). A ``nonzero`` map (the ``binary`` preset) reads every
non-zero voxel as its one label; ``ignore`` lists values to read as background.

Every mask is read through :meth:`LabelMap.check_values`, so a mask value the map does
not name is an error (:class:`~hybridrad.errors.MaskLabelError`), never silently dropped.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hybridrad.errors import LabelMapError, LabelValueWarning, MaskLabelError
from hybridrad.io.yamlfile import read_mapping

_KEYS = ("name", "labels", "regions", "nonzero", "ignore")


@dataclass(frozen=True)
class LabelMap:
    """Meaning of mask values.

    Parameters
    ----------
    name
        Short identifier, recorded with outputs.
    labels
        Voxel value -> tissue name. 0 is always background and must not be listed.
    regions
        Region name -> the voxel values it unites.
    nonzero
        Every non-zero voxel (except ``ignore`` values) is the map's one label: the map
        must define exactly one label, and a mask may hold any other values
        (``binary``: all of a BraTS mask's 1, 2 and 4 voxels are ``tumor``).
    ignore
        Values read as background (one :class:`~hybridrad.errors.LabelValueWarning`
        names them, with their voxel counts, per mask holding them).

    Examples
    --------
    >>> lm = LabelMap.preset("brats")
    >>> lm.regions["TC"]
    (1, 4)
    >>> sorted(lm.valid_values)
    [0, 1, 2, 4]
    >>> binary = LabelMap.preset("binary")
    >>> binary.region_mask(np.array([0, 1, 2, 4]), "tumor").tolist()
    [False, True, True, True]
    """

    name: str
    labels: Mapping[int, str]
    regions: Mapping[str, tuple[int, ...]]
    nonzero: bool = False
    ignore: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.labels:
            raise LabelMapError(f"label map {self.name!r} defines no labels")
        if 0 in self.labels:
            raise LabelMapError(f"label map {self.name!r}: 0 is background and cannot be a label")
        if not self.regions:
            raise LabelMapError(f"label map {self.name!r} defines no regions")
        for region, values in self.regions.items():
            unknown = sorted(set(values) - set(self.labels))
            if not values or unknown:
                raise LabelMapError(
                    f"label map {self.name!r}: region {region!r} uses values {unknown or '[]'} "
                    f"that are not labels ({sorted(self.labels)})"
                )
        if not isinstance(self.nonzero, bool):
            raise LabelMapError(
                f"label map {self.name!r}: 'nonzero' must be true or false, not {self.nonzero!r}"
            )
        if self.nonzero and len(self.labels) != 1:
            raise LabelMapError(
                f"label map {self.name!r}: a 'nonzero' map reads every non-zero voxel as its "
                f"one label, so it must define exactly one label (it defines "
                f"{sorted(self.labels)}); drop 'nonzero' or keep one label"
            )
        object.__setattr__(self, "ignore", tuple(sorted({int(v) for v in self.ignore})))
        clash = sorted({0, *self.labels} & set(self.ignore))
        if clash:
            raise LabelMapError(
                f"label map {self.name!r}: 'ignore' lists {clash}, which are "
                f"{'background' if clash == [0] else 'labels'}; ignore only values the map "
                "does not otherwise use"
            )

    @property
    def valid_values(self) -> frozenset[int]:
        """The values the map names, background and ``ignore`` values included.

        A ``nonzero`` map accepts any other value too (see :meth:`accepts`); check masks
        with :meth:`check_values`.
        """
        return frozenset({0, *self.labels, *self.ignore})

    def accepts(self, value: float) -> bool:
        """Whether a mask may hold ``value`` (an integer the map names or ignores, or any
        integer for a ``nonzero`` map)."""
        v = float(value)
        if not v.is_integer():
            return False
        return self.nonzero or int(v) in self.valid_values

    def region_mask(self, array: npt.ArrayLike, region: str) -> npt.NDArray[np.bool_]:
        """Boolean array of the voxels of ``region`` in a label ``array``."""
        if region not in self.regions:
            raise LabelMapError(
                f"region {region!r} is not in label map {self.name!r}; "
                f"choose one of {list(self.regions)}"
            )
        arr = np.asarray(array)
        if self.nonzero:
            keep = arr != 0
            if self.ignore:
                keep &= ~np.isin(arr, self.ignore)
            return np.asarray(keep, dtype=bool)
        return np.isin(arr, self.regions[region])

    def read_values(
        self, array: npt.ArrayLike, where: str
    ) -> tuple[np.ndarray, LabelValueWarning | None]:
        """:meth:`check_values` without emitting the warning: (array, warning or None).

        For callers that collect warnings themselves (``validate`` reports them).
        """
        arr = np.asarray(array)
        nonzero = arr[arr != 0]
        values, counts = np.unique(nonzero, return_counts=True)
        n_zero = arr.size - nonzero.size
        found = ([(0.0, n_zero)] if n_zero else []) + [
            (float(v), int(c)) for v, c in zip(values.tolist(), counts.tolist(), strict=True)
        ]
        fractional = [(v, c) for v, c in found if not v.is_integer()]
        if fractional:
            raise MaskLabelError(
                f"{where} holds non-integer value(s) {_counts(fractional)}; a mask holds "
                "integer labels. Check that the file is a mask and not an image, or round it "
                "and save it as integers (e.g. uint8)."
            )
        ignored = [(v, c) for v, c in found if int(v) in self.ignore]
        unknown = [(v, c) for v, c in found if int(v) not in self.valid_values and not self.nonzero]
        if unknown:
            raise MaskLabelError(
                f"{where} holds value(s) {_counts(unknown)} that label map {self.name!r} "
                f"does not define (it defines {self._describe()}; values found: "
                f"{_counts(found)}). {_fix_hint(found, self)}"
            )
        label = next(iter(self.labels))
        relabel = self.nonzero and any(int(v) not in (0, label, *self.ignore) for v, _ in found)
        if not ignored and not relabel:
            return arr, None
        out = arr.copy()
        if ignored:
            out[np.isin(arr, self.ignore)] = 0
        if relabel:
            out[out != 0] = label
        warning = None
        if ignored:
            warning = LabelValueWarning(
                f"{where}: value(s) {_counts(ignored)} read as background, as label map "
                f"{self.name!r} asks ('ignore: {list(self.ignore)}')"
            )
        return out, warning

    def check_values(self, array: npt.ArrayLike, where: str) -> np.ndarray:
        """Check the values of a label ``array`` and return it as this map reads it.

        The one check of mask values, used by validation and by extraction alike.

        Parameters
        ----------
        array
            The mask's voxels.
        where
            Names the mask in messages, e.g. ``"case 'c1': mask c1_seg.nii.gz"``.

        Returns
        -------
        numpy.ndarray
            ``array`` itself when it needs no change; else a copy in which ``ignore``
            values are 0 (one :class:`~hybridrad.errors.LabelValueWarning` names them with
            their voxel counts) and, for a ``nonzero`` map, every other non-zero value is
            the map's label.

        Raises
        ------
        MaskLabelError
            A non-integer value (0.5 in a float mask, NaN), or a value the map neither
            defines nor ignores; the message lists the values found with voxel counts, the
            map's values and the fix.

        Examples
        --------
        >>> LabelMap.preset("binary").check_values(np.array([0, 1, 2, 4]), "m").tolist()
        [0, 1, 1, 1]
        >>> LabelMap.preset("brats").check_values(np.array([0, 1, 7]), "mask m")
        Traceback (most recent call last):
        ...
        hybridrad.errors.MaskLabelError: mask m holds value(s) 7 (1 voxel) that label map ...
        """
        out, warning = self.read_values(array, where)
        if warning is not None:
            warnings.warn(warning, stacklevel=2)
        return out

    def _describe(self) -> str:
        names = ", ".join(f"{v} = {n}" for v, n in sorted(self.labels.items()))
        text = f"0 = background, {names}"
        if self.ignore:
            text += f"; ignores {list(self.ignore)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, as written to YAML and hashed into provenance."""
        out: dict[str, Any] = {
            "name": self.name,
            "labels": {int(k): v for k, v in self.labels.items()},
            "regions": {k: list(v) for k, v in self.regions.items()},
        }
        if self.nonzero:
            out["nonzero"] = True
        if self.ignore:
            out["ignore"] = list(self.ignore)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelMap:
        """Build from the form :meth:`to_dict` writes; unknown keys are errors.

        A ``nonzero: true`` map may leave out ``labels`` (default ``{1: tumor}``) and
        ``regions`` (default: one region per label, named after it).
        """
        unknown = set(data) - set(_KEYS)
        if unknown:
            raise LabelMapError(
                f"unknown label-map keys {sorted(unknown)}; allowed: {', '.join(_KEYS)}"
            )
        nonzero = data.get("nonzero", False)
        if not isinstance(nonzero, bool):
            raise LabelMapError(f"label-map key 'nonzero' must be true or false, not {nonzero!r}")
        try:
            raw_labels = data["labels"] if "labels" in data or not nonzero else {1: "tumor"}
            labels = {int(k): str(v) for k, v in dict(raw_labels).items()}
            raw_regions = (
                data["regions"]
                if "regions" in data or not nonzero
                else {n: [v] for v, n in labels.items()}
            )
            regions = {
                str(k): tuple(int(x) for x in _as_list(v)) for k, v in dict(raw_regions).items()
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise LabelMapError(
                "a label map needs 'labels' {value: name} and 'regions' {name: [values]}"
            ) from exc
        try:
            ignore = tuple(int(x) for x in _as_list(data.get("ignore") or []))
        except (TypeError, ValueError) as exc:
            raise LabelMapError(
                f"label-map key 'ignore' must be a list of integer values, not {data['ignore']!r}"
            ) from exc
        return cls(
            name=str(data.get("name", "custom")),
            labels=labels,
            regions=regions,
            nonzero=nonzero,
            ignore=ignore,
        )

    @classmethod
    def preset(cls, name: str) -> LabelMap:
        """One of the built-in label maps; see :data:`PRESETS`."""
        try:
            return PRESETS[name]
        except KeyError:
            raise LabelMapError(
                f"unknown label-map preset {name!r}; choose one of {sorted(PRESETS)} "
                "or give a YAML file"
            ) from None


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _counts(items: Sequence[tuple[float, int]], limit: int = 10) -> str:
    shown = ", ".join(f"{_num(v)} ({c:,} voxel{'s' if c != 1 else ''})" for v, c in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _fix_hint(found: Sequence[tuple[float, int]], label_map: LabelMap) -> str:
    values = {int(v) for v, _ in found}
    fits = [
        n
        for n, p in PRESETS.items()
        if not p.nonzero and n != label_map.name and values <= p.valid_values
    ]
    presets = f"--labels {fits[0]} fits these values; " if fits else ""
    return (
        f"Choose the label map the mask was drawn with ({presets}--labels binary reads every "
        "non-zero voxel as one region), add the values to the map's 'ignore:' list to read "
        "them as background, or relabel the mask."
    )


def _as_list(value: Any) -> Sequence[Any]:
    return [value] if isinstance(value, int) else list(value)


PRESETS: dict[str, LabelMap] = {
    # BraTS 2017-2021: 1 necrotic/non-enhancing core, 2 oedema, 4 enhancing tumour.
    "brats": LabelMap(
        "brats",
        {1: "necrotic_core", 2: "edema", 4: "enhancing"},
        {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)},
    ),
    # BraTS 2023+: 1 non-enhancing core, 2 surrounding FLAIR hyperintensity, 3 enhancing.
    "brats2023": LabelMap(
        "brats2023",
        {1: "necrotic_core", 2: "edema", 3: "enhancing"},
        {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)},
    ),
    # BraTS 2013-2015: 1 necrosis, 2 oedema, 3 non-enhancing, 4 enhancing.
    "brats2015": LabelMap(
        "brats2015",
        {1: "necrosis", 2: "edema", 3: "non_enhancing", 4: "enhancing"},
        {"WT": (1, 2, 3, 4), "TC": (1, 3, 4), "ET": (4,)},
    ),
    # BRATS 2012: 1 oedema, 2 active tumour.
    "brats2012": LabelMap(
        "brats2012",
        {1: "edema", 2: "active_tumor"},
        {"WT": (1, 2), "TC": (2,)},
    ),
    # Every non-zero voxel is tumour, whatever its value (a BraTS mask's 1, 2 and 4 alike).
    "binary": LabelMap("binary", {1: "tumor"}, {"tumor": (1,)}, nonzero=True),
}


def load_label_map(spec: str | os.PathLike[str] | LabelMap) -> LabelMap:
    """A :class:`LabelMap` from a preset name, a YAML file, or an existing map."""
    if isinstance(spec, LabelMap):
        return spec
    if isinstance(spec, str) and spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec)
    if not path.is_file():
        raise LabelMapError(
            f"label map {str(spec)!r} is neither a preset ({', '.join(sorted(PRESETS))}) "
            "nor an existing YAML file"
        )
    data = read_mapping(
        path,
        LabelMapError,
        "label map",
        "Write it as 'labels: {value: name}' and 'regions: {name: [values]}' (see the presets).",
    )
    data.setdefault("name", path.stem)
    return LabelMap.from_dict(data)
