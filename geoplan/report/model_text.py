"""German text of the report's "Bedarfsmodell" section, written from the fitted model's numbers.

The model stage (:mod:`geoplan.stages.model`) computes; this module only words
and formats (numbers through :mod:`geoplan.fmt`).
"""

from __future__ import annotations

from geoplan import fmt


def describe_de(result) -> dict:
    """German text blocks for the report: ``formula_symbols``, ``formula_words``,
    ``family``, ``validation`` and ``limitations`` (list of plain sentences)
    for a :class:`geoplan.stages.model.NeedModelResult`. Numbers are formatted
    the German way (decimal comma).
    """
    fit = result.fit
    nb = fit["family"] == "negbin"
    symbols = "log E[Y_i] = log(E_i) + β₀ + Σ_j β_j · z_ij"
    symbols += (
        ",  Y_i ~ NegBin(μ_i, α), Var(Y_i) = μ_i + α·μ_i²" if nb else ",  Y_i ~ Poisson(μ_i), Var(Y_i) = μ_i"
    )
    words = (
        "Die erwarteten HzE-Fälle μ_i eines Sozialraums i sind seine Einwohnerzahl unter 21 (E_i) mal eine "
        "Inanspruchnahmequote. Die Quote hängt multiplikativ von den standardisierten Indikatoren z_ij ab "
        "(Mittelwert 0, Standardabweichung 1 über alle Sozialräume): steigt ein Indikator um eine "
        "Standardabweichung, ändert sich die erwartete Quote um den Faktor IRR = exp(β_j), wenn die übrigen "
        "Indikatoren gleich bleiben. exp(β₀) ist die Quote je Person unter 21 in einem Sozialraum mit "
        "durchschnittlichen Indikatorwerten."
    )
    if fit.get("panel_years"):
        words += (
            f" Die Daten umfassen die Jahre {', '.join(map(str, fit['panel_years']))}; jedes Jahr hat einen eigenen "
            f"Niveaueffekt. Die Prognose für das Budgetjahr nutzt die Indikatoren und das Niveau von "
            f"{fit['prediction_year']} (keine Fortschreibung eines Trends)."
        )
    od = fit["overdispersion"]
    family = fit["family_reason"] + (
        f" Dispersionsparameter α = {fmt.number(fit['alpha'], 3)} (Var = μ + α·μ²)."
        if nb
        else f" Pearson χ²/df = {fmt.number(fit['dispersion'], 2)}."
    )
    lines = [
        f"{row['label']}: erklärte Devianz {fmt.number(100 * row['deviance_explained'], 1)} %, "
        f"mittlerer absoluter Fehler {fmt.number(row['mae_per_1000'], 2)} Fälle je 1.000 unter 21"
        for _, row in result.cv.iterrows()
    ]
    limitations = [
        "Das Modell beschreibt Zusammenhänge zwischen Sozialräumen, nicht zwischen Familien (ökologisches Modell); "
        "es begründet keine Aussage über einzelne Haushalte.",
        "Die Indikatoren erklären die Inanspruchnahme statistisch, nicht ursächlich. Fallzahlen spiegeln auch "
        "Angebot, Zugangswege und Praxis des ASD wider, nicht nur Bedarf.",
        "Die Grenzen des Trichterdiagramms (exakte Poisson-Grenzen) erfassen nur Zufallsschwankungen der Fallzahl"
        + ("; bei Überdispersion sind die NB2-Grenzen maßgeblich." if nb else "."),
        "Die Prognoseintervalle berücksichtigen die Unsicherheit der Koeffizienten und die Zufallsstreuung der "
        "Fälle" + (", nicht aber die Unsicherheit des Dispersionsparameters α." if nb else "."),
    ]
    if result.moran is not None and result.moran["significant"]:
        limitations.append(
            f"Die Residuen sind räumlich autokorreliert (Moran's I = {fmt.number(result.moran['I'], 3)}, "
            f"{fmt.pvalue(result.moran['p_value'])}); Standardfehler können dadurch zu klein sein."
        )
    if od["p_value"] < 0.05 and not nb:
        limitations.append("Trotz nachgewiesener Überdispersion wurde ein Poisson-Modell verwendet; die Intervalle sind zu eng.")
    return {
        "formula_symbols": symbols,
        "formula_words": words,
        "family": family,
        "validation": lines,
        "limitations": limitations,
    }
