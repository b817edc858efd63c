"""The study file of ``hybridrad run``: one YAML file describing a whole study.

The file is validated up front with pydantic: an unknown key, a wrong type or an
impossible combination is a :class:`StudyFileError` listing every problem with the path
of its key (``features.deep.batch_size: Input should be a valid integer``). The
validated study, with every default filled in, is what ``hybridrad run`` writes next to
its outputs (``OUT/study.yaml``) and hashes (:attr:`StudySpec.hash`): rerunning that file
reproduces the run.

Sections, in the order of the stages they drive (see ``docs/reference/configuration.md``):

- ``cohort``: where the cases come from (a synthetic cohort generated on the fly, a
  manifest CSV, or a known folder layout) and the clinical table;
- ``preprocess`` (optional): a preprocessing pipeline (``configs/preprocess/``), or
  resampling to a common grid, before anything else;
- ``segmentation`` (optional): a shipped or trained MONAI model, evaluated against the
  manifest's masks when it has them;
- ``features``: handcrafted (pyradiomics) and deep (3D CNN encoder) extraction;
- ``targets``: overall survival and/or binary subtype labels;
- ``model``: the keys of :class:`~hybridrad.models.pipelines.StudyConfig` (nested CV);
- ``final_model``: the feature set fitted on every case (importance, external validation);
- ``external`` (optional): a second cohort the final model is validated on;
- ``report``: the HTML report.

Paths in the file are relative to the file's folder; ``data:NAME/...`` is resolved under
the shared reference-data folder (:func:`~hybridrad.datasets.reference.reference_data_dir`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hybridrad.errors import HybridradError
from hybridrad.provenance import config_hash

SHIPPED_STUDIES = ("demo", "lgg")


class StudyFileError(HybridradError, ValueError):
    """A study file cannot be used: unknown key, wrong type, impossible combination.

    ``key_problems`` holds one ``(key path, message)`` pair per problem, and ``problems``
    one :class:`StudyFileError` per problem (the command line prints one line each).
    """

    def __init__(
        self, message: str, key_problems: list[tuple[str, str]] | None = None, source: str = ""
    ) -> None:
        super().__init__(message)
        self.key_problems = key_problems or []
        self.problems = [
            StudyFileError(f"{source}: {path}: {msg}") for path, msg in self.key_problems
        ]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticSource(_Section):
    """A synthetic ground-truth cohort generated on the fly (``hybridrad demo-cohort``)."""

    n_cases: int = Field(40, ge=10, le=5000, description="number of patients")
    seed: int = Field(0, ge=0, description="generator seed")


class DiscoverSource(_Section):
    """A known folder layout, turned into a manifest (``hybridrad discover``)."""

    layout: Literal["brats", "lgg-tcga"]
    folder: str = Field(description="the dataset folder (relative, absolute or data:NAME)")


class CohortSpec(_Section):
    """Where the cases come from: exactly one of ``synthetic``, ``manifest``, ``discover``."""

    synthetic: SyntheticSource | None = None
    manifest: str | None = Field(None, description="manifest CSV (hybridrad validate)")
    discover: DiscoverSource | None = None
    clinical: str | None = Field(
        None, description="clinical CSV (synthetic and lgg-tcga cohorts bring their own)"
    )
    label_map: str = Field("binary", description="label-map preset or YAML file")
    nonfinite: Literal["error", "replace"] = "error"
    allow_outside: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> CohortSpec:
        given = [k for k in ("synthetic", "manifest", "discover") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of synthetic, manifest, discover"
                + (f" (got {', '.join(given)})" if given else "")
            )
        needs_clinical = self.manifest is not None or (
            self.discover is not None and self.discover.layout == "brats"
        )
        if needs_clinical and self.clinical is None:
            raise ValueError("a manifest or a BraTS folder needs a clinical table (clinical:)")
        return self


class PreprocessSpec(_Section):
    """The preprocessing pipeline (``hybridrad preprocess``): a shipped preset or a YAML
    file in ``config``, or ``spacing`` alone as a shorthand for resampling (images linear,
    masks nearest neighbour)."""

    config: str | None = Field(
        None,
        description="pipeline preset (glioma_mri, resample_only, ct) or YAML file "
        "(docs/preprocessing.md)",
    )
    spacing: tuple[float, float, float] | None = Field(
        None, description="shorthand: resampling alone, to this voxel spacing (mm), x y z"
    )

    @field_validator("spacing")
    @classmethod
    def _positive(
        cls, value: tuple[float, float, float] | None
    ) -> tuple[float, float, float] | None:
        if value is not None and not all(0.01 <= v <= 100 for v in value):
            raise ValueError("each spacing must be between 0.01 and 100 mm")
        return value

    @model_validator(mode="after")
    def _one(self) -> PreprocessSpec:
        if (self.config is None) == (self.spacing is None):
            raise ValueError("give either config (a pipeline) or spacing (resampling alone)")
        return self


class TrainSpec(_Section):
    """Train a segmentation model on the cohort's own masks (``hybridrad seg-train``)."""

    config: str = Field(description="segmentation config: shipped name or YAML file")
    max_minutes: float | None = Field(None, gt=0, description="stop training after this long")


class SegmentationSpec(_Section):
    """Auto-segmentation: a shipped or trained model; features then use its masks."""

    model: str | None = Field(
        None, description="shipped model name or model folder (null: the one trained, or picked)"
    )
    train: TrainSpec | None = None
    use_for_features: bool = Field(
        True, description="extract features from the predicted masks (false: the manifest's)"
    )
    device: str = "auto"

    @model_validator(mode="after")
    def _model_or_train(self) -> SegmentationSpec:
        if self.model is not None and self.train is not None:
            raise ValueError("give model (use a model) or train (train one), not both")
        return self


class HandcraftedSpec(_Section):
    """pyradiomics features (``hybridrad extract``)."""

    config: str = Field("mri_glioma", description="radiomics YAML or preset")
    engine: Literal["pyradiomics", "native"] | None = Field(
        None, description="feature engine (null: the config's `engine` key, else pyradiomics)"
    )
    sequences: list[str] | None = None
    regions: list[str] | None = None
    tolerance: float = Field(1e-3, ge=0)


class DeepSpec(_Section):
    """3D CNN encoder features (``hybridrad deep-features``)."""

    encoder: str | None = Field(None, description="encoder spec (null: the segmentation encoder)")
    batch_size: int = Field(8, ge=1)
    pooling: Literal["masked", "meanstd", "mean"] | None = None
    stages: list[str] | None = None
    device: str = "auto"
    trust_code: bool = False


class FeaturesSpec(_Section):
    """Which feature blocks to extract (a block left out is not extracted)."""

    handcrafted: HandcraftedSpec | None = HandcraftedSpec()
    deep: DeepSpec | None = DeepSpec()


class SurvivalTarget(_Section):
    time: str
    event: str


class LabelTarget(_Section):
    column: str
    positive: str | None = Field(None, description="positive class (needed beyond 2 values)")


class TargetsSpec(_Section):
    """What is predicted: overall survival and/or binary labels (subtypes)."""

    survival: SurvivalTarget | None = None
    labels: dict[str, LabelTarget] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _something(self) -> TargetsSpec:
        if self.survival is None and not self.labels:
            raise ValueError("name at least one target (survival or labels)")
        bad = [n for n in self.labels if not n.replace("_", "").replace("-", "").isalnum()]
        if bad or "survival" in self.labels:
            raise ValueError(
                f"label names must be letters, digits, '-' or '_' and not 'survival': "
                f"{bad or ['survival']}"
            )
        return self


class ExternalSpec(_Section):
    """A second cohort, processed like the first, on which the final model is scored."""

    cohort: CohortSpec
    n_boot: int = Field(1000, ge=0)


class ReportSpec(_Section):
    title: str | None = None


class StudySpec(_Section):
    """A whole study. See the module docstring for the sections."""

    name: str = Field(description="study name (report title, run.json)")
    cohort: CohortSpec
    preprocess: PreprocessSpec | None = None
    segmentation: SegmentationSpec | None = None
    features: FeaturesSpec = FeaturesSpec()
    targets: TargetsSpec
    model: dict[str, Any] = Field(
        default_factory=dict,
        validate_default=True,
        description="StudyConfig keys (configs/models/default.yaml)",
    )
    final_model: str | None = Field("hybrid", description="feature set fitted on every case")
    external: ExternalSpec | None = None
    report: ReportSpec = ReportSpec()

    @field_validator("model")
    @classmethod
    def _study_config(cls, value: dict[str, Any]) -> dict[str, Any]:
        from hybridrad.models.pipelines import StudyConfig, StudyConfigError

        try:
            return StudyConfig.from_dict(value).to_dict()
        except (StudyConfigError, TypeError, ValueError) as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _consistent(self) -> StudySpec:
        produced = {"clin"}
        if self.features.handcrafted is not None:
            produced.add("rad")
        if self.features.deep is not None:
            produced.add("deep")
        sets: dict[str, list[str]] = self.model["feature_sets"]
        for name, blocks in sets.items():
            missing = sorted(set(blocks) - produced)
            if missing:
                raise ValueError(
                    f"model.feature_sets.{name} uses block(s) {missing} that the features "
                    "section does not extract; remove the set or enable the block"
                )
        if self.final_model is not None and self.final_model not in sets:
            raise ValueError(
                f"final_model {self.final_model!r} is not a feature set; "
                f"choose one of {sorted(sets)} or null"
            )
        if (
            self.segmentation is not None
            and self.segmentation.model is None
            and self.segmentation.train is None
            and self.cohort.synthetic is not None
        ):
            raise ValueError(
                "segmentation of a synthetic cohort needs model: synthetic-brats (the "
                "real-data models do not fit phantoms) or train:"
            )
        return self

    @property
    def config(self) -> Any:
        """The :class:`~hybridrad.models.pipelines.StudyConfig` of the ``model`` section."""
        from hybridrad.models.pipelines import StudyConfig

        return StudyConfig.from_dict(self.model)

    def canonical(self) -> dict[str, Any]:
        """The study as plain data, every default filled in (what ``study.yaml`` holds)."""
        return json.loads(self.model_dump_json())

    @property
    def hash(self) -> str:
        """sha256 (16 hex digits) of :meth:`canonical`, recorded with every output."""
        return config_hash(self.canonical())


def shipped_study(name: str) -> Path:
    """The shipped study file ``hybridrad/configs/studies/<name>.yaml``."""
    return Path(__file__).resolve().parent.parent / "configs" / "studies" / f"{name}.yaml"


def parse_study(data: Any, source: str = "study") -> StudySpec:
    """Validate a study mapping; every problem is reported with its key path.

    Raises
    ------
    StudyFileError
        The mapping breaks the schema; ``problems`` lists ``(key path, message)``.
    """
    if not isinstance(data, dict):
        raise StudyFileError(f"{source}: a study file must be a mapping of sections")
    try:
        return StudySpec.model_validate(data)
    except ValidationError as exc:
        from hybridrad.io.yamlfile import key_problems

        problems = key_problems(exc.errors())
        lines = "; ".join(f"{path}: {msg}" for path, msg in problems)
        raise StudyFileError(
            f"{source}: {len(problems)} problem(s): {lines}", problems, source
        ) from None


def load_study_file(study: str | os.PathLike[str]) -> tuple[StudySpec, Path]:
    """Read and validate a study YAML file, or a shipped study by name.

    Returns
    -------
    spec : StudySpec
        The validated study.
    path : pathlib.Path
        The file read (relative paths in it are relative to its folder).

    Raises
    ------
    FileNotFoundError
        Neither a file nor a shipped name.
    StudyFileError
        The file breaks the schema (every problem with its key path).
    """
    from hybridrad.io.yamlfile import file_or_shipped, read_mapping

    shipped = {name: shipped_study(name) for name in SHIPPED_STUDIES}
    path = file_or_shipped(study, shipped, "study file", "study")
    data = read_mapping(path, StudyFileError, "study file")
    return parse_study(data, source=str(path)), path.resolve()
