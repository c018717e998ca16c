"""HzE demand model: expected HzE cases per Sozialraum with honest uncertainty.

Model (log link, exposure offset)::

    log E[y_i] = log(e_i) + b0 + sum_j b_j * z_ij

``y_i`` HzE cases, ``e_i`` residents under 21 (exposure, persons), ``z_ij`` the
predictors standardised to mean 0 / SD 1 over the fitting rows (so ``b_j`` is
the log rate ratio per standard deviation and ``exp(b_j)`` the incidence rate
ratio, IRR). Families:

* Poisson GLM (McCullagh & Nelder 1989, ch. 6);
* negative binomial NB2, Var = mu + alpha * mu² (Cameron & Trivedi 2013,
  ch. 3). ``alpha`` is the maximum-likelihood estimate of statsmodels'
  ``discrete.NegativeBinomial`` (NB2); the coefficients, standard errors,
  confidence intervals and p-values are then those of
  ``statsmodels.GLM(family=NegativeBinomial(alpha=alpha_))``. The GLM
  coefficients at the ML alpha are the joint ML coefficients; the standard
  errors are conditional on alpha, which is asymptotically the same because
  beta and alpha are orthogonal in the NB2 information matrix (Lawless 1987,
  *Canadian Journal of Statistics* 15, 209–225).

Overdispersion is tested with the Cameron & Trivedi (1990, *Journal of
Econometrics* 46, 347–364) auxiliary regression ((y - mu)² - y) / mu = a * mu
+ error (one-sided t test of a > 0) on the Poisson fit; ``family="auto"``
switches to NB2 when p < 0.05.

Everything is pure: DataFrames in, new objects out, deterministic for a seed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from types import SimpleNamespace

from scipy import stats
from scipy.special import xlogy
from numbers import Integral, Real

from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils._param_validation import InvalidParameterError, Interval, StrOptions, validate_parameter_constraints
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data
from statsmodels.discrete.discrete_model import NegativeBinomial as _NegativeBinomial
from statsmodels.genmod import families as _families
from statsmodels.genmod.generalized_linear_model import GLM as _GLM
from statsmodels.regression.linear_model import OLS as _OLS

# the submodules used, not statsmodels.api (which imports all of statsmodels: about 4× the import time)
sm = SimpleNamespace(OLS=_OLS, GLM=_GLM, families=_families, NegativeBinomial=_NegativeBinomial)

from geoplan import fmt
from geoplan.errors import GeoplanError, QANote

STAGE = "bedarfsmodell"
FAMILIES = ("auto", "poisson", "negbin")
_ALPHA_MIN, _ALPHA_MAX = 1e-8, 1e3


# ---------------------------------------------------------------------------
# helpers: deviance, row naming, guard rails
# ---------------------------------------------------------------------------


def poisson_deviance(y, mu) -> float:
    """Poisson deviance 2 * sum(y log(y/mu) - (y - mu)) (McCullagh & Nelder 1989, 2.3)."""
    y = np.asarray(y, dtype=float)
    mu = np.asarray(mu, dtype=float)
    return float(2.0 * np.sum(xlogy(y, y) - xlogy(y, mu) - (y - mu)))


def deviance_explained(y, mu, exposure=None) -> float:
    """D² = 1 - D(y, mu) / D(y, mu0), Poisson deviance.

    ``mu0`` is the null model of a constant rate: exposure × sum(y)/sum(exposure)
    (the "citywide rate × population" planners use). The Poisson deviance is
    used for every model and baseline so that the figures are comparable.
    """
    y = np.asarray(y, dtype=float)
    e = np.ones_like(y) if exposure is None else np.asarray(exposure, dtype=float)
    mu0 = e * y.sum() / e.sum()
    d0 = poisson_deviance(y, mu0)
    if d0 <= 0:
        return float("nan")
    return 1.0 - poisson_deviance(y, mu) / d0


def mae_per_1000(y, mu, exposure) -> float:
    """Mean absolute error in cases per 1,000 under 21.

    Defined as 1000 × sum|y - mu| / sum(exposure): the per-area absolute error of
    the rate per 1,000 under 21, averaged with the population as weight (so
    small, noisy areas do not dominate).
    """
    y = np.asarray(y, dtype=float)
    return float(1000.0 * np.abs(y - np.asarray(mu, dtype=float)).sum() / np.asarray(exposure, dtype=float).sum())


def _rows(index, mask, limit: int = 10) -> str:
    bad = list(pd.Index(index)[np.asarray(mask, dtype=bool)])
    text = ", ".join(str(b) for b in bad[:limit])
    if len(bad) > limit:
        text += f" … ({len(bad)} insgesamt)"
    return text


def _check_counts(y: pd.Series, column: str) -> np.ndarray:
    values = pd.to_numeric(y, errors="coerce").astype(float)
    raw_missing = pd.isna(y).to_numpy()
    bad_text = values.isna().to_numpy() & ~raw_missing
    if raw_missing.any() or bad_text.any():
        raise GeoplanError(
            f"Fallzahlen in Spalte '{column}' fehlen oder sind keine Zahlen.",
            location=f"Spalte '{column}', Sozialräume {_rows(y.index, raw_missing | bad_text)}",
            expected="ganze Zahl ≥ 0 in jeder Zeile",
            found="leer oder Text",
            hint="Fehlende Fallzahlen ergänzen oder die Sozialräume aus dem Modell nehmen.",
            message_en=f"Case counts in column '{column}' are missing or not numbers.",
            location_en=f"column '{column}', Sozialräume {_rows(y.index, raw_missing | bad_text)}",
            expected_en="whole number ≥ 0 in every row", found_en="empty or text",
            hint_en="Fill in the missing case counts or take the Sozialräume out of the model.",
        )
    v = values.to_numpy()
    frac = np.abs(v - np.round(v)) > 1e-9
    for bad, message, expected, hint, message_en, expected_en, hint_en in (
        (v < 0, "Negative Fallzahlen", "ganze Zahl ≥ 0", "Fallzahlen prüfen; negative Werte sind keine Fälle.",
         "Negative case counts", "whole number ≥ 0", "Check the case counts; negative values are not cases."),
        (
            frac,
            "Nicht ganzzahlige Fallzahlen",
            "ganze Zahl ≥ 0 (Fälle, keine Quoten)",
            "Fälle als Anzahl liefern; Quoten je 1.000 gehören nicht in die Fallspalte.",
            "Case counts that are not whole numbers",
            "whole number ≥ 0 (cases, not rates)",
            "Give cases as counts; rates per 1,000 do not belong in the case column.",
        ),
    ):
        if bad.any():
            raise GeoplanError(
                f"{message} in Spalte '{column}'.",
                location=f"Spalte '{column}', Sozialräume {_rows(y.index, bad)}",
                expected=expected,
                found=", ".join(f"{x:g}" for x in v[bad][:5]),
                hint=hint, message_en=f"{message_en} in column '{column}'.",
                location_en=f"column '{column}', Sozialräume {_rows(y.index, bad)}",
                expected_en=expected_en, hint_en=hint_en,
            )
    return np.round(v)


def _check_exposure(e: pd.Series, column: str) -> np.ndarray:
    v = pd.to_numeric(e, errors="coerce").astype(float).to_numpy()
    bad = ~np.isfinite(v) | (v <= 0)
    if bad.any():
        found = ", ".join("leer" if not np.isfinite(x) else f"{x:g}" for x in v[bad][:5])
        raise GeoplanError(
            f"Bezugsgröße (Exposition) in Spalte '{column}' ist null, negativ oder fehlt.",
            location=f"Spalte '{column}', Sozialräume {_rows(e.index, bad)}",
            expected=f"Bezugsbevölkerung > 0 ({column})",
            found=found,
            hint="Sozialräume ohne junge Einwohner aus dem Modell nehmen oder die Einwohnerzahl ergänzen.",
            message_en=f"The exposure in column '{column}' is zero, negative or missing.",
            location_en=f"column '{column}', Sozialräume {_rows(e.index, bad)}",
            expected_en=f"reference population > 0 ({column})",
            hint_en="Take Sozialräume without young residents out of the model or fill in the population.",
        )
    return v


def _check_predictors(X: pd.DataFrame, require_variation: bool = True) -> np.ndarray:
    if X.shape[1] == 0:
        raise GeoplanError(
            "Das Bedarfsmodell hat keine Prädiktoren.",
            expected="mindestens eine Indikatorspalte",
            hint="In der Konfiguration die Indikatoren des Bedarfsmodells angeben.",
            message_en="The demand model has no predictors.", expected_en="at least one indicator column",
            hint_en="Give the indicators of the demand model in the configuration.",
        )
    out = np.empty(X.shape, dtype=float)
    for j, col in enumerate(X.columns):
        v = pd.to_numeric(X[col], errors="coerce").astype(float).to_numpy()
        nan = ~np.isfinite(v)
        if nan.any():
            raise GeoplanError(
                f"Prädiktor '{col}' hat fehlende oder ungültige Werte.",
                location=f"Spalte '{col}', Sozialräume {_rows(X.index, nan)}",
                expected="eine Zahl in jeder Zeile",
                found="leer, Text oder unendlich",
                hint="Werte ergänzen (z. B. über die Flächeninterpolation) oder den Indikator weglassen.",
                message_en=f"Predictor '{col}' has missing or invalid values.",
                location_en=f"column '{col}', Sozialräume {_rows(X.index, nan)}",
                expected_en="a number in every row", found_en="empty, text or infinite",
                hint_en="Fill in the values (e.g. through the areal interpolation) or leave the indicator out.",
            )
        if require_variation and np.ptp(v) == 0:
            raise GeoplanError(
                f"Prädiktor '{col}' ist konstant und trägt keine Information.",
                location=f"Spalte '{col}'",
                expected="unterschiedliche Werte zwischen den Sozialräumen",
                found=f"überall {v[0]:g}",
                hint="Indikator aus dem Bedarfsmodell nehmen.",
                message_en=f"Predictor '{col}' is constant and carries no information.",
                expected_en="different values between the Sozialräume", found_en=f"{v[0]:g} everywhere",
                hint_en="Take the indicator out of the demand model.",
            )
        out[:, j] = v
    return out


def _check_size(n: int, k: int) -> None:
    if n < 5 * k:
        raise GeoplanError(
            "Zu wenige Sozialräume für die Zahl der Modellparameter.",
            location="Bedarfsmodell",
            expected=f"mindestens 5 Sozialräume je Parameter, also ≥ {5 * k} für {k} Parameter",
            found=f"{n} Sozialräume",
            hint="Weniger Indikatoren verwenden oder Sozialräume zusammenfassen.",
            message_en="Too few Sozialräume for the number of model parameters.", location_en="demand model",
            expected_en=f"at least 5 Sozialräume per parameter, i.e. ≥ {5 * k} for {k} parameters",
            found_en=f"{n} Sozialräume", hint_en="Use fewer indicators or merge Sozialräume.",
        )


def overdispersion_test(y, mu) -> dict:
    """Cameron & Trivedi (1990) regression test for overdispersion (NB2 alternative).

    OLS without constant of ((y - mu)² - y) / mu on mu; H0: a = 0 (Poisson),
    H1: a > 0. Returns statistic (t), one-sided p_value, the moment estimate
    ``alpha`` and ``method``.
    """
    y = np.asarray(y, dtype=float)
    mu = np.asarray(mu, dtype=float)
    aux = ((y - mu) ** 2 - y) / mu
    ols = sm.OLS(aux, mu[:, None]).fit()
    t = float(ols.tvalues[0])
    return {
        "statistic": t,
        "p_value": float(stats.t.sf(t, df=max(len(y) - 1, 1))),
        "alpha": float(ols.params[0]),
        "method": "Cameron & Trivedi (1990), Hilfsregression, einseitiger t-Test",
    }


# ---------------------------------------------------------------------------
# the estimator
# ---------------------------------------------------------------------------


class _InvalidParameter(GeoplanError, InvalidParameterError):
    """A bad estimator parameter: a German :class:`GeoplanError` that scikit-learn recognises
    as its ``InvalidParameterError`` (a ``ValueError`` and ``TypeError``)."""


# German wording of each parameter's constraint (what the user should give)
_PARAMETER_TEXT = {
    "family": ("Unbekannte Modellfamilie", " | ".join(FAMILIES)),
    "alpha": ("Ungültiger Dispersionsparameter alpha", "Zahl > 0, oder leer (Maximum-Likelihood-Schätzung)"),
    "standardize": ("Ungültiger Wert für standardize", "true oder false"),
    "maxiter": ("Ungültige Höchstzahl der Iterationen (maxiter)", "ganze Zahl ≥ 1"),
    "tol": ("Ungültige Toleranz (tol)", "Zahl > 0"),
    "exposure_col": ("Ungültiger Spaltenname für die Exposition (exposure_col)", "Spaltenname oder leer"),
}


def _check_target(y, rows, column: str) -> np.ndarray:
    """Counts ≥ 0 (non-integer values are allowed, as in scikit-learn's PoissonRegressor).

    The pipeline checks that HzE counts are whole numbers before (:func:`fit_need_model`).
    """
    v = np.asarray(y, dtype=float).ravel()
    neg = v < 0
    if neg.any():
        where = rows if rows is not None and len(rows) == len(v) else pd.RangeIndex(len(v))
        raise GeoplanError(
            "Negative Fallzahlen: Zähldaten müssen ≥ 0 sein (Negative values in data passed to HzEDemandModel).",
            location=f"Spalte '{column}', Zeilen {_rows(where, neg)}",
            expected="Zahl ≥ 0",
            found=", ".join(f"{x:g}" for x in v[neg][:5]),
            hint="Fallzahlen prüfen; negative Werte sind keine Fälle.",
            message_en="Negative values in data passed to HzEDemandModel: counts must be ≥ 0.",
            hint_en="Check the case counts; negative values are not cases.",
        )
    return v


class HzEDemandModel(RegressorMixin, BaseEstimator):
    """Count regression of HzE cases with a log exposure offset (scikit-learn API).

    A scikit-learn regressor (``sklearn.base.is_regressor`` is True; it passes
    ``sklearn.utils.estimator_checks.parametrize_with_checks``, see
    tests/test_model.py): parameters are checked against
    ``_parameter_constraints`` when ``fit`` is called, inputs by
    ``sklearn.utils.validation.validate_data``. The target may be any number
    ≥ 0 (like ``PoissonRegressor``); the pipeline's :func:`fit_need_model`
    additionally insists on whole case counts, enough Sozialräume per
    parameter and predictors that vary.

    Parameters
    ----------
    family : "auto" | "poisson" | "negbin"
        "auto" fits Poisson, tests overdispersion (Cameron & Trivedi 1990) and
        switches to NB2 when p < 0.05; the reason is kept in ``family_reason_``.
    alpha : float > 0 or None
        NB2 overdispersion; None = maximum likelihood. Ignored for Poisson.
    standardize : bool
        Scale predictors to mean 0 / SD 1 (population SD, ddof=0) so the
        coefficients read per standard deviation. Binary 0/1 columns (fixed
        effect dummies) and constant columns are left as they are: a dummy's
        coefficient is the log rate ratio against the reference group.
    maxiter, tol : IRLS settings passed to ``statsmodels.GLM.fit``.
    exposure_col : str or None
        Name of a column of ``X`` holding the exposure (persons under 21). It
        is taken out of the predictors. This lets scikit-learn's
        ``cross_val_score`` / ``cross_val_predict`` pass the exposure without
        metadata routing; the explicit ``exposure=`` argument wins otherwise.

    Attributes (after fit)
    ----------------------
    coef_, intercept_ : per SD of the predictor (when standardised), log scale.
    coef_raw_, intercept_raw_ : per unit of the raw predictor.
    n_features_in_, feature_names_in_ (only when fitted on a DataFrame with
    string column names), terms_ (predictor names: the column names, or
    x0, x1, … for arrays), scaler_mean_, scaler_scale_,
    family_ ("poisson" | "negbin"), family_reason_, alpha_ (NB2, else 0.0),
    dispersion_ (Pearson chi² / df of the final model),
    overdispersion_test_ (dict), bse_, conf_int_ (DataFrame lower/upper, 95 %),
    pvalues_, sm_result_ (statsmodels GLMResults), poisson_result_.
    bse_, conf_int_ and pvalues_ are indexed by "const" and ``terms_``.
    """

    _parameter_constraints: dict = {
        "family": [StrOptions(set(FAMILIES))],
        "alpha": [Interval(Real, 0, None, closed="neither"), None],
        "standardize": ["boolean"],
        "maxiter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "exposure_col": [str, None],
    }

    def __init__(self, family="auto", alpha=None, standardize=True, maxiter=100, tol=1e-10, exposure_col=None):
        self.family = family
        self.alpha = alpha
        self.standardize = standardize
        self.maxiter = maxiter
        self.tol = tol
        self.exposure_col = exposure_col

    def _validate_params(self):
        """scikit-learn's parameter validation, reported as a German GeoplanError naming the parameter."""
        params = self.get_params(deep=False)
        for name, constraints in self._parameter_constraints.items():
            try:
                validate_parameter_constraints({name: constraints}, {name: params[name]},
                                               caller_name=type(self).__name__)
            except InvalidParameterError as err:
                what, expected = _PARAMETER_TEXT[name]
                raise _InvalidParameter(
                    f"{what}: {params[name]!r}.",
                    location=f"bedarfsmodell.{name}",
                    expected=expected,
                    found=repr(params[name]),
                    message_en=str(err),
                ) from None

    # -- input handling ---------------------------------------------------
    def _inputs(self, X, exposure, *, reset: bool):
        """Predictors as a float array (validated the scikit-learn way), exposure and row names.

        DataFrames are first checked with German messages naming column and
        rows; the exposure column (``exposure_col``) is taken out; at predict
        time the columns are picked by the names seen in ``fit``.
        """
        rows = None
        if isinstance(X, pd.DataFrame):
            if self.exposure_col is not None and self.exposure_col in X.columns:
                if exposure is None:
                    exposure = X[self.exposure_col]
                X = X.drop(columns=[self.exposure_col])
            if not reset and hasattr(self, "feature_names_in_"):
                missing = [c for c in self.feature_names_in_ if c not in X.columns]
                if missing:
                    raise GeoplanError(
                        "Für die Vorhersage fehlen Prädiktoren, mit denen das Modell geschätzt wurde.",
                        location=", ".join(f"'{c}'" for c in missing),
                        expected=", ".join(map(str, self.feature_names_in_)),
                        found=", ".join(map(str, X.columns)),
                        message_en="Predictors the model was fitted with are missing for the prediction.",
                    )
                X = X[list(self.feature_names_in_)]
            if X.shape[1]:
                _check_predictors(X, require_variation=False)
            rows = X.index
        Xv = validate_data(self, X, reset=reset, dtype=np.float64, accept_sparse=False,
                           ensure_min_samples=2 if reset else 1)
        if exposure is None:
            ev = np.ones(Xv.shape[0])
        else:
            if not isinstance(exposure, pd.Series):
                values = np.asarray(exposure, dtype=float).ravel()
                exposure = pd.Series(values, index=rows if rows is not None and len(rows) == len(values) else None)
            if len(exposure) != Xv.shape[0]:
                raise GeoplanError(
                    "Exposition und Prädiktoren haben unterschiedlich viele Zeilen.",
                    expected=f"{Xv.shape[0]} Zeilen", found=f"{len(exposure)} Expositionen",
                    message_en="Exposure and predictors have different numbers of rows.",
                    expected_en=f"{Xv.shape[0]} rows",
                    found_en=f"{len(exposure)} exposures",
                )
            ev = _check_exposure(exposure, getattr(exposure, "name", None) or "pop_u21")
        return Xv, ev, rows

    def _design(self, Xv: np.ndarray) -> np.ndarray:
        return np.column_stack([np.ones(len(Xv)), (Xv - self.scaler_mean_) / self.scaler_scale_])

    # -- sklearn API ------------------------------------------------------
    def fit(self, X, y, exposure=None):
        """Fit on predictors ``X`` (DataFrame or array), counts ``y`` (≥ 0) and exposure (persons under 21, > 0)."""
        self._validate_params()
        if y is None:
            raise GeoplanError("Fallzahlen fehlen (HzEDemandModel requires y to be passed, but the target y is None).",
                               expected="Fallzahlen y, eine je Zeile von X",
                               message_en="HzEDemandModel requires y to be passed, but the target y is None.")
        Xv, ev, rows = self._inputs(X, exposure, reset=True)
        if len(np.asarray(y).ravel()) != Xv.shape[0]:
            raise GeoplanError(
                "Fallzahlen und Prädiktoren haben unterschiedlich viele Zeilen.",
                expected=f"{Xv.shape[0]} Zeilen", found=f"{len(np.asarray(y).ravel())} Fallzahlen",
                message_en="Case counts and predictors have different numbers of rows.",
                expected_en=f"{Xv.shape[0]} rows",
                found_en=f"{len(np.asarray(y).ravel())} case counts",
            )
        y_checked = column_or_1d(check_array(y, ensure_2d=False, dtype=np.float64, input_name="y"), warn=True)
        yv = _check_target(y_checked, rows, getattr(y, "name", None) or "hze_cases")

        self.terms_ = [str(c) for c in getattr(self, "feature_names_in_", [f"x{j}" for j in range(Xv.shape[1])])]
        mean = Xv.mean(axis=0)
        scale = Xv.std(axis=0)
        if self.standardize:
            keep = np.all((Xv == 0) | (Xv == 1), axis=0) | (scale == 0)
            mean = np.where(keep, 0.0, mean)
            scale = np.where(keep, 1.0, scale)
        else:
            mean = np.zeros_like(mean)
            scale = np.ones_like(scale)
        self.scaler_mean_, self.scaler_scale_ = mean, scale
        design = self._design(Xv)
        offset = np.log(ev)
        names = ["const", *self.terms_]

        pois = sm.GLM(yv, design, family=sm.families.Poisson(), offset=offset).fit(maxiter=self.maxiter, tol=self.tol)
        self.poisson_result_ = pois
        self.overdispersion_test_ = overdispersion_test(yv, pois.fittedvalues)
        p = self.overdispersion_test_["p_value"]
        if self.family == "auto":
            family = "negbin" if p < 0.05 else "poisson"
            self.family_reason_ = (
                f"Überdispersion nachgewiesen (Cameron-Trivedi-Test, {fmt.pvalue(p)}): negatives Binomialmodell (NB2)."
                if family == "negbin"
                else f"Keine Überdispersion nachweisbar (Cameron-Trivedi-Test, {fmt.pvalue(p)}): Poisson-Modell."
            )
            self.family_reason_en_ = (
                f"Overdispersion found (Cameron-Trivedi test, {fmt.pvalue(p, 'en')}): negative binomial model (NB2)."
                if family == "negbin"
                else f"No overdispersion found (Cameron-Trivedi test, {fmt.pvalue(p, 'en')}): Poisson model."
            )
        else:
            family = self.family
            self.family_reason_ = f"Modellfamilie vorgegeben: {family}."
            self.family_reason_en_ = f"Model family set in the configuration: {family}."
        self.family_ = family

        if family == "poisson":
            res = pois
            self.alpha_ = 0.0
        else:
            alpha = self._estimate_alpha(yv, design, offset, pois.params) if self.alpha is None else float(self.alpha)
            self.alpha_ = alpha
            res = sm.GLM(
                yv, design, family=sm.families.NegativeBinomial(alpha=alpha), offset=offset
            ).fit(start_params=pois.params, maxiter=self.maxiter, tol=self.tol)
        self.sm_result_ = res
        if family == "negbin":
            # Likelihood-ratio test NB2 vs Poisson; alpha = 0 lies on the boundary, so the null
            # distribution is a 50:50 mixture of 0 and chi²(1) (Cameron & Trivedi 2013, 3.4).
            lr = max(2.0 * (res.llf - pois.llf), 0.0)
            self.overdispersion_test_ = {
                **self.overdispersion_test_,
                "lr_statistic": float(lr),
                "lr_p_value": float(0.5 * stats.chi2.sf(lr, 1)) if lr > 0 else 0.5,
            }
        params = np.asarray(res.params)
        self.intercept_ = float(params[0])
        self.coef_ = params[1:].copy()
        self.coef_raw_ = self.coef_ / self.scaler_scale_
        self.intercept_raw_ = float(self.intercept_ - np.sum(self.coef_raw_ * self.scaler_mean_))
        self.bse_ = pd.Series(np.asarray(res.bse), index=names)
        ci = np.asarray(res.conf_int(alpha=0.05))
        self.conf_int_ = pd.DataFrame(ci, index=names, columns=["lower", "upper"])
        self.pvalues_ = pd.Series(np.asarray(res.pvalues), index=names)
        self.dispersion_ = float(res.pearson_chi2 / res.df_resid) if res.df_resid > 0 else float("nan")
        self.n_obs_ = len(yv)
        return self

    def _estimate_alpha(self, y, design, offset, start) -> float:
        """ML estimate of the NB2 alpha (statsmodels discrete NegativeBinomial, nb2)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                nb = sm.NegativeBinomial(y, design, offset=offset, loglike_method="nb2").fit(
                    start_params=np.r_[start, 0.1], method="newton", maxiter=200, disp=0
                )
                alpha = float(nb.params[-1])
                ok = bool(nb.mle_retvals.get("converged", False)) and np.isfinite(alpha)
            except Exception:  # noqa: BLE001 - fall back to the profile likelihood below
                ok = False
            if not ok:
                # Profile likelihood over log alpha: same maximum, slower but robust.
                from scipy.optimize import minimize_scalar

                def nll(la):
                    fam = sm.families.NegativeBinomial(alpha=float(np.exp(la)))
                    return -sm.GLM(y, design, family=fam, offset=offset).fit(start_params=start).llf

                alpha = float(np.exp(minimize_scalar(nll, bounds=(np.log(1e-6), np.log(100)), method="bounded").x))
        return float(np.clip(alpha, _ALPHA_MIN, _ALPHA_MAX))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        tags.input_tags.allow_nan = False
        return tags

    def predict(self, X, exposure=None):
        """Expected cases (rate per person under 21 when no exposure is given)."""
        check_is_fitted(self, "coef_")
        Xv, ev, _ = self._inputs(X, exposure, reset=False)
        return np.exp(self._design(Xv) @ np.r_[self.intercept_, self.coef_] + np.log(ev))

    def score(self, X, y, exposure=None):
        """Deviance explained D² (Poisson deviance, null = constant rate on the scored data)."""
        check_is_fitted(self, "coef_")
        Xv, ev, _ = self._inputs(X, exposure, reset=False)
        mu = np.exp(self._design(Xv) @ np.r_[self.intercept_, self.coef_] + np.log(ev))
        return deviance_explained(np.asarray(y, dtype=float).ravel(), mu, ev)

    # -- inference --------------------------------------------------------
    def summary_frame(self) -> pd.DataFrame:
        """Coefficient table: term, coef, se, z, p_value, ci_low, ci_high, irr, irr_low, irr_high.

        Coefficients are log rate ratios per SD of the predictor (when
        standardised); irr = exp(coef) with the Wald 95 % interval.
        """
        res = self.sm_result_
        terms = ["const", *self.terms_]
        coef = np.asarray(res.params)
        ci = self.conf_int_.to_numpy()
        return pd.DataFrame(
            {
                "term": terms,
                "coef": coef,
                "se": np.asarray(res.bse),
                "z": np.asarray(res.tvalues),
                "p_value": np.asarray(res.pvalues),
                "ci_low": ci[:, 0],
                "ci_high": ci[:, 1],
                "irr": np.exp(coef),
                "irr_low": np.exp(ci[:, 0]),
                "irr_high": np.exp(ci[:, 1]),
            }
        )

    def design_matrix(self, X) -> np.ndarray:
        """The standardised design matrix (constant first) as used by ``sm_result_``."""
        check_is_fitted(self, "coef_")
        return self._design(self._inputs(X, None, reset=False)[0])

    def sample_counts(self, X, exposure, n_draws: int = 1000, seed: int = 0) -> np.ndarray:
        """Parametric bootstrap draws of counts, shape (n_draws, n_rows).

        Coefficients are drawn from the multivariate normal N(beta_hat, Cov)
        of the statsmodels fit, then counts from Poisson(mu) or NB2(mu, alpha_)
        (gamma-Poisson mixture). Alpha itself is held at its estimate.
        """
        check_is_fitted(self, "coef_")
        Xv, ev, _ = self._inputs(X, exposure, reset=False)
        rng = np.random.default_rng(seed)
        beta = np.r_[self.intercept_, self.coef_]
        cov = np.asarray(self.sm_result_.cov_params())
        draws = rng.multivariate_normal(beta, cov, size=n_draws, method="svd")
        design = self._design(Xv)
        mu = np.exp(draws @ design.T + np.log(ev)[None, :])
        if self.family_ == "negbin" and self.alpha_ > _ALPHA_MIN:
            mu = rng.gamma(shape=1.0 / self.alpha_, scale=self.alpha_ * mu)
        return rng.poisson(mu)


# ---------------------------------------------------------------------------
# funnel plot limits, calibration, Moran's I
# ---------------------------------------------------------------------------


def _interpolated_quantile(dist, p) -> np.ndarray:
    r = dist.ppf(p)
    f_r = dist.cdf(r)
    f_r1 = dist.cdf(r - 1)
    denom = np.where(f_r - f_r1 > 0, f_r - f_r1, 1.0)
    return np.maximum(r - (f_r - p) / denom, 0.0)


def poisson_limits(expected, p) -> np.ndarray:
    """Exact Poisson control limit of the observed count for probability ``p``.

    Spiegelhalter (2005), *Funnel plots for comparing institutional
    performance*, Statistics in Medicine 24, 1185–1202, appendix A.1.1: with
    r_p the p-quantile of Poisson(E), the limit is r_p - a with
    a = (F(r_p) - p) / (F(r_p) - F(r_p - 1)) (interpolation of the step
    function). Divide by E for the limit of the ratio observed/expected.
    """
    return _interpolated_quantile(stats.poisson(np.asarray(expected, dtype=float)), p)


def negbin_limits(expected, alpha, p) -> np.ndarray:
    """Control limit as :func:`poisson_limits` but for NB2(E, alpha), Var = E + alpha E².

    Overdispersion-aware funnel limits in the spirit of Spiegelhalter (2005,
    section 3.5), here with the model's own NB2 distribution instead of a
    multiplicative dispersion factor.
    """
    e = np.asarray(expected, dtype=float)
    size = 1.0 / alpha
    return _interpolated_quantile(stats.nbinom(size, size / (size + e)), p)


def funnel_table(observed, expected, index=None, alpha: float = 0.0) -> pd.DataFrame:
    """Observed/expected ratio with exact Poisson funnel limits (95 %, 99.8 %).

    ``flag`` is "auffällig hoch"/"auffällig niedrig" outside the 99.8 % limits
    (about 3 SD, Spiegelhalter 2005), ``beyond95`` marks areas outside the
    95 % limits. The Poisson limits express count noise only; with
    overdispersion (``alpha`` > 0, NB2) the columns ``lo95_nb``, ``hi95_nb``,
    ``lo998_nb``, ``hi998_nb`` and ``flag_nb`` give the wider limits of the
    NB2 distribution, which are the fairer screen for "unusual" areas.
    """
    o = np.asarray(observed, dtype=float)
    e = np.asarray(expected, dtype=float)
    out = pd.DataFrame({"observed": o, "expected": e, "ratio": o / e}, index=index)
    levels = {"95": (0.025, 0.975), "998": (0.001, 0.999)}
    for name, (lo_p, hi_p) in levels.items():
        out[f"lo{name}"] = poisson_limits(e, lo_p) / e
        out[f"hi{name}"] = poisson_limits(e, hi_p) / e
    out["beyond95"] = (out["ratio"] > out["hi95"]) | (out["ratio"] < out["lo95"])
    out["flag"] = np.select(
        [out["ratio"] > out["hi998"], out["ratio"] < out["lo998"]], ["auffällig hoch", "auffällig niedrig"], ""
    )
    if alpha and alpha > _ALPHA_MIN:
        for name, (lo_p, hi_p) in levels.items():
            out[f"lo{name}_nb"] = negbin_limits(e, alpha, lo_p) / e
            out[f"hi{name}_nb"] = negbin_limits(e, alpha, hi_p) / e
        out["flag_nb"] = np.select(
            [out["ratio"] > out["hi998_nb"], out["ratio"] < out["lo998_nb"]], ["auffällig hoch", "auffällig niedrig"], ""
        )
    return out


def calibration_table(observed, expected, exposure, n_bins: int = 10) -> pd.DataFrame:
    """Calibration by decile of the expected rate per 1,000 under 21.

    Columns: decile (1 = lowest expected rate), n, mean_expected,
    mean_observed (cases per area), rate_expected_per_1000,
    rate_observed_per_1000 (sum of cases / sum of exposure × 1000).
    """
    o = np.asarray(observed, dtype=float)
    e = np.asarray(expected, dtype=float)
    x = np.asarray(exposure, dtype=float)
    rate = e / x
    bins = min(n_bins, len(np.unique(rate)))
    dec = pd.qcut(pd.Series(rate).rank(method="first"), bins, labels=False) + 1
    df = pd.DataFrame({"decile": dec.to_numpy(), "o": o, "e": e, "x": x})
    g = df.groupby("decile")
    out = pd.DataFrame(
        {
            "n": g.size(),
            "mean_expected": g["e"].mean(),
            "mean_observed": g["o"].mean(),
            "rate_expected_per_1000": 1000 * g["e"].sum() / g["x"].sum(),
            "rate_observed_per_1000": 1000 * g["o"].sum() / g["x"].sum(),
        }
    ).reset_index()
    return out


def queen_neighbours(geometry) -> dict[int, list[int]]:
    """Queen contiguity as libpysal's ``Queen`` builds it, in the row order of ``geometry`` (0 … n-1):
    two areas are neighbours when their boundaries (outer rings, holes, every part) share a vertex with
    exactly the same coordinates. Vertices are matched by sorting all coordinates once instead of
    libpysal's Python dictionary of vertex tuples; neighbour lists are ascending."""
    import geopandas as gpd
    import shapely

    geoms = np.asarray(gpd.GeoSeries(geometry).array, dtype=object)
    n = len(geoms)
    coords, owner = shapely.get_coordinates(shapely.boundary(geoms), return_index=True)
    nbrs: list[set[int]] = [set() for _ in range(n)]
    if len(coords):
        x, y = coords[:, 0], coords[:, 1]
        order = np.lexsort((owner, y, x))
        x, y, owner = x[order], y[order], owner[order]
        new_vertex = np.concatenate([[True], (x[1:] != x[:-1]) | (y[1:] != y[:-1])])
        # one entry per (vertex, area)
        keep = new_vertex | np.concatenate([[True], owner[1:] != owner[:-1]])
        vertex = np.cumsum(new_vertex[keep]) - 1
        owner = owner[keep]
        size = np.bincount(vertex)
        first = np.flatnonzero(np.concatenate([[True], vertex[1:] != vertex[:-1]]))
        pairs = first[size[vertex[first]] == 2]
        for a, b in zip(owner[pairs].tolist(), owner[pairs + 1].tolist()):
            nbrs[a].add(b)
            nbrs[b].add(a)
        for start in first[size[vertex[first]] > 2].tolist():
            areas = owner[start:start + size[vertex[start]]].tolist()
            for a in areas:
                nbrs[a].update(areas)
                nbrs[a].discard(a)
    return {i: sorted(s) for i, s in enumerate(nbrs)}


def queen_weights(geometry):
    """Row-standardised queen-contiguity weights (libpysal ``W``) in the row order of ``geometry``
    (:func:`queen_neighbours`: the neighbours libpysal's ``Queen.from_dataframe`` finds)."""
    from libpysal.weights import W

    neighbours = queen_neighbours(geometry)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = W(neighbours, ids=list(neighbours), silence_warnings=True)
    w.transform = "r"
    return w


def morans_i(values, geometry, permutations: int = 999, seed: int = 0, alpha: float = 0.05) -> dict:
    """Moran's I of ``values`` on a queen-contiguity graph (row-standardised), computed as esda.Moran does.

    Areas without neighbours (islands) are left out. The p-value is the
    pseudo p-value of ``permutations`` random permutations (seeded; Anselin
    1995 / Cliff & Ord 1981), ``significant`` when p < ``alpha``.

    The statistic and the permutations follow ``esda.Moran`` step by step (same sparse matrix, the same
    draws of numpy's global generator, the same sums), without importing esda and libpysal (0.6 s):
    tests/test_tables_fast.py checks I, p and z against esda.
    """
    import scipy.sparse

    v = np.asarray(values, dtype=float)
    neighbours = queen_neighbours(geometry)
    islands = [i for i, nb in neighbours.items() if not nb]
    keep = [i for i in range(len(v)) if neighbours[i]]
    pos = {i: j for j, i in enumerate(keep)}
    n = len(keep)
    y = v[keep].flatten()
    card = [len(neighbours[i]) for i in keep]
    row = np.repeat(np.arange(n), card)
    col = np.array([pos[j] for i in keep for j in neighbours[i]], dtype=int)
    data = np.repeat(1.0 / np.array(card, dtype=float), card)  # libpysal: each weight 1.0 / row sum
    w = scipy.sparse.csr_matrix((data, (row, col)), shape=(n, n))  # as libpysal's W.sparse (transform "r")
    s0 = w.sum()
    z = y - y.mean()
    z2ss = (z * z).sum()

    def calc(zz):
        return n / s0 * (zz * (w * zz)).sum() / z2ss

    i_obs = calc(z)
    state = np.random.get_state()
    try:
        # esda draws permutations from numpy's global generator; seed it and restore the caller's state.
        np.random.seed(seed)
        sim = np.array([calc(np.random.permutation(z)) for _ in range(permutations)])
    finally:
        np.random.set_state(state)
    larger = (sim >= i_obs).sum()
    if (permutations - larger) < larger:
        larger = permutations - larger
    p_sim = (larger + 1.0) / (permutations + 1.0)
    ei_sim = sim.sum() / permutations
    with np.errstate(divide="ignore", invalid="ignore"):
        z_sim = (i_obs - ei_sim) / np.array(sim).std()
    return {
        "I": float(i_obs),
        "expected_I": float(-1.0 / (n - 1)),
        "z": float(z_sim),
        "p_value": float(p_sim),
        "significant": bool(p_sim < alpha),
        "n": int(n),
        "islands": len(islands),
        "permutations": int(permutations),
        "residuals": "Pearson-Residuen",
        "weights": "Queen-Kontiguität, zeilenstandardisiert",
    }


# ---------------------------------------------------------------------------
# fit_need_model: the pipeline stage
# ---------------------------------------------------------------------------


@dataclass
class NeedModelResult:
    """Result of :func:`fit_need_model`.

    estimator : the fitted :class:`HzEDemandModel` (statsmodels results in ``sm_result_``).
    coefficients : term, label (German), coef, se, z, p_value, ci_low, ci_high,
        irr, irr_low, irr_high, predictor_mean, predictor_sd. coef is the log
        rate ratio per SD of the predictor; irr = exp(coef).
    expected : expected HzE cases for the budget year (index = frame index of
        the prediction rows: all rows, or the latest year's rows of a panel).
    intervals : pi_low, pi_high, 95 % prediction interval of the cases
        (parametric bootstrap of the coefficients plus Poisson/NB2 count noise).
    fit : n, k (parameters incl. constant), family, family_reason, dispersion
        (Pearson χ²/df), alpha (NB2, 0 for Poisson), deviance_explained (D²,
        in-sample, Poisson deviance), deviance, loglik, aic, overdispersion
        (dict: statistic, p_value, alpha, method), panel_years, prediction_year.
    cv : index model_kfold, model_blocked, baseline_prev, baseline_rate (rows
        present when computable); columns label (German), deviance_explained
        (out-of-fold D²), mae_per_1000 (cases per 1,000 under 21).
    calibration : by decile of the out-of-fold (k-fold) expected rate: decile,
        n, mean_expected, mean_observed, rate_expected_per_1000,
        rate_observed_per_1000 (all rows, all years of a panel).
    funnel : per prediction row: observed, expected, ratio, lo95, hi95, lo998,
        hi998, beyond95, flag ("auffällig hoch"/"auffällig niedrig"/""), and
        with NB2 also lo95_nb, hi95_nb, lo998_nb, hi998_nb, flag_nb.
    moran : I, expected_I, z, p_value, significant, n, islands, permutations,
        residuals ("Pearson-Residuen"), weights; None without geometry.
    notes : QANote list. residuals : Pearson residuals of the prediction rows
        (y - mu) / sqrt(mu (1 + alpha mu)), for the residual map.
    predictors : design columns in model order (indicators, lag_*, fe_*, jahr_*).
    """

    estimator: HzEDemandModel
    coefficients: pd.DataFrame
    expected: pd.Series
    intervals: pd.DataFrame
    fit: dict
    cv: pd.DataFrame
    calibration: pd.DataFrame
    funnel: pd.DataFrame
    moran: dict | None
    notes: list[QANote] = field(default_factory=list)
    residuals: pd.Series | None = None
    predictors: list[str] = field(default_factory=list)


_CV_LABELS = {
    "model_kfold": "Modell, {k}-fache Kreuzvalidierung",
    "model_blocked": "Modell, räumlich blockiert nach {g}",
    "baseline_prev": "Vorjahresfälle",
    "baseline_rate": "Stadtweite Quote × Bevölkerung unter 21",
}


def _group_word(column: str) -> str:
    """The reader's word for the grouping column (``bezirk`` -> Bezirk), never the code name."""
    from geoplan.report.vocabulary import label

    return label(column, "de", column.replace("_", " ").capitalize())


def _oof(estimator, X, y, e, splits) -> np.ndarray:
    pred = np.full(len(y), np.nan)
    for train, test in splits:
        # the stage's guard rails on every training fold (a fold that fails them ends the CV with a note)
        _check_predictors(X.iloc[train])
        _check_size(len(train), X.shape[1] + 1)
        est = clone(estimator).fit(X.iloc[train], y[train], exposure=e[train])
        pred[test] = est.predict(X.iloc[test], exposure=e[test])
    return pred


def _rate_oof(y, e, splits) -> np.ndarray:
    pred = np.full(len(y), np.nan)
    for train, test in splits:
        pred[test] = e[test] * y[train].sum() / e[train].sum()
    return pred


def fit_need_model(
    frame: pd.DataFrame,
    *,
    cases: str = "hze_cases",
    exposure: str = "pop_u21",
    predictors: list[str],
    family: str = "auto",
    groups: str | None = "bezirk",
    geometry=None,
    cv_folds: int = 5,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float | None = None,
    spatial_lag: str | None = None,
    fixed_effects: str | None = None,
    labels: dict[str, str] | None = None,
    year: str = "year",
    key: str = "key",
    exclude_empty: bool = False,
) -> NeedModelResult:
    """Fit the HzE demand model on the Sozialraum frame and validate it.

    Parameters
    ----------
    frame : one row per Sozialraum (standard columns, see docs/architecture.md),
        or a long panel with a ``year`` column (one row per Sozialraum and year).
    cases, exposure : count column (cases) and exposure column (persons under 21).
    predictors : indicator columns (standardised inside the model).
    family : "auto" | "poisson" | "negbin" (see :class:`HzEDemandModel`).
    groups : column for spatially blocked CV (GroupKFold), e.g. the Bezirk.
    geometry : GeoSeries aligned with ``frame`` (metric CRS); taken from the
        frame when it is a GeoDataFrame. Needed for Moran's I and spatial_lag.
    cv_folds : number of CV folds. n_boot : bootstrap draws for the intervals.
    seed : seed for CV shuffling, bootstrap and Moran permutations.
    alpha : fixed NB2 alpha (None = estimate).
    spatial_lag : column whose queen-contiguity spatial lag (row-standardised
        mean of the neighbours) is added as predictor ``lag_<column>``.
    fixed_effects : group column whose levels enter as dummies (reference =
        first level in sorted order), e.g. Bezirk fixed effects.
    labels : German labels for the coefficient table (column -> label).
    exclude_empty : by default an exposure of zero or missing is refused
        (GeoplanError). With True, areas without residents under 21 *and*
        without cases (parks, airports, suppressed cells) are left out of the
        fit with a QA note and get 0 expected cases and a 0–0 interval; their
        funnel row is empty. An area with cases but no exposure still raises.

    Panel: with more than one year in ``year``, year fixed effects are added
    (reference = latest year) and the budget-year prediction (``expected``,
    ``intervals``, ``funnel``, Moran) uses the rows of the latest year, i.e. the
    latest indicators at the latest year's level (no trend extrapolation).
    Cross-validation then splits by Sozialraum (``key``) so an area's years
    are never in training and test at once.

    Returns
    -------
    NeedModelResult
        estimator, coefficients (summary_frame + German ``label`` + the
        ``predictor_mean`` and ``predictor_sd`` in the indicator's unit), expected
        (cases, index = frame index of the prediction rows), intervals
        (pi_low, pi_high: 95 % prediction interval of cases), fit (dict), cv
        (index model_kfold/model_blocked/baseline_prev/baseline_rate; columns
        label, deviance_explained, mae_per_1000), calibration (by decile),
        funnel (per row), moran (dict or None), notes.
    """
    if exclude_empty and exposure in frame.columns and cases in frame.columns:
        ev = pd.to_numeric(frame[exposure], errors="coerce")
        cv_ = pd.to_numeric(frame[cases], errors="coerce")
        empty = ((ev.isna() | (ev == 0)) & (cv_.isna() | (cv_ == 0))).to_numpy()
        if empty.any():
            return _fit_without_empty(frame, empty, locals())
    notes: list[QANote] = []
    labels = dict(labels or {})
    predictors = list(predictors)
    needed = [cases, exposure, *predictors]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise GeoplanError(
            "Spalten für das Bedarfsmodell fehlen in der Sozialraumtabelle.",
            location=", ".join(f"'{c}'" for c in missing),
            expected="Fallzahl, Einwohner unter 21 und alle Prädiktoren als Spalten",
            found=", ".join(map(str, frame.columns[:20])),
            hint="Spaltennamen in der Konfiguration prüfen (Standardnamen: docs/architecture.md).",
            message_en="Columns for the demand model are missing in the Sozialraum table.",
            expected_en="case count, residents under 21 and all predictors as columns",
            hint_en="Check the column names in the configuration (standard names: docs/architecture.md).",
        )
    if geometry is None and _has_geometry(frame):
        geometry = frame.geometry
    if geometry is not None:
        geometry = _align_geometry(geometry, frame)
    row_names = frame[key].astype(str) if key in frame.columns else pd.Series(frame.index.astype(str), index=frame.index)
    named = frame.set_axis(row_names.to_numpy()) if key in frame.columns else frame

    # Validate with the Sozialraum keys as row names so messages point to the area.
    _check_counts(named[cases], cases)
    _check_exposure(named[exposure], exposure)

    panel = year in frame.columns and frame[year].nunique() > 1
    if panel:
        latest = frame[year].max()
        target = (frame[year] == latest).to_numpy()
    else:
        latest = None
        target = np.ones(len(frame), dtype=bool)

    X = frame[predictors].copy()
    for c in predictors:
        labels.setdefault(c, c)

    if spatial_lag is not None:
        if geometry is None:
            raise GeoplanError(
                "Der räumliche Lag braucht Geometrien der Sozialräume.",
                location=f"spatial_lag = '{spatial_lag}'",
                hint="Eine GeoDataFrame übergeben oder spatial_lag weglassen.",
                message_en="The spatial lag needs the geometries of the Sozialräume.",
                hint_en="Pass a GeoDataFrame or leave out spatial_lag.",
            )
        if spatial_lag not in frame.columns:
            raise GeoplanError(
                f"Spalte '{spatial_lag}' für den räumlichen Lag fehlt.",
                location=f"spatial_lag = '{spatial_lag}'",
                message_en=f"Column '{spatial_lag}' for the spatial lag is missing.",
            )
        lag_name = f"lag_{spatial_lag}"
        X[lag_name] = _spatial_lag(frame, spatial_lag, geometry, target, panel, year, key)
        labels.setdefault(lag_name, f"Räumlicher Lag: {labels.get(spatial_lag, spatial_lag)}")
    if fixed_effects is not None:
        if fixed_effects not in frame.columns:
            raise GeoplanError(f"Spalte '{fixed_effects}' für feste Effekte fehlt.", location=f"fixed_effects = '{fixed_effects}'",
                               message_en=f"Column '{fixed_effects}' for fixed effects is missing.")
        levels = sorted(frame[fixed_effects].astype(str).unique())
        for lev in levels[1:]:
            name = f"fe_{fixed_effects}_{lev}"
            X[name] = (frame[fixed_effects].astype(str) == lev).astype(float)
            labels.setdefault(name, f"{fixed_effects.capitalize()}: {lev} (gegenüber {levels[0]})")
    if panel:
        for yr in sorted(frame[year].unique()):
            if yr == latest:
                continue
            name = f"jahr_{yr}"
            X[name] = (frame[year] == yr).astype(float)
            labels.setdefault(name, f"Jahr {yr} (gegenüber {latest})")
    X = X.set_axis(named.index)

    y = _check_counts(named[cases], cases)
    e = _check_exposure(named[exposure], exposure)
    # the estimator accepts any data scikit-learn's checks give it; the stage wants sound planning data
    _check_predictors(X)
    _check_size(len(y), X.shape[1] + 1)
    est = HzEDemandModel(family=family, alpha=alpha).fit(X, pd.Series(y, index=X.index, name=cases), exposure=pd.Series(e, index=X.index, name=exposure))
    labels["const"] = "Konstante"
    coefs = est.summary_frame()
    coefs.insert(1, "label", [labels.get(t, t) for t in coefs["term"]])
    # The report says what "one SD" is in the indicator's own unit; NaN for the constant and 0/1 dummies.
    binary = est.scaler_scale_ == 1.0
    coefs["predictor_mean"] = np.r_[np.nan, np.where(binary, np.nan, est.scaler_mean_)]
    coefs["predictor_sd"] = np.r_[np.nan, np.where(binary, np.nan, est.scaler_scale_)]

    mu_all = est.predict(X, exposure=e)
    pearson = (y - mu_all) / np.sqrt(mu_all * (1 + est.alpha_ * mu_all))
    idx_t = frame.index[target]
    expected = pd.Series(mu_all[target], index=idx_t, name="expected_cases")

    boot = est.sample_counts(X.iloc[target], e[target], n_draws=n_boot, seed=seed)
    intervals = pd.DataFrame(
        {"pi_low": np.percentile(boot, 2.5, axis=0), "pi_high": np.percentile(boot, 97.5, axis=0)}, index=idx_t
    )

    od = est.overdispersion_test_
    fit = {
        "n": int(len(y)),
        "k": int(est.n_features_in_ + 1),
        "family": est.family_,
        "family_reason": est.family_reason_,
        "dispersion": est.dispersion_,
        "alpha": est.alpha_,
        "deviance_explained": deviance_explained(y, mu_all, e),
        "deviance": float(est.sm_result_.deviance),
        "loglik": float(est.sm_result_.llf),
        # alpha counts as a parameter when it was estimated
        "aic": float(-2 * est.sm_result_.llf + 2 * (est.n_features_in_ + 1 + (est.family_ == "negbin" and alpha is None))),
        "overdispersion": od,
        "panel_years": sorted(map(int, frame[year].unique())) if panel else None,
        "prediction_year": int(latest) if panel else None,
    }
    if est.family_ == "negbin" and family == "auto":
        notes.append(QANote(STAGE, est.family_reason_, level="info", details={"overdispersion": od},
                            message_en=est.family_reason_en_))
    elif est.family_ == "poisson" and od["p_value"] < 0.05:
        notes.append(
            QANote(
                STAGE,
                f"Überdispersion nachgewiesen (Cameron-Trivedi-Test, {fmt.pvalue(od['p_value'])}, Pearson χ²/df = "
                f"{fmt.number(est.dispersion_, 2)}), aber Poisson-Modell vorgegeben: Standardfehler und Intervalle sind zu eng. "
                "Empfehlung: family = 'auto' oder 'negbin'.",
                message_en=f"Overdispersion found (Cameron-Trivedi test, {fmt.pvalue(od['p_value'], 'en')}, Pearson "
                f"χ²/df = {fmt.number(est.dispersion_, 2, 'en')}), but a Poisson model was set: standard errors and "
                "intervals are too narrow. Recommendation: family = 'auto' or 'negbin'.",
                level="warnung",
                details={"overdispersion": od},
            )
        )

    # ---- cross-validation ------------------------------------------------
    cv_rows, oof_k = _cross_validate(frame, X, y, e, est, target, panel, groups, fixed_effects, cv_folds, seed, key, notes)
    cv = pd.DataFrame(cv_rows).set_index("method")

    calib = calibration_table(y, np.where(np.isfinite(oof_k), oof_k, mu_all), e)
    funnel = funnel_table(y[target], mu_all[target], index=idx_t, alpha=est.alpha_)
    n_high = int((funnel["flag"] == "auffällig hoch").sum())
    n_low = int((funnel["flag"] == "auffällig niedrig").sum())
    if n_high or n_low:
        # the funnel plot compares observed with expected case counts: a flag says nothing about need
        text = (
            f"{n_high} {'Sozialraum' if n_high == 1 else 'Sozialräume'} mit auffällig mehr und {n_low} mit auffällig "
            "weniger Fällen als vom Modell erwartet (außerhalb der exakten Poisson-Grenzen 99,8 % des Trichterdiagramms)."
        )
        text_en = (
            f"{n_high} {'Sozialraum' if n_high == 1 else 'Sozialräume'} with notably more and {n_low} with notably "
            "fewer cases than the model expects (outside the exact Poisson limits 99.8% of the funnel plot)."
        )
        flagged = funnel["flag"].to_numpy() != ""
        if "flag_nb" in funnel.columns:
            nb_flagged = funnel["flag_nb"].to_numpy() != ""
            n_nb = int(nb_flagged.sum())
            text += (
                " Die Daten sind überdispers; gemessen an den Grenzen des NB2-Modells "
                + (
                    "liegt keiner davon außerhalb der gewöhnlichen Streuung."
                    if n_nb == 0
                    else f"bleiben {n_nb} davon auffällig – nur diese weichen mehr als gewöhnlich ab."
                )
            )
            text_en += (
                " The data are overdispersed; measured against the limits of the NB2 model "
                + (
                    "none of them lies outside the ordinary spread."
                    if n_nb == 0
                    else f"{n_nb} of them remain notable – only these deviate more than usual."
                )
            )
            flagged = nb_flagged
        notes.append(
            QANote(
                STAGE,
                text,
                message_en=text_en,
                level="info",
                location=", ".join(row_names[target][flagged].astype(str).tolist()[:20]),
            )
        )

    moran = None
    if geometry is not None:
        geo_t = geometry[target]
        moran = morans_i(pearson[target], geo_t, seed=seed)
        if moran["significant"] and spatial_lag is None and fixed_effects is None:
            notes.append(
                QANote(
                    STAGE,
                    f"Die Residuen des Bedarfsmodells sind räumlich autokorreliert (Moran's I = {fmt.number(moran['I'], 3)}, "
                    f"{fmt.pvalue(moran['p_value'])}): benachbarte Sozialräume weichen gemeinsam ab. Optionen: "
                    "weitere räumlich gegliederte Indikatoren in model.predictors aufnehmen oder, nur in der "
                    "Python-API, fit_need_model(…, spatial_lag=\"need_index\") bzw. fixed_effects=\"bezirk\" "
                    "(keine Felder der Konfiguration).",
                    message_en=f"The residuals of the demand model are spatially autocorrelated (Moran's I = "
                    f"{fmt.number(moran['I'], 3, 'en')}, {fmt.pvalue(moran['p_value'], 'en')}): neighbouring "
                    "Sozialräume deviate together. Options: add further spatially structured indicators to "
                    "model.predictors or, in the Python API only, fit_need_model(…, spatial_lag=\"need_index\") or "
                    "fixed_effects=\"bezirk\" (not configuration fields).",
                    level="warnung",
                    details=moran,
                )
            )
        elif moran["significant"]:
            notes.append(
                QANote(
                    STAGE,
                    f"Auch mit {'räumlichem Lag' if spatial_lag else 'festen Effekten'} bleiben die Residuen räumlich "
                    f"autokorreliert (Moran's I = {fmt.number(moran['I'], 3)}, {fmt.pvalue(moran['p_value'])}); Standardfehler "
                    "können zu klein sein.",
                    message_en=f"Even with {'a spatial lag' if spatial_lag else 'fixed effects'} the residuals stay "
                    f"spatially autocorrelated (Moran's I = {fmt.number(moran['I'], 3, 'en')}, "
                    f"{fmt.pvalue(moran['p_value'], 'en')}); standard errors may be too small.",
                    level="warnung",
                    details=moran,
                )
            )
    else:
        notes.append(QANote(STAGE, "Keine Geometrien übergeben: Moran's I der Residuen nicht berechnet.", level="info",
                            message_en="No geometries given: Moran's I of the residuals not computed."))

    return NeedModelResult(
        estimator=est,
        coefficients=coefs,
        expected=expected,
        intervals=intervals,
        fit=fit,
        cv=cv,
        calibration=calib,
        funnel=funnel,
        moran=moran,
        notes=notes,
        residuals=pd.Series(pearson[target], index=idx_t, name="pearson_residual"),
        predictors=list(X.columns),
    )


def _fit_without_empty(frame, empty, args) -> NeedModelResult:
    """fit_need_model on the inhabited rows; the empty rows get 0 expected cases."""
    kwargs = {k: args[k] for k in (
        "cases", "exposure", "predictors", "family", "groups", "cv_folds", "n_boot", "seed", "alpha",
        "spatial_lag", "fixed_effects", "labels", "year", "key",
    )}
    geometry = args["geometry"]
    if geometry is None and _has_geometry(frame):
        geometry = frame.geometry
    keep = ~empty
    sub_geom = _align_geometry(geometry, frame)[keep] if geometry is not None else None
    res = fit_need_model(frame[keep], geometry=sub_geom, exclude_empty=False, **kwargs)
    idx_all = frame.index if len(res.expected) == len(frame[keep]) else frame.index[
        frame.index.isin(res.expected.index) | (empty & _latest_mask(frame, kwargs["year"]))
    ]
    res.expected = res.expected.reindex(idx_all, fill_value=0.0)
    res.intervals = res.intervals.reindex(idx_all, fill_value=0.0)
    res.funnel = res.funnel.reindex(idx_all)
    if res.residuals is not None:
        res.residuals = res.residuals.reindex(idx_all)
    names = frame[kwargs["key"]].astype(str) if kwargs["key"] in frame.columns else pd.Series(frame.index.astype(str))
    res.notes.insert(
        0,
        QANote(
            STAGE,
            f"{int(empty.sum())} Sozialräume ohne Einwohner unter 21 und ohne Fälle sind nicht im Bedarfsmodell "
            "(erwartete Fälle 0).",
            message_en=f"{int(empty.sum())} Sozialräume without residents under 21 and without cases are not in the "
            "demand model (expected cases 0).",
            level="info",
            location=", ".join(names[empty].tolist()[:30]),
        ),
    )
    return res


def _has_geometry(frame) -> bool:
    import geopandas as gpd

    return isinstance(frame, gpd.GeoDataFrame) and frame._geometry_column_name in frame.columns


def _latest_mask(frame, year) -> np.ndarray:
    if year in frame.columns and frame[year].nunique() > 1:
        return (frame[year] == frame[year].max()).to_numpy()
    return np.ones(len(frame), dtype=bool)


def _align_geometry(geometry, frame):
    """Geometry in the row order of ``frame``: by index when the labels match, else by position."""
    import geopandas as gpd

    geometry = gpd.GeoSeries(geometry)
    if geometry.index.equals(frame.index):
        return geometry
    if len(geometry) == len(frame) and not set(frame.index) <= set(geometry.index):
        return geometry.set_axis(frame.index)
    missing = ~frame.index.isin(geometry.index)
    if missing.any():
        raise GeoplanError(
            "Für einige Sozialräume fehlt die Geometrie.",
            location=f"Zeilen {_rows(frame.index, missing)}",
            expected="eine Geometrie je Zeile der Sozialraumtabelle (gleicher Index)",
            hint="Geometrien mit demselben Index wie die Tabelle übergeben.",
            message_en="The geometry is missing for some Sozialräume.",
            expected_en="one geometry per row of the Sozialraum table (same index)",
            hint_en="Pass geometries with the same index as the table.",
        )
    return geometry.reindex(frame.index)


def _spatial_lag(frame, column, geometry, target, panel, year, key) -> np.ndarray:
    """Queen-contiguity lag (mean over neighbours) of ``column``; panel rows are lagged within their year."""
    from libpysal.weights import lag_spatial

    if not panel:
        w = queen_weights(geometry)
        return lag_spatial(w, pd.to_numeric(frame[column]).to_numpy(dtype=float))
    geo_t = geometry[target]
    w = queen_weights(geo_t)
    keys_t = frame.loc[target, key].astype(str).to_numpy()
    out = np.full(len(frame), np.nan)
    for _, rows in frame.groupby(year).groups.items():
        sub = frame.loc[rows]
        vals = pd.Series(pd.to_numeric(sub[column]).to_numpy(dtype=float), index=sub[key].astype(str)).reindex(keys_t)
        lag = pd.Series(lag_spatial(w, vals.fillna(vals.mean()).to_numpy()), index=keys_t)
        out[frame.index.get_indexer(rows)] = lag.reindex(sub[key].astype(str)).to_numpy()
    return out


def _cross_validate(frame, X, y, e, est, target, panel, groups, fixed_effects, cv_folds, seed, key, notes):
    from sklearn.model_selection import GroupKFold, KFold  # only here: its import pulls in much of scipy

    # The family chosen on all data is kept in every fold, so folds do not switch between Poisson and NB2.
    template = clone(est).set_params(family=est.family_)
    n = len(y)
    rows = []
    k = int(min(cv_folds, n))
    if panel and key in frame.columns:
        # An area's years must not be split between training and test.
        splits = list(GroupKFold(n_splits=min(k, frame[key].nunique())).split(X, y, frame[key].astype(str)))
    else:
        splits = list(KFold(n_splits=k, shuffle=True, random_state=seed).split(X))

    def add(method, pred, label):
        ok = np.isfinite(pred)
        rows.append(
            {
                "method": method,
                "label": label,
                "deviance_explained": deviance_explained(y[ok], pred[ok], e[ok]) if ok.any() else np.nan,
                "mae_per_1000": mae_per_1000(y[ok], pred[ok], e[ok]) if ok.any() else np.nan,
            }
        )

    try:
        oof_k = _oof(template, X, y, e, splits)
    except GeoplanError as err:
        oof_k = np.full(n, np.nan)
        notes.append(QANote(STAGE, f"Kreuzvalidierung nicht möglich: {err.message}", level="warnung",
                            message_en=f"Cross-validation not possible: {err.text('en')}"))
    add("model_kfold", oof_k, _CV_LABELS["model_kfold"].format(k=k))
    if groups is not None and groups in frame.columns:
        g = frame[groups].astype(str).to_numpy()
        n_g = len(np.unique(g))
        if fixed_effects == groups:
            notes.append(
                QANote(
                    STAGE,
                    f"Räumlich blockierte Kreuzvalidierung nach '{groups}' entfällt: das Modell hat feste Effekte "
                    "für dieselben Gruppen, ein ausgelassener Bezirk hätte keinen Schätzwert.",
                    message_en=f"Spatially blocked cross-validation by '{groups}' left out: the model has fixed "
                    "effects for the same groups, a district left out would have no estimate.",
                    level="info",
                )
            )
        elif n_g < 2:
            notes.append(QANote(STAGE, f"Nur eine Gruppe in '{groups}': keine räumlich blockierte Kreuzvalidierung.", level="info",
                                message_en=f"Only one group in '{groups}': no spatially blocked cross-validation."))
        else:
            try:
                splits_g = list(GroupKFold(n_splits=min(k, n_g)).split(X, y, g))
                add("model_blocked", _oof(template, X, y, e, splits_g), _CV_LABELS["model_blocked"].format(g=_group_word(groups)))
            except GeoplanError as err:
                notes.append(QANote(STAGE, f"Blockierte Kreuzvalidierung nicht möglich: {err.message}", level="warnung",
                                    message_en=f"Blocked cross-validation not possible: {err.text('en')}"))
    elif groups is not None:
        notes.append(QANote(STAGE, f"Spalte '{groups}' fehlt: keine räumlich blockierte Kreuzvalidierung.", level="info",
                            message_en=f"Column '{groups}' is missing: no spatially blocked cross-validation."))
    prev = "hze_cases_prev"
    if prev in frame.columns:
        pv = pd.to_numeric(frame[prev], errors="coerce").to_numpy(dtype=float)
        if np.isfinite(pv).all():
            # Zero prior-year cases would give an infinite deviance; planners' naive forecast is kept as is,
            # but a floor of 0.5 cases keeps the deviance finite (documented in the report).
            add("baseline_prev", np.maximum(pv, 0.5), _CV_LABELS["baseline_prev"])
        else:
            notes.append(QANote(STAGE, f"Spalte '{prev}' unvollständig: Vorjahres-Basislinie entfällt.", level="info",
                                message_en=f"Column '{prev}' incomplete: no prior-year baseline."))
    add("baseline_rate", _rate_oof(y, e, splits), _CV_LABELS["baseline_rate"])
    return rows, oof_k


# ---------------------------------------------------------------------------
# cost model: expected cost per case, by kind of help
# ---------------------------------------------------------------------------

KINDS = ("ambulant", "teilstationaer", "stationaer")
_KIND_LABELS = {"ambulant": "ambulant", "teilstationaer": "teilstationär", "stationaer": "stationär", "total": "insgesamt"}
_KIND_LABELS_EN = {"ambulant": "ambulatory", "teilstationaer": "day-care", "stationaer": "residential", "total": "total"}


@dataclass
class CostModelResult:
    """Result of :func:`fit_cost_model`.

    family : "gamma" | "tweedie"; kinds : kinds of help modelled (empty = total only).
    cost_per_case : DataFrame (index = frame index, one column per kind or
        ``total``), expected cost per case in EUR.
    kind_shares : DataFrame (index = frame index, one column per chosen kind)
        of the modelled share of all cases by kind, or None. Over all kinds
        with case columns the shares sum to the covered share (1 when the kind
        columns add up to the total); over a chosen subset they sum to less.
    coefficients : DataFrame (part, term, label, coef, se, ci_low, ci_high,
        ratio, ratio_low, ratio_high); part = kind or "total" for the cost
        models and "anteil_<kind>" for the share models; ratio = exp(coef), the
        multiplicative change of cost per case per SD of the predictor.
    scaler_mean, scaler_scale : standardisation of the predictors.
    results : statsmodels results by part. notes : QANote list.
    """

    family: str
    kinds: list[str]
    cost_per_case: pd.DataFrame
    kind_shares: pd.DataFrame | None
    coefficients: pd.DataFrame
    scaler_mean: pd.Series
    scaler_scale: pd.Series
    results: dict
    notes: list[QANote] = field(default_factory=list)

    def expected_cost(self, expected_cases) -> pd.DataFrame:
        """Expected cost (EUR) = expected cases × expected cost per case.

        With kinds, expected cases are split by the modelled kind shares:
        ``expected_cases_<kind>`` = expected cases × share, and
        ``expected_cost_<kind>_eur`` = that × cost per case of the kind; the
        total ``expected_cost_eur`` is their sum. Amounts are float EUR (the
        allocation stage rounds money).
        """
        ec = pd.Series(expected_cases).reindex(self.cost_per_case.index)
        out = pd.DataFrame(index=self.cost_per_case.index)
        out["expected_cases"] = ec
        if self.kinds:
            total = np.zeros(len(out))
            for k in self.kinds:
                out[f"expected_cases_{k}"] = ec * self.kind_shares[k]
                out[f"expected_cost_{k}_eur"] = out[f"expected_cases_{k}"] * self.cost_per_case[k]
                total = total + out[f"expected_cost_{k}_eur"].to_numpy()
            out["expected_cost_eur"] = total
        else:
            out["expected_cost_eur"] = ec * self.cost_per_case["total"]
        return out


def _coef_table(res, part, names, labels, kind_label) -> pd.DataFrame:
    ci = np.asarray(res.conf_int(alpha=0.05))
    coef = np.asarray(res.params)
    return pd.DataFrame(
        {
            "part": part,
            "term": names,
            "label": [f"{kind_label}: {labels.get(n, n)}" for n in names],
            "coef": coef,
            "se": np.asarray(res.bse),
            "p_value": np.asarray(res.pvalues),
            "ci_low": ci[:, 0],
            "ci_high": ci[:, 1],
            "ratio": np.exp(coef),
            "ratio_low": np.exp(ci[:, 0]),
            "ratio_high": np.exp(ci[:, 1]),
        }
    )


def fit_cost_model(
    frame: pd.DataFrame,
    *,
    cost: str = "hze_cost_prev_eur",
    cases: str = "hze_cases",
    predictors: list[str],
    family: str = "gamma",
    kinds: list[str] | None = None,
    var_power: float = 1.5,
    labels: dict[str, str] | None = None,
) -> CostModelResult:
    """Model the expected HzE cost per case (EUR) per Sozialraum, by kind of help.

    Cost and case columns must refer to the same year (cost per case =
    cost / cases of that year).

    family="gamma": GLM Gamma with log link on cost per case (EUR) with
    ``var_weights`` = cases, because the mean cost of n cases has variance
    proportional to 1/n (McCullagh & Nelder 1989, ch. 8).
    family="tweedie": GLM Tweedie (compound Poisson–gamma, ``var_power``
    between 1 and 2; Jørgensen 1997; Smyth & Jørgensen 2002, ASTIN Bulletin 32)
    with log link on total cost (EUR) with offset log(cases), so exp(x'b) is
    again the cost per case; zero costs are allowed.

    Only areas with at least one case enter the fit; the prediction covers all
    rows. Predictors are standardised (per SD).

    Kinds of help: the columns are named after ``cases`` and ``cost``:
    ``<cases>_<kind>`` and ``<cost without _eur>_<kind>_eur`` (defaults
    ``hze_cases_ambulant``, ``hze_cost_prev_ambulant_eur``; with
    ``cases="hze_cases_prev"``: ``hze_cases_prev_ambulant``). ``kinds``: None =
    every kind of (``ambulant``, ``teilstationaer``, ``stationaer``) with both
    columns; [] = total only; a subset = only those kinds (e.g. the kinds a
    budget covers). With kinds, the share of cases by kind is modelled for
    every kind with a case column (Poisson GLM of the kind's cases with offset
    log(total cases), the Poisson form of a multinomial logit), normalised per
    area to the citywide share the kind columns cover (1 when they add up to
    the total). ``expected_cost`` then sums only the chosen kinds. A kind with
    too few areas for its parameters falls back to the citywide cost per case
    (note).
    """
    if family not in ("gamma", "tweedie"):
        raise GeoplanError(
            f"Unbekannte Familie des Kostenmodells '{family}'.",
            location="kostenmodell.family",
            expected="gamma | tweedie",
            found=str(family), message_en=f"Unknown family of the cost model '{family}'.",
        )
    labels = dict(labels or {})
    labels["const"] = "Konstante"
    predictors = list(predictors)
    missing = [c for c in [cost, cases, *predictors] if c not in frame.columns]
    if missing:
        raise GeoplanError(
            "Spalten für das Kostenmodell fehlen in der Sozialraumtabelle.",
            location=", ".join(f"'{c}'" for c in missing),
            expected="Kosten (EUR), Fallzahl und alle Prädiktoren als Spalten",
            hint="Spaltennamen in der Konfiguration prüfen (Standardnamen: docs/architecture.md).",
            message_en="Columns for the cost model are missing in the Sozialraum table.",
            expected_en="costs (EUR), case count and all predictors as columns",
            hint_en="Check the column names in the configuration (standard names: docs/architecture.md).",
        )
    stem = cost[: -len("_eur")] if cost.endswith("_eur") else cost
    case_col = {k: f"{cases}_{k}" for k in KINDS}
    cost_col = {k: f"{stem}_{k}_eur" for k in KINDS}
    if kinds is None:
        kinds = [k for k in KINDS if case_col[k] in frame.columns and cost_col[k] in frame.columns]
    kinds = list(kinds)
    absent = [c for k in kinds for c in (case_col.get(k), cost_col.get(k)) if c is None or c not in frame.columns]
    if absent:
        raise GeoplanError(
            "Spalten für die Hilfearten fehlen.",
            location=", ".join(f"'{c}'" for c in absent if c) or ", ".join(kinds),
            expected=f"Hilfearten aus {', '.join(KINDS)} mit Spalten <Fälle>_<art> und <Kosten>_<art>_eur",
            message_en="Columns for the kinds of help are missing.",
            expected_en=f"kinds of help from {', '.join(KINDS)} with columns <cases>_<kind> and <costs>_<kind>_eur",
        )
    named = frame.set_axis(frame["key"].astype(str).to_numpy()) if "key" in frame.columns else frame
    Xv = _check_predictors(named[predictors])
    mean, scale = Xv.mean(axis=0), Xv.std(axis=0)
    design = np.column_stack([np.ones(len(Xv)), (Xv - mean) / scale])
    names = ["const", *predictors]
    notes: list[QANote] = []
    results: dict = {}
    tables = []

    def cost_part(case_col, cost_col, part):
        n_cases = _check_counts(named[case_col], case_col)
        c = pd.to_numeric(named[cost_col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(c) | (c < 0)
        if bad.any():
            raise GeoplanError(
                f"Kosten in Spalte '{cost_col}' fehlen oder sind negativ.",
                location=f"Spalte '{cost_col}', Sozialräume {_rows(named.index, bad)}",
                expected="Betrag in EUR ≥ 0", message_en=f"Costs in column '{cost_col}' are missing or negative.",
                location_en=f"column '{cost_col}', Sozialräume {_rows(named.index, bad)}",
                expected_en="amount in EUR ≥ 0",
            )
        use = n_cases > 0
        if family == "gamma":
            zero = use & (c <= 0)
            if zero.any():
                notes.append(
                    QANote(
                        STAGE,
                        f"{int(zero.sum())} Sozialräume mit Fällen, aber ohne Kosten in '{cost_col}': im Gamma-Modell "
                        "nicht verwendbar und ausgelassen.",
                        message_en=f"{int(zero.sum())} Sozialräume with cases but without costs in '{cost_col}': not "
                        "usable in the gamma model and left out.",
                        location=_rows(named.index, zero),
                    )
                )
            use = use & (c > 0)
        if use.sum() < 5 * len(names):
            rate = c[use].sum() / max(n_cases[use].sum(), 1)
            notes.append(
                QANote(
                    STAGE,
                    f"Kostenmodell '{_KIND_LABELS.get(part, part)}': nur {int(use.sum())} Sozialräume mit Fällen "
                    f"(nötig ≥ {5 * len(names)}); stattdessen stadtweite Kosten je Fall ({rate:,.0f} EUR).",
                    message_en=f"Cost model '{_KIND_LABELS_EN.get(part, part)}': only {int(use.sum())} Sozialräume "
                    f"with cases (≥ {5 * len(names)} needed); city-wide costs per case used instead (EUR {rate:,.0f}).",
                )
            )
            return np.full(len(named), rate)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if family == "gamma":
                res = sm.GLM(
                    c[use] / n_cases[use],
                    design[use],
                    family=sm.families.Gamma(link=sm.families.links.Log()),
                    var_weights=n_cases[use],
                ).fit(tol=1e-10, maxiter=200)
            else:
                res = sm.GLM(
                    c[use],
                    design[use],
                    family=sm.families.Tweedie(var_power=var_power, link=sm.families.links.Log()),
                    offset=np.log(n_cases[use]),
                ).fit(tol=1e-10, maxiter=200)
        results[part] = res
        tables.append(_coef_table(res, part, names, labels, f"Kosten je Fall {_KIND_LABELS.get(part, part)}"))
        return np.exp(design @ np.asarray(res.params))

    cpc = pd.DataFrame(index=frame.index)
    shares = None
    if kinds:
        total_cases = _check_counts(named[cases], cases)
        has = total_cases > 0
        raw_shares = pd.DataFrame(index=frame.index)
        share_kinds = [k for k in KINDS if case_col[k] in frame.columns]
        covered = 0.0
        for k in kinds:
            cpc[k] = cost_part(case_col[k], cost_col[k], k)
        for k in share_kinds:
            kc = _check_counts(named[case_col[k]], case_col[k])
            covered += kc.sum()
            if kc[has].sum() == 0:
                raw_shares[k] = 0.0
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = sm.GLM(kc[has], design[has], family=sm.families.Poisson(), offset=np.log(total_cases[has])).fit(
                    tol=1e-10
                )
            results[f"anteil_{k}"] = res
            tables.append(_coef_table(res, f"anteil_{k}", names, labels, f"Anteil {_KIND_LABELS[k]}"))
            raw_shares[k] = np.exp(design @ np.asarray(res.params))
        covered_share = min(covered / max(total_cases.sum(), 1), 1.0)
        shares = raw_shares.div(raw_shares.sum(axis=1), axis=0).mul(covered_share)[kinds]
    else:
        cpc["total"] = cost_part(cases, cost, "total")
    coefficients = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return CostModelResult(
        family=family,
        kinds=kinds,
        cost_per_case=cpc,
        kind_shares=shares,
        coefficients=coefficients,
        scaler_mean=pd.Series(mean, index=predictors),
        scaler_scale=pd.Series(scale, index=predictors),
        results=results,
        notes=notes,
    )


# ---------------------------------------------------------------------------
# plots for the report (draw on a given matplotlib Axes; German labels)
# ---------------------------------------------------------------------------


def check_predictors_exist(frame, model_cfg) -> None:
    """Every predictor of ``model.predictors`` is a column of the Sozialraum frame, or a GeoplanError naming
    the ones that are not and the columns there are (shared by :func:`expected_demand` and ``geoplan validate``)."""
    unknown = [p for p in model_cfg.predictors if p not in frame.columns]
    if unknown:
        raise GeoplanError(
            f"Prädiktor(en) {', '.join(unknown)} gibt es nicht.",
            location="Konfigurationsfeld 'model.predictors'",
            expected=", ".join(c for c in frame.columns if c not in ("geometry", "key", "name", "bezirk")),
            hint="Namen aus dem Indikatorenkatalog verwenden.",
            message_en=f"Predictor(s) {', '.join(unknown)} do not exist.",
            hint_en="Use names from the indicator catalogue.",
        )


def expected_demand(frame, model_cfg, labels: dict[str, str] | None = None):
    """The need-model stage: fit on the Sozialraum frame, add expected cases and prediction intervals.

    ``model_cfg`` is the config's ``model`` section. Returns ``(frame, NeedModelResult)``;
    new columns ``expected_cases``, ``expected_per_1000`` (per 1,000 of the exposure), ``pi_low``, ``pi_high``.
    """
    m = model_cfg
    check_predictors_exist(frame, m)
    res = fit_need_model(
        pd.DataFrame(frame.drop(columns="geometry")),
        cases="hze_cases",
        exposure=m.exposure,
        predictors=list(m.predictors),
        family=m.family,
        groups="bezirk" if frame["bezirk"].nunique() > 1 else None,
        geometry=frame.geometry,
        cv_folds=m.cv_folds,
        n_boot=m.n_boot,
        seed=m.seed,
        labels=labels,
    )
    out = frame.copy()
    out["expected_cases"] = np.asarray(res.expected, float)
    out["expected_per_1000"] = out["expected_cases"] / out[m.exposure] * 1000.0
    out["pi_low"] = np.asarray(res.intervals["pi_low"], float)
    out["pi_high"] = np.asarray(res.intervals["pi_high"], float)
    return out, res
