"""Every case of the shared reference cohorts loads through the manifest API.

Skipped when the reference data (``$HYBRIDRAD_DATA`` or ../shared/data) is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from hybridrad.datasets.discover import discover_brats, discover_lgg_tcga
from hybridrad.io import Cohort, write_manifest

pytestmark = pytest.mark.data

# folder -> (label-map preset, sequences, number of cases), from brats-samples/README.md
BRATS = {
    "brats2018-wholetumour": ("binary", ("t1", "flair"), 10),
    "brats2015-multiclass": ("brats2015", ("t1c", "flair"), 6),
    "brats2018-fourmodal": ("brats", ("t1", "t1c", "t2", "flair"), 2),
    "brats2012-fourmodal": ("brats2012", ("t1", "t1c", "t2", "flair"), 1),
}


def _load_all(cohort: Cohort) -> None:
    for case in cohort:
        mask = sitk.GetArrayFromImage(case.read_mask())
        assert mask.any(), f"{case.case_id}: empty mask"
        for seq in cohort.sequences:
            image = case.read(seq)
            assert image.GetSize() == case.read_mask().GetSize()
            assert np.isfinite(sitk.GetArrayViewFromImage(image)).all()


@pytest.mark.parametrize("folder", sorted(BRATS))
def test_brats_samples_load(data_dir: Path, tmp_path: Path, folder: str) -> None:
    labels, sequences, n = BRATS[folder]
    table = discover_brats(data_dir / "brats-samples" / folder)
    manifest = write_manifest(table, tmp_path / "manifest.csv")
    cohort = Cohort.from_csv(manifest, label_map=labels)
    assert len(cohort) == n and cohort.has_masks
    assert cohort.sequences == sequences
    report = cohort.validate()
    assert report.ok, report.summary()
    _load_all(cohort)


def test_lgg_tcga_loads_with_clinical(data_dir: Path, tmp_path: Path) -> None:
    table, clinical = discover_lgg_tcga(data_dir / "lgg-tcga")
    manifest = write_manifest(table, tmp_path / "manifest.csv")
    cohort = Cohort.from_csv(manifest, clinical=clinical)
    assert len(cohort) == 39  # lgg-tcga/README.md: 39 patients
    report = cohort.validate(time="os_months", event="death")
    assert report.ok, report.summary()
    assert cohort.clinical is not None
    # README: 9 IDHmut-codel, 21 IDHmut-non-codel, 9 IDHwt; 8 deaths
    assert cohort.clinical["idh_codel_subtype"].value_counts().to_dict() == {
        "IDHmut-non-codel": 21,
        "IDHmut-codel": 9,
        "IDHwt": 9,
    }
    assert int(cohort.clinical["death"].sum()) == 8
    _load_all(cohort)
