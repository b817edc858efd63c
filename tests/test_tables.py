"""External feature and clinical tables: ids, blocks, text columns, targets, labels.

Each test feeds a small user table (a pyradiomics-style batch CSV, a clinical CSV) to the
API or to ``hybridrad evaluate|fit|predict|score`` in-process, and checks that nothing
about the tables is decided silently: every fix is logged or warned, every refusal names
the file, case, column or value and the option that changes it.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybridrad.cli import main
from hybridrad.errors import ClinicalError, DuplicateCaseError, ManifestError
from hybridrad.models.fusion import (
    KNOWN_BLOCKS,
    ClinicalCovariateError,
    FeatureTableError,
    FeatureTableWarning,
    clinical_block,
    load_feature_tables,
)
from hybridrad.models.target import LabelError, MissingTargetError, class_target
from hybridrad.study.load import load_study

N = 40
TINY_STUDY = (
    "outer_repeats: 1\nouter_splits: 3\ninner_splits: 2\nn_boot: 20\nscreen_k: [2]\n"
    "prescreen_k: 5\nn_permutations: 0\n"
)


@pytest.fixture(autouse=True)
def _drop_cli_log_handler() -> Iterator[None]:
    """``main`` logs to the stderr of its test; take its handler away afterwards."""
    yield
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "_hybridrad", False)]


def _cohort(n: int = N, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A pyradiomics-style batch table (ids in ``PatientID``) and its clinical table.

    Two of four features carry the risk; the label ``idh`` (mutant in about a third of
    the cases) follows the same score.
    """
    rng = np.random.default_rng(seed)
    ids = [f"{i:03d}" for i in range(n)]  # leading zeros must survive
    f = rng.normal(size=(n, 4))
    lp = 1.2 * f[:, 0] - 1.0 * f[:, 1]
    time = rng.exponential(np.exp(-lp) * 20)
    cens = rng.exponential(40, n)
    features = pd.DataFrame(
        {
            "PatientID": ids,
            "Image": [f"/data/{i}/t1.nii.gz" for i in ids],
            "Mask": [f"/data/{i}/mask.nii.gz" for i in ids],
            "diagnostics_Versions_PyRadiomics": "v3.0.1",
            "diagnostics_Mask-original_VoxelNum": rng.integers(100, 900, n),
            "original_firstorder_Mean": f[:, 0],
            "original_firstorder_Energy": f[:, 1],
            "original_glcm_Contrast": f[:, 2],
            "original_shape_Sphericity": f[:, 3],
        }
    )
    clinical = pd.DataFrame(
        {
            "PatientID": ids,
            "age": rng.normal(55, 10, n).round(1),
            "sex": rng.choice(["F", "M"], n),
            "os": np.minimum(time, cens).round(2),
            "dead": (time < cens).astype(int),
            "idh": np.where(lp > np.quantile(lp, 0.65), "mutant", "wildtype"),
        }
    )
    return features, clinical


@pytest.fixture()
def tables(tmp_path: Path) -> dict[str, Path]:
    """The cohort written to CSV, plus a tiny study config."""
    features, clinical = _cohort()
    paths = {
        "features": tmp_path / "radiomics.csv",
        "clinical": tmp_path / "clinical.csv",
        "study": tmp_path / "study.yaml",
    }
    features.to_csv(paths["features"], index=False)
    clinical.to_csv(paths["clinical"], index=False)
    clinical.to_csv(tmp_path / "clinical_pid.csv", index=False)  # kept as written
    paths["study"].write_text(TINY_STUDY)
    return paths


def _args(tables: dict[str, Path], *extra: str) -> list[str]:
    return [
        str(tables["features"]),
        "--clinical",
        str(tables["clinical"]),
        "--config",
        str(tables["study"]),
        *extra,
    ]


def _error_line(err: str) -> str:
    """The one ``error: ...`` line of a failed command."""
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


# --- 1. ids -------------------------------------------------------------------------------


def test_without_case_id_the_id_column_must_be_named(
    tables: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, clinical = _cohort()
    clinical.rename(columns={"PatientID": "case_id"}).to_csv(tables["clinical"], index=False)
    code = main(["evaluate", *_args(tables, "--time", "os", "--event", "dead", "--out", "x")])
    assert code == 2
    line = _error_line(capsys.readouterr().err)
    assert str(tables["features"]) in line and "'PatientID'" in line
    assert "'original_firstorder_Mean'" in line and "--id-column" in line
    with pytest.raises(FeatureTableError, match="no id column 'pid'"):
        load_feature_tables([tables["features"]], id_column="pid")
    with pytest.warns(FeatureTableWarning):
        (table,) = load_feature_tables([tables["features"]], id_column="PatientID")
    assert list(table.index[:3]) == ["000", "001", "002"]  # text ids, zeros kept
    assert table.index.name == "case_id" and len(table) == N
    with pytest.warns(FeatureTableWarning):
        data = load_study(
            [tables["features"]],
            tables["clinical"].with_name("clinical_pid.csv"),
            time="os",
            event="dead",
            id_column="PatientID",
        )
    assert list(data.X.index) == list(table.index) and data.task == "survival"


def test_the_clinical_table_also_needs_its_id_column(tmp_path: Path) -> None:
    features, clinical = _cohort()
    features.rename(columns={"PatientID": "case_id"}).to_csv(tmp_path / "f.csv", index=False)
    clinical.to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(ClinicalError, match=r"c\.csv has no 'case_id'.*--id-column"):
        load_study([tmp_path / "f.csv"], tmp_path / "c.csv", label="idh")


def test_duplicate_ids_are_named(
    tables: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    features, clinical = _cohort()
    features.loc[5, "PatientID"] = "001"
    features.loc[7, "PatientID"] = "003"
    features.to_csv(tables["features"], index=False)
    code = main(
        ["evaluate", *_args(tables, "--label", "idh", "--id-column", "PatientID", "--out", "x")]
    )
    assert code == 2
    line = _error_line(capsys.readouterr().err)
    assert "'001'" in line and "'003'" in line and str(tables["features"]) in line
    _, clinical = _cohort()
    clinical.loc[2, "PatientID"] = "000"
    clinical.to_csv(tables["clinical"], index=False)
    with pytest.raises(DuplicateCaseError, match=r"clinical.*'000'"):
        load_study([tables["features"]], tables["clinical"], label="idh", id_column="PatientID")


# --- 2. blocks ------------------------------------------------------------------------------


def test_unprefixed_columns_go_to_the_block_with_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    table = pd.DataFrame(
        {
            "case_id": ["a", "b", "c"],
            "rad__kept": [1.0, 2.0, 3.0],
            "deep__kept": [1.0, 2.0, 3.0],
            "original_glcm_Contrast": [0.1, 0.2, 0.3],
            "enc4_0017": [0.5, 0.6, 0.7],
            "other__x": [1.0, 0.0, 1.0],  # a prefix no feature set knows
        }
    )
    path = tmp_path / "mixed.csv"
    table.to_csv(path, index=False)
    with caplog.at_level(logging.INFO, logger="hybridrad.models.fusion"):
        (out,) = load_feature_tables([path], block="deep")
    assert list(out.columns) == [
        "rad__kept",
        "deep__kept",
        "deep__original_glcm_Contrast",
        "deep__enc4_0017",
        "deep__other__x",
    ]
    notes = [r.getMessage() for r in caplog.records if "block prefix" in r.getMessage()]
    assert len(notes) == 1
    assert "3 column(s)" in notes[0] and "'deep'" in notes[0] and "--block" in notes[0]
    (default,) = load_feature_tables([path])
    assert "rad__enc4_0017" in default.columns
    with pytest.raises(FeatureTableError, match="unknown block 'radiomics'"):
        load_feature_tables([path], block="radiomics")


def test_cli_blocks_match_the_fusion_blocks() -> None:
    from hybridrad.cli.study import BLOCKS

    assert BLOCKS == KNOWN_BLOCKS


# --- 3. text columns --------------------------------------------------------------------------


def test_text_and_diagnostics_columns_are_dropped_with_one_warning(tmp_path: Path) -> None:
    features, _ = _cohort(n=6)
    features["extra_text"] = "x"
    features["is_enhancing"] = [True, False] * 3
    for i in range(12):  # more names than a message lists
        features[f"diagnostics_Image-original_Key{i:02d}"] = "abc"
    path = tmp_path / "pyrad.csv"
    features.to_csv(path, index=False)
    with pytest.warns(FeatureTableWarning) as record:
        (out,) = load_feature_tables([path], id_column="PatientID")
    drops = [str(w.message) for w in record if "dropped" in str(w.message)]
    assert len(drops) == 1
    message = drops[0]
    assert "14 pyradiomics diagnostics column(s)" in message and "... and 4 more" in message
    assert "'diagnostics_Versions_PyRadiomics'" in message
    assert "3 non-numeric column(s) ('Image', 'Mask', 'extra_text')" in message
    assert list(out.columns) == [
        "rad__original_firstorder_Mean",
        "rad__original_firstorder_Energy",
        "rad__original_glcm_Contrast",
        "rad__original_shape_Sphericity",
        "rad__is_enhancing",
    ]
    assert out["rad__is_enhancing"].tolist() == [1.0, 0.0] * 3
    assert (out.dtypes == np.float64).all()


def test_a_table_without_numeric_columns_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "text.csv"
    pd.DataFrame({"case_id": ["a", "b"], "note": ["x", "y"]}).to_csv(path, index=False)
    with pytest.warns(FeatureTableWarning), pytest.raises(FeatureTableError, match="no numeric"):
        load_feature_tables([path])


# --- 4. missing target values -------------------------------------------------------------------


def test_missing_survival_values_are_named_or_dropped(
    tables: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, clinical = _cohort()
    clinical.loc[3, "os"] = np.nan
    clinical.loc[11, "dead"] = np.nan
    clinical.to_csv(tables["clinical"], index=False)
    argv = [*_args(tables, "--time", "os", "--event", "dead", "--id-column", "PatientID")]
    code = main(["evaluate", *argv, "--out", str(tables["study"].parent / "out")])
    assert code == 2
    err = capsys.readouterr().err
    line = _error_line(err)
    # the table's fixes before the error are still reported, in the closing summary
    assert "FeatureTableWarning: " in err and "'diagnostics_Versions_PyRadiomics'" in err
    assert "2 case(s)" in line and "'003'" in line and "'011'" in line
    assert "--drop-missing" in line
    with (
        caplog.at_level(logging.WARNING, logger="hybridrad.study.load"),
        pytest.warns(FeatureTableWarning),
    ):
        data = load_study(
            [tables["features"]],
            tables["clinical"],
            time="os",
            event="dead",
            id_column="PatientID",
            drop_missing=True,
        )
    assert len(data.X) == N - 2 and {"003", "011"}.isdisjoint(data.X.index)
    assert data.dropped["missing target"] == ["003", "011"]
    assert len(data.y) == N - 2
    (note,) = [r.getMessage() for r in caplog.records if "--drop-missing" in r.getMessage()]
    assert "2 case(s)" in note and "003, 011" in note


def test_missing_labels_are_named_or_dropped(tables: dict[str, Path]) -> None:
    _, clinical = _cohort()
    clinical.loc[[4, 9], "idh"] = np.nan
    clinical.to_csv(tables["clinical"], index=False)
    kwargs = {"label": "idh", "id_column": "PatientID", "covariates": ["age"]}
    with (
        pytest.warns(FeatureTableWarning),
        pytest.raises(MissingTargetError, match=r"2 case\(s\).*'004', '009'.*--drop-missing"),
    ):
        load_study([tables["features"]], tables["clinical"], **kwargs)  # type: ignore[arg-type]
    with pytest.warns(FeatureTableWarning):
        data = load_study(
            [tables["features"]],
            tables["clinical"],
            drop_missing=True,
            **kwargs,  # type: ignore[arg-type]
        )
    assert data.dropped["missing target"] == ["004", "009"] and len(data.y) == N - 2


# --- 5. labels ---------------------------------------------------------------------------------


def test_a_label_with_many_spellings_is_an_error_listing_them() -> None:
    spellings = ["WT", "wt", "Wildtype", "wild-type", "MUT", "mut", "Mutant", "mutant", "IDHmut"]
    clin = pd.DataFrame({"idh": spellings * 2}, index=[f"c{i}" for i in range(18)])
    with pytest.raises(LabelError) as info:
        class_target(clin, "idh")
    message = str(info.value)
    assert "9 distinct values" in message and "'Wildtype' (2)" in message
    assert "--positive" in message
    y = class_target(clin, "idh", positive="IDHmut")
    assert y.sum() == 2 and y.attrs["positive"] == "IDHmut"
    assert y.attrs["negative"] == "not IDHmut"
    with pytest.raises(LabelError, match=r"'codel' is not a value.*'MUT' \(2\)"):
        class_target(clin, "idh", positive="codel")


@pytest.mark.parametrize(
    ("values", "positive"),
    [
        ([1, 0, 0, 0], "1"),
        ([1.0, 0.0, 0.0, np.nan], "1"),  # a blank cell makes the column float
        ([True, False, False, False], "true"),
        (["No", "Yes", "No", "No"], "Yes"),
        (["negative", "positive", "negative", "negative"], "positive"),
    ],
)
def test_conventional_pairs_choose_the_positive_class_quietly(
    values: list[object], positive: str, caplog: pytest.LogCaptureFixture
) -> None:
    clin = pd.DataFrame({"y": values}, index=list("abcd"))
    index = [c for c, v in zip("abcd", values, strict=True) if not pd.isna(v)]
    with caplog.at_level(logging.INFO, logger="hybridrad.models.target"):
        y = class_target(clin, "y", index)
    assert y.attrs["positive"] == positive
    assert y.tolist()[:2] in ([1, 0], [0, 1]) and y.dtype.kind == "i"
    assert y[y == 1].index.tolist() == [
        c
        for c, v in zip("abcd", values, strict=True)
        if str(v).lower() in ("1", "1.0", "true", "yes", "positive")
    ]
    assert not caplog.records


def test_otherwise_the_less_frequent_class_is_positive_with_one_notice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clin = pd.DataFrame({"idh": ["WT", "WT", "Mutant", "WT"]}, index=list("abcd"))
    with caplog.at_level(logging.INFO, logger="hybridrad.models.target"):
        y = class_target(clin, "idh")
    assert y.tolist() == [0, 0, 1, 0]
    assert y.attrs == {"positive": "Mutant", "negative": "WT", "classes": ["WT", "Mutant"]}
    (note,) = [r.getMessage() for r in caplog.records]
    assert "positive class 'Mutant'" in note and "--positive" in note
    # "WT" would win alphabetically as the second class; --positive takes it explicitly
    assert class_target(clin, "idh", positive="wt").tolist() == [1, 1, 0, 1]


def test_study_data_names_the_classes(tables: dict[str, Path]) -> None:
    with pytest.warns(FeatureTableWarning):
        data = load_study(
            [tables["features"]], tables["clinical"], label="idh", id_column="PatientID"
        )
    assert data.task == "classification"
    assert data.positive == "mutant" and data.classes == ["wildtype", "mutant"]
    assert set(np.unique(data.y)) == {0, 1} and int(data.y.sum()) == 14


# --- 6. --label picks a classifier; --model goes where it belongs ----------------------------


def _config_of(argv: list[str]) -> tuple[str, str, tuple[str, ...]]:
    from hybridrad.cli import build_parser
    from hybridrad.cli.study import _config, _task

    args = build_parser().parse_args(
        ["evaluate", "f.csv", "--clinical", "c.csv", "--out", "x", *argv]
    )
    config = _config(args, _task(args))
    return config.model, config.classifier, config.covariates


def test_model_overrides_go_to_the_model_of_the_task(capsys: pytest.CaptureFixture[str]) -> None:
    assert _config_of(["--label", "idh"]) == ("cox", "logistic", ("age",))
    assert _config_of(["--label", "idh", "--model", "xgb"])[:2] == ("cox", "xgb")
    assert _config_of(["--time", "t", "--event", "e", "--model", "rsf"])[:2] == ("rsf", "logistic")
    assert _config_of(["--label", "idh", "--config", "default"])[2] == ("age",)
    assert _config_of(["--label", "idh", "--covariates", "none"])[2] == ()
    assert _config_of(["--label", "idh", "--covariates", "age, sex"])[2] == ("age", "sex")
    for argv, expected in (
        (["--label", "idh", "--model", "cox"], "cox is a survival model but --label"),
        (["--time", "t", "--event", "e", "--model", "logistic"], "logistic is a classifier"),
        (["--label", "idh", "--model", "svm"], "unknown --model 'svm'"),
        (["--time", "t"], "give either --time and --event"),
        (["--label", "idh", "--config", "nonesuch"], "'nonesuch' is neither a shipped study"),
    ):
        code = main(["evaluate", "f.csv", "--clinical", "c.csv", "--out", "x", *argv])
        assert code == 2
        assert expected in _error_line(capsys.readouterr().err)


def test_label_alone_runs_a_classifier_end_to_end(
    tables: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(
            [
                "evaluate",
                *_args(tables, "--label", "idh", "--id-column", "PatientID"),
                "--out",
                str(out),
            ]
        )
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    assert "positive class 'mutant' (14 cases) vs 'wildtype' (26)" in stdout
    assert "model logistic" in stdout
    table = pd.read_csv(out / "comparison.csv", index_col=0)
    assert {"clinical", "handcrafted", "hybrid"} <= set(table.index)
    assert table.loc["handcrafted", "auc"] > 0.7  # the label follows two of the features
    preds = pd.read_csv(out / "predictions_handcrafted.csv")
    assert "p_1" in preds.columns  # 1 = mutant, the positive class


# --- 7. clinical covariates ---------------------------------------------------------------------


def test_text_in_a_numeric_covariate_is_an_error_naming_case_and_value(
    tables: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, clinical = _cohort()
    clinical["age"] = clinical["age"].astype(object)
    clinical.loc[6, "age"] = "unknown"
    clinical.loc[8, "age"] = "45y"
    clinical.to_csv(tables["clinical"], index=False)
    code = main(
        ["evaluate", *_args(tables, "--label", "idh", "--id-column", "PatientID", "--out", "x")]
    )
    assert code == 2
    line = _error_line(capsys.readouterr().err)
    assert "'age'" in line and "case '006': 'unknown'" in line and "case '008': '45y'" in line


def test_a_categorical_covariate_is_one_hot_encoded_with_one_info_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clin = pd.DataFrame(
        {
            "age": ["50", "61", None, "70"],  # numbers read as text: still numbers
            "sex": ["M", "F", "F", None],
            "grade": ["II", "III", "IV", "II"],
            "smoker": [True, False, True, False],
        },
        index=list("abcd"),
    )
    with caplog.at_level(logging.INFO, logger="hybridrad.models.fusion"):
        block = clinical_block(clin, ["age", "sex", "grade", "smoker"])
    assert list(block.columns) == [
        "clin__age",
        "clin__sex__M",
        "clin__grade__III",
        "clin__grade__IV",
        "clin__smoker",
    ]
    assert block["clin__age"].tolist()[:2] == [50.0, 61.0] and np.isnan(block.loc["c", "clin__age"])
    assert block["clin__sex__M"].tolist()[:3] == [1.0, 0.0, 0.0]
    assert np.isnan(block.loc["d", "clin__sex__M"])
    assert block["clin__smoker"].tolist() == [1.0, 0.0, 1.0, 0.0]
    (note,) = [r.getMessage() for r in caplog.records]
    assert "'sex' (2 levels, reference 'F' dropped" in note
    assert "'grade' (3 levels, reference 'II' dropped" in note
    with pytest.raises(ClinicalCovariateError, match=r"case 'b': 'n/a'"):
        clinical_block(pd.DataFrame({"age": ["50", "n/a", "70"]}, index=list("abc")), ["age"])


def test_a_missing_covariate_says_where_covariates_come_from(tables: dict[str, Path]) -> None:
    with pytest.warns(FeatureTableWarning), pytest.raises(ManifestError, match="--covariates"):
        load_study(
            [tables["features"]],
            tables["clinical"],
            label="idh",
            id_column="PatientID",
            covariates=["kps"],
        )


# --- 8. cases without any feature value -----------------------------------------------------------


def test_cases_without_any_feature_are_dropped_with_one_warning(tables: dict[str, Path]) -> None:
    features, _ = _cohort()
    values = [c for c in features.columns if c.startswith("original_")]
    features.loc[[2, 17], values] = np.nan
    features.loc[5, values[0]] = np.nan  # partly missing: kept (imputed in the folds)
    features.to_csv(tables["features"], index=False)
    with pytest.warns(FeatureTableWarning) as record:
        data = load_study(
            [tables["features"]], tables["clinical"], label="idh", id_column="PatientID"
        )
    (message,) = [str(w.message) for w in record if "no feature value" in str(w.message)]
    assert "2 case(s)" in message and "'002', '017'" in message and "not imputed" in message
    assert {"002", "017"}.isdisjoint(data.X.index) and "005" in data.X.index
    assert len(data.X) == N - 2 == len(data.y)


# --- 10. fit, predict and score with an external table -------------------------------------------


def test_fit_predict_and_score_take_the_same_table_options(
    tables: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = tmp_path / "model"
    table_opts = ["--id-column", "PatientID"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(
            [
                "fit",
                *_args(tables, "--time", "os", "--event", "dead", *table_opts),
                "--covariates",
                "age,sex",
                "--out",
                str(model_dir),
            ]
        )
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    preds = tmp_path / "pred.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(
            [
                "predict",
                str(model_dir),
                str(tables["features"]),
                "--clinical",
                str(tables["clinical"]),
                *table_opts,
                "--out",
                str(preds),
            ]
        )
    assert code == 0, capsys.readouterr().err
    risk = pd.read_csv(preds, index_col=0, dtype={"case_id": str})["risk"]
    assert risk.index[0] == "000" and len(risk) == N and risk.notna().all()
    capsys.readouterr()

    score = ["score", str(model_dir), str(tables["features"]), "--clinical"]
    score += [str(tables["clinical"]), *table_opts, "--out", str(tmp_path / "ext")]
    assert main([*score, "--label", "idh"]) == 2
    assert "is a survival model: give --time and --event" in _error_line(capsys.readouterr().err)
    assert main([*score]) == 2
    assert "give either --time and --event" in _error_line(capsys.readouterr().err)
    assert main(["score", str(tmp_path / "absent"), *score[2:], "--label", "idh"]) == 2
    assert "does not exist" in _error_line(capsys.readouterr().err)
    _, clinical = _cohort()
    clinical.loc[0, "os"] = np.nan
    clinical.to_csv(tables["clinical"], index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main([*score, "--time", "os", "--event", "dead"])
    assert code == 2
    assert "'000'" in (line := _error_line(capsys.readouterr().err)) and "--drop-missing" in line

    pytest.importorskip("hybridrad.study.external")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main([*score, "--time", "os", "--event", "dead", "--drop-missing", "--n-boot", "20"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "results written to" in out and "39 cases x" in out
    metrics = (tmp_path / "ext" / "metrics.json").read_text()
    assert '"c_index"' in metrics
    assert re.search(
        r"^c_index 0\.\d{3} \(95% CI 0\.\d{3}-[01]\.\d{3}\); n 39; n_events \d+", out, re.M
    )


def test_score_refuses_to_guess_an_unconventional_positive_class(tmp_path: Path) -> None:
    from hybridrad.cli.study import CommandLineError, _check_positive_is_unambiguous
    from hybridrad.models.data import StudyData

    def data(positive: str, negative: str) -> StudyData:
        X = pd.DataFrame({"rad__a": [0.0, 1.0]}, index=["a", "b"])
        y = np.array([0, 1])
        return StudyData(X, y, "classification", {}, positive=positive, negative=negative)

    _check_positive_is_unambiguous(data("Yes", "no"), tmp_path)  # a convention: fine
    with pytest.raises(CommandLineError, match=r"\('wildtype', 'mutant'\).*--positive"):
        _check_positive_is_unambiguous(data("mutant", "wildtype"), tmp_path)


# --- 11. one-line errors ----------------------------------------------------------------------


def test_invalid_survival_values_make_one_error_line_each(
    tables: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, clinical = _cohort()
    clinical.loc[4, "os"] = -5.0
    clinical.loc[9, "dead"] = 2
    clinical.to_csv(tables["clinical"], index=False)
    argv = _args(tables, "--time", "os", "--event", "dead", "--id-column", "PatientID")
    assert main(["evaluate", *argv, "--out", "x"]) == 2
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    assert len(lines) == 2
    assert lines[0].startswith("error: SurvivalTimeError: case '004'") and "negative" in lines[0]
    assert lines[1].startswith("error: EventError: case '009'") and "is 2" in lines[1]


def test_an_unreadable_table_is_named(
    tables: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tables["features"].with_suffix(".parquet")
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(FeatureTableError, match=r"cannot read feature table .*radiomics\.parquet"):
        load_feature_tables([broken])
    code = main(
        ["predict", str(tables["study"].parent / "no-model"), str(broken), "--out", "p.csv"]
    )
    assert code == 2 and "does not exist" in _error_line(capsys.readouterr().err)


def test_score_a_classifier_with_the_positive_class_it_was_fitted_with(
    tables: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("hybridrad.study.external")
    model_dir = tmp_path / "model"
    opts = ["--id-column", "PatientID"]
    fit = ["fit", *_args(tables, "--label", "idh", *opts), "--out", str(model_dir)]
    assert main(fit) == 0, capsys.readouterr().err
    assert "positive class 'mutant' (14 cases)" in capsys.readouterr().out
    # the external cohort's minority class is the other one: the model's class still counts
    _, clinical = _cohort()
    clinical["idh"] = np.where(clinical.index < 30, "mutant", "wildtype")
    clinical.to_csv(tables["clinical"], index=False)
    score = ["score", str(model_dir), str(tables["features"]), "--clinical"]
    score += [str(tables["clinical"]), "--label", "idh", *opts, "--n-boot", "20"]
    assert main([*score, "--out", str(tmp_path / "ext")]) == 0
    out = capsys.readouterr().out
    assert "positive class 'mutant' (30 cases) vs 'wildtype' (10)" in out
    assert re.search(r"^auc 0\.\d{3} \(95% CI .*; n 40; n_positive 30", out, re.M)
    assert main([*score, "--positive", "wildtype", "--out", str(tmp_path / "x")]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "fitted to predict 'mutant'" in line and "--positive mutant" in line


def test_rows_without_an_id_are_named(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    pd.DataFrame({"case_id": ["a", None, "c"], "rad__x": [1.0, 2.0, 3.0]}).to_csv(path, index=False)
    with pytest.raises(FeatureTableError, match=r"1 row\(s\) have no id .*data rows \[2\]"):
        load_feature_tables([path])
