"""Save and load fitted models in safe, inspectable formats (JSON, CSV, xgboost JSON).

Nothing here uses :mod:`pickle` or :mod:`joblib`: loading a model folder never executes code
stored in it. A model folder holds ``model.json`` (type, hyper-parameters, feature names,
library versions, optional training-data hash, creation metadata, and the SHA-256 of every
other file) plus the fitted parameters:

=========================================  ==========================================
type                                       files
=========================================  ==========================================
:class:`~.survival.PenalizedCox`           ``coef.csv``, ``baseline.csv``, ``summary.csv``
``CoxnetSurvivalAnalysis``                 ``coef_path.csv``, ``alphas.csv``,
                                           ``baseline.csv`` (if ``fit_baseline_model``)
:class:`~.survival.XGBSurvivalCox`         ``booster.json``, ``baseline.csv``
:class:`~.survival.XGBSurvivalAFT`         ``booster.json``
:class:`~.survival.XGBLabelClassifier`     ``booster.json`` (classes in ``model.json``)
``xgboost.XGBClassifier``                  ``booster.json``
``LogisticRegression``, ``StandardScaler``,  fitted attributes in ``model.json``
``SimpleImputer``, :class:`~.combat.ComBat`,
:class:`~.transformers.PenaltyFactor`
``Pipeline`` of the above                  ``steps/NN_name/`` sub-folders, one per step
=========================================  ==========================================

A transformer's pandas output setting (``set_output(transform="pandas")``) is saved with it
and restored on load, so a pipeline fitted on DataFrames passes named columns from step to
step after loading as it did before saving.

``RandomSurvivalForest`` (and any other type) raises :class:`UnsupportedModelError`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybridrad.errors import HybridradError, HybridradWarning
from hybridrad.models.survival import (
    PenalizedCox,
    XGBLabelClassifier,
    XGBSurvivalAFT,
    XGBSurvivalCox,
)
from hybridrad.provenance import canonical_json, file_sha256, library_versions

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelFileMissingError",
    "ModelFormatError",
    "UnsupportedModelError",
    "data_fingerprint",
    "load_model",
    "save_model",
    "supported_types",
]

FORMAT_NAME = "hybridrad-model"
FORMAT_VERSION = 1
MODEL_JSON = "model.json"
_FLOAT_FMT = "%.17g"  # round-trips every float64 exactly


class ModelFormatError(HybridradError, ValueError):
    """A model folder is malformed, was modified after saving, or has an unknown type."""


class ModelFileMissingError(HybridradError, FileNotFoundError):
    """A model folder, its ``model.json`` or one of the files it lists does not exist."""


class UnsupportedModelError(HybridradError, TypeError):
    """The object's type cannot be saved without pickle."""


# --- JSON encoding of parameters and fitted attributes ------------------------------------


def _encode(value: Any) -> Any:
    """Encode ``value`` as strict JSON, keeping numpy dtypes and non-finite floats."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufUO":
            raise UnsupportedModelError(f"cannot store an array of dtype {value.dtype}")
        return {
            "__ndarray__": [_encode(v) for v in value.ravel().tolist()],
            "dtype": value.dtype.str if value.dtype.kind != "O" else "object",
            "shape": list(value.shape),
        }
    if isinstance(value, np.generic):
        return {"__npscalar__": _encode(value.item()), "dtype": value.dtype.str}
    if isinstance(value, np.dtype):
        return {"__dtype__": value.str}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _encode(v) for k, v in value.items()}}
    raise UnsupportedModelError(
        f"cannot store a value of type {type(value).__name__} ({value!r:.80}) without pickle"
    )


def _decode(value: Any) -> Any:
    """Inverse of :func:`_encode`."""
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__float__" in value:
        return float(value["__float__"])
    if "__ndarray__" in value:
        items = [_decode(v) for v in value["__ndarray__"]]
        shape = tuple(int(s) for s in value["shape"])
        if value["dtype"] == "object":
            arr = np.empty(len(items), dtype=object)
            arr[:] = items
            return arr.reshape(shape)
        return np.array(items, dtype=np.dtype(value["dtype"])).reshape(shape)
    if "__npscalar__" in value:
        return np.dtype(value["dtype"]).type(_decode(value["__npscalar__"]))
    if "__dtype__" in value:
        return np.dtype(value["__dtype__"])
    if "__tuple__" in value:
        return tuple(_decode(v) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: _decode(v) for k, v in value["__dict__"].items()}
    raise ModelFormatError(f"unrecognised encoded value in {MODEL_JSON}: {value!r:.120}")


# --- hashing ------------------------------------------------------------------------------


def data_fingerprint(data: Any) -> str:
    """SHA-256 of training data (DataFrame, Series, array, or a tuple/list of them).

    Parameters
    ----------
    data
        ``X``, ``y`` or ``(X, y)``. DataFrames are hashed with their column names and index;
        arrays (structured survival arrays included) with their dtype and shape.

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    digest = hashlib.sha256()

    def feed(obj: Any) -> None:
        if isinstance(obj, tuple | list):
            digest.update(f"seq{len(obj)}".encode())
            for item in obj:
                feed(item)
        elif isinstance(obj, pd.DataFrame | pd.Series):
            cols = list(obj.columns) if isinstance(obj, pd.DataFrame) else [obj.name]
            digest.update(canonical_json([str(c) for c in cols]).encode())
            digest.update(pd.util.hash_pandas_object(obj, index=True).to_numpy().tobytes())
        else:
            arr = np.ascontiguousarray(np.asarray(obj))
            if arr.dtype.kind == "O":
                digest.update(canonical_json(arr.tolist()).encode())
            else:
                digest.update(f"{arr.dtype.str}{arr.dtype.descr}{arr.shape}".encode())
                digest.update(arr.tobytes())

    feed(data)
    return digest.hexdigest()


# --- CSV helpers --------------------------------------------------------------------------


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, float_format=_FLOAT_FMT, lineterminator="\n")


def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, float_precision="round_trip", dtype={"feature": str})
    except (ValueError, pd.errors.ParserError) as exc:
        raise ModelFormatError(f"{path} is not a readable CSV file: {exc}") from exc
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ModelFormatError(f"{path} lacks the column(s) {missing}")
    return df


def _float_column(df: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    try:
        return df[column].to_numpy(np.float64)
    except (ValueError, TypeError) as exc:
        raise ModelFormatError(f"{path}: column {column!r} is not numeric") from exc


def _check_features(df: pd.DataFrame, names: list[str], path: Path) -> None:
    if df["feature"].astype(str).tolist() != names:
        raise ModelFormatError(
            f"{path}: its features do not match the feature names in {MODEL_JSON}"
        )


# --- per-type savers and loaders ----------------------------------------------------------

_Saver = Callable[[Any, Path], dict[str, Any]]
_Loader = Callable[[Path, dict[str, Any]], Any]


def _common_state(model: Any) -> dict[str, Any]:
    names = getattr(model, "feature_names_in_", None)
    return {
        "n_features_in": int(model.n_features_in_) if hasattr(model, "n_features_in_") else None,
        "feature_names": None if names is None else [str(n) for n in names],
    }


def _restore_common(model: Any, doc: Mapping[str, Any]) -> None:
    if doc.get("n_features_in") is not None:
        model.n_features_in_ = int(doc["n_features_in"])
    if doc.get("feature_names") is not None:
        model.feature_names_in_ = np.asarray(doc["feature_names"], dtype=object)


def _feature_list(model: Any) -> list[str]:
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    return [f"x{i}" for i in range(int(model.n_features_in_))]


def _make(cls: type, doc: Mapping[str, Any]) -> Any:
    params = _decode(doc.get("params", {}))
    try:
        return cls(**params)
    except TypeError as exc:
        raise ModelFormatError(
            f"hyper-parameters in {MODEL_JSON} do not fit {cls.__name__}: {exc}"
        ) from exc


# PenalizedCox


def _save_penalized_cox(model: PenalizedCox, folder: Path) -> dict[str, Any]:
    names = list(model.coef_.index)
    _write_csv(
        pd.DataFrame(
            {"feature": names, "coef": model.coef_.to_numpy(), "mean": model.means_.to_numpy()}
        ),
        folder / "coef.csv",
    )
    _write_csv(
        pd.DataFrame(
            {
                "time": model.baseline_cumulative_hazard_.index.to_numpy(np.float64),
                "cumulative_hazard": model.baseline_cumulative_hazard_.to_numpy(np.float64),
                "survival": model.baseline_survival_.to_numpy(np.float64),
            }
        ),
        folder / "baseline.csv",
    )
    summary = model.summary_.reset_index()
    summary.columns = ["feature", *map(str, summary.columns[1:])]
    _write_csv(summary, folder / "summary.csv")
    return {}


def _load_penalized_cox(folder: Path, doc: dict[str, Any]) -> PenalizedCox:
    model = _make(PenalizedCox, doc)
    _restore_common(model, doc)
    names = _feature_list(model)
    path = folder / "coef.csv"
    coef = _read_csv(path, ["feature", "coef", "mean"])
    _check_features(coef, names, path)
    model.coef_ = pd.Series(_float_column(coef, "coef", path), index=names, name="coef")
    model.means_ = pd.Series(_float_column(coef, "mean", path), index=names, name="mean")
    path = folder / "baseline.csv"
    base = _read_csv(path, ["time", "cumulative_hazard", "survival"])
    index = pd.Index(_float_column(base, "time", path), name="time")
    model.baseline_cumulative_hazard_ = pd.Series(
        _float_column(base, "cumulative_hazard", path),
        index=index,
        name="baseline cumulative hazard",
    )
    model.baseline_survival_ = pd.Series(
        _float_column(base, "survival", path), index=index, name="baseline survival"
    )
    summary = _read_csv(folder / "summary.csv", ["feature"])
    model.summary_ = summary.set_index("feature").rename_axis("covariate")
    model.lifelines_model_ = None
    return model


# CoxnetSurvivalAnalysis


def _save_coxnet(model: Any, folder: Path) -> dict[str, Any]:
    names = _feature_list(model)
    coef = np.asarray(model.coef_, dtype=np.float64)
    path_df = pd.DataFrame(coef, columns=[f"alpha_{i}" for i in range(coef.shape[1])])
    path_df.insert(0, "feature", names)
    _write_csv(path_df, folder / "coef_path.csv")
    _write_csv(
        pd.DataFrame(
            {
                "alpha": np.asarray(model.alphas_, dtype=np.float64),
                "offset": np.asarray(model.offset_, dtype=np.float64),
                "deviance_ratio": np.asarray(model.deviance_ratio_, dtype=np.float64),
            }
        ),
        folder / "alphas.csv",
    )
    baselines = model._baseline_models
    if baselines is not None:
        base = pd.DataFrame(
            {"time": np.asarray(baselines[0].cum_baseline_hazard_.x, dtype=np.float64)}
        )
        for i, b in enumerate(baselines):
            base[f"alpha_{i}"] = np.asarray(b.cum_baseline_hazard_.y, dtype=np.float64)
        _write_csv(base, folder / "baseline.csv")
    return {
        "alpha_min_ratio_": _encode(model.alpha_min_ratio_),
        "penalty_factor_": _encode(np.asarray(model.penalty_factor_)),
        "has_baseline": baselines is not None,
    }


def _load_coxnet(folder: Path, doc: dict[str, Any]) -> Any:
    from sksurv.functions import StepFunction
    from sksurv.linear_model import CoxnetSurvivalAnalysis
    from sksurv.linear_model.coxph import BreslowEstimator

    model = _make(CoxnetSurvivalAnalysis, doc)
    _restore_common(model, doc)
    state = doc.get("state", {})
    path = folder / "alphas.csv"
    alphas = _read_csv(path, ["alpha", "offset", "deviance_ratio"])
    n_alphas = len(alphas)
    columns = [f"alpha_{i}" for i in range(n_alphas)]
    path = folder / "coef_path.csv"
    coef = _read_csv(path, ["feature", *columns])
    _check_features(coef, _feature_list(model), path)
    model.coef_ = np.column_stack([_float_column(coef, c, path) for c in columns])
    model.alphas_ = _float_column(alphas, "alpha", folder / "alphas.csv")
    model.offset_ = _float_column(alphas, "offset", folder / "alphas.csv")
    model.deviance_ratio_ = _float_column(alphas, "deviance_ratio", folder / "alphas.csv")
    model.alpha_min_ratio_ = _decode(state.get("alpha_min_ratio_"))
    model.penalty_factor_ = _decode(state.get("penalty_factor_"))
    if state.get("has_baseline"):
        path = folder / "baseline.csv"
        base = _read_csv(path, ["time", *columns])
        times = _float_column(base, "time", path)
        models = []
        for c in columns:
            cumhaz = _float_column(base, c, path)
            b = BreslowEstimator()
            b.cum_baseline_hazard_ = StepFunction(times, cumhaz)
            b.baseline_survival_ = StepFunction(times, np.exp(-cumhaz))
            b.unique_times_ = times
            models.append(b)
        model._baseline_models = tuple(models)
    else:
        model._baseline_models = None
    return model


# xgboost survival models and classifiers


def _save_xgb_cox(model: XGBSurvivalCox, folder: Path) -> dict[str, Any]:
    model.booster_.save_model(str(folder / "booster.json"))
    _write_csv(
        pd.DataFrame(
            {"time": model.baseline_times_, "cumulative_hazard": model.baseline_cumulative_hazard_}
        ),
        folder / "baseline.csv",
    )
    return {}


def _load_booster(path: Path) -> Any:
    import xgboost as xgb

    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
    except xgb.core.XGBoostError as exc:
        raise ModelFormatError(f"{path} is not a valid xgboost JSON model: {exc}") from exc
    return booster


def _load_xgb_cox(folder: Path, doc: dict[str, Any]) -> XGBSurvivalCox:
    model = _make(XGBSurvivalCox, doc)
    _restore_common(model, doc)
    model.booster_ = _load_booster(folder / "booster.json")
    path = folder / "baseline.csv"
    base = _read_csv(path, ["time", "cumulative_hazard"])
    model.baseline_times_ = _float_column(base, "time", path)
    model.baseline_cumulative_hazard_ = _float_column(base, "cumulative_hazard", path)
    return model


def _save_xgb_aft(model: XGBSurvivalAFT, folder: Path) -> dict[str, Any]:
    model.booster_.save_model(str(folder / "booster.json"))
    return {}


def _load_xgb_aft(folder: Path, doc: dict[str, Any]) -> XGBSurvivalAFT:
    model = _make(XGBSurvivalAFT, doc)
    _restore_common(model, doc)
    model.booster_ = _load_booster(folder / "booster.json")
    return model


def _save_xgb_label(model: XGBLabelClassifier, folder: Path) -> dict[str, Any]:
    model.estimator_.save_model(str(folder / "booster.json"))
    return {"classes_": _encode(np.asarray(model.classes_))}


def _load_xgb_classifier_file(path: Path) -> Any:
    import xgboost as xgb

    clf = xgb.XGBClassifier()
    try:
        clf.load_model(str(path))
    except xgb.core.XGBoostError as exc:
        raise ModelFormatError(f"{path} is not a valid xgboost JSON model: {exc}") from exc
    return clf


def _load_xgb_label(folder: Path, doc: dict[str, Any]) -> XGBLabelClassifier:
    model = _make(XGBLabelClassifier, doc)
    _restore_common(model, doc)
    model.estimator_ = _load_xgb_classifier_file(folder / "booster.json")
    model.classes_ = _decode(doc.get("state", {}).get("classes_"))
    return model


def _save_xgb_classifier(model: Any, folder: Path) -> dict[str, Any]:
    model.save_model(str(folder / "booster.json"))
    return {}


def _load_xgb_classifier(folder: Path, doc: dict[str, Any]) -> Any:
    return _load_xgb_classifier_file(folder / "booster.json")


# scikit-learn estimators whose fitted state is a few arrays

#: Private attributes that scikit-learn needs at predict/transform time, by type.
_PRIVATE_STATE: dict[str, tuple[str, ...]] = {
    "SimpleImputer": ("_fit_dtype", "_fill_dtype"),
}


def _save_sklearn_state(model: Any, folder: Path) -> dict[str, Any]:
    name = type(model).__name__
    if name == "SimpleImputer" and getattr(model, "indicator_", None) is not None:
        raise UnsupportedModelError(
            "SimpleImputer(add_indicator=True) cannot be saved: its MissingIndicator is not "
            "supported; add the indicator with a separate step or set add_indicator=False"
        )
    keep = set(_PRIVATE_STATE.get(name, ()))
    state = {
        k: v
        for k, v in vars(model).items()
        if (k.endswith("_") and not k.startswith("_")) or k in keep
    }
    state.pop("feature_names_in_", None)
    state.pop("n_features_in_", None)
    return {k: _encode(v) for k, v in state.items()}


def _sklearn_loader(cls_path: str) -> _Loader:
    def load(folder: Path, doc: dict[str, Any]) -> Any:
        module, _, cls_name = cls_path.rpartition(".")
        cls = getattr(__import__(module, fromlist=[cls_name]), cls_name)
        model = _make(cls, doc)
        _restore_common(model, doc)
        for key, value in doc.get("state", {}).items():
            setattr(model, key, _decode(value))
        return model

    return load


# --- registry -----------------------------------------------------------------------------


def _registry() -> dict[str, tuple[str, _Saver, _Loader]]:
    """``type name -> (qualified class, saver, loader)``; matched on the exact class."""
    return {
        "PenalizedCox": (
            "hybridrad.models.survival.PenalizedCox",
            _save_penalized_cox,
            _load_penalized_cox,
        ),
        "XGBSurvivalCox": (
            "hybridrad.models.survival.XGBSurvivalCox",
            _save_xgb_cox,
            _load_xgb_cox,
        ),
        "XGBSurvivalAFT": (
            "hybridrad.models.survival.XGBSurvivalAFT",
            _save_xgb_aft,
            _load_xgb_aft,
        ),
        "XGBLabelClassifier": (
            "hybridrad.models.survival.XGBLabelClassifier",
            _save_xgb_label,
            _load_xgb_label,
        ),
        "CoxnetSurvivalAnalysis": (
            "sksurv.linear_model.coxnet.CoxnetSurvivalAnalysis",
            _save_coxnet,
            _load_coxnet,
        ),
        "XGBClassifier": (
            "xgboost.sklearn.XGBClassifier",
            _save_xgb_classifier,
            _load_xgb_classifier,
        ),
        "LogisticRegression": (
            "sklearn.linear_model._logistic.LogisticRegression",
            _save_sklearn_state,
            _sklearn_loader("sklearn.linear_model.LogisticRegression"),
        ),
        "StandardScaler": (
            "sklearn.preprocessing._data.StandardScaler",
            _save_sklearn_state,
            _sklearn_loader("sklearn.preprocessing.StandardScaler"),
        ),
        "SimpleImputer": (
            "sklearn.impute._base.SimpleImputer",
            _save_sklearn_state,
            _sklearn_loader("sklearn.impute.SimpleImputer"),
        ),
        "ComBat": (
            "hybridrad.models.combat.ComBat",
            _save_sklearn_state,
            _sklearn_loader("hybridrad.models.combat.ComBat"),
        ),
        "PenaltyFactor": (
            "hybridrad.models.transformers.PenaltyFactor",
            _save_sklearn_state,
            _sklearn_loader("hybridrad.models.transformers.PenaltyFactor"),
        ),
    }


def supported_types() -> list[str]:
    """Names of the types :func:`save_model` can store (plus ``Pipeline`` of them).

    Returns
    -------
    list of str
        Class names.
    """
    return [*_registry(), "Pipeline"]


def _qualname(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _lookup(model: Any) -> tuple[str, _Saver]:
    reg = _registry()
    name = type(model).__name__
    if name in reg and _qualname(model) == reg[name][0]:
        return name, reg[name][1]
    hint = ""
    if name == "RandomSurvivalForest":
        hint = (
            " A RandomSurvivalForest's trees are only exportable with pickle/joblib, which "
            "can execute code on load, and scikit-survival offers no safe export; refit it "
            "from the saved data and configuration instead, or keep it in memory."
        )
    raise UnsupportedModelError(
        f"cannot save an object of type {_qualname(model)} without pickle.{hint} "
        f"Supported types: {', '.join(supported_types())}."
    )


# --- public API ---------------------------------------------------------------------------


def _check_fitted(model: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError as exc:
        raise ValueError(f"cannot save an unfitted {type(model).__name__}: {exc}") from exc


def _seal(doc: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in doc.items() if k != "integrity"}
    doc["integrity"] = hashlib.sha256(canonical_json(body).encode()).hexdigest()
    return doc


def _hash_files(folder: Path, names: list[str]) -> dict[str, str]:
    return {n: file_sha256(folder / n) for n in sorted(names)}


def _transform_output(model: Any) -> str | None:
    """The ``set_output(transform=...)`` setting of a transformer (None: the default)."""
    config = getattr(model, "_sklearn_output_config", None)
    value = config.get("transform") if isinstance(config, dict) else None
    return None if value in (None, "default") else str(value)


def _save(model: Any, folder: Path, extra: dict[str, Any]) -> None:
    from sklearn.pipeline import Pipeline

    if type(model) is Pipeline:
        if model.memory is not None:
            raise UnsupportedModelError("a Pipeline with memory caching cannot be saved")
        steps = []
        files: list[str] = []
        for i, (step_name, step) in enumerate(model.steps):
            if step is None or step == "passthrough":
                steps.append({"name": step_name, "folder": None})
                continue
            sub = f"steps/{i:02d}_{step_name}"
            (folder / sub).mkdir(parents=True)
            _save(step, folder / sub, {})
            steps.append({"name": step_name, "folder": sub})
            files.append(f"{sub}/{MODEL_JSON}")
        doc: dict[str, Any] = {
            "type": "Pipeline",
            "class": _qualname(model),
            "params": _encode({"verbose": bool(model.verbose)}),
            "steps": steps,
            **_common_state(model),
        }
    else:
        type_name, saver = _lookup(model)
        _check_fitted(model)
        params = _encode(model.get_params(deep=False))
        before = {p.name for p in folder.iterdir()}
        state = saver(model, folder)
        files = sorted({p.name for p in folder.iterdir()} - before)
        doc = {
            "type": type_name,
            "class": _qualname(model),
            "params": params,
            "state": state,
            **_common_state(model),
        }
        output = _transform_output(model)
        if output is not None:
            doc["transform_output"] = output
    doc = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **doc, **extra}
    doc["files"] = _hash_files(folder, files)
    doc["library_versions"] = library_versions()
    with open(folder / MODEL_JSON, "w", encoding="utf-8") as fh:
        json.dump(_seal(doc), fh, indent=2, allow_nan=False, sort_keys=False)
        fh.write("\n")


def save_model(
    model: Any,
    folder: str | os.PathLike[str],
    *,
    training_data: Any = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Save a fitted model (or pipeline) to a new folder without pickle.

    Parameters
    ----------
    model
        A fitted estimator of a supported type (see :func:`supported_types`), or a
        :class:`~sklearn.pipeline.Pipeline` made of them.
    folder
        Destination; it must not exist yet or be empty.
    training_data
        Optional ``X``, ``y`` or ``(X, y)`` the model was fitted on; its
        :func:`data_fingerprint` is recorded.
    metadata
        Optional JSON-serialisable mapping stored under ``"metadata"`` (study, author ...).

    Returns
    -------
    pathlib.Path
        The model folder.

    Raises
    ------
    UnsupportedModelError
        The model (or a pipeline step) cannot be saved safely; the message lists the
        supported types.
    FileExistsError
        ``folder`` exists and is not empty.
    ValueError
        The model is not fitted.
    """
    out = Path(folder)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder; choose a new folder")
    # Fail before writing anything if some part is unsupported.
    from sklearn.pipeline import Pipeline

    parts = (
        [s for _, s in model.steps if s not in (None, "passthrough")]
        if (type(model) is Pipeline)
        else [model]
    )
    for part in parts:
        _lookup(part)
    created = {
        "utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
    }
    extra: dict[str, Any] = {
        "created": created,
        "training_data_sha256": None if training_data is None else data_fingerprint(training_data),
        "metadata": json.loads(json.dumps(dict(metadata or {}), default=str)),
    }
    created_folder = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        _save(model, out, extra)
    except BaseException:
        # Leave no half-written model behind (only what this call created is removed).
        if created_folder:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for child in out.iterdir():
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        raise
    return out


def read_model_info(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and verify a model folder's ``model.json`` without building the model.

    Parameters
    ----------
    folder
        A folder written by :func:`save_model`.

    Returns
    -------
    dict
        The document (type, params, feature names, versions, hashes, metadata).

    Raises
    ------
    ModelFileMissingError
        The folder, ``model.json`` or a listed file is missing.
    ModelFormatError
        The document is malformed or a file was modified after saving.
    """
    root = Path(folder)
    path = root / MODEL_JSON
    if not root.is_dir():
        raise ModelFileMissingError(f"model folder {root} does not exist")
    if not path.is_file():
        raise ModelFileMissingError(f"{path} is missing: {root} is not a saved hybridrad model")
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise ModelFormatError(f"{path} is not a {FORMAT_NAME} document")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(
            f"{path} has format_version {doc.get('format_version')!r}; this hybridrad reads "
            f"version {FORMAT_VERSION}"
        )
    expected = doc.get("integrity")
    body = {k: v for k, v in doc.items() if k != "integrity"}
    if hashlib.sha256(canonical_json(body).encode()).hexdigest() != expected:
        raise ModelFormatError(f"{path} was modified after it was saved (integrity hash differs)")
    for name, digest in dict(doc.get("files", {})).items():
        file = root / name
        if not file.is_file():
            raise ModelFileMissingError(f"{file} is missing from the model folder {root}")
        if file_sha256(file) != digest:
            raise ModelFormatError(f"{file} was modified after it was saved (SHA-256 differs)")
    return doc


def _warn_versions(doc: Mapping[str, Any], root: Path) -> None:
    saved = doc.get("library_versions", {})
    now = library_versions()
    changed = [
        f"{k} {saved[k]} -> {now.get(k, 'absent')}"
        for k in ("scikit-learn", "scikit-survival", "lifelines", "xgboost", "xgboost-cpu")
        if k in saved and saved[k] != now.get(k)
    ]
    if changed:
        warnings.warn(
            f"{root} was saved with other library versions ({'; '.join(changed)}); "
            "check its predictions",
            HybridradWarning,
            stacklevel=4,
        )


def _load(root: Path, *, top: bool = False) -> Any:
    doc = read_model_info(root)
    if top:
        _warn_versions(doc, root)
    type_name = doc.get("type")
    if type_name == "Pipeline":
        from sklearn.pipeline import Pipeline

        steps: list[tuple[str, Any]] = []
        for step in doc.get("steps", []):
            sub = step.get("folder")
            steps.append((str(step["name"]), "passthrough" if sub is None else _load(root / sub)))
        if not steps:
            raise ModelFormatError(f"{root / MODEL_JSON} describes a Pipeline with no step")
        return Pipeline(steps, **_decode(doc.get("params", {})))
    reg = _registry()
    if type_name not in reg:
        raise ModelFormatError(
            f"{root / MODEL_JSON} has unknown model type {type_name!r}; "
            f"known: {', '.join(supported_types())}"
        )
    try:
        model = reg[type_name][2](root, doc)
        output = doc.get("transform_output")
        if output is not None and hasattr(model, "set_output"):
            model.set_output(transform=str(output))
        return model
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, HybridradError):
            raise
        raise ModelFormatError(f"{root} could not be loaded as {type_name}: {exc}") from exc


def load_model(folder: str | os.PathLike[str]) -> Any:
    """Load a model saved by :func:`save_model` (no pickle; every file is hash-checked).

    Parameters
    ----------
    folder
        The model folder.

    Returns
    -------
    object
        A fitted estimator (or pipeline) whose predictions equal the saved one's.
        ``PenalizedCox.lifelines_model_`` is ``None`` after loading.

    Raises
    ------
    ModelFileMissingError
        The folder, ``model.json`` or a listed file is missing.
    ModelFormatError
        A file is malformed, was modified after saving, or names an unknown type.
    """
    return _load(Path(folder), top=True)
