"""Numerically careful special-function helpers shared by the models (log space throughout)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from patronage.analytics.clv.data import FloatArray

_LN2 = float(np.log(2.0))
# Truncation tolerance of the series below (relative to the sum): about one unit in the last place.
_SERIES_TOL = 2.0**-56
_BLOCK = 64  # series terms summed per vectorised step


def log1mexp(x: FloatArray) -> FloatArray:
    """``log(1 - exp(x))`` for ``x <= 0`` without cancellation (Maechler 2012); ``-inf`` at ``x == 0``."""
    x = np.minimum(x, 0.0)
    with np.errstate(divide="ignore"):
        near = np.log(-np.expm1(np.maximum(x, -_LN2)))
        far = np.log1p(-np.exp(np.minimum(x, -_LN2)))
    return np.where(x > -_LN2, near, far)


def one_minus_exp_over(k: FloatArray | float, g: FloatArray) -> FloatArray:
    """``(1 - exp(-k g)) / k`` for ``g >= 0``, continuous through ``k == 0`` (where it equals ``g``)."""
    kg = np.asarray(k, dtype=np.float64) * g
    small = np.abs(kg) < 1e-8
    safe_k = np.where(small, 1.0, k)
    general = -np.expm1(-kg) / safe_k
    series = g * (1.0 - kg / 2.0 + kg * kg / 6.0)
    return np.where(small, series, general)


def hyp2f1(a: FloatArray | float, b: FloatArray | float, c: FloatArray | float, z: FloatArray) -> FloatArray:
    """Gauss hypergeometric function (scipy), as a float64 array; used by predictions, never by a fit."""
    return np.asarray(special.hyp2f1(a, b, c, z), dtype=np.float64)


@dataclass(frozen=True)
class LogHyp1:
    """``log F`` and its partial derivatives, for ``F = 2F1(1, b; c; z)`` (one row per element)."""

    value: FloatArray
    d_b: FloatArray
    d_c: FloatArray
    d_z: FloatArray


def log_hyp2f1_1bc(b: FloatArray, c: FloatArray, z: FloatArray, *, max_terms: int = 20_000) -> LogHyp1:
    """``log 2F1(1, b; c; z)`` and its exact derivatives in b, c and z, for ``0 < b < c`` and ``0 <= z < 1``.

    The Gauss series ``F = sum_n u_n`` has ``u_0 = 1`` and ``u_{n+1} = u_n (b + n) z / (c + n)``: every term
    is positive and ``u_{n+1} / u_n < z``, so the sum is computed without cancellation and the truncation
    error after ``n`` terms is below ``u_n z / (1 - z)``. The parameter derivatives are series too:
    ``du_n/db = u_n sum_{k<n} 1/(b+k)``, ``du_n/dc = -u_n sum_{k<n} 1/(c+k)``, ``du_n/dz = n u_n / z``;
    they are accumulated alongside the value, so the gradient is the exact derivative of the value
    returned. Rows leave the loop once their tail is below one ulp. ``z`` close to 1 converges slowly
    (about ``log(eps) / log(z)`` terms) and is cut at ``max_terms``; in the Pareto/NBD that needs
    ``min(alpha, beta) + t`` to be tiny next to ``max(alpha, beta)``, far from any sensible optimum.
    """
    b = np.asarray(b, dtype=np.float64).ravel()
    c = np.asarray(c, dtype=np.float64).ravel()
    z = np.asarray(z, dtype=np.float64).ravel()
    m = b.size
    out_s, out_b, out_c, out_z = np.ones(m), np.zeros(m), np.zeros(m), np.zeros(m)
    rows = np.arange(m)
    bb, cc, zz = b[:, None], c[:, None], z[:, None]
    u = np.ones(m)  # u_n at the start of the block
    hb, hc = np.zeros(m), np.zeros(m)  # sum_{k<n} 1/(b+k), sum_{k<n} 1/(c+k)
    s, sb, sc, sz = np.ones(m), np.zeros(m), np.zeros(m), np.zeros(m)
    one_minus_z = 1.0 - z
    offsets = np.arange(_BLOCK, dtype=np.float64)[None, :]
    for n0 in range(0, max_terms, _BLOCK):
        # Terms n0 + 1 ... n0 + BLOCK at once: u_{n+1} = u_n rho_n z with rho_n = (b + n) / (c + n).
        inv_b = 1.0 / (bb + n0 + offsets)
        inv_c = 1.0 / (cc + n0 + offsets)
        rho = (bb + n0 + offsets) * inv_c
        with np.errstate(under="ignore"):
            growth = np.cumprod(rho * zz, axis=1)
            u_next = u[:, None] * growth  # u_{n+1}
            u_prev = np.concatenate([u[:, None], u_next[:, :-1]], axis=1)  # u_n
            hb_next = hb[:, None] + np.cumsum(inv_b, axis=1)
            hc_next = hc[:, None] + np.cumsum(inv_c, axis=1)
            s += u_next.sum(axis=1)
            sb += (u_next * hb_next).sum(axis=1)
            sc += (u_next * hc_next).sum(axis=1)
            sz += ((n0 + 1.0 + offsets) * u_prev * rho).sum(axis=1)  # d u_{n+1} / dz = (n+1) u_n rho_n
        u, hb, hc = u_next[:, -1], hb_next[:, -1], hc_next[:, -1]
        done = u * (n0 + _BLOCK + 1.0 + hb + hc) <= _SERIES_TOL * s * one_minus_z
        if n0 + _BLOCK >= max_terms:
            done[:] = True
        if done.any():
            idx = rows[done]
            out_s[idx], out_b[idx], out_c[idx], out_z[idx] = s[done], sb[done], sc[done], sz[done]
            keep = ~done
            rows, bb, cc, zz, u = rows[keep], bb[keep], cc[keep], zz[keep], u[keep]
            hb, hc, one_minus_z = hb[keep], hc[keep], one_minus_z[keep]
            s, sb, sc, sz = s[keep], sb[keep], sc[keep], sz[keep]
            if rows.size == 0:
                break
    return LogHyp1(np.log(out_s), out_b / out_s, -out_c / out_s, out_z / out_s)
