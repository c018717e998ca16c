"""Every number-bearing sentence of the summary and of section 6 equals the tables of the same output.

The report (bericht.html) is parsed as text; each sentence with a number must
match one of the known sentence patterns below, and each number in it is
recomputed from verteilung.xlsx (allocation, convergence path, Teilbudgets)
and the configuration in manifest.json. A sentence with a number that no
pattern knows fails the test: new claims need a check here.
"""

from __future__ import annotations

import html as htmllib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from geoplan.stages.equity import concentration_index, gini, theil_decomposition

# the law, written here independently of the report code
KINDS_DE = {"ambulant": "ambulante Hilfen (§§ 28–31, 35 SGB VIII)", "teilstationaer": "teilstationäre Hilfen (§ 32 SGB VIII)",
            "stationaer": "stationäre Hilfen (§§ 33, 34 SGB VIII)"}
# fixed explanations that carry a digit but no claim of this run
STATIC = ["Einwohner unter 21", "Einwohner u. 21", "(0 hieße gleiches Geld je Kopf unabhängig vom Bedarf, 1 alles beim höchsten Bedarf)",
          "(0 = überall gleich)", "mehr als 10 % mehr Fälle", "mehr als 10 % weniger",
          "Abschnitt 5 zeigt diese Regeln mit den Beträgen dieses Laufs", "BYM2"]
# a sentence ends at a full stop before a capital, a bracket or a digit; not after an abbreviation in a label
END = r"(?<!mind)(?<!ca)(?<!max)(?<!min)(?<!inkl)(?<!bzw)(?<!ggf)(?<!Nr)(?<! B)(?<! a)\.(?=\s+[A-ZÄÖÜ(\d]|\s*$)"
NUM = r"[−+-]?[\d.]+(?:,\d+)?"


def num(text: str) -> float:
    t = text.strip().replace("−", "-").replace("+", "").replace(".", "").replace(",", ".")
    return float(t)


def close(text: str, value: float) -> bool:
    d = len(text.split(",")[1]) if "," in text else 0
    return abs(num(text) - float(value)) <= 0.5 * 10 ** -d + 1e-9


def _sections(html: str) -> dict[str, str]:
    def section(start, end):
        a = html.index(f'<h2 id="{start}"')
        b = html.index(f'<h2 id="{end}"', a)
        part = html[html.index("</h2>", a) + 5:b]
        part = re.sub(r'<div class="kpis">.*?</div>\s*</div>', " ", part, flags=re.S)
        part = re.sub(r"<(table|figure|h2|h3)\b.*?</\1>", " ", part, flags=re.S)
        part = re.sub(r"<[^>]+>", " ", part)
        return re.sub(r"\s+", " ", htmllib.unescape(part)).replace("\u00a0", " ").strip()

    ends = re.findall(r'<h2 id="([a-z]+)"', html)
    after = ends[ends.index("gerechtigkeit") + 1]
    out = {"summary": section("zusammenfassung", "datengrundlage"), "equity": section("gerechtigkeit", after)}
    if '<div id="bym2-text">' in html:  # model.family: bym2 — the spatial model's sentences in section 4
        a = html.index('<div id="bym2-text">')
        part = html[a:html.index("<!-- /bym2-text -->", a)]
        part = re.sub(r"<(table|figure|h2|h3)\b.*?</\1>", " ", part, flags=re.S)
        part = re.sub(r"<[^>]+>", " ", part)
        out["bym2"] = re.sub(r"\s+", " ", htmllib.unescape(part)).replace("\u00a0", " ").strip()
    return out


class Tables:
    """The tables of one output folder."""

    def __init__(self, out: Path):
        wb = load_workbook(out / "verteilung.xlsx")
        self.cfg = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["config"]
        ws = wb["Verteilung"]
        rows = list(ws.iter_rows(values_only=True))
        head = list(rows[0])
        body = [r for r in rows[1:] if r[0] not in ("Summe", "Total", None)]
        df = pd.DataFrame(body, columns=head)

        def col(prefix):
            return next(h for h in head if h and str(h).startswith(prefix))

        self.t = pd.DataFrame({
            "key": df[col("Schlüssel")].astype(str), "name": df[col("Sozialraum")].astype(str),
            "bezirk": df[col("Bezirk")], "pop": pd.to_numeric(df[col("Einwohner unter 21")]),
            "need": pd.to_numeric(df[col("Bedarfsindex")]), "prior": pd.to_numeric(df[col("Kosten Vorjahr")]),
            "budget": pd.to_numeric(df[col("Budget")]), "change": pd.to_numeric(df[col("Veränderung zum Vorjahr")]),
            "change_pct": pd.to_numeric(df[col("Veränderung in %")]),
        })
        korr = [h for h in head if h == "Korridor-Anpassung"]
        self.t["korr"] = pd.to_numeric(df[korr[0]]) if korr else 0
        self.t["target"] = self.t["budget"] - self.t["korr"]
        self.parts = {str(h)[len("davon "):]: pd.to_numeric(df[h]) for h in head if h and str(h).startswith("davon ")}
        oe = [h for h in head if h and str(h).startswith("Beobachtet/erwartet")]
        self.oe = df[oe[0]] if oe else None
        cases = [h for h in head if h and str(h).startswith("HzE-Fälle") and "1.000" not in str(h)]
        self.hidden = int(df[cases[0]].map(lambda v: isinstance(v, str)).sum()) if cases else 0
        self.tb = None
        if "Teilbudgets" in wb.sheetnames:
            r = [x for x in wb["Teilbudgets"].iter_rows(values_only=True)]
            self.tb = pd.DataFrame([x for x in r[1:] if x[0] != "Summe"], columns=r[0])
        self.bym2 = self.bym2_diag = None
        if "BYM2" in wb.sheetnames:
            r = list(wb["BYM2"].iter_rows(values_only=True))
            blank = next(i for i, x in enumerate(r) if x[0] is None)
            self.bym2 = pd.DataFrame(r[1:blank], columns=r[0]).set_index("Parameter")
            self.bym2_diag = {x[0]: x[2] for x in r[blank:] if x[0] is not None}
            below = [h for h in head if h and str(h).startswith("Wahrscheinlichkeit Budget unter Bedarf")]
            self.t["p_below"] = pd.to_numeric(df[below[0]])
            qs = [h for h in head if h and str(h).startswith("Bedarfsgerechter Zielwert")]
            self.t["tq_lo"], self.t["tq_hi"] = pd.to_numeric(df[qs[0]]), pd.to_numeric(df[qs[1]])
        self.path = None
        if "Zielpfad" in wb.sheetnames:
            r = [x for x in wb["Zielpfad"].iter_rows(values_only=True)]
            self.path = pd.DataFrame([x for x in r[1:] if x[0] != "Summe"], columns=r[0])

    def first_year_within(self, tol_pct: float) -> np.ndarray:
        p = self.path
        target = p["Zielwert (Formel)"].astype(float).to_numpy()
        years = [c for c in p.columns if str(c).startswith("Jahr ")]
        first = np.full(len(p), np.nan)
        for c in years:
            y = int(str(c)[5:])
            ok = np.abs(p[c].astype(float).to_numpy() - target) <= tol_pct / 100 * np.abs(target) + 0.5
            first[np.isnan(first) & ok] = y
        return first


def _check_formula(m, T):
    a = T.cfg["allocation"]
    assert close(m["total"], T.t["budget"].sum()) and int(m["n"]) == len(T.t)
    parts = m["parts"].split("; ")
    assert len(parts) == len(a["components"])
    for p, comp in zip(parts, a["components"]):
        pm = re.fullmatch(r"(?P<w>\d+) % (?P<label>.+) \((?P<amt>[\d.]+) €\)", p)
        assert pm, p
        assert close(pm["w"], comp["weight"] * 100)
        assert pm["label"] == (comp.get("label") or comp["name"])
        assert close(pm["amt"], T.parts[pm["label"]].sum())


def _check_tb(m, T):
    for item in m["items"].split("; "):
        im = re.fullmatch(r"(?P<id>\S+) – (?P<label>.+) \((?P<rule>.+)\): (?P<amt>[\d.]+) €", item)
        assert im, item
        row = T.tb[T.tb["Teilbudget"].astype(str) == im["id"]].iloc[0]
        assert row["Bezeichnung"] == im["label"] and row["Regel"] == im["rule"]
        assert close(im["amt"], row["Betrag (€)"])


def _check_retained(m, T):
    assert close(m["amt"], T.tb.loc[T.tb["an Sozialräume verteilt"] == "nein", "Betrag (€)"].sum())


def _components(T) -> dict:
    a = T.cfg["allocation"]
    comps = {c["name"]: c for c in a["components"]}
    for tb in a.get("teilbudgets") or []:
        for c in tb.get("components") or []:
            comps.setdefault(c["name"], c)
    return comps


def _prior_weight(T):
    """Share (%) of the distributed budget in components that follow past spending, from the "davon" columns."""
    past = [c.get("label") or c["name"] for c in _components(T).values()
            if c["type"] == "prior_year" or (c["type"] == "fachleistungsstunden" and c.get("hours_per_case") is None)]
    return 100 * sum(T.parts[lab].sum() for lab in past if lab in T.parts) / T.t["budget"].sum()


def _check_tb_total(m, T):
    assert close(m["total"], T.cfg["allocation"]["total_eur"])
    _check_tb(m, T)


def _check_distributed(m, T):
    assert int(m["n"]) == len(T.t) and close(m["dist"], T.t["budget"].sum())
    if m.groupdict().get("amt"):
        _check_retained(m, T)


def _check_tb_formula(m, T):
    tb = next(t for t in T.cfg["allocation"]["teilbudgets"] if str(t["id"]) == m["id"])
    comps = tb.get("components") or T.cfg["allocation"]["components"]
    parts = m["parts"].split("; ")
    assert len(parts) == len(comps)
    for p, c in zip(parts, comps):
        pm = re.fullmatch(r"(?P<w>\d+) % (?P<label>.+)", p)
        assert pm and close(pm["w"], c["weight"] * 100) and pm["label"] == (c.get("label") or c["name"]), p


def _check_component_sums(m, T):
    comps = _components(T)
    labels = [c.get("label") or c["name"] for c in comps.values()]
    for p in m["parts"].split("; "):
        pm = re.fullmatch(r"(?P<label>.+) \((?P<amt>[\d.]+) €\)", p)
        assert pm and pm["label"] in labels, p
        assert close(pm["amt"], T.parts[pm["label"]].sum()), p


def _check_corridor(m, T):
    c = T.cfg["allocation"]["corridor"]
    lim = m["lim"]
    if c.get("max_decrease_pct") is not None:
        assert re.search(r"höchstens (\S+) % weniger", lim) and close(re.search(r"höchstens (\S+) % weniger", lim)[1],
                                                                         c["max_decrease_pct"])
    if c.get("max_increase_pct") is not None:
        assert close(re.search(r"höchstens (\S+) % mehr", lim)[1], c["max_increase_pct"])
    t = T.t
    held = t["prior"] > (c.get("new_area_threshold_eur") or 0)
    lo = np.ceil(t["prior"] * (1 - (c.get("max_decrease_pct") or 100) / 100) - 1e-9)
    hi = np.floor(t["prior"] * (1 + (c.get("max_increase_pct") or 1e9) / 100) + 1e-9)
    at_bound = held & (((t["budget"] - lo).abs() <= 1) | ((t["budget"] - hi).abs() <= 1)) & (t["korr"] != 0)
    assert int(m["n"]) == int(at_bound.sum())


def _check_exempt(m, T):
    c = T.cfg["allocation"]["corridor"]
    exempt = T.t["prior"] <= (c.get("new_area_threshold_eur") or 0)
    assert int(m["n"]) == int(exempt.sum())
    assert (T.t.loc[exempt, "budget"] > 0).all() or (T.t.loc[exempt, "pop"] == 0).any()


def _check_coverage(m, T):
    kinds = T.cfg["hze"]["budget_kinds"]
    items = [KINDS_DE[k] for k in kinds]
    expected = ", ".join(items[:-1]) + (" und " + items[-1] if len(items) > 1 else items[0])
    assert m["kinds"] == expected


def _check_change(m, T):
    t = T.t
    assert close(m["prior"], t["prior"].sum())
    assert close(m["chg"], t["budget"].sum() - t["prior"].sum())
    assert close(m["pct"], (t["budget"].sum() - t["prior"].sum()) / t["prior"].sum() * 100)
    assert int(m["w"]) == int((t["change"] >= 0.5).sum()) and int(m["l"]) == int((t["change"] <= -0.5).sum())


def _check_mover(m, T):
    t = T.t
    order = t.sort_values(["change", "key"]) if m["verb"] == "verliert" else \
        t.sort_values(["change", "key"], ascending=[False, True])
    row = t[t["name"] == m["name"].strip()]
    assert len(row) == 1, m["name"]
    r = row.iloc[0]
    assert r["key"] in list(order["key"].head(2)), f"{m['name']} is not among the two largest movers"
    assert close(m["amt"], abs(r["change"])) and close(m["pct"], r["change_pct"])
    assert close(m["prior"], r["prior"]) and close(m["tgt"], r["target"]) and close(m["need"], r["need"])
    assert (m["side"] == "über") == (r["prior"] > r["target"])


def _tol(T):
    return (T.cfg["allocation"].get("corridor") or {}).get("target_tolerance_pct", 1.0)


def _check_year1(m, T):
    first = T.first_year_within(num(m["tol"]))
    assert close(m["tol"], _tol(T))
    assert int(m["n1"]) == int((first == 1).sum()) and int(m["n"]) == len(T.t)


def _check_seq(m, T):
    first = T.first_year_within(_tol(T))
    for y, n in re.findall(r"nach (\d+) Jahren (\d+)", m["seq"]):
        assert int(n) == int((first <= int(y)).sum()), (y, n)


def _check_last(m, T):
    first = T.first_year_within(_tol(T))
    assert np.isfinite(first).all() and int(m["y"]) == int(np.nanmax(first))


def _check_never(m, T):
    first = T.first_year_within(_tol(T))
    assert int(m["k"]) == int(np.isnan(first).sum())
    names = T.path.loc[np.isnan(first), "Sozialraum"].astype(str).tolist()
    assert m["names"] == ", ".join(names)


def _per_head(T):
    t = T.t[T.t["pop"] > 0]
    return (t["budget"] / t["pop"]).to_numpy(), t["need"].to_numpy(), t["pop"].to_numpy(), t["bezirk"].to_numpy()


def _check_ci(m, T):
    y, r, w, _ = _per_head(T)
    assert close(m["ci"], concentration_index(y, r, w))


def _check_gini(m, T):
    y, _, w, _ = _per_head(T)
    g = gini(y, w)
    assert close(m["g"], g) and close(m["d"], 200 * g)


def _check_theil(m, T):
    y, _, w, g = _per_head(T)
    d = theil_decomposition(y, g, w)
    assert close(m["t"], d["total"]) and close(m["b"], d["between"]) and close(m["w"], d["within"])
    assert close(m["s"], 100 * d["between"] / d["total"])


def _check_distance(m, T):
    t = T.t
    assert close(m["abs"], (t["target"] - t["prior"]).abs().sum()) and close(m["net"], (t["target"] - t["prior"]).sum())


def _check_oe(m, T):
    v = pd.to_numeric(T.oe, errors="coerce")
    assert int(m["n"]) == int(v.notna().sum())
    assert int(m["a"]) == int((v > 1.1).sum()) and int(m["b"]) == int((v < 0.9).sum())


def _check_funnel(m, T):
    # the funnel flags are not a published column: bounded by the published ratios; hidden = suppressed cells
    assert int(m["h"]) + int(m["l"]) <= int(pd.to_numeric(T.oe, errors="coerce").notna().sum())
    if m["hid"]:
        assert int(m["hid"]) == T.hidden


def _check_bym2_rho(m, T):
    rho, sig = T.bym2.loc["rho"], T.bym2.loc["sigma"]
    assert close(m["r"], 100 * rho["Mittelwert"]) and close(m["rlo"], 100 * rho["2,5-%-Quantil"])
    assert close(m["rhi"], 100 * rho["97,5-%-Quantil"])
    assert close(m["s"], sig["Mittelwert"]) and close(m["slo"], sig["2,5-%-Quantil"]) and close(m["shi"], sig["97,5-%-Quantil"])


def _check_bym2_sampler(m, T):
    d, cfg = T.bym2_diag, T.cfg["model"]["bym2"]
    assert int(m["c"]) == d["chains"] == cfg["chains"] and int(num(m["n"])) == d["draws"] == cfg["draws"]
    assert int(num(m["w"])) == d["warmup"] == cfg["warmup"] and int(m["seed"]) == d["seed"] == cfg["seed"]
    assert close(m["rhat"], d["max_r_hat"]) and close(m["ess"], d["min_ess"]) and int(m["div"]) == d["n_divergent"]
    assert close(m["ess"], T.bym2["ESS"].min()) and d["max_r_hat"] >= T.bym2["R̂"].max() - 1e-9


def _check_bym2_converged(m, T):
    d = T.bym2_diag
    assert (m["ok"] is not None) == (d["max_r_hat"] <= 1.01 and d["n_divergent"] == 0), (m[0], d)


def _check_bym2_euros(m, T):
    d, t = T.bym2_diag, T.t
    assert int(num(m["n"])) == d["n_draws"] == d["chains"] * d["draws"]
    assert close(m["p"], 100 * d["interval"])
    width = (t["tq_hi"] - t["tq_lo"]) / t["target"] * 100
    assert close(m["med"], width.median()) and close(m["max"], width.max())


def _check_bym2_below(m, T):
    p = T.t["p_below"]
    assert int(m["n"]) == len(T.t)
    assert int(m["b"]) == int((p >= 0.8).sum()) and int(m["a"]) == int((p <= 0.2).sum())


PATTERNS = [
    (rf"Der räumlich strukturierte Anteil an der Varianz des Gebietseffekts \(ρ\) beträgt (?P<r>{NUM}) % "
     rf"\(95-%-Intervall (?P<rlo>{NUM}) % bis (?P<rhi>{NUM}) %\); die Streuung des Gebietseffekts \(σ, log-Skala\) "
     rf"beträgt (?P<s>{NUM}) \(95-%-Intervall (?P<slo>{NUM}) bis (?P<shi>{NUM})\){END}", _check_bym2_rho),
    (rf"Geschätzt mit (?P<c>\d+) Kette\(n\) zu je (?P<n>[\d.]+) Ziehungen nach (?P<w>[\d.]+) Aufwärmschritten "
     rf"\(Startwert (?P<seed>\d+)\): größtes R̂ \(Parameter und erwartete Fälle\) (?P<rhat>{NUM}), kleinste effektive Stichprobengröße (?P<ess>[\d.]+), "
     rf"(?P<div>\d+) divergente Übergänge{END}", _check_bym2_sampler),
    (rf"(?:(?P<ok>Die Ketten sind konvergiert \(R̂ höchstens 1,01, keine divergenten Übergänge\))|Achtung: R̂ über "
     rf"1,01 oder divergente Übergänge – die Ketten sind nicht sicher konvergiert.*?){END}", _check_bym2_converged),
    (rf"Jede der (?P<n>[\d.]+) Ziehungen der erwarteten Fälle wurde durch die Budgetformel gerechnet; das "
     rf"(?P<p>\d+)-%-Intervall des bedarfsgerechten Zielwerts ist im Median (?P<med>{NUM}) % des Zielwerts breit, "
     rf"höchstens (?P<max>{NUM}) %{END}", _check_bym2_euros),
    (rf"Bei (?P<b>\d+) von (?P<n>\d+) Sozialräumen liegt das Budget mit mindestens 80 % Wahrscheinlichkeit unter dem "
     rf"bedarfsgerechten Zielwert, bei (?P<a>\d+) mit mindestens 80 % Wahrscheinlichkeit darüber{END}", _check_bym2_below),
    (rf"Das Budget von (?P<total>[\d.]+) € wird auf (?P<n>\d+) Sozialräume nach dieser Formel verteilt: (?P<parts>.+?){END}",
     _check_formula),
    (rf"Das Budget von (?P<total>[\d.]+) € besteht aus den Teilbudgets (?P<items>.+?){END}", _check_tb_total),
    (rf"Davon verbleiben (?P<amt>[\d.]+) € beim öffentlichen Träger; auf die (?P<n>\d+) Sozialräume verteilt werden "
     rf"(?P<dist>[\d.]+) €{END}", _check_distributed),
    (rf"Auf die (?P<n>\d+) Sozialräume verteilt werden (?P<dist>[\d.]+) €{END}", _check_distributed),
    (rf"Teilbudget (?P<id>\S+) wird verteilt nach: (?P<parts>.+?){END}", _check_tb_formula),
    (rf"Zusammen erhalten die Sozialräume aus den Bestandteilen: (?P<parts>.+?){END}", _check_component_sums),
    (rf"(?P<w>\d+) % des verteilten Budgets folgen den Ist-Kosten oder Leistungsstunden der Vergangenheit.*?{END}",
     lambda m, T: close(m["w"], _prior_weight(T)) or pytest.fail(m[0])),
    (rf"(?P<w>\d+) % beruhen auf Bevölkerung, Sozialstruktur.*?{END}",
     lambda m, T: close(m["w"], 100 - _prior_weight(T)) or pytest.fail(m[0])),
    (rf"Ein Korridor begrenzt die Veränderung gegenüber den Vorjahreskosten je Sozialraum auf (?P<lim>.+?); "
     rf"er greift bei (?P<n>\d+) Sozialräumen{END}", _check_corridor),
    (rf"Sozialräume (?:ohne Kosten im Vorjahr|mit Vorjahreskosten bis [\d.]+ €) werden nicht vom Korridor gehalten, "
     rf"sondern erhalten ihren Formelwert \(Regel 'formula'\)\. Das betrifft (?P<n>\d+) Sozialräume \((?P<names>.+?)\){END}",
     _check_exempt),
    (rf"Das Budget deckt die Hilfen zur Erziehung der Arten (?P<kinds>.+?); die Vorjahreskosten.*?{END}", _check_coverage),
    (rf"Gegenüber den Kosten des Vorjahres \((?P<prior>[\d.]+) €\) ändert sich die verteilte Summe um (?P<chg>{NUM}) € "
     rf"\((?P<pct>{NUM}) %\); (?P<w>\d+) Sozialräume erhalten mehr, (?P<l>\d+) weniger{END}", _check_change),
    (rf"(?P<name>[^.:;]+?) (?P<verb>verliert|gewinnt) (?P<amt>[\d.]+) € \((?P<pct>{NUM}) %\): die Vorjahreskosten "
     rf"\((?P<prior>[\d.]+) €\) liegen (?P<side>über|unter) dem Zielwert der Formel \((?P<tgt>[\d.]+) €\); "
     rf"Bedarfsindex (?P<need>{NUM}){END}", _check_mover),
    (rf"Im ersten Jahr liegen (?P<n1>\d+) von (?P<n>\d+) Sozialräumen höchstens (?P<tol>{NUM}) % neben ihrem Zielwert "
     rf"nach der Formel{END}", _check_year1),
    (rf"sind es (?P<seq>nach \d+ Jahren \d+(?:, nach \d+ Jahren \d+)*){END}", _check_seq),
    (rf"Der letzte Sozialraum erreicht seinen Zielwert im Jahr (?P<y>\d+){END}", _check_last),
    (rf"(?P<k>\d+) Sozialräume erreichen ihren Zielwert unter diesen Regeln nie: (?P<names>.+?){END}", _check_never),
    (rf"Der Konzentrationsindex von (?P<ci>{NUM}) heißt: .*?{END}", _check_ci),
    (rf"Der Gini-Koeffizient von (?P<g>{NUM}) heißt: .*? um (?P<d>\d+) % des Durchschnitts.*?{END}", _check_gini),
    (rf"Der Theil-Index von (?P<t>{NUM}) zerlegt die Ungleichheit: (?P<s>\d+) % liegen zwischen den Bezirken "
     rf"\((?P<b>{NUM})\), der Rest innerhalb der Bezirke \((?P<w>{NUM})\){END}", _check_theil),
    (rf"Die Vorjahreskosten liegen zusammen (?P<abs>[\d.]+) € von den Zielwerten der Formel entfernt \(Summe der "
     rf"Abstände je Sozialraum; netto (?P<net>{NUM}) €\){END}", _check_distance),
    (r"Von den (?P<n>\d+) Sozialräumen mit veröffentlichtem Verhältnis beobachtet/erwartet haben (?P<a>\d+) mehr als "
     rf"10 % mehr Fälle als das Modell erwartet, (?P<b>\d+) mehr als 10 % weniger{END}", _check_oe),
    (rf"Außerhalb der Kontrollgrenzen des Trichterdiagramms liegen (?P<h>\d+) Sozialräume oben und (?P<l>\d+) unten"
     rf"(?: \(Sozialräume mit unterdrückter Fallzahl, (?P<hid>\d+), nicht mitgezählt\))?{END}", _check_funnel),
]


def check_report_claims(out: Path) -> int:
    """Check every number-bearing sentence of the summary and section 6 in ``out``; returns the number checked."""
    html = (out / "bericht.html").read_text(encoding="utf-8")
    T = Tables(out)
    checked = 0
    for name, text in _sections(html).items():
        rest = text
        for pattern, check in PATTERNS:
            for m in list(re.finditer(pattern, rest)):
                check(m, T)
                checked += 1
            rest = re.sub(pattern, " ", rest)
        for s in STATIC:
            rest = rest.replace(s, " ")
        left = [s for s in re.split(r"(?<=\.)\s+", rest) if re.search(r"\d", s)]
        assert not left, f"{out}: unchecked number-bearing sentence(s) in {name}: {left}"
    return checked


def test_demo_claims_equal_the_tables(demo_outputs):
    assert check_report_claims(demo_outputs) >= 15


def _html_table(html: str, table_id: str) -> tuple[list[str], list[list[str]]]:
    a = html.index(f'<table id="{table_id}"')
    part = html[a:html.index("</table>", a)]
    head = [htmllib.unescape(re.sub(r"<[^>]+>", "", h)).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", part, re.S)]
    rows = []
    for tr in re.findall(r"<tr(?: class=\"[^\"]*\")?>(.*?)</tr>", part.split("</thead>", 1)[1], re.S):
        rows.append([htmllib.unescape(re.sub(r"<[^>]+>", "", c)).replace("\u00a0", " ").strip()
                     for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)])
    return head, rows


def _euro(text: str) -> int:
    return int(round(num(text.replace("€", "").strip())))


def check_reconciliation(out: Path, result) -> None:
    """Each allocation row reconciles in HTML, XLSX (to the cent, totals are =SUM formulas) and GPKG."""
    import geopandas as gpd

    f = result.frame.set_index("key")
    comps = [f"eur_{n}" for n in result.allocation.components]  # also components only a Teilbudget uses
    # HTML: the "davon" columns plus the corridor adjustment give the budget in every row; the sum row is the total
    head, rows = _html_table((out / "bericht.html").read_text(encoding="utf-8"), "verteilungstabelle")
    parts = [j for j, h in enumerate(head) if h.startswith("davon ") or h == "Korridor-Anpassung"]
    jb = head.index("Budget")
    assert len(parts) >= len(comps)
    body, total = rows[:-1], rows[-1]
    assert len(body) == len(f)
    for r in body:
        assert sum(_euro(r[j]) for j in parts) == _euro(r[jb]), r[:2]
    offset = len(head) - len(total)  # the label cell spans the first columns
    for j in parts + [jb]:
        assert _euro(total[j - offset]) == sum(_euro(r[j]) for r in body)
    assert _euro(total[jb - offset]) == int(f["budget_eur"].sum())

    # XLSX: values to the cent, the check column and every total are formulas over the right ranges
    wb = load_workbook(out / "verteilung.xlsx")
    ws = wb["Verteilung"]
    head = [c.value for c in ws[1]]
    n = len(f)
    last = n + 1
    jb = head.index("Budget") + 1
    jparts = [j + 1 for j, h in enumerate(head) if h and (str(h).startswith("davon ") or h == "Korridor-Anpassung")]
    from openpyxl.utils import get_column_letter as L

    for r in range(2, last + 1):
        vals = [ws.cell(row=r, column=j).value for j in jparts]
        assert all(isinstance(v, int) for v in vals)
        assert round(sum(vals), 2) == round(ws.cell(row=r, column=jb).value, 2)
        key = ws.cell(row=r, column=1).value
        assert ws.cell(row=r, column=jb).value == int(f.loc[key, "budget_eur"])
        check = ws.cell(row=r, column=len(head)).value
        assert check == "=" + "+".join(f"{L(j)}{r}" for j in jparts) + f"-{L(jb)}{r}"
    money = [j + 1 for j, h in enumerate(head) if h and ws.cell(row=2, column=j + 1).number_format.endswith('"€"')
             and ws.cell(row=2, column=j + 1).number_format.startswith("#,##0 ")]
    assert jb in money and set(jparts) <= set(money)
    for j in money:
        assert ws.cell(row=last + 1, column=j).value == f"=SUM({L(j)}2:{L(j)}{last})", head[j - 1]
    assert sum(ws.cell(row=r, column=jb).value for r in range(2, last + 1)) == int(f["budget_eur"].sum())

    # GPKG: components + corridor adjustment = budget in every feature
    g = gpd.read_file(out / "ergebnis.gpkg", layer="sozialraeume")
    cols = [c for c in comps if c in g.columns] + (["eur_korridor"] if "eur_korridor" in g.columns else [])
    assert (g[cols].sum(axis=1).astype("int64") == g["budget_eur"].astype("int64")).all()


def test_demo_reconciles_in_html_xlsx_gpkg(demo_outputs, demo_result):
    check_reconciliation(demo_outputs, demo_result)


def test_text_is_never_a_formula(tmp_path):
    from openpyxl import Workbook

    from geoplan.report.xlsx import _sheet

    wb = Workbook()
    ws = _sheet(wb, "T", ["Name", "Wert"], [["=HYPERLINK(\"http://x\")", 1], ["+49 30", 2], ["-a", 3], ["@x", 4]])
    wb.save(tmp_path / "t.xlsx")
    ws = load_workbook(tmp_path / "t.xlsx")["T"]
    for r in range(2, 6):
        assert ws.cell(row=r, column=1).data_type == "s"
    assert ws.cell(row=2, column=1).value.startswith("=HYPERLINK")


def test_change_legend_bounds_one_decimal_and_same_rounded_change_same_class():
    from geoplan.report.maps import change_layer, classify

    for corridor in (None, type("C", (), {"max_decrease_pct": 15.0, "max_increase_pct": 15.0})(),
                     type("C", (), {"max_decrease_pct": 7.5, "max_increase_pct": 10.0})()):
        layer = change_layer("Veränderung", corridor)
        y = np.array([-15.0, -14.99998, -14.96, -5.0, -4.99, 0.0, 4.99996, 5.04, 14.99999, 15.0, 30.0, np.nan])
        clf = classify(y, layer)
        for label in clf.labels:
            for number in re.findall(r"\d+(?:,\d+)?", label):
                assert len(number.split(",")[1]) <= 1 if "," in number else True, label
        rounded = np.round(y, 1)
        for v in np.unique(rounded[np.isfinite(rounded)]):
            assert len(set(clf.classes[rounded == v])) == 1, v
        assert clf.classes[-1] == -1 and len(clf.labels) == 5
        # centred on 0: the middle class holds 0 and is the palette's neutral colour
        assert clf.classes[5] == 2



def test_sentences_keep_number_and_unit_together(demo_result):
    """A line never breaks between a number and its unit in the computed sentences (the PDF had
    "(100.000.000" at a line's end and "€)" on the next): German puts a no-break space before € and %,
    English writes €1,234 and 12.3% (also in the indicator weights of the components table)."""
    from geoplan.report import claims

    for lang in ("de", "en"):
        c = claims.report_claims(demo_result, lang)
        texts = [s for _kind, p in c["summary"] for s in p] + c["measures"] + c["distance"] + c["convergence"]
        texts += [claims.component_text(comp, demo_result, lang) for comp in demo_result.allocation_spec.components]
        text = "\n".join(texts)
        assert not re.search(r"\d[ \u202f](€|%)", text), re.findall(r".{30}\d (?:€|%).{10}", text)
        if lang == "de":
            assert re.search(r"\d\u00a0€", text) and re.search(r"\d\u00a0%", text)
        else:
            assert re.search(r"€\d", text) and re.search(r"\d%", text) and "\u00a0" not in text
