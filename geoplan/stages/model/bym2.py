"""BYM2 Poisson small-area model of HzE cases (NumPyro on JAX, CPU).

Model (Riebler, Sørbye, Simpson & Rue 2016, *Statistical Methods in Medical
Research* 25, 1145–1165)::

    y_i ~ Poisson(e_i · exp(η_i))
    η_i = β0 + Σ_j β_j z_ij + σ · (√(1 − ρ) · θ_i + √ρ · φ*_i)

``y_i`` cases, ``e_i`` the exposure (persons under 21, or expected cases),
``z_ij`` the predictors (standardised to mean 0 / SD 1 by default, as in the
GLM), ``θ ~ N(0, I)`` the unstructured effect and ``φ*`` the *scaled* ICAR
(intrinsic conditional autoregression, Besag, York & Mollié 1991) on the
adjacency of the areas: ``φ*_i = φ_i / √s_c`` with ``s_c`` the geometric mean
of the marginal variances of the sum-to-zero-constrained ICAR on the connected
component ``c`` of area ``i`` (Sørbye & Rue 2014). ``σ`` is the standard
deviation of the total area effect and ``ρ`` the share of its variance that
is spatially structured.

Disconnected graphs follow Freni-Sterlich, Sørbye & Riebler (2018, *Stat* 7,
e180): every connected component is scaled on its own and gets its own
sum-to-zero constraint; an island (an area without neighbours) gets an iid
N(0, 1) effect in place of the ICAR one, so its total effect is N(0, σ²) like
that of every other area.

Priors (configurable, see :class:`BYM2Model`): penalised complexity (PC)
priors by default (Simpson et al. 2017, *Statistical Science* 32, 1–28) —
``P(σ > 1) = 0.01`` (σ ~ Exponential(λ = −log 0.01 / 1)) and
``P(ρ < 0.5) = 2/3`` (the PC prior of the mixing parameter, Riebler et al.
2016, section 3.3, with the Kullback–Leibler distance computed from the
eigenvalues of the scaled ICAR covariance); intercept ``N(log(Σy/Σe), 5²)``,
coefficients ``N(0, 1)`` per standard deviation of the predictor.

Sampling: the No-U-Turn sampler (Hoffman & Gelman 2014) of NumPyro, chains run
one after another on the CPU, 64-bit floats; the same seed gives the same
draws. The ICAR is written as the pairwise-difference density with a soft
sum-to-zero constraint ``Σφ_c ~ N(0, 0.001 · n_c)`` as in the Stan case study
(Morris et al. 2019, *Spatial and Spatio-Temporal Epidemiology* 31, 100301).

Convergence diagnostics are NumPyro's split-R̂ (Gelman et al. 2013, *BDA3*,
section 11.4) and effective sample size (Geyer's initial monotone sequence).

NumPyro and JAX are an optional extra: ``pip install 'geoplan[bayes]'``.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.special import gammaln, logsumexp
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from geoplan.errors import GeoplanError, QANote

from geoplan.stages.bym2_priors import RHO_PRIORS as _RHO_PRIORS
from geoplan.stages.bym2_priors import SIGMA_PRIORS as _SIGMA_PRIORS
from geoplan.stages.bym2_priors import prior_tuple as _prior_tuple
from geoplan.stages.model.glm import _check_counts, _check_exposure, _check_predictors

__all__ = [
    "BYM2Model",
    "BYM2Graph",
    "adjacency_graph",
    "queen_adjacency",
    "pc_rho_log_density",
    "require_bayes",
]

STAGE = "bedarfsmodell"
EIGEN_MAX_AREAS = 2000  # icar="auto": whitened eigen basis up to this many areas
SUM_ZERO_SD = 0.001  # soft sum-to-zero: Σφ_c ~ N(0, 0.001 · n_c), as the Stan case study
_PARAM_LABELS = {
    "beta0": "Achsenabschnitt (log Rate)",
    "sigma": "σ: Streuung des Gebietseffekts",
    "rho": "ρ: räumlicher Anteil der Varianz",
}


# ---------------------------------------------------------------------------
# optional dependency
# ---------------------------------------------------------------------------
def require_bayes():
    """Import NumPyro and JAX, or raise a GeoplanError with the install hint."""
    try:
        import jax  # noqa: F401
        import numpyro  # noqa: F401
    except ImportError as exc:  # pragma: no cover - exercised in the test by hiding the module
        raise GeoplanError(
            "Das räumliche Bedarfsmodell (BYM2) braucht die optionalen Pakete NumPyro und JAX; sie sind nicht installiert.",
            location="model.family: bym2",
            expected="numpyro und jax im Python der geoplan-Installation",
            found=str(exc),
            hint="pip install 'geoplan[bayes]'  (oder model.family auf poisson/negbin/auto stellen)",
            message_en="The spatial need model (BYM2) needs the optional packages NumPyro and JAX, which are not installed.",
            hint_en="pip install 'geoplan[bayes]'  (or set model.family to poisson/negbin/auto)",
        ) from exc
    import jax
    import numpyro

    return jax, numpyro


# ---------------------------------------------------------------------------
# graph: adjacency, components, scaling
# ---------------------------------------------------------------------------
def queen_adjacency(geometry) -> sparse.csr_matrix:
    """Binary queen-contiguity adjacency in the row order of ``geometry``: the neighbours libpysal's
    ``Queen.from_dataframe`` finds (:func:`geoplan.stages.model.glm.queen_neighbours`, shared vertices
    matched by sorting the coordinates once; libpysal's Python loop over vertex tuples took about 0.5 s
    CPU for the 58 Berlin areas, in every fit)."""
    from geoplan.stages.model.glm import queen_neighbours

    neighbours = queen_neighbours(geometry)
    n = len(neighbours)
    row = np.repeat(np.arange(n), [len(neighbours[i]) for i in range(n)])
    col = np.array([j for i in range(n) for j in neighbours[i]], dtype=np.int64)
    return sparse.csr_matrix((np.ones(len(col)), (row, col)), shape=(n, n))


def _edges(adjacency, n: int) -> np.ndarray:
    """Undirected edges (i < j, unique, sorted) from any supported adjacency."""
    if adjacency is None:
        raise GeoplanError(
            "Für das BYM2-Modell fehlt die Nachbarschaft der Sozialräume.",
            location="BYM2Model.fit(adjacency=…)",
            expected="Geometrien, eine n×n-Nachbarschaftsmatrix oder eine Liste von Nachbarpaaren",
            hint="Die Gebietsgrenzen mitgeben (Queen-Kontiguität wird daraus berechnet).",
            message_en="The BYM2 model needs the neighbourhood of the Sozialräume.",
            expected_en="geometries, an n×n neighbourhood matrix or a list of neighbour pairs",
            hint_en="Pass the area boundaries (queen contiguity is computed from them).",
        )
    if hasattr(adjacency, "geom_type") or hasattr(adjacency, "geometry") and hasattr(adjacency, "crs"):
        adjacency = queen_adjacency(adjacency.geometry if hasattr(adjacency, "geometry") else adjacency)
    if hasattr(adjacency, "sparse") and hasattr(adjacency, "neighbors"):  # libpysal W
        adjacency = adjacency.sparse
    if isinstance(adjacency, pd.DataFrame):
        adjacency = adjacency.iloc[:, :2].to_numpy()
    if sparse.issparse(adjacency):
        m = sparse.coo_matrix(adjacency)
        if m.shape != (n, n):
            raise GeoplanError(
                "Die Nachbarschaftsmatrix passt nicht zur Zahl der Sozialräume.",
                location="adjacency", expected=f"{n}×{n}", found="×".join(map(str, m.shape)),
                message_en="The neighbourhood matrix does not fit the number of Sozialräume.",
            )
        pairs = np.column_stack([m.row, m.col])[m.data != 0]
    else:
        a = np.asarray(adjacency)
        if a.ndim == 2 and a.shape == (n, n) and not (n == 2 and a.dtype.kind in "iu" and a.max() > 1):
            i, j = np.nonzero(a)
            pairs = np.column_stack([i, j])
        elif a.ndim == 2 and a.shape[1] == 2:
            pairs = a.astype(np.int64)
        else:
            raise GeoplanError(
                "Die Nachbarschaft hat eine unbekannte Form.",
                location="adjacency",
                expected=f"{n}×{n}-Matrix oder (Paare × 2)-Tabelle mit Zeilennummern 0…{n - 1}",
                found=str(getattr(a, "shape", type(adjacency).__name__)),
                message_en="The neighbourhood has an unknown form.",
                expected_en=f"{n}×{n} matrix or (pairs × 2) table with row numbers 0…{n - 1}",
            )
    if len(pairs) and (pairs.min() < 0 or pairs.max() >= n):
        raise GeoplanError(
            "Die Nachbarpaare verweisen auf Sozialräume, die es nicht gibt.",
            location="adjacency", expected=f"Zeilennummern 0…{n - 1}",
            found=f"{int(pairs.min())}…{int(pairs.max())}",
            message_en="The neighbour pairs refer to Sozialräume that do not exist.",
            expected_en=f"row numbers 0…{n - 1}",
        )
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    pairs = np.sort(pairs, axis=1)
    return np.unique(pairs, axis=0).astype(np.int64) if len(pairs) else np.zeros((0, 2), dtype=np.int64)


def _constrained_icar_variances(laplacian: np.ndarray) -> np.ndarray:
    """Marginal variances of the sum-to-zero ICAR on one connected component.

    The covariance is the Moore–Penrose inverse of the graph Laplacian Q; for a
    connected graph Q⁺ = (Q + 11ᵀ/n)⁻¹ − 11ᵀ/n (Rue & Held 2005, section 3.2).
    Dense Cholesky inverse: O(n³), about 20 s for one component of 10,000 areas.
    """
    from scipy.linalg import lapack

    n = laplacian.shape[0]
    a = np.asfortranarray(laplacian + 1.0 / n)
    c, info = lapack.dpotrf(a, lower=1, overwrite_a=1)
    if info != 0:  # pragma: no cover - a connected Laplacian + J/n is positive definite
        raise GeoplanError("Die ICAR-Skalierung ist numerisch fehlgeschlagen (Matrix nicht positiv definit).",
                           message_en="The ICAR scaling failed numerically (matrix not positive definite).")
    inv, info = lapack.dpotri(c, lower=1, overwrite_c=1)
    return np.diag(inv) - 1.0 / n


@dataclass
class BYM2Graph:
    """The adjacency prepared for BYM2.

    edges : (m × 2) undirected neighbour pairs, i < j.
    component : component number of every area (0…n_components − 1).
    scale : per area 1/√s_c of its component (1 for islands).
    island : True for areas without neighbours (iid effect).
    scaling_factors : s_c per component (NaN for islands).
    gamma : eigenvalues of the scaled ICAR covariance, all components together
        (0 for each component's constant direction; islands contribute none) —
        only computed when the PC prior of ρ or the basis needs them.
    basis : (n × r) whitening basis B with φ* = B z, z ~ N(0, I): per component
        the Laplacian's eigenvectors V_k / √(λ_k s_c) without the constant one,
        a unit column per island (None unless asked for).
    """

    n: int
    edges: np.ndarray
    component: np.ndarray
    scale: np.ndarray
    island: np.ndarray
    scaling_factors: np.ndarray
    gamma: np.ndarray | None = None
    basis: np.ndarray | None = None

    @property
    def n_components(self) -> int:
        return int(self.scaling_factors.size)

    @property
    def n_islands(self) -> int:
        return int(self.island.sum())


def adjacency_graph(adjacency, n: int, *, eigenvalues: bool = True, basis: bool = False) -> BYM2Graph:
    """Components, per-component ICAR scaling factors, eigenvalues and (optionally) the whitening basis.

    With ``basis`` (or ``eigenvalues``) every component's Laplacian is
    decomposed (dense ``eigh``/``eigvalsh``, O(n_c³)); the scaling factor is
    then Σ_k V_ik² / λ_k averaged geometrically, otherwise it comes from a
    dense Cholesky inverse (:func:`_constrained_icar_variances`).
    """
    from scipy.linalg import eigh, eigvalsh

    edges = _edges(adjacency, n)
    A = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    A = (A + A.T).tocsr()
    n_comp, comp = connected_components(A, directed=False)
    sizes = np.bincount(comp, minlength=n_comp)
    island = sizes[comp] == 1
    s = np.full(n_comp, np.nan)
    scale = np.ones(n)
    gammas = []
    columns = []  # (rows, values) of the basis columns
    for c in range(n_comp):
        idx = np.flatnonzero(comp == c)
        if idx.size == 1:
            if basis:
                columns.append((idx, np.ones((1, 1))))
            continue
        sub = A[idx][:, idx]
        lap = (sparse.diags(np.asarray(sub.sum(axis=1)).ravel()) - sub).toarray()
        if basis:
            lam, vec = eigh(lap)
            lam, vec = lam[1:], vec[:, 1:]  # drop the constant direction (eigenvalue 0)
            var = (vec * vec) @ (1.0 / lam)
        else:
            var = _constrained_icar_variances(lap)
            lam = np.sort(eigvalsh(lap))[1:] if eigenvalues else None
        s[c] = float(np.exp(np.mean(np.log(var))))
        scale[idx] = 1.0 / math.sqrt(s[c])
        if lam is not None:
            gammas.append(1.0 / (s[c] * lam))
            gammas.append(np.zeros(1))  # the constrained direction: variance 0 in Σ*
        if basis:
            columns.append((idx, vec / np.sqrt(lam * s[c])[None, :]))
    want = eigenvalues or basis
    gamma = (np.concatenate(gammas) if gammas else np.zeros(0)) if want else None
    B = None
    if basis:
        r = sum(v.shape[1] for _, v in columns)
        B = np.zeros((n, r))
        col = 0
        for idx, v in columns:
            B[idx, col:col + v.shape[1]] = v
            col += v.shape[1]
    return BYM2Graph(n=n, edges=edges, component=comp, scale=scale, island=island, scaling_factors=s,
                     gamma=gamma, basis=B)


# ---------------------------------------------------------------------------
# PC prior of the mixing parameter
# ---------------------------------------------------------------------------
def _t_minus_log1p(t, xp=np):
    """t − log(1 + t), accurate for small |t| too.

    For |t| < 1e-3 the difference of the two terms loses all digits (at ρ ≈ 1e-9
    it is 0 in float64), which made the PC prior's density d′/d blow up at
    ρ → 0 — a spurious mode the sampler could fall into. There the series
    t²/2 − t³/3 + t⁴/4 − t⁵/5 (error < t⁶/6 ≈ 2e-19) is used.
    """
    small = xp.abs(t) < 1e-3
    ts = xp.where(small, t, 0.0)
    series = ts * ts * (0.5 - ts * (1.0 / 3.0 - ts * (0.25 - ts * 0.2)))
    tl = xp.where(small, 0.0, t)
    return xp.where(small, series, tl - xp.log1p(tl))


def _kld(phi, gm1, xp=np):
    """KLD of the BYM2 effect with mixing ``phi`` from the iid base model (Riebler et al. 2016, eq. 8).

    KLD(φ) = ½ Σ_k [φ(γ_k − 1) − log(1 + φ(γ_k − 1))], γ_k the eigenvalues of
    the scaled ICAR covariance Σ* (0 in the constrained directions, 1 — no
    contribution — for islands).
    """
    t = phi * gm1
    return 0.5 * xp.sum(_t_minus_log1p(t, xp), axis=-1)


def _pc_rho_lambda(gm1: np.ndarray, u: float, alpha: float) -> float:
    """Rate λ of the exponential prior on d(φ) with P(φ < u) = alpha."""
    d_u = math.sqrt(2.0 * float(_kld(u, gm1)))
    return -math.log(1.0 - alpha) / d_u


def pc_rho_log_density(rho, gamma: np.ndarray, u: float = 0.5, alpha: float = 2 / 3, xp=np):
    """Log density of the PC prior of the BYM2 mixing parameter at ``rho`` (0 < ρ < 1).

    d(ρ) = √(2 KLD(ρ)) ~ Exponential(λ), λ = −log(1 − alpha) / d(u), so that
    P(ρ < u) = alpha; density λ exp(−λ d) |d′(ρ)| with
    d′ = KLD′ / d, KLD′(ρ) = ½ Σ ρ (γ − 1)² / (1 + ρ (γ − 1)).
    """
    gm1 = np.asarray(gamma, dtype=float) - 1.0
    gm1 = gm1[gm1 != 0.0]
    lam = _pc_rho_lambda(gm1, u, alpha)
    g = xp.asarray(gm1)
    rho_ = xp.asarray(rho)[..., None]
    t = rho_ * g
    kld = 0.5 * xp.sum(_t_minus_log1p(t, xp), axis=-1)
    dkld = 0.5 * xp.sum(rho_ * g * g / (1.0 + t), axis=-1)
    # d = √(2 KLD); d′ = KLD′ / d. Both vanish at ρ → 0; their ratio tends to √(Σ(γ−1)²/2).
    kld = xp.maximum(kld, 1e-300)
    d = xp.sqrt(2.0 * kld)
    return math.log(lam) - lam * d + xp.log(dkld) - xp.log(d)


# ---------------------------------------------------------------------------
# priors
# ---------------------------------------------------------------------------
def describe_priors(sigma_prior, rho_prior, intercept_prior, coef_prior_sd) -> dict:
    """Plain German description of the priors, for the report (key → text)."""
    s = _prior_tuple(sigma_prior, "sigma", _SIGMA_PRIORS)
    r = _prior_tuple(rho_prior, "rho", _RHO_PRIORS)
    sig = {"pc": lambda u, a: f"PC-Prior: P(σ > {u:g}) = {a:g}",
           "halfnormal": lambda sc: f"Halbnormal(0, {sc:g})",
           "exponential": lambda rate: f"Exponential(Rate {rate:g})"}[s[0]](*s[1:])
    rho = {"pc": lambda u, a: f"PC-Prior: P(ρ < {u:g}) = {a:.3g}",
           "beta": lambda a, b: f"Beta({a:g}, {b:g})",
           "uniform": lambda: "Gleichverteilung auf (0, 1)"}[r[0]](*r[1:])
    icpt = ("Normal(log(Σ Fälle / Σ Exposition), 5)" if intercept_prior is None
            else f"Normal({intercept_prior[0]:g}, {intercept_prior[1]:g})")
    return {"sigma": sig, "rho": rho, "beta0": icpt, "beta": f"Normal(0, {coef_prior_sd:g}) je Prädiktor"}


# ---------------------------------------------------------------------------
# the NumPyro model
# ---------------------------------------------------------------------------
def _numpyro_model(Z, log_e, y, arrays, *, static):
    """The BYM2 model. ``arrays`` (dict of arrays) may change between fits without recompiling;
    ``static`` = (number of components, σ prior, ρ prior, coefficient prior SD, whitened?)."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from jax.ops import segment_sum

    n_comp, sig_p, rho_p, coef_sd, whitened = static
    icpt, gm1, pc_lam = arrays["icpt"], arrays["gm1"], arrays["pc_lam"]
    basis = arrays["basis"] if whitened else None
    n, k = Z.shape

    beta0 = numpyro.sample("beta0", dist.Normal(icpt[0], icpt[1]))
    eta = beta0 + jnp.zeros(n)
    if k:
        beta = numpyro.sample("beta", dist.Normal(0.0, coef_sd).expand([k]).to_event(1))
        eta = eta + Z @ beta

    if sig_p[0] == "pc":
        sigma = numpyro.sample("sigma", dist.Exponential(-math.log(sig_p[2]) / sig_p[1]))
    elif sig_p[0] == "halfnormal":
        sigma = numpyro.sample("sigma", dist.HalfNormal(sig_p[1]))
    else:
        sigma = numpyro.sample("sigma", dist.Exponential(sig_p[1]))

    if rho_p[0] == "beta":
        rho = numpyro.sample("rho", dist.Beta(rho_p[1], rho_p[2]))
    else:
        rho = numpyro.sample("rho", dist.Uniform(0.0, 1.0))
        if rho_p[0] == "pc":
            t = rho * gm1
            kld = jnp.maximum(0.5 * jnp.sum(_t_minus_log1p(t, jnp)), 1e-300)
            dkld = 0.5 * jnp.sum(rho * gm1 * gm1 / (1.0 + t))
            d = jnp.sqrt(2.0 * kld)
            numpyro.factor("rho_pc_prior", jnp.log(pc_lam) - pc_lam * d + jnp.log(dkld) - jnp.log(d))

    theta = numpyro.sample("theta", dist.Normal(0.0, 1.0).expand([n]).to_event(1))
    if basis is not None:
        # whitened ICAR: φ* = B z, z ~ N(0, I) (exact sum-to-zero per component, islands iid)
        z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([basis.shape[1]]).to_event(1))
        phi_s = basis @ z
    else:
        edge_i, edge_j, comp, comp_sizes = arrays["edge_i"], arrays["edge_j"], arrays["comp"], arrays["comp_sizes"]
        has_icar, island, scale = arrays["has_icar"], arrays["island"], arrays["scale"]
        phi = numpyro.sample("phi", dist.ImproperUniform(dist.constraints.real, (), event_shape=(n,)))
        # ICAR: pairwise differences; soft sum-to-zero per component; islands iid N(0, 1)
        numpyro.factor("icar", -0.5 * jnp.sum((phi[edge_i] - phi[edge_j]) ** 2))
        sums = segment_sum(phi, comp, num_segments=n_comp)
        numpyro.factor("sum_to_zero", jnp.sum(jnp.where(
            has_icar, dist.Normal(0.0, SUM_ZERO_SD * comp_sizes).log_prob(sums), 0.0)))
        numpyro.factor("islands", -0.5 * jnp.sum(jnp.where(island, phi * phi, 0.0)))
        phi_s = scale * phi

    re = jnp.sqrt(1.0 - rho) * theta + jnp.sqrt(rho) * phi_s
    numpyro.sample("y", dist.Poisson(rate=jnp.exp(log_e + eta + sigma * re)), obs=y)


@functools.lru_cache(maxsize=32)
def _sampler(static, warmup, draws, target_accept, max_tree_depth):
    """NUTS for the model structure ``static`` and these settings, compiled once per process.

    Returns ``run(rng_key, args, chains)`` (``args`` = the model's arguments ``(Z, log_e, y, arrays)``):
    per chain the constrained draws, the divergence flags and the leapfrog steps of the ``draws``
    iterations after ``warmup``, stacked along a first axis of length ``chains``.

    It computes what NumPyro's ``MCMC(chain_method="sequential", jit_model_args=True)`` computes, in
    the same way: one key per chain (``random.split``), ``NUTS.init``, then one jitted loop of ``warmup + draws`` calls
    of ``NUTS.sample`` that keeps the last ``draws`` (the loop of ``numpyro.util.fori_collect``, same
    operations in the same nesting, hence the same XLA program). The difference: ``fori_collect``
    wraps its loop body in a new ``jax.jit`` object on every call, and that object is a static
    argument of the compiled loop, so ``MCMC`` traces, lowers and compiles the loop again for every
    chain of every fit (about 10 s CPU for the 58 Berlin areas; with JAX's persistent compilation
    cache a cache read of about 1 s). Here the jitted loop is built once per structure and settings
    and kept (``functools.lru_cache``): later chains and fits run the compiled program. The data are
    arguments of the program, not constants in it, so fits of the same size with other data reuse
    it too (and the persistent cache, if ``JAX_COMPILATION_CACHE_DIR`` is set, shares it between
    processes). The number of chains is not part of the programs (chains run one after another), so
    fits with 1 and with 2 chains share them.

    ``NUTS.init`` runs as one jitted program too (MCMC runs it op by op: some 230 small programs
    compiled in a process's first fit, about 15 s CPU, and 1–3 s of dispatch in every later fit). It
    computes the same operations; XLA may fuse them differently, so a seed's draws can differ in the
    last bits from those of an op-by-op initialisation (then beyond, as MCMC amplifies them)."""
    import jax
    from jax import random
    from numpyro.infer import NUTS
    from numpyro.util import cond, fori_loop, identity

    model = functools.partial(_numpyro_model, static=static)
    kernels = []  # the kernel whose sample function the compiled loop calls

    def sample(val):
        state, args, kwargs = val
        return kernels[0].sample(state, args, kwargs), args, kwargs

    def collect(val):
        state, args, kwargs = val
        return [kernels[0].postprocess_fn(args, kwargs)(state.z), state.diverging, state.num_steps]

    # numpyro.util.fori_collect with progbar=False, lower=warmup, upper=warmup + draws, thinning 1
    @functools.partial(jax.jit, donate_argnums=2)
    def body(i, val, collection, start_idx, thinning):
        val = sample(val)
        idx = (i - start_idx) // thinning

        def update(collect_array, new_val):
            return cond(idx >= 0, collect_array, lambda x: x.at[idx].set(new_val), collect_array, identity)

        return val, jax.tree.map(update, collection, collect(val)), start_idx, thinning

    @functools.partial(jax.jit, donate_argnums=1)
    def loop(init_val, collection, start_idx, thinning):
        # the whole loop state is returned, as in fori_collect: without it the unused parts of the state
        # are pruned, XLA fuses another program, and the draws differ in the last bits (then beyond)
        return fori_loop(0, warmup + draws, lambda i, vals: body(i, *vals),
                         (init_val, collection, start_idx, thinning))

    # NUTS.init as one program (see above). Traced once, it sets up the kernel whose sample function the loop
    # calls; the kernel's functions depend on the structure and settings only, the data are arguments.
    kernels.append(NUTS(model, target_accept_prob=target_accept, max_tree_depth=max_tree_depth))
    init = jax.jit(lambda key, args: kernels[0].init(key, warmup, None, model_args=args, model_kwargs={}))

    collected = jax.jit(collect)  # only for the shapes: a jitted function's eval_shape is traced once per shapes

    def run(rng_key, args, chains):
        # the chains' keys as MCMC makes them, indexed in NumPy (indexing the JAX array compiled small programs)
        keys = np.asarray(random.split(rng_key, chains)) if chains > 1 else np.asarray(rng_key)[None]
        out = []
        for c in range(chains):
            state = init(keys[c], args)
            init_val = (state, args, {})
            # the arrays the loop fills, one row per draw (every row is written: their start values never
            # reach a result). fori_collect starts from zeros × the first state's draws, computed op by op:
            # some 20 small programs compiled in a process's first fit (about 1 s); their shapes and types
            # come from an abstract evaluation here (traced once) and the zeros from NumPy, nothing is compiled
            collection = jax.tree.map(lambda x: np.zeros((draws, *x.shape), dtype=x.dtype),
                                      collected.eval_shape(init_val))
            out.append(loop(init_val, collection, warmup, 1)[1])
        return jax.tree.map(lambda *v: np.stack([np.asarray(x) for x in v]), *out)

    return run


# ---------------------------------------------------------------------------
# the estimator
# ---------------------------------------------------------------------------
class BYM2Model(BaseEstimator, RegressorMixin):
    """BYM2 Poisson model with exposure and adjacency (scikit-learn style).

    Parameters
    ----------
    sigma_prior : ("pc", u, alpha) | ("halfnormal", scale) | ("exponential", rate)
        Prior of σ, the SD of the total area effect (log scale). Default PC
        prior P(σ > 1) = 0.01.
    rho_prior : ("pc", u, alpha) | ("beta", a, b) | ("uniform",)
        Prior of ρ, the spatial share. Default PC prior P(ρ < 0.5) = 2/3
        (Riebler et al. 2016), shrinking towards the unstructured model.
    intercept_prior : (loc, sd) or None
        None: Normal(log(Σy/Σe), 5) — centred on the overall rate.
    coef_prior_sd : float
        Normal(0, coef_prior_sd) for every coefficient (per SD when standardised).
    standardize : bool
        Scale predictors to mean 0 / SD 1 (ddof=0; binary 0/1 columns stay).
    chains, warmup, draws, seed : NUTS settings; chains run sequentially.
    target_accept : NUTS target acceptance probability (0.8–0.99).
    max_tree_depth : NUTS maximal tree depth.
    icar : "auto" | "eigen" | "pairwise"
        How the ICAR is sampled. "eigen": whitened, φ* = B z with the
        Laplacian's eigenvectors (exact sum-to-zero, a well-conditioned
        posterior, about 10× fewer leapfrog steps; dense n × n basis).
        "pairwise": the sparse pairwise-difference density with a soft
        sum-to-zero constraint as in the Stan case study (memory O(edges)).
        "auto": eigen up to 2,000 areas, pairwise above.

    Attributes (after fit)
    ----------------------
    summary_ : DataFrame indexed by parameter (``beta0``, the predictor names,
        ``sigma``, ``rho``) with ``mean``, ``sd``, ``q2.5``, ``q97.5``,
        ``r_hat``, ``ess`` and ``label``.
    draws_ : dict of posterior draws (chains concatenated): ``beta0`` (S,),
        ``beta`` (S × k), ``sigma``, ``rho`` (S,), ``relative_risk`` (S × n,
        exp(η) = μ/e: the relative risk when the exposure is expected cases,
        the rate per exposed person when it is a population), ``expected`` (S × n,
        μ = e·exp(η), cases), ``theta`` (S × n, unstructured) and ``phi``
        (S × n, the scaled spatial effect φ*).
    expected_ : posterior mean of μ per area; ``expected_q05_``/``expected_q95_``.
    relative_risk_ : posterior mean of exp(η) per area.
    spatial_share_ : posterior mean of ρ.
    graph_ : :class:`BYM2Graph` (components, islands, scaling factors).
    waic_ : dict with ``elpd_waic``, ``p_waic``, ``waic`` (−2·elpd) and ``se``
        (Watanabe 2010; Vehtari, Gelman & Gabry 2017) on the fitted areas.
    n_divergent_ : divergent transitions after warm-up (should be 0).
    max_r_hat_ : largest split-R̂ over all parameters and area effects.
    fit_seconds_ : wall time of the sampling (s), including JIT compilation.
    graph_seconds_ : wall time of the graph preparation (components, scaling, eigenvalues).
    priors_ : plain description of the priors (German, for the report).
    notes_ : QA notes (divergences, R̂ > 1.01, islands, components).
    feature_names_in_, n_features_in_, scaler_mean_, scaler_scale_.
    """

    def __init__(
        self,
        sigma_prior=("pc", 1.0, 0.01),
        rho_prior=("pc", 0.5, 2 / 3),
        intercept_prior=None,
        coef_prior_sd=1.0,
        standardize=True,
        chains=4,
        warmup=1000,
        draws=1000,
        seed=0,
        target_accept=0.9,
        max_tree_depth=10,
        icar="auto",
    ):
        self.sigma_prior = sigma_prior
        self.rho_prior = rho_prior
        self.intercept_prior = intercept_prior
        self.coef_prior_sd = coef_prior_sd
        self.standardize = standardize
        self.chains = chains
        self.warmup = warmup
        self.draws = draws
        self.seed = seed
        self.target_accept = target_accept
        self.max_tree_depth = max_tree_depth
        self.icar = icar

    # -- helpers ------------------------------------------------------------
    def _frame(self, X, n=None) -> pd.DataFrame:
        if X is None:
            return pd.DataFrame(index=pd.RangeIndex(n or 0))
        if isinstance(X, pd.DataFrame):
            return X
        a = np.asarray(X, dtype=float)
        if a.ndim == 1:
            a = a[:, None]
        return pd.DataFrame(a, columns=[f"x{j}" for j in range(a.shape[1])])

    def _design(self, X: pd.DataFrame) -> np.ndarray:
        if X.shape[1] == 0:
            return np.zeros((len(X), 0))
        return (_check_predictors(X, require_variation=False) - self.scaler_mean_) / self.scaler_scale_

    def _check_settings(self):
        for name, value, low in (("chains", self.chains, 1), ("warmup", self.warmup, 10), ("draws", self.draws, 10)):
            if not isinstance(value, (int, np.integer)) or value < low:
                raise GeoplanError(f"BYM2-Einstellung {name} muss eine ganze Zahl ≥ {low} sein.",
                                   location=f"model.bym2.{name}", found=repr(value),
                                   message_en=f"BYM2 setting {name} must be a whole number ≥ {low}.")
        if not 0.5 <= float(self.target_accept) < 1:
            raise GeoplanError("BYM2-Einstellung target_accept muss zwischen 0,5 und 1 liegen.",
                               location="model.bym2.target_accept", found=repr(self.target_accept),
                               message_en="BYM2 setting target_accept must lie between 0.5 and 1.")
        if not float(self.coef_prior_sd) > 0:
            raise GeoplanError("coef_prior_sd muss > 0 sein.", location="model.bym2.coef_prior_sd",
                               found=repr(self.coef_prior_sd), message_en="coef_prior_sd must be > 0.")

    # -- sklearn API ----------------------------------------------------------
    def fit(self, X, y, exposure=None, adjacency=None):
        """Fit by NUTS. ``X`` predictors (DataFrame or array, may have 0 columns or be None),
        ``y`` counts, ``exposure`` (> 0; default 1), ``adjacency`` (geometries, n×n matrix,
        libpysal W or pairs of row numbers)."""
        self._check_settings()
        sig_p = _prior_tuple(self.sigma_prior, "sigma", _SIGMA_PRIORS)
        rho_p = _prior_tuple(self.rho_prior, "rho", _RHO_PRIORS)
        y_arr = np.asarray(y).ravel() if not isinstance(y, pd.Series) else y
        n = len(y_arr)
        Xf = self._frame(X, n)
        if len(Xf) != n:
            raise GeoplanError("Fallzahlen und Prädiktoren haben unterschiedlich viele Zeilen.",
                               expected=f"{n} Zeilen", found=f"{len(Xf)} Zeilen Prädiktoren",
                               message_en="Case counts and predictors have different numbers of rows.",
                               expected_en=f"{n} rows",
                               found_en=f"{len(Xf)} rows of predictors")
        y_s = y_arr if isinstance(y_arr, pd.Series) else pd.Series(y_arr, index=Xf.index)
        yv = _check_counts(y_s, getattr(y_s, "name", None) or "hze_cases")
        e = np.ones(n) if exposure is None else exposure
        e_s = e if isinstance(e, pd.Series) else pd.Series(np.asarray(e, dtype=float).ravel(), index=Xf.index)
        if len(e_s) != n:
            raise GeoplanError("Exposition und Fallzahlen haben unterschiedlich viele Zeilen.",
                               expected=f"{n} Zeilen", found=f"{len(e_s)} Expositionen",
                               message_en="Exposure and case counts have different numbers of rows.",
                               expected_en=f"{n} rows",
                               found_en=f"{len(e_s)} exposures")
        ev = _check_exposure(e_s, getattr(e_s, "name", None) or "pop_u21")
        if Xf.shape[1]:
            Xv = _check_predictors(Xf)
        else:
            Xv = np.zeros((n, 0))
        if n < 3:
            raise GeoplanError("Für das BYM2-Modell braucht es mindestens 3 Sozialräume.", found=f"{n}",
                               message_en="The BYM2 model needs at least 3 Sozialräume.")
        jax, numpyro = require_bayes()

        self.feature_names_in_ = np.asarray([str(c) for c in Xf.columns], dtype=object)
        self.n_features_in_ = Xv.shape[1]
        mean = Xv.mean(axis=0)
        scale = Xv.std(axis=0)
        if self.standardize:
            binary = np.all((Xv == 0) | (Xv == 1), axis=0)
            mean = np.where(binary, 0.0, mean)
            scale = np.where(binary | (scale == 0), 1.0, scale)
        else:
            mean, scale = np.zeros_like(mean), np.ones_like(scale)
        self.scaler_mean_, self.scaler_scale_ = mean, scale
        Z = (Xv - mean) / scale

        if self.icar not in ("auto", "eigen", "pairwise"):
            raise GeoplanError("Unbekannte ICAR-Variante.", location="model.bym2.icar",
                               expected="auto | eigen | pairwise", found=repr(self.icar),
                               message_en="Unknown ICAR variant.")
        use_basis = self.icar == "eigen" or (self.icar == "auto" and n <= EIGEN_MAX_AREAS)
        t_graph = time.perf_counter()
        graph = adjacency_graph(adjacency, n, eigenvalues=rho_p[0] == "pc", basis=use_basis)
        self.graph_seconds_ = time.perf_counter() - t_graph
        self.graph_ = graph
        icpt = (math.log(yv.sum() / ev.sum()) if yv.sum() > 0 else math.log(0.5 / ev.sum()), 5.0) \
            if self.intercept_prior is None else tuple(float(v) for v in self.intercept_prior)
        self.priors_ = describe_priors(self.sigma_prior, self.rho_prior, self.intercept_prior, self.coef_prior_sd)

        import jax.numpy as jnp

        numpyro.enable_x64()
        sizes = np.bincount(graph.component, minlength=graph.n_components)
        if rho_p[0] == "pc":
            gm1 = graph.gamma - 1.0
            gm1 = gm1[gm1 != 0.0]
            if gm1.size == 0:
                raise GeoplanError(
                    "Kein Sozialraum hat Nachbarn: ein räumliches Modell ist nicht möglich.",
                    location="adjacency", hint="Nachbarschaft prüfen oder model.family: negbin verwenden.",
                    message_en="No Sozialraum has neighbours: a spatial model is not possible.",
                    hint_en="Check the neighbourhood or use model.family: negbin.")
            pc_lam = _pc_rho_lambda(gm1, rho_p[1], rho_p[2])
        else:
            gm1, pc_lam = np.zeros(1), 1.0
        whitened = graph.basis is not None
        arrays = {"icpt": jnp.asarray(icpt, dtype=float), "gm1": jnp.asarray(gm1), "pc_lam": jnp.asarray(pc_lam)}
        if whitened:
            arrays["basis"] = jnp.asarray(graph.basis)
        else:
            arrays.update(edge_i=jnp.asarray(graph.edges[:, 0]), edge_j=jnp.asarray(graph.edges[:, 1]),
                          comp=jnp.asarray(graph.component), comp_sizes=jnp.asarray(sizes, dtype=float),
                          has_icar=jnp.asarray(sizes > 1), island=jnp.asarray(graph.island),
                          scale=jnp.asarray(graph.scale))
        static = (int(graph.n_components) if not whitened else 0, sig_p, rho_p, float(self.coef_prior_sd), whitened)
        run = _sampler(static, int(self.warmup), int(self.draws), float(self.target_accept),
                       int(self.max_tree_depth))
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            samples, diverging, steps = run(jax.random.PRNGKey(int(self.seed)),
                                            (jnp.asarray(Z), jnp.asarray(np.log(ev)), jnp.asarray(yv), arrays),
                                            int(self.chains))
        self.fit_seconds_ = time.perf_counter() - t0
        grouped = {k: np.asarray(v) for k, v in samples.items()}
        self.n_divergent_ = int(np.asarray(diverging).sum())
        self.mean_leapfrog_steps_ = float(np.asarray(steps).mean())
        self._store(grouped, Z, np.log(ev), yv)
        return self

    def _store(self, grouped: dict, Z: np.ndarray, log_e: np.ndarray, yv: np.ndarray) -> None:
        from numpyro.diagnostics import effective_sample_size, split_gelman_rubin

        n_chain, n_draw = grouped["beta0"].shape[:2]
        if "z" in grouped:
            grouped["phi"] = grouped.pop("z") @ self.graph_.basis.T
        else:
            grouped["phi"] = grouped["phi"] * self.graph_.scale
        flat = {k: v.reshape((n_chain * n_draw,) + v.shape[2:]) for k, v in grouped.items()}
        k = Z.shape[1]
        beta = flat.get("beta", np.zeros((n_chain * n_draw, 0)))
        names = ["beta0", *self.feature_names_in_, "sigma", "rho"]
        series = [grouped["beta0"]] + [grouped["beta"][..., j] for j in range(k)] + [grouped["sigma"], grouped["rho"]]
        rows = []
        for name, x in zip(names, series):
            v = x.reshape(-1)
            rows.append({
                "mean": float(v.mean()), "sd": float(v.std(ddof=1)),
                "q2.5": float(np.quantile(v, 0.025)), "q97.5": float(np.quantile(v, 0.975)),
                "r_hat": float(split_gelman_rubin(x)) if n_draw >= 4 else float("nan"),
                "ess": float(effective_sample_size(x)) if n_draw >= 4 else float("nan"),
                "label": _PARAM_LABELS.get(name, f"Koeffizient {name} (log Ratenverhältnis"
                                           + (" je SD)" if self.standardize else ")")),
            })
        self.summary_ = pd.DataFrame(rows, index=pd.Index(names, name="parameter"))
        r_all = [self.summary_["r_hat"].max()]
        for key in ("theta", "phi"):
            if n_draw >= 4:
                r_all.append(float(np.nanmax(split_gelman_rubin(grouped[key]))))
        self.max_r_hat_ = float(np.nanmax(r_all))

        eta = self._eta(flat, Z)
        rr = np.exp(eta)
        mu = rr * np.exp(log_e)[None, :]
        self.draws_ = {"beta0": flat["beta0"], "beta": beta, "sigma": flat["sigma"], "rho": flat["rho"],
                       "theta": flat["theta"], "phi": flat["phi"], "relative_risk": rr, "expected": mu}
        self.expected_ = mu.mean(axis=0)
        self.expected_q05_, self.expected_q95_ = np.quantile(mu, [0.05, 0.95], axis=0)
        self.relative_risk_ = rr.mean(axis=0)
        self.spatial_share_ = float(flat["rho"].mean())
        # WAIC from the pointwise Poisson log likelihood
        ll = yv[None, :] * np.log(mu) - mu - gammaln(yv + 1.0)[None, :]
        lppd = logsumexp(ll, axis=0) - math.log(ll.shape[0])
        p_w = ll.var(axis=0, ddof=1)
        elpd_i = lppd - p_w
        self.waic_ = {"elpd_waic": float(elpd_i.sum()), "p_waic": float(p_w.sum()),
                      "waic": float(-2 * elpd_i.sum()), "se": float(math.sqrt(len(elpd_i) * elpd_i.var(ddof=1)))}
        notes = []
        g = self.graph_
        if g.n_islands:
            notes.append(QANote(stage=STAGE, level="info", message=(
                f"{g.n_islands} Sozialraum/Sozialräume ohne Nachbarn: unstrukturierter Gebietseffekt "
                "(Freni-Sterlich, Sørbye & Riebler 2018)."), message_en=(
                f"{g.n_islands} Sozialraum/Sozialräume without neighbours: unstructured area effect "
                "(Freni-Sterlich, Sørbye & Riebler 2018).")))
        if (g.n_components - g.n_islands) > 1:
            notes.append(QANote(stage=STAGE, level="info", message=(
                f"Die Nachbarschaft zerfällt in {g.n_components - g.n_islands} zusammenhängende Teile; "
                "jeder wird für sich skaliert und auf Summe 0 gesetzt."), message_en=(
                f"The neighbourhood graph falls into {g.n_components - g.n_islands} connected parts; "
                "each is scaled on its own and set to sum 0.")))
        if self.n_divergent_:
            notes.append(QANote(stage=STAGE, message=(
                f"BYM2: {self.n_divergent_} divergente Übergänge im Sampler; die Ergebnisse können verzerrt sein "
                "(target_accept erhöhen)."), message_en=(
                f"BYM2: {self.n_divergent_} divergent transitions in the sampler; the results may be biased "
                "(raise target_accept).")))
        if self.max_r_hat_ > 1.01:
            notes.append(QANote(stage=STAGE, message=(
                f"BYM2: R̂ = {self.max_r_hat_:.3f} > 1,01 — die Ketten sind nicht konvergiert "
                "(mehr Ziehungen oder Aufwärmschritte)."), message_en=(
                f"BYM2: R̂ = {self.max_r_hat_:.3f} > 1.01 — the chains have not converged "
                "(more draws or warm-up steps).")))
        self.notes_ = notes

    def _eta(self, flat: dict, Z: np.ndarray) -> np.ndarray:
        eta = flat["beta0"][:, None] + (Z @ flat["beta"].T).T if Z.shape[1] else flat["beta0"][:, None] + 0.0
        re = (np.sqrt(1.0 - flat["rho"])[:, None] * flat["theta"]
              + np.sqrt(flat["rho"])[:, None] * flat["phi"])
        return eta + flat["sigma"][:, None] * re

    def predict_draws(self, X=None, exposure=None) -> np.ndarray:
        """Posterior draws (S × n) of the expected cases μ = e · exp(η) for the fitted areas.

        ``X`` and ``exposure`` may give new predictor values and exposures for
        the same areas in the same order (e.g. next year's population); the
        area effects are those of the fit. Without arguments: the fitted μ.
        """
        check_is_fitted(self, "draws_")
        n = self.graph_.n
        if X is None and exposure is None:
            return self.draws_["expected"]
        Xf = self._frame(X, n) if X is not None else None
        if Xf is not None and len(Xf) != n:
            raise GeoplanError(
                "BYM2 sagt nur für die angepassten Sozialräume voraus (die Gebietseffekte gehören zu ihnen).",
                expected=f"{n} Zeilen in derselben Reihenfolge", found=f"{len(Xf)} Zeilen",
                message_en="BYM2 predicts only for the fitted Sozialräume (the area effects belong to them).",
                expected_en=f"{n} rows in the same order", found_en=f"{len(Xf)} rows")
        if Xf is not None and self.n_features_in_ and list(Xf.columns) != list(self.feature_names_in_):
            Xf = Xf[list(self.feature_names_in_)] if set(self.feature_names_in_) <= set(map(str, Xf.columns)) else Xf
        if exposure is None:
            log_e = np.log(self.draws_["expected"][0] / self.draws_["relative_risk"][0])
        else:
            e_s = exposure if isinstance(exposure, pd.Series) else pd.Series(np.asarray(exposure, dtype=float).ravel())
            if len(e_s) != n:
                raise GeoplanError("Die Exposition passt nicht zur Zahl der Sozialräume.",
                                   expected=f"{n}", found=f"{len(e_s)}",
                                   message_en="The exposure does not fit the number of Sozialräume.")
            log_e = np.log(_check_exposure(e_s, getattr(e_s, "name", None) or "pop_u21"))
        if Xf is None:
            rr = self.draws_["relative_risk"]
        else:
            rr = np.exp(self._eta(self.draws_, self._design(Xf)))
        return rr * np.exp(log_e)[None, :]

    def predict(self, X=None, exposure=None) -> np.ndarray:
        """Posterior mean of the expected cases per area (see :meth:`predict_draws`)."""
        return self.predict_draws(X, exposure).mean(axis=0)

    def area_table(self, index=None) -> pd.DataFrame:
        """Per area: ``expected_cases`` (posterior mean), ``expected_q05``/``expected_q95`` (90 % interval),
        ``relative_risk`` (posterior mean of exp(η)), ``rr_q05``/``rr_q95``, ``p_rr_above_1``
        (posterior probability that exp(η) > 1; meaningful when the exposure is expected cases)."""
        check_is_fitted(self, "draws_")
        rr = self.draws_["relative_risk"]
        q = np.quantile(rr, [0.05, 0.95], axis=0)
        return pd.DataFrame({
            "expected_cases": self.expected_, "expected_q05": self.expected_q05_,
            "expected_q95": self.expected_q95_, "relative_risk": self.relative_risk_,
            "rr_q05": q[0], "rr_q95": q[1], "p_rr_above_1": (rr > 1).mean(axis=0),
        }, index=index)
