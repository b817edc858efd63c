"""The IBSI feature table shipped as data, and pyradiomics output in IBSI terms.

:func:`hybridrad.features.ibsi.load_ibsi_features` reads
``hybridrad/features/data/ibsi_features.csv``, which was generated from the former in-code
table ``IBSI_FEATURES`` (109 rows). The quoted rows below pin it to the IBSI 1 reference
manual; the conformance on the IBSI phantoms is ``tests/test_ibsi_conformance.py``.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from hybridrad.errors import HybridradError
from hybridrad.features import ibsi
from hybridrad.features.ibsi import (
    IBSI_FEATURES,
    TRANSFORMS,
    ibsi_table,
    load_ibsi_features,
    to_ibsi,
)

MORPH = "Morphological features"
STAT = "Intensity-based statistical features"
IH = "Intensity histogram features"
GLCM = "Grey level co-occurrence based features"
GLRLM = "Grey level run length based features"
GLSZM = "Grey level size zone based features"
NGTDM = "Neighbourhood grey tone difference based features"
NGLDM = "Neighbouring grey level dependence based features"

_MANUAL = "IBSI 1 reference manual (Zwanenburg et al., arXiv 1612.07003), chapter Image features"

# (IBSI code, family, IBSI name) quoted from the IBSI 1 reference manual, then the
# pyradiomics feature, status and transform the former in-code table gave the code.
_QUOTED = [
    # manual, "Morphological features": "Volume (mesh)", identifier RNU0
    (("RNU0", MORPH, "Volume (mesh)"), ("shape", "MeshVolume", "agree", "identity")),
    # manual, "Morphological features": "Compactness 2", identifier BQWJ
    (("BQWJ", MORPH, "Compactness 2"), ("shape", "Sphericity", "corrected", "compactness2")),
    # manual, "Morphological features": "Major axis length", identifier TDIC
    (("TDIC", MORPH, "Major axis length"), ("shape", "MajorAxisLength", "corrected", "pca_axis")),
    # manual, "Intensity-based statistical features": "(Excess) intensity kurtosis", IPH6
    (
        ("IPH6", STAT, "(Excess) intensity kurtosis"),
        ("firstorder", "Kurtosis", "corrected", "excess_kurtosis"),
    ),
    # manual, "Intensity-based statistical features": "10th intensity percentile", QG58
    (
        ("QG58", STAT, "10th intensity percentile"),
        ("firstorder", "10Percentile", "agree", "identity"),
    ),
    # manual, "Intensity histogram features": "Discretised intensity entropy", TLU2
    (("TLU2", IH, "Discretised intensity entropy"), ("firstorder", "Entropy", "agree", "identity")),
    # manual, "Grey level co-occurrence based features": "Joint maximum", identifier GYBY
    (("GYBY", GLCM, "Joint maximum"), ("glcm", "MaximumProbability", "agree", "identity")),
    # manual, "Grey level co-occurrence based features": "Sum variance", identifier OEEB
    (("OEEB", GLCM, "Sum variance"), ("glcm", "ClusterTendency", "agree", "identity")),
    # manual, "Grey level run length based features": "Short runs emphasis", identifier 22OV
    (("22OV", GLRLM, "Short runs emphasis"), ("glrlm", "ShortRunEmphasis", "agree", "identity")),
    # manual, "Grey level size zone based features": "Zone size entropy", identifier GU8N
    (("GU8N", GLSZM, "Zone size entropy"), ("glszm", "ZoneEntropy", "agree", "identity")),
    # manual, "Neighbourhood grey tone difference based features": "Coarseness", QCDE
    (("QCDE", NGTDM, "Coarseness"), ("ngtdm", "Coarseness", "agree", "identity")),
    # manual, "Neighbouring grey level dependence based features":
    # "Normalised grey level non-uniformity", identifier 5SPA
    (
        ("5SPA", NGLDM, "Normalised grey level non-uniformity"),
        ("firstorder", "Uniformity", "corrected", "identity"),
    ),
]


def test_loader_reads_the_shipped_table_once() -> None:
    feats = load_ibsi_features()
    assert feats is load_ibsi_features() is IBSI_FEATURES  # cached
    assert len(feats) == 109
    assert Counter(f.status for f in feats) == {"agree": 100, "corrected": 9}
    assert Counter(f.family for f in feats) == {
        MORPH: 15, STAT: 15, IH: 2, GLCM: 25, GLRLM: 16, GLSZM: 16, NGTDM: 5, NGLDM: 15,
    }  # fmt: skip
    names = {v: k for k, v in TRANSFORMS.items()}
    assert Counter(names[f.transform] for f in feats) == {
        "identity": 101, "pca_axis": 3, "excess_kurtosis": 1, "compactness1": 1,
        "compactness2": 1, "spherical_disproportion": 1, "asphericity": 1,
    }  # fmt: skip
    assert [f.code for f in feats if f.aggregation_class != f.pyrad_class] == ["5SPA"]


@pytest.mark.parametrize(("ibsi_row", "mapping"), _QUOTED, ids=[q[0][0] for q in _QUOTED])
def test_loaded_rows_match_the_ibsi_manual(
    ibsi_row: tuple[str, str, str], mapping: tuple[str, str, str, str]
) -> None:
    feat = {f.code: f for f in load_ibsi_features()}[ibsi_row[0]]
    assert (feat.code, feat.family, feat.name) == ibsi_row, _MANUAL
    cls, feature, status, transform = mapping
    assert (feat.pyrad_class, feat.pyrad_feature, feat.status) == (cls, feature, status)
    assert feat.transform is TRANSFORMS[transform]


def test_loaded_notes_and_transforms() -> None:
    feats = {f.code: f for f in load_ibsi_features()}
    assert feats["SKGS"].note == (
        "derived from pyradiomics Sphericity (= (36 pi V^2)^(1/3) / A, mesh based): "
        "C1 = sphericity^(3/2) / (6 pi)"
    )
    assert feats["SKGS"].transform(0.5) == 0.5**1.5 / (6.0 * math.pi)
    assert feats["KRCK"].transform(0.5) == 2.0
    assert feats["25C7"].transform(0.5) == 1.0
    assert feats["IPH6"].transform(2.645) == 2.645 - 3.0
    assert feats["5SPA"].aggregation_class == "gldm"
    assert (
        feats["N8CA"].note
        == "equal only with voxelArrayShift: 0 (pyradiomics squares intensity + shift)"
    )
    assert feats["FCBV"].note == (
        "pyradiomics GLDM with gldm_a=0 and distance 1 is the IBSI NGLDM (coarseness 0)"
    )


def test_mapping_table_is_consistent() -> None:
    codes = [f.code for f in IBSI_FEATURES]
    assert len(codes) == len(set(codes))
    for f in IBSI_FEATURES:
        assert len(f.code) == 4
        assert f.status in ("agree", "corrected", "deviates")
        assert f.status == "agree" or f.note
        assert (f.transform is TRANSFORMS["identity"]) or f.status == "corrected"
    table = ibsi_table()
    assert table["ibsi_code"].tolist() == codes
    assert table.loc[table.ibsi_code == "GYBY", "pyradiomics"].item() == "glcm_MaximumProbability"


@pytest.mark.data
def test_names_are_those_of_the_ibsi_reference_values(data_dir: Path) -> None:
    """Family and name of every row = the IBSI manual's tables (shared reference data)."""
    path = data_dir / "ibsi" / "ibsi_1_reference_values" / "ibsi_1_reference_values_long.csv"
    if not path.is_file():
        pytest.skip(f"IBSI reference values not found: {path}")
    ref = pd.read_csv(path).drop_duplicates("ibsi_code").set_index("ibsi_code")
    for f in IBSI_FEATURES:
        assert f.code in ref.index, f.code
        assert f.family == ref.loc[f.code, "family"], f.code
        printed = str(ref.loc[f.code, "feature"]).replace("\\ :sup:`th`", "th")
        assert f.name == printed, f.code


_HEADER = (
    "ibsi_code,family,feature,pyradiomics_class,pyradiomics_feature,"
    "status,transform,aggregation_class,note"
)
_ROW = "GYBY,fam,Joint maximum,glcm,MaximumProbability,agree,identity,glcm,"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# only a comment\n", "the header is nothing"),
        ("code,family\n" + _ROW, "the header is ['code', 'family']"),
        (f"{_HEADER}\n# c\n{_ROW}\n{_ROW}\n", "line 4: ibsi_code GYBY appears twice"),
        (f"{_HEADER}\n{_ROW.replace('agree', 'fine')}\n", "status 'fine' is not one of"),
        (f"{_HEADER}\n{_ROW.replace('identity', 'sqrt')}\n", "transform 'sqrt' is not one of"),
        (f"{_HEADER}\n{_ROW},a, b\n", "line 2: 11 fields, expected 9"),
    ],
)
def test_malformed_table_is_refused_with_the_line(text: str, message: str) -> None:
    with pytest.raises(HybridradError) as err:
        ibsi._parse_features(text, "test.csv")
    assert str(err.value).startswith("test.csv")
    assert message in str(err.value)


def test_parse_skips_comments_and_blank_lines() -> None:
    feats = ibsi._parse_features(f"# a\n{_HEADER}\n\n# b\n{_ROW}\n", "test.csv")
    assert [(f.code, f.pyrad_key, f.aggregation_class) for f in feats] == [
        ("GYBY", "glcm_MaximumProbability", "glcm")
    ]


def test_to_ibsi_corrections_and_names() -> None:
    out = to_ibsi(
        {
            "rad__ct__GTV__original__firstorder__Kurtosis": 2.645,
            "rad__ct__GTV__original__firstorder__Uniformity": 0.5,
            "original_shape_Sphericity": 0.5,
            "original_shape_MajorAxisLength": 10.0,
            "diagnostics_Mask-original_VoxelNum": 5,
            "wavelet-LLH_glcm_Contrast": 1.0,
        }
    ).set_index("ibsi_code")
    assert out.loc["IPH6", "value"] == pytest.approx(-0.355)
    assert out.loc["5SPA", "aggregation"] == "3D"
    assert out.loc["BQWJ", "value"] == pytest.approx(0.125)
    assert out.loc["25C7", "value"] == pytest.approx(1.0)
    assert out.loc["TDIC", "value"] == pytest.approx(10.0 * math.sqrt(5 / 4))
    assert "ACUI" not in out.index  # filtered image types are not IBSI 1
    no_n = to_ibsi({"original_shape_MajorAxisLength": 10.0}).set_index("ibsi_code")
    assert no_n.loc["TDIC", "status"] == "deviates"
