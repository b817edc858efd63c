"""``hybridrad run STUDY.yaml``: the whole study in one command, every stage cached.

Stages, in order (each writes one folder of the output folder; see
``docs/tutorials/own-data.md`` for the layout):

``cohort`` → ``preprocess`` → ``segmentation`` → ``handcrafted`` / ``deep`` →
``evaluation`` → ``external-features`` → ``external`` → ``report``

Every stage has a key: the hash of its own study section, the keys of the stages it
reads and the hybridrad version (plus the content hashes of the input tables for the
``cohort`` stage). A stage whose folder holds a ``stage.json`` with the same key is
skipped ("cached"); any other is recomputed from scratch, its folder replaced. So a rerun
of the same study recomputes nothing, and editing the ``model`` section recomputes only
``evaluation``, the ``external`` scoring and the ``report``. Below the stages, the
per-case cache of the cohort runner (``OUT/.cache``) keeps finished cases of a killed
run.

Cases that fail in a stage are recorded (the stage's ``*.failures.csv``) and left out of
the next stages; the run goes on with the others and :attr:`StudyRun.n_failed` counts
them.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hybridrad import __version__
from hybridrad.errors import HybridradError
from hybridrad.provenance import config_hash, file_sha256, library_versions
from hybridrad.study.spec import CohortSpec, StudySpec, load_study_file

log = logging.getLogger(__name__)

CACHE = ".cache"


class StageError(HybridradError, RuntimeError):
    """A stage of ``hybridrad run`` could not produce its outputs (every case failed, or
    a target has too few cases); the message names the stage and what to check."""


@dataclass
class StudyRun:
    """What :func:`run_study` did.

    Attributes
    ----------
    out
        The output folder.
    report
        The HTML report.
    spec
        The validated study.
    study_hash
        Hash of the validated study (every default filled in).
    stages
        Per stage: ``status`` (``computed``, ``cached`` or ``skipped``), ``key``,
        ``seconds``.
    n_failed
        Cases that failed in some stage (recorded in that stage's ``*.failures.csv``).
    """

    out: Path
    report: Path
    spec: StudySpec
    study_hash: str
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_failed: int = 0

    def computed(self) -> list[str]:
        """The stages computed (not taken from the cache) in this run."""
        return [name for name, s in self.stages.items() if s["status"] == "computed"]


def _resolve(path: str, base: Path) -> Path:
    """A path of the study file: ``data:NAME/...`` under the shared reference data, a
    relative path under the study file's folder."""
    if path.startswith("data:"):
        from hybridrad.datasets.reference import reference_data_dir

        root = reference_data_dir()
        if root is None:
            raise FileNotFoundError(
                f"{path}: the shared reference data folder was not found (set "
                "HYBRIDRAD_DATA to the folder holding lgg-tcga/, brats-samples/ ...)"
            )
        return root / path.removeprefix("data:").lstrip("/")
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base / p)


def _file_or_name(value: str, base: Path) -> str:
    """A study value naming a file or a shipped preset: the file's path when it exists
    (relative to the study file), else the value itself (a preset name)."""
    local = _resolve(value, base)
    return str(local) if local.exists() else value


def _table(cohort: Any) -> Any:
    """A manifest table of absolute paths from a Cohort."""
    import pandas as pd

    return pd.DataFrame([case.row() for case in cohort])


class _Runner:
    def __init__(
        self, spec: StudySpec, base: Path, out: Path, *, jobs: int, force: bool, progress: bool
    ) -> None:
        self.spec = spec
        self.base = base
        self.out = out
        self.jobs = jobs
        self.force = force
        self.progress = progress
        self.cache = out / CACHE
        self.stages: dict[str, dict[str, Any]] = {}
        self.n_failed = 0

    # -- the stage mechanism -------------------------------------------------------------
    def stage(
        self,
        name: str,
        section: Any,
        upstream: list[str],
        compute: Callable[[Path], dict[str, Any]],
    ) -> str:
        """Run ``compute(folder)`` unless the folder holds this key; return the key."""
        key = config_hash(
            {"stage": name, "section": section, "upstream": upstream, "version": __version__}
        )
        folder = self.out / name
        record = folder / "stage.json"
        if not self.force and record.is_file():
            try:
                old = json.loads(record.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = {}
            if old.get("key") == key:
                self.stages[name] = {"status": "cached", "key": key, "seconds": 0.0}
                self.n_failed += int(old.get("n_failed", 0))
                print(f"[{name}] cached ({key})", flush=True)
                return key
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        print(f"[{name}] computing ...", flush=True)
        start = time.perf_counter()
        info = compute(folder)
        seconds = round(time.perf_counter() - start, 1)
        self.n_failed += int(info.get("n_failed", 0))
        payload = {
            "stage": name,
            "key": key,
            "study_hash": self.spec.hash,
            "section": section,
            "upstream": upstream,
            "seconds": seconds,
            "finished": _now(),
            "hybridrad_version": __version__,
            **info,
        }
        tmp = record.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, record)
        self.stages[name] = {"status": "computed", "key": key, "seconds": seconds}
        print(f"[{name}] done in {seconds:.0f} s", flush=True)
        return key

    def skip(self, name: str) -> None:
        folder = self.out / name
        if folder.exists():
            shutil.rmtree(folder)
        self.stages[name] = {"status": "skipped", "key": None, "seconds": 0.0}

    def provenance(self, command: str, **extra: Any) -> dict[str, Any]:
        return {
            "command": command,
            "study": self.spec.name,
            "study_hash": self.spec.hash,
            "versions": library_versions(),
            **extra,
        }

    def content_hashes(self, block: str) -> dict[str, str]:
        """Hashes of the files a feature section names (a config or weights file edited
        in place changes the stage key)."""
        spec = getattr(self.spec.features, block)
        out: dict[str, str] = {}
        if block == "handcrafted":
            from hybridrad.features.radiomics import RadiomicsConfig

            config = RadiomicsConfig.load(_file_or_name(spec.config, self.base))
            out["config"] = config.with_engine(spec.engine).hash
        elif spec.encoder is not None:
            local = _resolve(spec.encoder, self.base)
            if local.is_file():
                out["encoder"] = file_sha256(local)
        return out

    def segmentation_content(self) -> dict[str, str]:
        """Hashes of the files the segmentation section names (a model folder or a training
        config edited in place changes the stage key)."""
        seg = self.spec.segmentation
        assert seg is not None
        out: dict[str, str] = {}
        if seg.train is not None:
            local = _resolve(seg.train.config, self.base)
            if local.is_file():
                out["train_config"] = file_sha256(local)
        elif seg.model is not None:
            from hybridrad.segment.registry import resolve_model

            folder = resolve_model(_file_or_name(seg.model, self.base))
            for f in sorted(p for p in Path(folder).iterdir() if p.is_file()):
                out[f.name] = file_sha256(f)
        return out

    # -- cohort ----------------------------------------------------------------------------
    def cohort_inputs(self, spec: CohortSpec) -> dict[str, Any]:
        """Content hashes of the input tables (part of the cohort stage key)."""
        hashes: dict[str, Any] = {}
        for name in ("manifest", "clinical"):
            value = getattr(spec, name)
            if value is not None:
                path = _resolve(value, self.base)
                hashes[name] = file_sha256(path) if path.is_file() else f"missing:{path}"
        if spec.discover is not None:
            folder = _resolve(spec.discover.folder, self.base)
            files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
            hashes["discover"] = config_hash(
                {str(p.relative_to(folder)): p.stat().st_size for p in files}
            )
        return hashes

    def make_cohort(self, spec: CohortSpec, folder: Path) -> dict[str, Any]:

        from hybridrad.io import Cohort
        from hybridrad.io.manifest import read_clinical, write_manifest

        clinical: Path | None
        if spec.synthetic is not None:
            from hybridrad.datasets.synthetic import make_synthetic_cohort

            syn = make_synthetic_cohort(
                folder / "data", n_cases=spec.synthetic.n_cases, seed=spec.synthetic.seed
            )
            source, clinical = syn.manifest_path, syn.clinical_path
            table = _table(Cohort.from_csv(source, label_map=spec.label_map))
            extra: dict[str, Any] = {
                "oracle_cindex": syn.oracle_cindex,
                "oracle_auc_idh": syn.oracle_auc_idh,
                "oracle_auc_codel": syn.oracle_auc_codel,
            }
        elif spec.discover is not None:
            from hybridrad.datasets.discover import discover_brats, discover_lgg_tcga

            where = _resolve(spec.discover.folder, self.base)
            if spec.discover.layout == "brats":
                table = discover_brats(where)
                clinical = None
            else:
                table, clinical = discover_lgg_tcga(where)
            extra = {"discovered": str(where)}
        else:
            assert spec.manifest is not None
            source = _resolve(spec.manifest, self.base)
            cohort = Cohort.from_csv(
                source,
                label_map=spec.label_map,
                nonfinite=spec.nonfinite,
                allow_outside=spec.allow_outside,
            )
            table = _table(cohort)
            clinical = None
            extra = {"manifest": str(source)}
        if spec.clinical is not None:
            clinical = _resolve(spec.clinical, self.base)
        assert clinical is not None
        write_manifest(table, folder / "manifest.csv")
        clin = read_clinical(clinical)
        clin.to_csv(folder / "clinical.csv")
        missing = sorted(set(table["case_id"]) - set(clin.index.astype(str)))
        if missing:
            log.warning(
                "%d case(s) of the manifest have no clinical row: %s", len(missing), missing[:20]
            )
        cohort = self.load_cohort(folder / "manifest.csv", spec.label_map, folder)
        targets = self.spec.targets
        report = cohort.validate(
            time=targets.survival.time if targets.survival else None,
            event=targets.survival.event if targets.survival else None,
        )
        report.to_frame().to_csv(folder / "validation.csv", index=False)
        summary = report.summary(limit=20).splitlines()
        print("    validation: " + "\n    ".join(summary), flush=True)
        report.raise_if_failed()
        return {
            "n_cases": len(table),
            "sequences": list(cohort.sequences),
            "has_masks": cohort.has_masks,
            "label_map": spec.label_map,
            "inputs_sha256": {"clinical": file_sha256(clinical)},
            "clinical_source": str(clinical),
            "n_clinical_rows": len(clin),
            "n_validation_warnings": len(report.warnings),
            **extra,
        }

    def load_cohort(self, manifest: Path, label_map: str, cohort_dir: Path) -> Any:
        from hybridrad.io import Cohort

        spec = self.spec.cohort
        return Cohort.from_csv(
            manifest,
            label_map=label_map,
            clinical=cohort_dir / "clinical.csv",
            nonfinite=spec.nonfinite,
            allow_outside=True,  # paths were checked when the cohort stage read them
        )

    # -- preprocess ------------------------------------------------------------------------
    def pipeline(self) -> Any:
        """The validated preprocessing pipeline of the study's ``preprocess`` section."""
        from hybridrad.preprocess.pipeline import load_pipeline, parse_pipeline

        spec = self.spec.preprocess
        assert spec is not None
        if spec.config is not None:
            return load_pipeline(_file_or_name(spec.config, self.base))[0]
        return parse_pipeline({"resample": {"spacing": list(spec.spacing or ())}})

    def preprocess(self, cohort: Any, folder: Path) -> dict[str, Any]:
        from hybridrad.preprocess.pipeline import preprocess_cohort

        config = self.pipeline()
        result, _ = preprocess_cohort(
            cohort,
            config,
            folder,
            jobs=self.jobs,
            cache_dir=self.cache,
            progress=self.progress,
        )
        return {
            "n_cases": len(result.features),
            "n_failed": len(result.failures),
            "pipeline_hash": config.hash,
            "steps": config.steps(),
        }

    # -- segmentation ----------------------------------------------------------------------
    def segment(self, cohort: Any, folder: Path) -> dict[str, Any]:
        from hybridrad.segment import segment_cohort
        from hybridrad.segment.evaluate import evaluate_masks
        from hybridrad.segment.registry import pick_model, resolve_model

        seg = self.spec.segmentation
        assert seg is not None
        model_dir: Any = seg.model
        if seg.train is not None:
            from hybridrad.segment.config import SegConfig
            from hybridrad.segment.train import train_model

            config = SegConfig.load(_file_or_name(seg.train.config, self.base))
            train_model(
                cohort,
                folder / "model",
                config,
                device=seg.device,
                progress=self.progress,
                max_minutes=seg.train.max_minutes,
            )
            model_dir = folder / "model"
        elif model_dir is not None:
            model_dir = resolve_model(_file_or_name(model_dir, self.base))
        else:
            model_dir = pick_model(list(cohort.sequences)).path
            print(f"    shipped model picked for the sequences: {model_dir.name}", flush=True)
        meta = json.loads((Path(model_dir) / "model.json").read_text(encoding="utf-8"))
        (folder / "model_used.json").write_text(
            json.dumps({"model": str(model_dir)}), encoding="utf-8"
        )
        (folder / "label_map.yaml").write_text(
            yaml.safe_dump(meta["label_map"], sort_keys=False), encoding="utf-8"
        )
        result, manifest = segment_cohort(
            cohort,
            folder,
            model_dir=model_dir,
            device=seg.device,
            jobs=self.jobs,
            cache_dir=self.cache,
            progress=self.progress,
        )
        info: dict[str, Any] = {
            "n_cases": len(result.features),
            "n_failed": len(result.failures),
            "model": str(model_dir),
        }
        if cohort.has_masks and len(result.features):
            done = cohort.subset(list(result.features.index))
            quality = evaluate_masks(done, folder)
            quality.to_csv(folder / "quality.csv", index=False)
            means = quality.groupby("region")["dice"].mean()
            info["mean_dice"] = {str(k): round(float(v), 4) for k, v in means.items()}
            print(
                "    mean Dice vs the manifest's masks: "
                + ", ".join(f"{k} {v:.3f}" for k, v in info["mean_dice"].items()),
                flush=True,
            )
        info["manifest"] = str(manifest)
        return info

    # -- features --------------------------------------------------------------------------
    def handcrafted(self, cohort: Any, folder: Path) -> dict[str, Any]:
        from hybridrad.features.radiomics import RadiomicsConfig, extract_radiomics

        spec = self.spec.features.handcrafted
        assert spec is not None
        config = RadiomicsConfig.load(_file_or_name(spec.config, self.base)).with_engine(
            spec.engine
        )
        result = extract_radiomics(
            cohort,
            config,
            sequences=spec.sequences,
            regions=spec.regions,
            jobs=self.jobs,
            cache_dir=self.cache,
            progress=self.progress,
            tolerance=spec.tolerance,
        )
        (folder / "radiomics.yaml").write_text(
            yaml.safe_dump(config.params, sort_keys=False), encoding="utf-8"
        )
        return self._save_features(result, folder, "hybridrad run: handcrafted", spec)

    def deep(self, cohort: Any, folder: Path) -> dict[str, Any]:
        from hybridrad.features.deep import extract_deep

        spec = self.spec.features.deep
        assert spec is not None
        encoder = None if spec.encoder is None else _file_or_name(spec.encoder, self.base)
        seg_record = folder.parent / "segmentation" / "model_used.json"
        if encoder in (None, "segmentation") and seg_record.is_file():
            # the encoder of the model that segmented this cohort, not the default one
            encoder = f"segmentation:{json.loads(seg_record.read_text(encoding='utf-8'))['model']}"
        result = extract_deep(
            cohort,
            encoder,
            stages=spec.stages,
            pooling=spec.pooling,
            batch_size=spec.batch_size,
            device=spec.device,
            cache_dir=self.cache,
            progress=self.progress,
            trust_code=spec.trust_code,
        )
        return self._save_features(result, folder, "hybridrad run: deep", spec)

    def _save_features(self, result: Any, folder: Path, command: str, spec: Any) -> dict[str, Any]:
        result.save(
            folder / "features.parquet",
            provenance=self.provenance(command, settings=spec.model_dump()),
        )
        if result.features.empty:
            raise StageError(
                f"{folder.name}: every case failed ({len(result.failures)}); see "
                f"{folder / 'features.failures.csv'}"
            )
        print(
            f"    {result.features.shape[1]} features, {len(result.features)} cases, "
            f"{len(result.failures)} failed",
            flush=True,
        )
        return {
            "n_cases": len(result.features),
            "n_features": int(result.features.shape[1]),
            "n_failed": len(result.failures),
        }

    # -- modelling -------------------------------------------------------------------------
    def feature_tables(self, root: Path) -> list[Path]:
        tables = []
        for block in ("handcrafted", "deep"):
            path = root / block / "features.parquet"
            if getattr(self.spec.features, block) is not None:
                tables.append(path)
        return tables

    def targets(self) -> list[tuple[str, dict[str, Any]]]:
        t = self.spec.targets
        out: list[tuple[str, dict[str, Any]]] = []
        if t.survival is not None:
            out.append(("survival", {"time": t.survival.time, "event": t.survival.event}))
        for name, label in t.labels.items():
            out.append((name, {"label": label.column, "positive": label.positive}))
        return out

    def evaluate(self, folder: Path) -> dict[str, Any]:
        from hybridrad.models.final import fit_final
        from hybridrad.study.evaluate import evaluate_study
        from hybridrad.study.load import load_study

        config = self.spec.config
        if config.n_jobs == 1 and self.jobs > 1:
            from dataclasses import replace

            config = replace(config, n_jobs=self.jobs)
        info: dict[str, Any] = {}
        for name, target in self.targets():
            data = load_study(
                self.feature_tables(self.out),
                self.out / "cohort" / "clinical.csv",
                covariates=config.covariates,
                site=config.combat,
                drop_missing=True,
                **target,
            )
            print(f"    {name}: {len(data.X)} cases, nested CV ...", flush=True)
            table, _ = evaluate_study(data, config, folder / name)
            info[name] = {"task": data.task, "n_cases": len(data.X), "sets": list(table.index)}
            if self.spec.final_model is not None:
                fit_final(data, config, self.spec.final_model, folder / name / "final")
        return {"targets": info, "config_hash": config.hash}

    def external_features(self, folder: Path) -> dict[str, Any]:
        """The external cohort through the same cohort/preprocess/segment/extract steps."""
        ext = self.spec.external
        assert ext is not None
        cohort_dir = folder / "cohort"
        cohort_dir.mkdir()
        info = self.make_cohort(ext.cohort, cohort_dir)
        cohort = self.load_cohort(cohort_dir / "manifest.csv", ext.cohort.label_map, cohort_dir)
        n_failed = 0
        if self.spec.preprocess is not None:
            (folder / "preprocess").mkdir()
            n_failed += self.preprocess(cohort, folder / "preprocess")["n_failed"]
            cohort = self.load_cohort(
                folder / "preprocess" / "manifest.csv", ext.cohort.label_map, cohort_dir
            )
        if self.spec.segmentation is not None:
            (folder / "segmentation").mkdir()
            seg = self.segment(cohort, folder / "segmentation")
            n_failed += seg["n_failed"]
            if self.spec.segmentation.use_for_features:
                cohort = self.predicted_cohort(folder / "segmentation", cohort_dir)
        for block in ("handcrafted", "deep"):
            if getattr(self.spec.features, block) is not None:
                (folder / block).mkdir()
                n_failed += getattr(self, block)(cohort, folder / block)["n_failed"]
        return {"cohort": info, "n_failed": n_failed}

    def predicted_cohort(self, seg_dir: Path, cohort_dir: Path) -> Any:
        label_map = seg_dir / "label_map.yaml"
        return self.load_cohort(seg_dir / "manifest.csv", str(label_map), cohort_dir)

    def score(self, folder: Path) -> dict[str, Any]:
        from hybridrad.study.external import score_model
        from hybridrad.study.load import load_study

        ext = self.spec.external
        assert ext is not None and self.spec.final_model is not None
        root = self.out / "external-features"
        info: dict[str, Any] = {}
        for name, target in self.targets():
            model_dir = self.out / "evaluation" / name / "final"
            data = load_study(
                self.feature_tables(root),
                root / "cohort" / "clinical.csv",
                covariates=self.spec.config.covariates,
                site=self.spec.config.combat,
                drop_missing=True,
                **target,
            )
            metrics = score_model(
                model_dir, data, folder / name, n_boot=ext.n_boot, seed=self.spec.config.seed
            )
            info[name] = {"n_cases": len(data.X), "metrics": metrics}
        return info


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def run_study(
    study: str | os.PathLike[str] | StudySpec,
    out: str | os.PathLike[str] | None = None,
    *,
    jobs: int = 1,
    force: bool = False,
    progress: bool = True,
) -> StudyRun:
    """Run a whole study: cohort → (preprocess) → (segmentation) → features →
    evaluation → (external validation) → report; every stage cached.

    Parameters
    ----------
    study
        A study YAML file, a shipped study name (``demo``, ``lgg``) or a
        :class:`~hybridrad.study.spec.StudySpec`.
    out
        Output folder (default ``./<study name>-output``). A rerun into the same folder
        skips every stage whose inputs and settings did not change.
    jobs
        Worker processes for the per-case stages and the nested CV.
    force
        Recompute every stage (the per-case cache of finished cases is still used).
    progress
        Progress bars.

    Returns
    -------
    StudyRun

    Raises
    ------
    StudyFileError
        The study file breaks the schema (every problem with its key path).
    StageError
        A stage produced nothing usable.
    HybridradError
        Bad input met by a stage (its message names the case, file or column).
    """
    if isinstance(study, StudySpec):
        spec, base = study, Path.cwd()
    else:
        spec, path = load_study_file(study)
        base = path.parent
    out_dir = Path(out) if out is not None else Path(f"{spec.name}-output")
    out_dir.mkdir(parents=True, exist_ok=True)
    canonical = spec.canonical()
    (out_dir / "study.yaml").write_text(
        f"# hybridrad {__version__}, study hash {spec.hash}; rerun: hybridrad run <this file>\n"
        + yaml.safe_dump(canonical, sort_keys=False),
        encoding="utf-8",
    )
    runner = _Runner(spec, base, out_dir, jobs=jobs, force=force, progress=progress)
    started = _now()
    record: dict[str, Any] = {
        "study": spec.name,
        "study_hash": spec.hash,
        "study_file": None if isinstance(study, StudySpec) else str(study),
        "hybridrad_version": __version__,
        "versions": library_versions(),
        "started": started,
    }

    def write_record(**more: Any) -> None:
        (out_dir / "run.json").write_text(
            json.dumps({**record, "stages": runner.stages, **more}, indent=2, default=str),
            encoding="utf-8",
        )

    try:
        return _run_stages(spec, runner, out_dir, canonical, write_record)
    except BaseException as exc:
        write_record(failed=f"{type(exc).__name__}: {exc}")
        raise


def _run_stages(
    spec: StudySpec,
    runner: _Runner,
    out_dir: Path,
    canonical: dict[str, Any],
    write_record: Callable[..., None],
) -> StudyRun:
    cohort_dir = out_dir / "cohort"
    section = {"cohort": canonical["cohort"], "inputs": runner.cohort_inputs(spec.cohort)}
    key = runner.stage("cohort", section, [], lambda d: runner.make_cohort(spec.cohort, d))
    label_map = spec.cohort.label_map
    cohort = runner.load_cohort(cohort_dir / "manifest.csv", label_map, cohort_dir)

    if spec.preprocess is not None:
        key = runner.stage(
            "preprocess",
            {**canonical["preprocess"], "pipeline": runner.pipeline().canonical()},
            [key],
            lambda d: runner.preprocess(cohort, d),
        )
        cohort = runner.load_cohort(out_dir / "preprocess" / "manifest.csv", label_map, cohort_dir)
    else:
        runner.skip("preprocess")

    if spec.segmentation is not None:
        key = runner.stage(
            "segmentation",
            {**canonical["segmentation"], "content": runner.segmentation_content()},
            [key],
            lambda d: runner.segment(cohort, d),
        )
        if spec.segmentation.use_for_features:
            cohort = runner.predicted_cohort(out_dir / "segmentation", cohort_dir)
    else:
        runner.skip("segmentation")

    feature_keys = []
    for block in ("handcrafted", "deep"):
        settings = getattr(spec.features, block)
        if settings is None:
            runner.skip(block)
            continue
        feature_keys.append(
            runner.stage(
                block,
                {**canonical["features"][block], "content": runner.content_hashes(block)},
                [key],
                functools.partial(getattr(runner, block), cohort),
            )
        )
    modelling = {
        "targets": canonical["targets"],
        "model": canonical["model"],
        "final_model": canonical["final_model"],
    }
    eval_key = runner.stage(
        "evaluation", modelling, [_cohort_key(runner), *feature_keys], runner.evaluate
    )

    if spec.external is not None and spec.final_model is not None:
        ext_section = {
            "external": canonical["external"]["cohort"],
            "inputs": runner.cohort_inputs(spec.external.cohort),
            "preprocess": canonical["preprocess"],
            "segmentation": canonical["segmentation"],
            "features": canonical["features"],
            "content": {
                b: runner.content_hashes(b)
                for b in ("handcrafted", "deep")
                if getattr(spec.features, b) is not None
            },
            "segmentation_content": (
                runner.segmentation_content() if spec.segmentation is not None else None
            ),
        }
        ext_key = runner.stage("external-features", ext_section, [], runner.external_features)
        runner.stage(
            "external",
            {"n_boot": spec.external.n_boot},
            [eval_key, ext_key],
            runner.score,
        )
    else:
        runner.skip("external-features")
        runner.skip("external")

    from hybridrad.report.html import write_report

    write_record()
    upstream = [s["key"] for s in runner.stages.values() if s["key"]]
    runner.stage(
        "report",
        canonical["report"],
        upstream,
        lambda d: {"path": str(write_report(out_dir, d / "report.html"))},
    )
    write_record(finished=_now(), n_failed=runner.n_failed)
    return StudyRun(
        out=out_dir,
        report=out_dir / "report" / "report.html",
        spec=spec,
        study_hash=spec.hash,
        stages=runner.stages,
        n_failed=runner.n_failed,
    )


def _cohort_key(runner: _Runner) -> str:
    """The cohort stage key (the clinical table feeds the evaluation)."""
    return str(runner.stages["cohort"]["key"])
