"""Deterministic synthetic ground-truth brain-MRI glioma cohort.

The generator draws, for every patient, a molecular subtype (IDHmut-codel,
IDHmut-non-codel, IDHwt), clinical covariates, a vector of latent imaging
phenotype parameters and a Weibull proportional-hazards survival time, and then
renders four co-registered MR sequences (T1, T1c, T2, FLAIR) plus a BraTS-style
tumour mask from those parameters.

Every subtype-dependent quantity is Gaussian in a transformed space with
subtype-specific means and a shared standard deviation, so the Bayes-optimal
posterior ``P(subtype | phenotype, age)`` is known exactly and is written to
``truth.csv`` together with the true linear predictor of the survival model.
These oracle values bound what any model trained on the images can achieve.

Nuisance parameters (texture amplitude, per-sequence gain, bias field, noise
level, point-spread function, brain shape) carry no subtype or survival
signal, so raw intensities are arbitrary as in real MRI and simple voxel
statistics are weak predictors.

The same ``seed`` always gives byte-identical files.  Case ``i`` depends only
on ``(seed, i, shape, spacing)``, so a smaller cohort is a prefix of a larger
one generated with the same seed; its clinical data and latent parameters do
not depend on ``shape`` or ``spacing`` either.

Axis convention: ``shape`` and ``spacing`` are given in SimpleITK ``(x, y, z)``
order; numpy arrays are indexed ``[z, y, x]``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage
from scipy.special import expit, log_ndtr

__all__ = [
    "SEQUENCES",
    "SUBTYPES",
    "SyntheticCohort",
    "load_synthetic_truth",
    "make_synthetic_cohort",
]

GENERATOR_NAME = "hybridrad.datasets.synthetic/v1"

SUBTYPES: tuple[str, str, str] = ("IDHmut-codel", "IDHmut-non-codel", "IDHwt")
"""Molecular subtypes, in the order used by every per-subtype coefficient."""

SEQUENCES: tuple[str, str, str, str] = ("t1", "t1c", "t2", "flair")
"""MR sequences written for every case."""

# --------------------------------------------------------------------------------------
# Model coefficients (all recorded in cohort.json)
# --------------------------------------------------------------------------------------

SUBTYPE_PRIOR: tuple[float, float, float] = (0.25, 0.40, 0.35)
P_MGMT_METHYLATED: tuple[float, float, float] = (0.85, 0.85, 0.45)
AGE_MEAN: tuple[float, float, float] = (46.0, 44.0, 55.0)
AGE_SD = 13.0
AGE_CLIP: tuple[float, float] = (18.0, 90.0)

# Latent phenotype parameters: name -> (means per subtype, shared SD, description).
PHENOTYPE: dict[str, tuple[tuple[float, float, float], float, str]] = {
    "log_core_radius_mm": (
        (float(np.log(15.0)), float(np.log(15.5)), float(np.log(16.2))),
        0.22,
        "log radius of the tumour core (necrosis + enhancing rim), mm",
    ),
    "logit_necrosis": (
        (-1.0, -0.75, -0.35),
        0.7,
        "logit of necrosis radius / core radius",
    ),
    "log_enhancement": (
        (float(np.log(0.28)), float(np.log(0.30)), float(np.log(0.40))),
        0.5,
        "log enhancement strength of the rim on T1c",
    ),
    "log_oedema_extent": (
        (float(np.log(0.78)), float(np.log(0.78)), float(np.log(0.83))),
        0.35,
        "log of (whole-tumour radius / core radius - 1)",
    ),
    "log_irregularity": (
        (float(np.log(0.065)), float(np.log(0.075)), float(np.log(0.095))),
        0.38,
        "log amplitude of the smooth boundary perturbation",
    ),
    "log_texture_grain_vox": (
        (float(np.log(0.85)), float(np.log(1.1)), float(np.log(1.4))),
        0.32,
        "log correlation length (Gaussian sigma, voxels) of intra-tumoural texture",
    ),
    "loc_lateral": (
        (0.26, 0.26, 0.29),
        0.15,
        "lateral offset of the tumour centre (fraction of brain semi-axis; side is random)",
    ),
    "loc_ap": (
        (0.26, 0.20, 0.14),
        0.28,
        "anterior(+)/posterior(-) offset of the tumour centre (fraction of semi-axis)",
    ),
    "loc_si": (
        (0.14, 0.10, 0.04),
        0.25,
        "superior(+)/inferior(-) offset of the tumour centre (fraction of semi-axis)",
    ),
}

# Survival model: Weibull PH, h(t) = lam * k * t^(k-1) * exp(lp).
SURVIVAL_COEF: dict[str, float] = {
    "idh_wt": 0.90,
    "codel": -0.60,
    "mgmt_methylated": -0.40,
    "age_z": 0.35,
    "log_core_volume_z": 0.30,
    "necrosis_z": 0.25,
    "irregularity_z": 0.30,
    "texture_grain_z": 0.25,
}
WEIBULL_SHAPE = 1.3
MEDIAN_SURVIVAL_MONTHS = 36.0  # at the population-mean linear predictor
ADMIN_CENSOR_MONTHS: tuple[float, float] = (60.0, 120.0)  # staggered entry, uniform
LOSS_TO_FOLLOW_UP_MEAN_MONTHS = 400.0  # exponential drop-out

# Tissue codes of the internal label map.
_BG, _CSF, _GM, _WM, _OED, _ENH, _NEC = range(7)

# Base intensities (arbitrary MR units, before bias/noise/gain) per sequence & tissue.
# Columns: bg, CSF, GM, WM, oedema, enhancing, necrosis.
TISSUE_INTENSITY: dict[str, tuple[float, ...]] = {
    "t1": (0.0, 420.0, 900.0, 1250.0, 780.0, 850.0, 560.0),
    "t1c": (0.0, 460.0, 950.0, 1300.0, 830.0, 1250.0, 520.0),
    "t2": (0.0, 2600.0, 1350.0, 900.0, 2000.0, 1650.0, 2250.0),
    "flair": (0.0, 260.0, 1100.0, 900.0, 1750.0, 1450.0, 1150.0),
}
ENHANCEMENT_T1C_GAIN = 1400.0  # T1c rim intensity += enhancement * this
BRAIN_SEMI_AXES_FRACTION: tuple[float, float, float] = (0.34, 0.39, 0.31)  # of FOV (x, y, z)
MARGIN_CORRELATION_MM = 9.0
NOISE_SIGMA_SITE: dict[str, float] = {"site_A": 18.0, "site_B": 38.0}
PSF_SIGMA_SITE: dict[str, float] = {"site_A": 0.45, "site_B": 0.65}  # voxels
GAIN_LOG_SD = 0.30
TEXTURE_AMPLITUDE: tuple[float, float] = (0.14, 0.30)  # lognormal median, log-SD

_FloatArray = npt.NDArray[np.float64]
_F32 = npt.NDArray[np.float32]
_BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class SyntheticCohort:
    """A generated synthetic cohort.

    Attributes
    ----------
    root : Path
        Output folder.
    manifest_path : Path
        ``root / "manifest.csv"`` (columns ``case_id,t1,t1c,t2,flair,mask,site``).
    clinical_path : Path
        ``root / "clinical.csv"``.
    truth : pandas.DataFrame
        Oracle table indexed by ``case_id``: true risk score (``risk_score``, the
        linear predictor), subtype, oracle posteriors ``p_idh_wt``, ``p_codel``
        and ``p_<subtype>``, and every latent and nuisance parameter.
    oracle_cindex : float
        Harrell's C of ``risk_score`` against the observed ``(os_months, death)``.
    oracle_auc_idh : float
        ROC AUC of ``p_idh_wt`` for IDH-wildtype vs IDH-mutant.
    oracle_auc_codel : float
        ROC AUC of ``p_codel`` for 1p/19q codeletion vs no codeletion.
    """

    root: Path
    manifest_path: Path
    clinical_path: Path
    truth: pd.DataFrame
    oracle_cindex: float
    oracle_auc_idh: float
    oracle_auc_codel: float


# --------------------------------------------------------------------------------------
# Latent model
# --------------------------------------------------------------------------------------


def _mixture_moments(means: tuple[float, float, float], sd: float) -> tuple[float, float]:
    """Mean and SD of a Gaussian mixture with the subtype prior as weights."""
    w = np.asarray(SUBTYPE_PRIOR)
    mu = np.asarray(means)
    m = float(np.sum(w * mu))
    var = float(np.sum(w * (sd**2 + mu**2)) - m**2)
    return m, float(np.sqrt(var))


_Z_STATS: dict[str, tuple[float, float]] = {
    "age": _mixture_moments(AGE_MEAN, AGE_SD),
    "log_core_radius_mm": _mixture_moments(*PHENOTYPE["log_core_radius_mm"][:2]),
    "logit_necrosis": _mixture_moments(*PHENOTYPE["logit_necrosis"][:2]),
    "log_irregularity": _mixture_moments(*PHENOTYPE["log_irregularity"][:2]),
    "log_texture_grain_vox": _mixture_moments(*PHENOTYPE["log_texture_grain_vox"][:2]),
}


def _z(name: str, value: float) -> float:
    m, s = _Z_STATS[name]
    return (value - m) / s


def _linear_predictor(p: dict[str, Any]) -> float:
    """True risk score (Weibull PH linear predictor) of one case."""
    x = {
        "idh_wt": float(p["subtype"] == "IDHwt"),
        "codel": float(p["subtype"] == "IDHmut-codel"),
        "mgmt_methylated": float(p["mgmt_methylated"]),
        "age_z": _z("age", p["age_exact"]),
        # log volume = 3 log radius + const, so its z-score equals that of log radius.
        "log_core_volume_z": _z("log_core_radius_mm", p["log_core_radius_mm"]),
        "necrosis_z": _z("logit_necrosis", p["logit_necrosis"]),
        "irregularity_z": _z("log_irregularity", p["log_irregularity"]),
        "texture_grain_z": _z("log_texture_grain_vox", p["log_texture_grain_vox"]),
    }
    return float(sum(SURVIVAL_COEF[k] * v for k, v in x.items()))


def _mean_linear_predictor() -> float:
    w = np.asarray(SUBTYPE_PRIOR)
    meth = float(np.sum(w * np.asarray(P_MGMT_METHYLATED)))
    return float(SURVIVAL_COEF["idh_wt"] * w[2] + SURVIVAL_COEF["codel"] * w[0]) + float(
        SURVIVAL_COEF["mgmt_methylated"] * meth
    )


WEIBULL_SCALE = float(
    np.log(2.0) / (MEDIAN_SURVIVAL_MONTHS**WEIBULL_SHAPE * np.exp(_mean_linear_predictor()))
)
"""Baseline Weibull rate ``lam``: median survival 36 months at the mean linear predictor."""


def _log_age_density(age: float, k: int) -> float:
    """Log density of the clipped-Gaussian age (point masses at the clip bounds)."""
    mu = AGE_MEAN[k]
    lo, hi = AGE_CLIP
    if age <= lo:
        return float(log_ndtr((lo - mu) / AGE_SD))
    if age >= hi:
        return float(log_ndtr((mu - hi) / AGE_SD))
    zz = (age - mu) / AGE_SD
    return float(-0.5 * zz * zz - np.log(AGE_SD * np.sqrt(2.0 * np.pi)))


def _oracle_posterior(p: dict[str, Any]) -> _FloatArray:
    """Exact Bayes posterior P(subtype | phenotype parameters, age)."""
    logp = np.log(np.asarray(SUBTYPE_PRIOR, dtype=np.float64))
    for k in range(3):
        logp[k] += _log_age_density(float(p["age_exact"]), k)
        for name, (means, sd, _) in PHENOTYPE.items():
            zz = (float(p[name]) - means[k]) / sd
            logp[k] += -0.5 * zz * zz  # shared SD: normalising constants cancel
    logp -= logp.max()
    post = np.exp(logp)
    return np.asarray(post / post.sum(), dtype=np.float64)


def _draw_latent(rng: np.random.Generator) -> dict[str, Any]:
    """Draw the clinical, latent phenotype, nuisance and survival values of one case."""
    k = int(rng.choice(3, p=SUBTYPE_PRIOR))
    p: dict[str, Any] = {"subtype": SUBTYPES[k]}
    p["mgmt_methylated"] = bool(rng.random() < P_MGMT_METHYLATED[k])
    p["age_exact"] = float(np.clip(rng.normal(AGE_MEAN[k], AGE_SD), *AGE_CLIP))
    p["sex"] = "female" if rng.random() < 0.5 else "male"
    p["site"] = "site_A" if rng.random() < 0.5 else "site_B"
    for name, (means, sd, _) in PHENOTYPE.items():
        p[name] = float(rng.normal(means[k], sd))
    # Nuisance parameters: no subtype or survival signal.
    p["side"] = 1 if rng.random() < 0.5 else -1
    p["texture_amplitude"] = float(
        TEXTURE_AMPLITUDE[0] * np.exp(rng.normal(0.0, TEXTURE_AMPLITUDE[1]))
    )
    p["brain_scale"] = float(np.exp(rng.normal(0.0, 0.04)))
    p["noise_sigma"] = float(NOISE_SIGMA_SITE[p["site"]] * np.exp(rng.normal(0.0, 0.15)))
    p["psf_sigma_vox"] = float(PSF_SIGMA_SITE[p["site"]] * np.exp(rng.normal(0.0, 0.1)))
    for s in SEQUENCES:
        p[f"gain_{s}"] = float(np.exp(rng.normal(0.0, GAIN_LOG_SD)))
    # Survival.
    lp = _linear_predictor(p)
    u = rng.random()
    event_time = float((-np.log1p(-u) / (WEIBULL_SCALE * np.exp(lp))) ** (1.0 / WEIBULL_SHAPE))
    admin = float(rng.uniform(*ADMIN_CENSOR_MONTHS))
    dropout = float(rng.exponential(LOSS_TO_FOLLOW_UP_MEAN_MONTHS))
    censor_time = min(admin, dropout)
    p["risk_score"] = lp
    p["event_time_months"] = event_time
    p["censor_time_months"] = censor_time
    p["os_months"] = round(min(event_time, censor_time), 3)
    p["death"] = int(event_time <= censor_time)
    post = _oracle_posterior(p)
    for j, st in enumerate(SUBTYPES):
        p[f"p_{st}"] = float(post[j])
    p["p_idh_wt"] = float(post[2])
    p["p_codel"] = float(post[0])
    return p


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def _unit_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> _F32:
    """Smooth Gaussian random field with zero mean and unit SD."""
    w = rng.standard_normal(shape, dtype=np.float32)
    f = ndimage.gaussian_filter(w, sigma=sigma, mode="wrap", truncate=3.0)
    f -= f.mean()
    sd = float(f.std())
    return np.asarray(f / (sd if sd > 0 else 1.0), dtype=np.float32)


def _coords(
    shape: tuple[int, int, int], spacing: tuple[float, float, float]
) -> tuple[_F32, _F32, _F32]:
    """Physical coordinates (mm) of voxel centres as broadcastable (z, y, x) arrays."""
    nx, ny, nz = shape
    sx, sy, sz = spacing
    x = ((np.arange(nx) - (nx - 1) / 2.0) * sx).astype(np.float32)[None, None, :]
    y = ((np.arange(ny) - (ny - 1) / 2.0) * sy).astype(np.float32)[None, :, None]
    z = ((np.arange(nz) - (nz - 1) / 2.0) * sz).astype(np.float32)[:, None, None]
    return x, y, z


def _smooth_deformation(
    rng: np.random.Generator, u: _F32, v: _F32, w: _F32, amplitude: float, n_terms: int = 5
) -> _F32:
    """Cheap smooth low-frequency perturbation: a sum of random plane waves."""
    out = np.zeros(np.broadcast_shapes(u.shape, v.shape, w.shape), dtype=np.float32)
    for _ in range(n_terms):
        kvec = rng.normal(0.0, 2.0, size=3)
        phase = rng.uniform(0.0, 2.0 * np.pi)
        out += np.cos(kvec[0] * u + kvec[1] * v + kvec[2] * w + phase).astype(np.float32)
    return np.asarray(out * (amplitude / np.sqrt(n_terms / 2.0)), dtype=np.float32)


def _render_case(
    p: dict[str, Any],
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
) -> dict[str, Any]:
    """Render the four sequences and the BraTS mask of one case.

    Returns a dict with ``images`` (sequence -> int16 array ``[z, y, x]``), ``mask``
    (uint8), ``brain`` (bool) and ``info`` (realised geometry values).
    """
    arr_shape = (shape[2], shape[1], shape[0])
    x, y, z = _coords(shape, spacing)
    fov = np.asarray(shape, dtype=np.float64) * np.asarray(spacing, dtype=np.float64)
    semi = np.asarray(BRAIN_SEMI_AXES_FRACTION) * fov * p["brain_scale"]
    max_sp = float(max(spacing))

    # ---- brain: deformed ellipsoid, GM shell, WM, ventricles --------------------------
    u, v, w = x / semi[0], y / semi[1], z / semi[2]
    rho = np.sqrt(u * u + v * v + w * w)
    rho = rho * (1.0 + _smooth_deformation(rng, u, v, w, 0.035))
    brain = rho < 1.0
    gm_depth = min(0.16, max(0.09, 1.6 * max_sp / float(semi.min())))
    cortex_wobble = _smooth_deformation(rng, 3 * u, 3 * v, 3 * w, 0.03)
    labels = np.zeros(arr_shape, dtype=np.uint8)
    labels[brain] = _WM
    labels[brain & (rho + cortex_wobble > 1.0 - gm_depth)] = _GM
    # lateral ventricles: two elongated ellipsoids either side of the midline
    for sgn in (-1.0, 1.0):
        vu = (u - sgn * 0.10) / 0.075
        vv = (v - 0.02) / 0.36
        vw = (w - 0.12) / 0.14
        labels[brain & (vu * vu + vv * vv + vw * vw < 1.0)] = _CSF
    # third ventricle / deep CSF
    labels[brain & ((u / 0.03) ** 2 + ((v + 0.05) / 0.15) ** 2 + ((w + 0.02) / 0.12) ** 2 < 1)] = (
        _CSF
    )

    # ---- tumour geometry -----------------------------------------------------------------
    a = float(np.exp(p["log_irregularity"]))
    r_core = max(float(np.exp(p["log_core_radius_mm"])), 2.5 * max_sp)
    r_nec = float(expit(p["logit_necrosis"])) * r_core
    r_nec = float(np.clip(r_nec, 1.0 * max_sp, max(1.0 * max_sp, r_core - 1.5 * max_sp)))
    r_wt = max(r_core * (1.0 + float(np.exp(p["log_oedema_extent"]))), r_core + 1.5 * max_sp)
    c_norm = np.array([p["side"] * p["loc_lateral"], p["loc_ap"], p["loc_si"]], dtype=np.float64)
    # keep the core (with its perturbation) well inside the brain
    limit = max(0.0, 0.80 - r_core * (1.0 + 2.5 * a) / float(semi.min()))
    norm = float(np.linalg.norm(c_norm))
    if norm > limit:
        c_norm = c_norm * (limit / norm)
    centre = c_norm * semi
    dist = np.sqrt((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2)
    margin_sigma = max(1.0, MARGIN_CORRELATION_MM / max_sp)
    n_core = _unit_field(rng, arr_shape, margin_sigma)
    n_oed = _unit_field(rng, arr_shape, margin_sigma)
    inner = ndimage.binary_erosion(brain, iterations=1)
    # same field for core and necrosis => necrosis is nested inside the core
    core = (dist / r_core + a * n_core < 1.0) & inner
    nec = (dist / r_nec + a * n_core < 1.0) & inner
    whole = ((dist / r_wt + 1.5 * a * n_oed < 1.0) & inner) | core
    fallback = False
    if not nec.any():
        idx = np.unravel_index(int(np.argmin(np.where(core, dist, np.inf))), arr_shape)
        nec[idx] = True
        fallback = True
    if not (core & ~nec).any():
        core = ndimage.binary_dilation(nec, iterations=1) & inner
        fallback = True
    if not (whole & ~core).any():
        whole = ndimage.binary_dilation(core, iterations=1) & inner
        fallback = True
    whole |= core
    labels[whole] = _OED
    labels[core] = _ENH
    labels[nec] = _NEC
    mask = np.zeros(arr_shape, dtype=np.uint8)
    mask[whole] = 2
    mask[core] = 4
    mask[nec] = 1

    # ---- texture -----------------------------------------------------------------------------
    grain = float(np.clip(np.exp(p["log_texture_grain_vox"]), 0.35, 5.0))
    g = ndimage.gaussian_filter(
        rng.standard_normal(arr_shape, dtype=np.float32), sigma=grain, mode="wrap", truncate=3.0
    )
    gv = g[whole]
    g = (g - gv.mean()) / max(float(gv.std()), 1e-6)  # unit SD inside the tumour
    amp = p["texture_amplitude"]
    tumour_tex = np.ones(arr_shape, dtype=np.float32)
    tumour_tex[core] = np.clip(1.0 + amp * g[core], 0.3, None)
    tumour_tex[whole & ~core] = np.clip(1.0 + 0.6 * amp * g[whole & ~core], 0.3, None)
    brain_tex = 1.0 + 0.03 * _unit_field(rng, arr_shape, 1.2)
    tex = np.where(whole, tumour_tex, brain_tex).astype(np.float32)

    # ---- per-sequence intensity synthesis -------------------------------------------------
    enh = float(np.exp(p["log_enhancement"]))
    bu, bv, bw = x / (fov[0] / 2), y / (fov[1] / 2), z / (fov[2] / 2)
    images: dict[str, npt.NDArray[np.int16]] = {}
    for s in SEQUENCES:
        lut = np.asarray(TISSUE_INTENSITY[s], dtype=np.float32).copy()
        if s == "t1c":
            lut[_ENH] += enh * ENHANCEMENT_T1C_GAIN
        img = lut[labels] * tex
        img = ndimage.gaussian_filter(img, sigma=p["psf_sigma_vox"], truncate=3.0)
        co = rng.normal(0.0, 0.12, size=6)
        bias = np.exp(
            co[0] * bu
            + co[1] * bv
            + co[2] * bw
            + co[3] * bu * bv
            + co[4] * bv * bw
            + co[5] * bu * bw
        ).astype(np.float32)
        img = img * bias
        sig = np.float32(p["noise_sigma"])
        n1 = rng.standard_normal(arr_shape, dtype=np.float32) * sig
        n2 = rng.standard_normal(arr_shape, dtype=np.float32) * sig
        img = np.sqrt((img + n1) ** 2 + n2 * n2) * np.float32(p[f"gain_{s}"])
        images[s] = np.clip(np.rint(img), 0, 32767).astype(np.int16)

    info = {
        "core_radius_mm": r_core,
        "necrosis_radius_mm": r_nec,
        "whole_tumour_radius_mm": r_wt,
        "irregularity": a,
        "texture_grain_vox": grain,
        "enhancement": enh,
        "centre_x_mm": float(centre[0]),
        "centre_y_mm": float(centre[1]),
        "centre_z_mm": float(centre[2]),
        "n_vox_necrosis": int(nec.sum()),
        "n_vox_enhancing": int((core & ~nec).sum()),
        "n_vox_oedema": int((whole & ~core).sum()),
        "label_fallback": fallback,
        "tumour_inside_brain": bool(not (whole & ~brain).any()),
    }
    return {"images": images, "mask": mask, "brain": brain, "info": info}


# --------------------------------------------------------------------------------------
# I/O helpers
# --------------------------------------------------------------------------------------


def _write_image(arr: npt.NDArray[Any], path: Path, spacing: tuple[float, float, float]) -> None:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(tuple(float(s) for s in spacing))
    size = img.GetSize()
    img.SetOrigin(tuple(-(n - 1) / 2.0 * s for n, s in zip(size, spacing, strict=True)))
    img.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    sitk.WriteImage(img, str(path), useCompression=True)
    # ITK's zlib writer stores mtime 0 in the gzip header (deterministic).  Should a
    # build ever stamp a time, re-compress with Python's gzip and mtime=0.
    with open(path, "rb") as fh:
        header = fh.read(10)
    if header[:2] == b"\x1f\x8b" and header[4:8] == b"\x00\x00\x00\x00":
        return
    tmp = path.with_name(path.name[: -len(".gz")])  # pragma: no cover
    sitk.WriteImage(img, str(tmp), useCompression=False)  # pragma: no cover
    with open(tmp, "rb") as src, open(path, "wb") as raw:  # pragma: no cover
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            shutil.copyfileobj(src, gz)
    tmp.unlink()  # pragma: no cover


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _validate(
    out: str | os.PathLike[str],
    n_cases: int,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    overwrite: bool,
) -> tuple[Path, tuple[int, int, int], tuple[float, float, float]]:
    if isinstance(n_cases, bool) or not isinstance(n_cases, (int, np.integer)):
        raise ValueError(f"n_cases must be an integer, got {n_cases!r}")
    if n_cases < 2:
        raise ValueError(f"n_cases must be >= 2, got {n_cases}")
    if len(tuple(shape)) != 3:
        raise ValueError(f"shape must have 3 dimensions (x, y, z), got {shape!r}")
    shp = tuple(int(d) for d in shape)
    for d in shp:
        if not 32 <= d <= 160:
            raise ValueError(f"each shape dimension must be in [32, 160], got shape={shape!r}")
    if len(tuple(spacing)) != 3:
        raise ValueError(f"spacing must have 3 values (x, y, z), got {spacing!r}")
    sp = tuple(float(s) for s in spacing)
    for s in sp:
        if not (np.isfinite(s) and s > 0):
            raise ValueError(f"spacing values must be positive and finite, got {spacing!r}")
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ValueError(f"output path {root} exists and is not a directory")
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        raise FileExistsError(
            f"output folder {root} already exists and is not empty; "
            "pass overwrite=True (or --overwrite on the command line) to replace it"
        )
    return root, (shp[0], shp[1], shp[2]), (sp[0], sp[1], sp[2])


def _clear_previous(root: Path) -> None:
    """Remove files a previous run of this generator wrote (only those)."""
    images = root / "images"
    if images.is_dir():
        for d in images.iterdir():
            if d.is_dir() and d.name.startswith("syn_"):
                shutil.rmtree(d)
    for name in ("manifest.csv", "clinical.csv", "truth.csv", "cohort.json"):
        f = root / name
        if f.is_file():
            f.unlink()


def _to_csv(df: pd.DataFrame, path: Path, index: bool = False) -> None:
    df.to_csv(path, index=index, lineterminator="\n")


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def make_synthetic_cohort(
    out: str | os.PathLike[str],
    n_cases: int = 40,
    seed: int = 0,
    *,
    shape: tuple[int, int, int] = (64, 64, 64),
    spacing: tuple[float, float, float] = (3.0, 3.0, 3.0),
    overwrite: bool = False,
) -> SyntheticCohort:
    """Generate a deterministic synthetic glioma MRI cohort with known ground truth.

    Parameters
    ----------
    out : str or os.PathLike
        Output folder; created if missing.  Must be empty unless ``overwrite``.
    n_cases : int, default 40
        Number of patients (>= 2).  Case ids are ``syn_0000``, ``syn_0001``, ...
    seed : int, default 0
        Random seed.  The same seed (and arguments) gives byte-identical files.
    shape : tuple of int, default (64, 64, 64)
        Volume size in voxels, SimpleITK ``(x, y, z)`` order; each in [32, 160].
    spacing : tuple of float, default (3.0, 3.0, 3.0)
        Voxel spacing in mm, ``(x, y, z)`` order; positive.
    overwrite : bool, default False
        Allow writing into a non-empty folder (files of a previous run are replaced).

    Returns
    -------
    SyntheticCohort
        Paths, the oracle truth table and the oracle performance figures.

    Raises
    ------
    ValueError
        On invalid ``n_cases``, ``shape`` or ``spacing``.
    FileExistsError
        If ``out`` exists, is not empty and ``overwrite`` is False.

    Notes
    -----
    Writes ``images/<case_id>/{t1,t1c,t2,flair,mask}.nii.gz``, ``manifest.csv``,
    ``clinical.csv``, ``truth.csv`` (the oracle; never a model input) and
    ``cohort.json`` (generator, version, arguments, model coefficients and the
    sha256 of every written file).
    """
    from sklearn.metrics import roc_auc_score
    from sksurv.metrics import concordance_index_censored

    from hybridrad import __version__

    root, shp, sp = _validate(out, n_cases, shape, spacing, overwrite)
    root.mkdir(parents=True, exist_ok=True)
    if overwrite:
        _clear_previous(root)
    (root / "images").mkdir(exist_ok=True)

    case_seeds = np.random.SeedSequence(int(seed)).spawn(int(n_cases))
    manifest_rows: list[dict[str, Any]] = []
    clinical_rows: list[dict[str, Any]] = []
    truth_rows: list[dict[str, Any]] = []
    for i, ss in enumerate(case_seeds):
        case_id = f"syn_{i:04d}"
        latent_ss, image_ss = ss.spawn(2)
        p = _draw_latent(np.random.default_rng(latent_ss))
        r = _render_case(p, np.random.default_rng(image_ss), shp, sp)
        case_dir = root / "images" / case_id
        case_dir.mkdir(exist_ok=True)
        rel: dict[str, str] = {}
        for s in SEQUENCES:
            _write_image(r["images"][s], case_dir / f"{s}.nii.gz", sp)
            rel[s] = f"images/{case_id}/{s}.nii.gz"
        _write_image(r["mask"], case_dir / "mask.nii.gz", sp)
        rel["mask"] = f"images/{case_id}/mask.nii.gz"
        manifest_rows.append({"case_id": case_id, **rel, "site": p["site"]})
        subtype = p["subtype"]
        clinical_rows.append(
            {
                "case_id": case_id,
                "age": float(round(p["age_exact"])),
                "sex": p["sex"],
                "os_months": p["os_months"],
                "death": int(p["death"]),
                "idh": "WT" if subtype == "IDHwt" else "Mutant",
                "codeletion_1p19q": "codel" if subtype == "IDHmut-codel" else "non-codel",
                "subtype": subtype,
                "mgmt_promoter": "Methylated" if p["mgmt_methylated"] else "Unmethylated",
            }
        )
        truth_rows.append(
            {
                "case_id": case_id,
                "risk_score": p["risk_score"],
                "subtype": subtype,
                "idh_wt": int(subtype == "IDHwt"),
                "codel": int(subtype == "IDHmut-codel"),
                "p_idh_wt": p["p_idh_wt"],
                "p_codel": p["p_codel"],
                **{f"p_{st}": p[f"p_{st}"] for st in SUBTYPES},
                "age_exact": p["age_exact"],
                "mgmt_methylated": int(p["mgmt_methylated"]),
                "site": p["site"],
                **{name: p[name] for name in PHENOTYPE},
                "side": p["side"],
                "texture_amplitude": p["texture_amplitude"],
                "brain_scale": p["brain_scale"],
                "noise_sigma": p["noise_sigma"],
                "psf_sigma_vox": p["psf_sigma_vox"],
                **{f"gain_{s}": p[f"gain_{s}"] for s in SEQUENCES},
                "event_time_months": p["event_time_months"],
                "censor_time_months": p["censor_time_months"],
                "os_months": p["os_months"],
                "death": p["death"],
                **r["info"],
            }
        )

    manifest = pd.DataFrame(manifest_rows, columns=["case_id", *SEQUENCES, "mask", "site"])
    clinical = pd.DataFrame(clinical_rows)
    truth = pd.DataFrame(truth_rows).set_index("case_id")
    manifest_path = root / "manifest.csv"
    clinical_path = root / "clinical.csv"
    _to_csv(manifest, manifest_path)
    _to_csv(clinical, clinical_path)
    truth_path = root / "truth.csv"
    _to_csv(truth, truth_path, index=True)

    cindex = float(
        concordance_index_censored(
            clinical["death"].to_numpy(dtype=bool),
            clinical["os_months"].to_numpy(dtype=float),
            truth["risk_score"].to_numpy(dtype=float),
        )[0]
    )
    auc_idh = _safe_auc(roc_auc_score, truth["idh_wt"], truth["p_idh_wt"])
    auc_codel = _safe_auc(roc_auc_score, truth["codel"], truth["p_codel"])

    written = sorted(
        [*(root / "images").glob("syn_*/*.nii.gz"), manifest_path, clinical_path, truth_path]
    )
    meta = {
        "generator": GENERATOR_NAME,
        "hybridrad_version": __version__,
        "seed": int(seed),
        "n_cases": int(n_cases),
        "shape": list(shp),
        "spacing": list(sp),
        "axis_order": "x,y,z (SimpleITK); numpy arrays are [z, y, x]",
        "model": _model_description(),
        "oracle": {
            "cindex": cindex,
            "auc_idh": auc_idh,
            "auc_codel": auc_codel,
            "censored_fraction": float(1.0 - clinical["death"].mean()),
        },
        "files": {f.relative_to(root).as_posix(): _sha256(f) for f in written},
    }
    with open(root / "cohort.json", "w", encoding="utf-8", newline="\n") as fh:
        json.dump(meta, fh, indent=2, sort_keys=True)
        fh.write("\n")

    return SyntheticCohort(
        root=root,
        manifest_path=manifest_path,
        clinical_path=clinical_path,
        truth=truth,
        oracle_cindex=cindex,
        oracle_auc_idh=auc_idh,
        oracle_auc_codel=auc_codel,
    )


def _safe_auc(fn: Any, y: pd.Series, score: pd.Series) -> float:
    """ROC AUC, or NaN when only one class is present."""
    if y.nunique() < 2:
        return float("nan")
    return float(fn(y.to_numpy(), score.to_numpy()))


def _model_description() -> dict[str, Any]:
    return {
        "subtypes": list(SUBTYPES),
        "subtype_prior": list(SUBTYPE_PRIOR),
        "p_mgmt_methylated": list(P_MGMT_METHYLATED),
        "age": {"mean": list(AGE_MEAN), "sd": AGE_SD, "clip": list(AGE_CLIP)},
        "phenotype": {
            name: {"means": list(means), "sd": sd, "description": desc}
            for name, (means, sd, desc) in PHENOTYPE.items()
        },
        "z_score_constants": {k: list(v) for k, v in _Z_STATS.items()},
        "survival": {
            "model": "Weibull proportional hazards h(t) = lam * k * t**(k-1) * exp(lp)",
            "coefficients": dict(SURVIVAL_COEF),
            "weibull_shape_k": WEIBULL_SHAPE,
            "weibull_scale_lam": WEIBULL_SCALE,
            "median_months_at_mean_lp": MEDIAN_SURVIVAL_MONTHS,
            "admin_censor_months_uniform": list(ADMIN_CENSOR_MONTHS),
            "loss_to_follow_up_mean_months": LOSS_TO_FOLLOW_UP_MEAN_MONTHS,
        },
        "imaging": {
            "tissue_intensity": {k: list(v) for k, v in TISSUE_INTENSITY.items()},
            "tissue_columns": ["bg", "csf", "gm", "wm", "oedema", "enhancing", "necrosis"],
            "enhancement_t1c_gain": ENHANCEMENT_T1C_GAIN,
            "brain_semi_axes_fraction_of_fov": list(BRAIN_SEMI_AXES_FRACTION),
            "margin_correlation_mm": MARGIN_CORRELATION_MM,
            "noise_sigma_site": dict(NOISE_SIGMA_SITE),
            "psf_sigma_site_vox": dict(PSF_SIGMA_SITE),
            "gain_log_sd": GAIN_LOG_SD,
            "texture_amplitude_median_logsd": list(TEXTURE_AMPLITUDE),
            "mask_labels": {
                "0": "background",
                "1": "necrotic core",
                "2": "oedema",
                "4": "enhancing",
            },
        },
    }


def load_synthetic_truth(root: str | os.PathLike[str]) -> pd.DataFrame:
    """Read the oracle table ``root / "truth.csv"`` written by :func:`make_synthetic_cohort`.

    Parameters
    ----------
    root : str or os.PathLike
        Cohort folder.

    Returns
    -------
    pandas.DataFrame
        Truth table indexed by ``case_id``.

    Raises
    ------
    FileNotFoundError
        If ``truth.csv`` is missing.
    """
    path = Path(root) / "truth.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no synthetic truth table at {path}")
    return pd.read_csv(path, index_col="case_id")
