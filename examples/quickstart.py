"""Quick start with the Python API: synthetic cohort -> validation -> radiomics.

Run: .venv/bin/python examples/quickstart.py [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

from hybridrad.datasets import make_synthetic_cohort
from hybridrad.features import extract_radiomics
from hybridrad.io import Cohort

# A light pyradiomics configuration so the example runs in seconds; use the shipped
# preset "mri_glioma" for real work.
LIGHT = {
    "imageType": {"Original": {}},
    "featureClass": {"shape": None, "firstorder": None, "glcm": None},
    "setting": {"normalize": True, "normalizeScale": 100, "binWidth": 5, "voxelArrayShift": 300},
}


def main(out: Path) -> None:
    synthetic = make_synthetic_cohort(out / "cohort", n_cases=6, seed=0, overwrite=True)
    print(f"oracle C-index {synthetic.oracle_cindex:.3f}, IDH AUC {synthetic.oracle_auc_idh:.3f}")

    cohort = Cohort.from_csv(
        synthetic.manifest_path, label_map="brats", clinical=synthetic.clinical_path
    )
    report = cohort.validate(time="os_months", event="death")
    print(report.summary())
    report.raise_if_failed()

    result = extract_radiomics(
        cohort,
        LIGHT,
        sequences=["t1c", "flair"],
        regions=["WT", "ET"],
        jobs=2,
        cache_dir=out / "cache",
    )
    print(f"{result.features.shape[0]} cases x {result.features.shape[1]} features")
    print(result.features.filter(like="__shape__VoxelVolume").round(0).to_string())
    result.save(out / "radiomics.parquet", provenance={"example": "quickstart"})


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("quickstart-output"))
