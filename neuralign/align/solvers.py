"""Ridge solvers: one spectral basis per training set, every alpha from it.

A training set (``n`` stimuli, targets ``Y``: stimulus-mean EEG at every channel x time) is
reduced once to a :class:`Basis`: orthonormal directions in the centred sample space with their
eigenvalues ``s`` and the projections ``P`` of the centred targets on them. Every alpha's fit,
generalised cross-validation score and prediction is then a diagonal filter of ``P``
(``1 / (s + a)``), so alphas cost almost nothing.

Two forms build the same basis, chosen per layer by cost:

- **dual** (kernel) form, when stimuli are fewer than features: eigendecompose the centred
  ``n x n`` Gram matrix. The intercept is removed exactly with a Householder reflection that
  maps the all-ones vector onto the first axis, so the ``(n-1) x (n-1)`` problem that is
  eigendecomposed has no spurious zero eigenvalue.
- **primal** form, when stimuli outnumber features: eigendecompose the centred ``D x D``
  feature covariance, from block sufficient statistics.

Both forms predict new stimuli as ``ybar + E diag(1 / (s + a)) P`` with ``E`` the new stimuli
embedded in the basis. Ridge predictions depend on the features only through inner products,
so the dual form is exact at any width (himalaya's ``KernelRidgeCV`` and scikit-learn's gram
mode take the same route).

Numerics: eigendecompositions and the alpha-selection criterion are always float64 (they are
small: ``min(n, D)^3`` and ``alphas x targets``); ``dtype`` applies to the large products
(``P``, embeddings, predictions). GCV is computed in a form that never subtracts nearly equal
numbers: the residual sum of squares is a sum of non-negative filtered terms and the residual
degrees of freedom ``n - 1 - df`` is ``sum a / (s + a)``. This is what keeps float32 from
picking tiny alphas when ``n < D``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Basis:
    """One training set, solved.

    Attributes
    ----------
    form : str
        ``"dual"`` or ``"primal"``.
    n : int
        Training stimuli.
    ybar : array (M,)
        Training mean of the targets (float64).
    s : array (r,)
        Eigenvalues of the centred training problem (float64, >= 0).
    P : array (r, M)
        Projections of the centred targets on the basis (``dtype``).
    resid0 : array (M,)
        Residual sum of squares outside the basis (float64; 0 in the dual form).
    dof_rest : float
        Sample-space directions outside the basis (``n - 1 - r``; 0 in the dual form).
    embed_parts : tuple
        What :func:`embed` needs: dual ``(kbar, w, c, U)``; primal ``(mx, V, sqrt(s))``.
    p_select : array (r, M), optional
        Float64 projections for the selection criterion when ``P`` is float32 (primal form,
        where the criterion divides by ``sqrt(s)``).
    p_sq : array (r, M), optional
        Squared float64 projections (primal form: computed once for ``resid0`` and the
        criterion).
    """

    form: str
    n: int
    ybar: object
    s: object
    P: object
    resid0: object
    dof_rest: float
    embed_parts: tuple
    p_select: object = None
    p_sq: object = None


@dataclass
class Spectrum:
    """The eigendecomposition of a training set's features, reusable while the set is unchanged.

    Dual form: ``parts = (kbar, w, c, U)`` from the Gram matrix; primal form:
    ``parts = (mx, V)`` (kept eigenvectors) from the feature covariance.
    """

    form: str
    n: int
    s: object
    parts: tuple


def dual_spectrum(B, gram) -> Spectrum:
    """Centre a training set's uncentred Gram matrix ``(n, n)`` (float64) and eigendecompose it.

    A Householder reflection ``Q = I - 2 w w' / c`` with ``w = 1 + sqrt(n) e1`` maps the
    all-ones vector onto the first axis; the trailing ``(n-1) x (n-1)`` block of ``Q K Q`` is
    the centred problem without its null direction.
    """
    n = int(gram.shape[0])
    sq = float(np.sqrt(n))
    w = B.ones(n, "float64")
    w[0] += sq
    c = 2.0 * n + 2.0 * sq
    kw = gram @ w
    wkw = float(B.to_numpy(w @ kw))
    kt = gram[1:, 1:] - (2.0 / c) * (kw[None, 1:] + kw[1:, None]) + (4.0 * wkw / c**2)
    s, U = B.eigh(kt)
    return Spectrum("dual", n, B.clip_min(s, 0.0), (B.mean(gram, 1), w, c, U))


def dual_basis(B, spec: Spectrum, y, dtype: str) -> Basis:
    """Project a training set's targets ``y`` (n, M; float64) on its dual spectrum."""
    kbar, w, c, U = spec.parts
    yt = y[1:] - (2.0 / c) * (w @ y)[None, :]  # rows 1: of Q y: the centred targets, rotated
    Ud = B.astype(U, dtype)
    P = Ud.T @ B.astype(yt, dtype)
    return Basis("dual", spec.n, B.mean(y, 0), spec.s, P, B.zeros(y.shape[1], "float64"), 0.0,
                 (kbar, w, c, Ud))


def primal_spectrum(B, *, n: float, sx, sxx) -> Spectrum:
    """Centre the feature covariance of a training set and eigendecompose it (float64).

    Eigenvalues below ``D eps max(s)`` are dropped (a pseudo-inverse's rank cutoff): their
    directions carry no data.
    """
    mx = sx / n
    cxx = sxx - n * (mx[:, None] * mx[None, :])
    lam, V = B.eigh(cxx)
    lam_np = B.to_numpy(lam)
    tol = max(float(lam_np.max(initial=0.0)), 0.0) * lam_np.size * np.finfo(float).eps
    ki = B.index_asarray(np.nonzero(lam_np > tol)[0])
    return Spectrum("primal", int(round(float(n))), lam[ki], (mx, V[:, ki]))


def primal_basis(B, spec: Spectrum, *, sy, syy, sxy, dtype: str) -> Basis:
    """Project a training set's targets on its primal spectrum, from sufficient statistics.

    Parameters
    ----------
    B : module
        Backend.
    spec : Spectrum
        The training set's primal spectrum (:func:`primal_spectrum`).
    sy, syy, sxy : arrays (float64)
        ``sum y`` (M,), ``sum y^2`` (M,), ``sum x y'`` (D, M) over the training stimuli.
    dtype : str
        Precision of the large products.
    """
    mx, Vk = spec.parts
    n = spec.n
    my = sy / n
    cxy = sxy - mx[:, None] * sy[None, :]
    syy_c = syy - sy * my
    root = B.sqrt(spec.s)
    # Projections in float64: the criterion divides by sqrt(s) (folded into the D x r factor).
    P64 = (Vk / root[None, :]).T @ cxy
    p_sq = P64 * P64
    resid0 = B.clip_min(syy_c - B.sum(p_sq, 0), 0.0)
    r = int(spec.s.shape[0])
    return Basis("primal", n, my, spec.s, B.astype(P64, dtype), resid0, float(n - 1 - r),
                 (mx, B.astype(Vk, dtype), B.astype(root, dtype)),
                 p_select=None if dtype == "float64" else P64, p_sq=p_sq)


def embed(B, basis: Basis, cross, dtype: str):
    """Embed new stimuli in ``basis``.

    Parameters
    ----------
    B : module
        Backend.
    basis : Basis
        The training set's basis.
    cross : array
        Dual form: the Gram block ``K[new, train]`` (float64); primal form: the new stimuli's
        standardised features ``(n_new, D)``.
    dtype : str
        Precision of the product.

    Returns
    -------
    array (n_new, r) in ``dtype``
    """
    if basis.form == "dual":
        kbar, w, c, U = basis.embed_parts
        a = cross - kbar[None, :]
        aq = a[:, 1:] - (2.0 / c) * (a @ w)[:, None]
        return B.astype(aq, dtype) @ U
    mx, Vk, root = basis.embed_parts
    return (B.astype(cross - mx[None, :], dtype) @ Vk) * root[None, :]


def gcv_scores(B, basis: Basis, alphas: np.ndarray):
    """Generalised cross-validation ``n RSS(a) / (n - 1 - df(a))^2``, shape (K, M), float64.

    ``RSS(a) = resid0 + sum_j (a / (s_j + a))^2 P_j^2`` and
    ``n - 1 - df(a) = dof_rest + sum_j a / (s_j + a)`` (Golub, Heath & Wahba 1979; the ``- 1``
    counts the intercept): sums of non-negative terms, exact in float32 and float64 alike.
    """
    a = B.asarray(np.asarray(alphas, dtype=float), "float64")
    filt = a[:, None] / (basis.s[None, :] + a[:, None])  # (K, r)
    if basis.p_sq is not None:
        p_sq = basis.p_sq
    else:
        p = basis.p_select if basis.p_select is not None else B.astype(basis.P, "float64")
        p_sq = p * p
    rss = basis.resid0[None, :] + (filt * filt) @ p_sq
    rdof = basis.dof_rest + B.sum(filt, 1)  # (K,)
    return basis.n * rss / B.clip_min(rdof * rdof, 1e-300)[:, None]


def gcv_select(B, basis: Basis, alphas: np.ndarray) -> np.ndarray:
    """Index into ``alphas`` of the GCV-best alpha of every target, shape (M,)."""
    return np.asarray(B.to_numpy(B.argmin(gcv_scores(B, basis, alphas), 0)), dtype=np.int64)


def predict_per_alpha(B, basis: Basis, E, alphas: np.ndarray, dtype: str):
    """Predictions of the embedded stimuli for every alpha: yields (k, yhat (n_new, M))."""
    a = np.asarray(alphas, dtype=float)
    s = B.astype(basis.s, dtype)
    ybar = B.astype(basis.ybar, dtype)
    for k in range(a.size):
        g = 1.0 / (s + float(a[k]))
        yield k, ybar[None, :] + (E * g[None, :]) @ basis.P


def predict(B, basis: Basis, E, alphas: np.ndarray, idx: np.ndarray, dtype: str):
    """Predictions of the embedded stimuli with alpha ``alphas[idx[m]]`` for target ``m``.

    The per-target filter ``1 / (s + a_m)`` scales ``P`` column by column, so every target's
    prediction comes from one product ``E (G * P)``.

    Returns
    -------
    ndarray (n_new, M), float64
    """
    a_t = B.asarray(np.asarray(alphas, dtype=float)[np.asarray(idx)], dtype)
    G = 1.0 / (B.astype(basis.s, dtype)[:, None] + a_t[None, :])
    yhat = E @ (G * basis.P)
    return B.to_numpy(yhat).astype(float) + B.to_numpy(basis.ybar)[None, :]


def primal_refit(st: tuple, xp: np.ndarray, alphas: np.ndarray, idx: np.ndarray, dtype: str,
                 *, solves: dict | None = None, keep_all: bool = False) -> np.ndarray | None:
    """Predictions with alpha ``alphas[idx[m]]`` for target ``m``, without an eigendecomposition.

    Per distinct alpha ``a``: one Cholesky factorisation of ``Cxx + a I`` (``D^3 / 3``), then
    whichever is cheaper: solve for that alpha's targets (``W = (Cxx + a I)^-1 C_xy``, then
    ``X_p W``) or for the predicted stimuli (``Z_a = X_p (Cxx + a I)^-1``, then ``Z_a C_xy``).
    The same ridge fit as :func:`primal_basis` and :func:`predict` (which keep only the
    directions above a rank cutoff; the others carry no data: ``C_xy`` has no component
    there) in NumPy, float64 factorisations and solves.

    Parameters
    ----------
    st : tuple
        Training statistics ``(n, sum x, S_xx, sum y, sum y^2, S_xy)`` (float64 NumPy).
    xp : ndarray (n_new, D)
        Standardised features of the predicted stimuli (float64).
    alphas : ndarray (K,)
        Ridge alphas.
    idx : ndarray (M,)
        Index into ``alphas`` of every target's alpha.
    dtype : str
        Precision of the products with ``C_xy``.
    solves : dict, optional
        Kept ``Z_a`` by alpha index (read, and filled with the ones computed here).
    keep_all : bool
        Compute ``Z_a`` for every alpha (to keep), even where solving for the targets is
        cheaper.

    Returns
    -------
    ndarray (n_new, M), float64, or None
        None when ``Cxx + a I`` is not numerically positive definite (then use the
        eigendecomposition).
    """
    from scipy import linalg

    n, sx, sxx, sy, _syy, sxy = st
    mx = sx / n
    xc = xp - mx[None, :]
    D, n_new = sxx.shape[0], xp.shape[0]
    cxx = None
    out = np.empty((n_new, sxy.shape[1]), dtype=dtype)
    idx = np.asarray(idx)
    for k in np.unique(idx).tolist():
        g = np.nonzero(idx == k)[0]
        cxy = np.take(sxy, g, axis=1)
        cxy -= mx[:, None] * sy[None, g]
        z = solves.get(k) if solves is not None else None
        if z is None:
            if cxx is None:
                cxx = sxx - n * (mx[:, None] * mx[None, :])
            a = cxx.copy()
            a.flat[:: D + 1] += float(alphas[k])
            try:
                fac = linalg.cho_factor(a, lower=True, overwrite_a=True, check_finite=False)
            except linalg.LinAlgError:
                return None
            if keep_all or g.size >= n_new:
                z = linalg.cho_solve(fac, xc.T, check_finite=False).T.astype(dtype)
                if solves is not None:
                    solves[k] = z
            else:
                w = linalg.cho_solve(fac, cxy, check_finite=False)
                out[:, g] = (xc @ w).astype(dtype, copy=False)
                continue
        out[:, g] = z @ cxy.astype(dtype, copy=False)
    out = out.astype(float, copy=False)
    out += (sy / n)[None, :]
    return out
