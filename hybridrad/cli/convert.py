"""``hybridrad convert``: DICOM folder -> NIfTI per series + manifest, optionally de-identified."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _cmd_convert(args: argparse.Namespace) -> int:
    from hybridrad import preflight
    from hybridrad.dicom import convert

    preflight.output_folder(args.out)
    result = convert(args.dicom_dir, args.out, deidentify=args.deidentify, key_file=args.key_file)
    converted = int((result.series["status"] == "ok").sum())
    print(
        f"{converted} of {len(result.series)} series converted, "
        f"{len(result.manifest)} case(s) -> {result.out}"
    )
    print(f"  manifest: {result.manifest_path}")
    print(f"  series table: {result.out / 'series.csv'}")
    if result.key_path is not None:
        print(f"  de-identification key (holds PHI, keep it apart): {result.key_path}")
    if not result.ok:
        print(f"{len(result.failures)} failure(s), listed in {result.out / 'failures.csv'}:")
        for row in result.failures.itertuples(index=False):
            print(f"  {row.error}: {row.message}")
        return 1
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``convert``.

    Parameters
    ----------
    sub
        The object returned by ``ArgumentParser.add_subparsers()``.
    """
    helptext = "convert DICOM series to NIfTI (one per series) with a manifest"
    p = sub.add_parser(
        "convert",
        help=helptext,
        description=helptext + ". Writes OUT/<case_id>/<series>.nii.gz, OUT/manifest.csv "
        "(for validate/extract), OUT/series.csv and OUT/failures.csv. Exits 1 when some "
        "files or series could not be converted (the others are written).",
    )
    p.add_argument("dicom_dir", type=Path, help="folder of DICOM files (searched recursively)")
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument(
        "--deidentify",
        action="store_true",
        help="de-identify before writing (DICOM PS3.15 basic profile via dicognito): case "
        "ids become pseudonyms, dates are shifted per patient",
    )
    p.add_argument(
        "--key-file",
        type=Path,
        help="with --deidentify: where the key linking original ids to pseudonyms is "
        "written (it holds PHI; default <OUT>.key.csv beside OUT, never inside OUT). An "
        "existing key is reused, so known patients keep their pseudonym",
    )
    p.set_defaults(func=_cmd_convert)
