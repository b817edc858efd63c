"""Label maps: what the integer values of a segmentation mask mean.

A :class:`LabelMap` names the voxel values (``labels``) and the regions built from
them (``regions``), e.g. the BraTS evaluation regions whole tumour (WT), tumour core
(TC) and enhancing tumour (ET).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hybridrad.errors import LabelMapError


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

    Examples
    --------
    >>> lm = LabelMap.preset("brats")
    >>> lm.regions["TC"]
    (1, 4)
    >>> sorted(lm.valid_values)
    [0, 1, 2, 4]
    """

    name: str
    labels: Mapping[int, str]
    regions: Mapping[str, tuple[int, ...]]

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

    @property
    def valid_values(self) -> frozenset[int]:
        """Every value a mask may contain, background included."""
        return frozenset({0, *self.labels})

    def region_mask(self, array: np.ndarray, region: str) -> np.ndarray:
        """Boolean array of the voxels of ``region`` in a label ``array``."""
        if region not in self.regions:
            raise LabelMapError(
                f"region {region!r} is not in label map {self.name!r}; "
                f"choose one of {list(self.regions)}"
            )
        return np.isin(array, self.regions[region])

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, as written to YAML and hashed into provenance."""
        return {
            "name": self.name,
            "labels": {int(k): v for k, v in self.labels.items()},
            "regions": {k: list(v) for k, v in self.regions.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelMap:
        """Build from the form :meth:`to_dict` writes; unknown keys are errors."""
        unknown = set(data) - {"name", "labels", "regions"}
        if unknown:
            raise LabelMapError(
                f"unknown label-map keys {sorted(unknown)}; allowed: name, labels, regions"
            )
        try:
            labels = {int(k): str(v) for k, v in dict(data["labels"]).items()}
            regions = {
                str(k): tuple(int(x) for x in _as_list(v)) for k, v in dict(data["regions"]).items()
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise LabelMapError(
                "a label map needs 'labels' {value: name} and 'regions' {name: [values]}"
            ) from exc
        return cls(name=str(data.get("name", "custom")), labels=labels, regions=regions)

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
    "binary": LabelMap("binary", {1: "tumor"}, {"tumor": (1,)}),
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
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise LabelMapError(f"{path}: expected a mapping with 'labels' and 'regions'")
    data.setdefault("name", path.stem)
    return LabelMap.from_dict(data)
