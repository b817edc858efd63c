"""De-identification of DICOM headers in memory, before anything is written.

The work is done by `dicognito <https://github.com/blairconrad/dicognito>`_, which
implements the DICOM PS3.15 basic application level confidentiality profile on pydicom
datasets: person names, patient and accession ids, institution, station and address
are replaced, every UID is replaced consistently, and dates and times are shifted by one
offset. :class:`Pseudonymizer` adds what hybridrad needs on top:

- **one anonymiser per patient**, seeded by a secret random seed of that patient, so every
  series of a patient gets the same pseudonym and the same date shift (intervals between
  studies are kept: the profile's *retain longitudinal temporal information with modified
  dates* option), while two patients get unrelated shifts;
- the attributes of the basic profile that dicognito leaves alone (device serial number,
  free-text comments, descriptions, patient age/size/weight ...) and all private
  attributes are removed;
- **the key** (original id -> pseudonym, seed, date shift) is kept in memory and written
  by :func:`write_key` to a separate file, which is the only output that holds PHI.
  Reusing a key file gives a patient seen before the same pseudonym and shift.
"""

from __future__ import annotations

import csv
import datetime
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridrad.errors import HybridradError

if TYPE_CHECKING:
    import pydicom

#: Columns of the key file.
KEY_COLUMNS = ("kind", "pseudonym", "original", "seed", "date_shift_days")

#: Attributes of the PS3.15 basic profile that dicognito does not change (it replaces
#: names, ids, UIDs, dates, institution and addresses); removed here.
EXTRA_REMOVED = (
    "DeviceSerialNumber",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "PatientComments",
    "PatientState",
    "AdditionalPatientHistory",
    "MedicalAlerts",
    "Allergies",
    "EthnicGroup",
    "SmokingStatus",
    "PregnancyStatus",
    "PatientBirthTime",
    "PatientMotherBirthName",
    "OtherPatientIDsSequence",
    "ImageComments",
    "StudyComments",
    "InterpretationText",
    "RequestAttributesSequence",
    "ReferencedStudySequence",
    "ReferencedPatientSequence",
    "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers",
    "StudyDescription",
    "SeriesDescription",
    "ProtocolName",
    "PerformedProcedureStepDescription",
    "RequestedProcedureDescription",
    "AdmittingDiagnosesDescription",
    "DerivationDescription",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "StationName",
    "OperatorsName",
    "PerformingPhysicianName",
    "PhysiciansOfRecord",
    "NameOfPhysiciansReadingStudy",
)


class DicomDependencyError(HybridradError, ImportError):
    """pydicom or dicognito (the ``dicom`` extra) is not installed."""


class KeyFileError(HybridradError, ValueError):
    """The de-identification key file cannot be used (malformed, or inside the output)."""


def require(module: str) -> Any:
    """Import ``module`` of the ``dicom`` extra, or raise :class:`DicomDependencyError`.

    Examples
    --------
    >>> require("no_such_module_xyz")
    Traceback (most recent call last):
    ...
    hybridrad.dicom.deidentify.DicomDependencyError: DICOM conversion needs no_such_module_xyz, which is not installed: pip install 'hybridrad[dicom]'
    """
    from importlib import import_module

    try:
        return import_module(module)
    except ImportError as exc:
        raise DicomDependencyError(
            f"DICOM conversion needs {module}, which is not installed: "
            "pip install 'hybridrad[dicom]'"
        ) from exc


@dataclass
class PatientKey:
    """What links one patient's original id to its pseudonym (PHI: the key file only)."""

    original: str
    pseudonym: str
    seed: str
    date_shift_days: float


class Pseudonymizer:
    """Per-patient consistent de-identification of pydicom datasets (see the module).

    Parameters
    ----------
    known
        Patients from an earlier key file (:func:`read_key`): they keep their seed, so
        their pseudonym and date shift stay the same.
    """

    def __init__(self, known: dict[str, PatientKey] | None = None) -> None:
        require("pydicom")
        require("dicognito")
        self.patients: dict[str, PatientKey] = dict(known or {})
        self._anonymizers: dict[str, Any] = {}

    def _anonymizer(self, patient_id: str) -> Any:
        if patient_id not in self._anonymizers:
            from dicognito.anonymizer import Anonymizer

            key = self.patients.get(patient_id)
            seed = key.seed if key is not None else secrets.token_hex(16)
            anonymizer = Anonymizer(seed=seed)
            pseudonym, shift = _probe(anonymizer, patient_id)
            if key is not None and key.pseudonym != pseudonym:
                raise KeyFileError(
                    f"the key file's pseudonym {key.pseudonym!r} does not follow from its "
                    "seed with this dicognito version; use a new key file"
                )
            taken = {k.pseudonym for o, k in self.patients.items() if o != patient_id}
            if pseudonym in taken:  # 36**12 ids: practically never
                raise KeyFileError(f"pseudonym {pseudonym} drawn twice; rerun the conversion")
            self.patients[patient_id] = PatientKey(patient_id, pseudonym, seed, shift)
            self._anonymizers[patient_id] = anonymizer
        return self._anonymizers[patient_id]

    def pseudonym(self, patient_id: str) -> str:
        """The pseudonym of the patient with original id ``patient_id``."""
        self._anonymizer(patient_id)
        return self.patients[patient_id].pseudonym

    def anonymize(self, dataset: pydicom.Dataset, patient_id: str) -> None:
        """De-identify ``dataset`` (of the patient ``patient_id``) in place."""
        self._anonymizer(patient_id).anonymize(dataset)
        dataset.remove_private_tags()
        for keyword in EXTRA_REMOVED:
            if keyword in dataset:
                delattr(dataset, keyword)
        dataset.PatientID = self.patients[patient_id].pseudonym
        dataset.PatientName = self.patients[patient_id].pseudonym
        dataset.PatientIdentityRemoved = "YES"


def _probe(anonymizer: Any, patient_id: str) -> tuple[str, float]:
    """The pseudonym ``anonymizer`` gives ``patient_id`` and its date shift in days."""
    from pydicom.dataset import Dataset, FileMetaDataset

    probe = Dataset()
    probe.file_meta = FileMetaDataset()
    probe.PatientID = patient_id
    probe.StudyDate, probe.StudyTime = "20000101", "120000"
    anonymizer.anonymize(probe)
    shifted = datetime.datetime.strptime(probe.StudyDate + probe.StudyTime[:6], "%Y%m%d%H%M%S")
    days = (shifted - datetime.datetime(2000, 1, 1, 12)).total_seconds() / 86400
    return str(probe.PatientID), days


def default_key_path(out: str | os.PathLike[str]) -> Path:
    """The key file beside the output folder ``out``: ``<out>.key.csv``.

    Examples
    --------
    >>> default_key_path("/data/nifti").as_posix()
    '/data/nifti.key.csv'
    """
    p = Path(out)
    return p.parent / f"{p.name}.key.csv"


def check_key_path(key: Path, out: Path) -> None:
    """Refuse a key file inside the output folder ``out`` (which is shared)."""
    k, o = key.resolve(), out.resolve()
    if k == o or o in k.parents:
        raise KeyFileError(
            f"--key-file {key} lies inside the output folder {out}; the key holds PHI and "
            "must stay apart from the shared output: give a path outside it"
        )


def read_key(path: Path) -> dict[str, PatientKey]:
    """The patients of an existing key file (an empty dict when it does not exist)."""
    if not path.exists():
        return {}
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    known: dict[str, PatientKey] = {}
    for i, row in enumerate(rows, start=2):
        if row.get("kind") != "patient":
            continue
        try:
            known[row["original"]] = PatientKey(
                row["original"], row["pseudonym"], row["seed"], float(row["date_shift_days"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyFileError(
                f"key file {path}, line {i}: expected columns {', '.join(KEY_COLUMNS)}; fix "
                "the line or give another --key-file"
            ) from exc
    return known


def write_key(
    path: Path, patients: dict[str, PatientKey], files: dict[str, str] | None = None
) -> Path:
    """Write the key: one ``patient`` row per patient and one ``file`` row per input file
    named by a number in messages (``input file #3`` -> its path). Readable by the owner
    only (mode 0600 where the system has modes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(KEY_COLUMNS)
        for key in patients.values():
            shift = f"{key.date_shift_days:g}"
            writer.writerow(["patient", key.pseudonym, key.original, key.seed, shift])
        for name, original in (files or {}).items():
            writer.writerow(["file", name, original, "", ""])
    os.replace(tmp, path)
    return path
