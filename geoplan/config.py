"""The YAML configuration: one pydantic schema for ``geoplan run``.

Relative paths in a config are relative to the config file's folder. Every
model forbids unknown fields, so a typo gets a message that names the field and
lists what is allowed (see :func:`load_config`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from geoplan.errors import GeoplanError, english_location
from geoplan.load.caselist import CaseListConfig
from geoplan.stages.allocate import AllocationSpec
from geoplan.stages.settlement import SettlementSpec


#: names of the Sozialraum level itself in ``indicators.tables[].level``
SOZIALRAUM_LEVELS = ("sozialraum", "sozialraeume", "sozialräume")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class MergeGroup(_Model):
    """Polygons the statistics publish as one area (e.g. Hamburg's paired Stadtteile)."""

    keys: list[str] = Field(min_length=2, description="Schlüssel der Polygone, die zusammengefasst werden")
    key: str = Field(description="Schlüssel des zusammengefassten Gebiets (wie in den Tabellen)")
    name: str | None = Field(None, description="Name des zusammengefassten Gebiets")


def check_connection(value: str | None) -> str | None:
    """A ``connection`` of the config: PostGIS (``PG:…``, ``postgresql://…``) or WFS (``WFS:https://…``),
    without a password (refused here, before anything could echo it)."""
    if value is None:
        return None
    from geoplan.load.postgis import is_postgis_source, parse_dsn
    from geoplan.load.wfs import _base_url, is_wfs_source

    if is_postgis_source(value) or is_wfs_source(value):
        try:
            parse_dsn(value) if is_postgis_source(value) else _base_url(value, "connection")
        except GeoplanError as err:
            err.location = None  # the validation message names the field
            raise
    else:
        raise GeoplanError(
            "Unbekannte Verbindungsart.",
            expected="'PG:service=…', 'PG:host=… dbname=… user=…', 'postgresql://user@host/db' oder "
                     "'WFS:https://server/pfad'",
            found=f"beginnt mit {value.split(':')[0][:12]!r}" if ":" in value else "keine Verbindungsangabe",
            hint="Für eine Datei 'path' statt 'connection' angeben.",
            message_en="Unknown kind of connection.",
            hint_en="For a file give 'path' instead of 'connection'.",
        )
    return value


class BoundariesConfig(_Model):
    """Sozialraum polygons: a file (``path``) or a PostGIS table / WFS layer (``connection``)."""

    path: Path | None = Field(None, description="Shapefile, GeoPackage, GeoJSON oder FlatGeobuf mit den Sozialräumen")
    connection: str | None = Field(
        None, description="statt 'path': PostGIS ('PG:service=…', 'PG:host=… dbname=… user=…', 'postgresql://…') "
                          "oder WFS ('WFS:https://…'); ohne Passwort")
    key: str = Field(description="Spalte mit dem Sozialraum-Schlüssel (wird als Text gelesen)")
    name: str | None = Field(None, description="Spalte mit dem Namen des Sozialraums")
    layer: str | None = Field(None, description="Layer (GeoPackage mit mehreren Layern); PostGIS: schema.tabelle; "
                                                "WFS: Typname")
    sql: str | None = Field(None, description="PostGIS: SELECT-Abfrage statt 'layer'")
    geometry_column: str | None = Field(None, description="PostGIS: Geometriespalte, falls es mehrere gibt")
    srs: str | None = Field(None, description="WFS: angefragtes KBS, z. B. EPSG:25833")
    wfs_version: Literal["2.0.0", "1.1.0"] = Field("2.0.0", description="WFS: Version des Dienstes")
    crs: str | None = Field(None, description="Koordinatenbezug, falls die Datei keinen angibt (z. B. EPSG:25833)")
    metric_crs: str | None = Field(None, description="metrischer Bezug für Flächen (EPSG:25832/25833); leer = nach Lage")
    repair: bool = Field(False, description="ungültige Geometrien mit make_valid reparieren")
    min_sliver_m2: float = Field(1.0, ge=0, description="Lücken/Überlappungen ab dieser Fläche melden (m²)")
    encoding: str | None = Field(None, description="Zeichenkodierung der DBF (leer = erkennen)")
    key_width: int | None = Field(None, ge=1, description="Schlüssel mit führenden Nullen auf diese Länge auffüllen")
    group: str | None = Field(None, description="Feld der Polygone mit der übergeordneten Einheit (Bezirk)")
    merge: list[MergeGroup] = Field(
        default_factory=list,
        description="Polygone, die die Statistik als ein Gebiet veröffentlicht: zu einem Sozialraum zusammenfassen")
    exclude: list[str] = Field(
        default_factory=list, description="Schlüssel unbewohnter Polygone: grau auf Karten, kein Budget")

    @field_validator("connection")
    @classmethod
    def _connection(cls, v: str | None) -> str | None:
        return check_connection(v)

    @model_validator(mode="after")
    def _path_or_connection(self):
        if (self.path is None) == (self.connection is None):
            raise ValueError("genau eines von 'path' (Datei) oder 'connection' (PostGIS/WFS) angeben")
        if self.connection is None and (self.sql or self.geometry_column or self.srs):
            raise ValueError("'sql', 'geometry_column' und 'srs' gelten nur mit 'connection'")
        return self

    @property
    def display(self) -> str:
        """The boundaries' name in messages: the file name, or the table/type name."""
        return Path(self.path).name if self.path is not None else (self.layer or "SQL")


class DropRows(_Model):
    """Rows of a table that are no areas: totals, sub-totals, notes."""

    keys: list[str] = Field(default_factory=list, description="reguläre Ausdrücke für Schlüssel, z. B. '^99' oder 'insgesamt'")
    labels: list[str] = Field(default_factory=list, description="Zeilen mit dieser Bezeichnung in einer Textspalte, z. B. 'Summe'")


class WeightsConfig(_Model):
    """Ancillary weights for dasymetric interpolation: a raster, a polygon layer, or a table on a polygon layer."""

    raster: Path | None = Field(None, description="Bevölkerungsraster (GeoTIFF), z. B. Zensus-Gitter")
    polygons: Path | None = Field(None, description="Polygonebene mit den Gewichten, z. B. Planungsräume")
    layer: str | None = None
    key: str | None = Field(None, description="Schlüsselfeld der Gewichtspolygone (nur mit 'table')")
    column: str | None = Field(None, description="Gewichtsspalte (Polygonfeld oder Tabellenspalte), leer = Fläche")
    table: Path | None = Field(None, description="Tabelle mit der Gewichtsspalte je Gewichtspolygon")
    table_key: str | None = Field(None, description="Schlüsselspalte der Gewichtstabelle")
    crs: str | None = None
    encoding: str | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.raster is None) == (self.polygons is None):
            raise ValueError("genau eines von 'raster' oder 'polygons' angeben")
        if self.table is not None and not (self.key and self.table_key and self.column):
            raise ValueError("zu 'table' gehören 'key' (Feld der Polygone), 'table_key' und 'column'")
        return self


class LevelConfig(_Model):
    """A geography other than the Sozialräume, and how its values come onto them.

    Either a key hierarchy (``key_table`` or ``prefix_len``: sum / weighted mean
    by key) or another polygon layer (``polygons`` with ``method: area`` or
    ``dasymetric`` and ``weights``).
    """

    key_table: Path | None = Field(None, description="Schlüsseltabelle Quellraum -> Sozialraum")
    source_key: str | None = Field(None, description="Spalte der Schlüsseltabelle mit dem Quellschlüssel")
    target_key: str | None = Field(None, description="Spalte der Schlüsseltabelle mit dem Sozialraum-Schlüssel")
    group: str | None = Field(None, description="Spalte der Schlüsseltabelle mit der übergeordneten Einheit (Bezirk)")
    prefix_len: int | None = Field(None, ge=1, description="Sozialraum = erste n Zeichen des Quellschlüssels")
    key_table_encoding: str | None = None
    polygons: Path | None = Field(None, description="Polygone der Quellgeografie (z. B. Postleitzahlgebiete)")
    key: str | None = Field(None, description="Schlüsselfeld der Quellpolygone")
    layer: str | None = None
    crs: str | None = None
    encoding: str | None = None
    key_width: int | None = Field(None, ge=1)
    method: Literal["area", "dasymetric"] | None = Field(
        None, description="Flächeninterpolation: area (nach Fläche) oder dasymetric (nach Gewichten)")
    weights: WeightsConfig | None = None

    @model_validator(mode="after")
    def _one_way(self):
        ways = [self.key_table is not None, self.prefix_len is not None, self.polygons is not None]
        if sum(ways) != 1:
            raise ValueError("genau eines von 'key_table' (mit source_key/target_key), 'prefix_len' "
                             "oder 'polygons' (mit key und method) angeben")
        if self.key_table is not None and not (self.source_key and self.target_key):
            raise ValueError("zu 'key_table' gehören 'source_key' und 'target_key'")
        if self.polygons is not None:
            if not self.key:
                raise ValueError("zu 'polygons' gehört 'key' (Schlüsselfeld der Quellpolygone)")
            if self.method is None:
                raise ValueError("zu 'polygons' gehört 'method': area oder dasymetric")
            if self.method == "dasymetric" and self.weights is None:
                raise ValueError("method: dasymetric braucht 'weights' (raster oder polygons)")
        elif self.method is not None or self.weights is not None:
            raise ValueError("'method' und 'weights' gelten nur mit 'polygons'")
        return self

    def describe(self, lang: str = "de") -> str:
        """How the level reaches the Sozialräume, in words (German, or English with ``lang="en"``)."""
        words = _DESCRIBE_WORDS["en" if lang == "en" else "de"]
        if self.key_table is not None:
            return words["key_table"].format(Path(self.key_table).name)
        if self.prefix_len is not None:
            return words["prefix"].format(self.prefix_len)
        return words["area" if self.method == "area" else "dasymetric"].format(Path(self.polygons).name)


_DESCRIBE_WORDS = {
    "de": {"key_table": "über die Schlüsseltabelle {}", "prefix": "über die ersten {} Zeichen des Schlüssels",
           "area": "nach Fläche von {} übertragen", "dasymetric": "dasymetrisch von {} übertragen"},
    "en": {"key_table": "through the key table {}", "prefix": "through the first {} characters of the key",
           "area": "transferred by area from {}", "dasymetric": "transferred dasymetrically from {}"},
}


class ValidRows(_Model):
    column: str
    values: list[str]


class PeriodCheck(_Model):
    column: str = Field(description="Spalte mit dem Stichtag/Zeitraum der Zeile, z. B. ZEIT")
    value: str = Field(description="erwarteter Wert, z. B. 202012")


class TableConfig(_Model):
    """One indicator table (CSV or XLSX, or a PostGIS table / WFS layer) on the source geography."""

    path: Path | None = Field(None, description="CSV- oder XLSX-Datei")
    connection: str | None = Field(None, description="statt 'path': PostGIS oder WFS (wie boundaries.connection)")
    layer: str | None = Field(None, description="PostGIS: schema.tabelle; WFS: Typname")
    sql: str | None = Field(None, description="PostGIS: SELECT-Abfrage statt 'layer'")
    wfs_version: Literal["2.0.0", "1.1.0"] = Field("2.0.0", description="WFS: Version des Dienstes")
    key: str = Field(description="Schlüsselspalte der Tabelle")
    columns: dict[str, str] = Field(description="Quellspalte -> Name im geoplan-Datensatz")
    sheet: str | int | None = None
    header_row: int | None = None
    encoding: str | None = None
    delimiter: str | None = None
    decimal: str | None = None
    thousands: str | None = None
    key_width: int | None = Field(None, description="Schlüssel mit führenden Nullen auf diese Länge auffüllen")
    sentinels: list[float] = Field(default_factory=list, description="Zahlen, die 'kein Wert' bedeuten, z. B. -9999")
    valid: ValidRows | None = Field(None, description="Spalte/Werte, die gültige Zeilen kennzeichnen")
    period: PeriodCheck | None = Field(None, description="Prüfung, dass alle Zeilen zum erwarteten Stichtag gehören")
    allow_mixed_key_lengths: bool = Field(False, description="Schlüssel verschiedener Länge zulassen (z. B. '05' und '0304')")
    skip_rows: int = Field(0, ge=0, description="Zeilen direkt unter der Kopfzeile überspringen (z. B. Einheitenzeile)")
    drop_rows: DropRows | None = Field(None, description="Zeilen, die keine Gebiete sind (Summen, Zwischensummen)")
    na_markers: list[str] = Field(default_factory=list, description="weitere Zeichen für 'kein Wert', z. B. 'g'")
    format: Literal["wide", "long"] = Field("wide", description="wide: eine Spalte je Merkmal; long: Schlüssel, Merkmal, Wert")
    variable: str | None = Field(None, description="nur format long: Spalte mit dem Merkmalsnamen")
    value: str | None = Field(None, description="nur format long: Spalte mit dem Wert")
    level: str | None = Field(None, description="Geografie der Tabelle: Name aus indicators.levels; leer = Sozialräume "
                                                "(bzw. indicators.aggregate, falls angegeben)")
    allow_missing: bool | list[str] = Field(
        False, description="Schlüssel, die in dieser oder den vorigen Tabellen fehlen dürfen (Liste oder true)")
    label: str | None = Field(None, description="Bezeichnung im Bericht")
    source: str | None = None
    licence: str | None = None
    reference_date: str | None = None

    @field_validator("connection")
    @classmethod
    def _connection(cls, v: str | None) -> str | None:
        return check_connection(v)

    @property
    def display(self) -> str:
        """The table's name in messages: the file name, or the table/type name."""
        return Path(self.path).name if self.path is not None else (self.layer or "SQL")

    @model_validator(mode="after")
    def _long(self):
        if (self.path is None) == (self.connection is None):
            raise ValueError("genau eines von 'path' (Datei) oder 'connection' (PostGIS/WFS) angeben")
        if self.connection is None and (self.layer or self.sql):
            raise ValueError("'layer' und 'sql' gelten nur mit 'connection'")
        if self.connection is not None and (self.sheet is not None or self.encoding or self.delimiter):
            raise ValueError("'sheet', 'encoding' und 'delimiter' gelten nur für Dateien ('path')")
        if self.format == "long" and not (self.variable and self.value):
            raise ValueError("zu format: long gehören 'variable' (Merkmalsspalte) und 'value' (Wertespalte)")
        if self.format == "wide" and (self.variable or self.value):
            raise ValueError("'variable' und 'value' gelten nur mit format: long")
        return self


class AggregateConfig(_Model):
    """How source-geography rows map to Sozialräume (key hierarchy)."""

    key_table: Path | None = Field(None, description="Schlüsseltabelle Quellraum -> Sozialraum")
    source_key: str | None = Field(None, description="Spalte der Schlüsseltabelle mit dem Quellschlüssel")
    target_key: str | None = Field(None, description="Spalte der Schlüsseltabelle mit dem Sozialraum-Schlüssel")
    group: str | None = Field(None, description="Spalte der Schlüsseltabelle mit der übergeordneten Einheit (Bezirk)")
    prefix_len: int | None = Field(None, ge=1, description="alternativ: Sozialraum = erste n Zeichen des Quellschlüssels")
    key_table_encoding: str | None = None
    key_table_connection: str | None = Field(None, description="statt 'key_table': PostGIS oder WFS "
                                                               "(wie boundaries.connection)")
    key_table_layer: str | None = Field(None, description="PostGIS: schema.tabelle; WFS: Typname")
    key_table_sql: str | None = Field(None, description="PostGIS: SELECT-Abfrage statt 'key_table_layer'")
    key_table_wfs_version: Literal["2.0.0", "1.1.0"] = Field("2.0.0", description="WFS: Version des Dienstes")

    @field_validator("key_table_connection")
    @classmethod
    def _connection(cls, v: str | None) -> str | None:
        return check_connection(v)

    @model_validator(mode="after")
    def _one_way(self):
        ways = [self.key_table is not None, self.key_table_connection is not None, self.prefix_len is not None]
        if sum(ways) != 1:
            raise ValueError("genau eines von 'key_table' bzw. 'key_table_connection' (mit source_key/target_key) "
                             "oder 'prefix_len' angeben")
        if (self.key_table is not None or self.key_table_connection is not None) and not (
                self.source_key and self.target_key):
            raise ValueError("zu 'key_table' bzw. 'key_table_connection' gehören 'source_key' und 'target_key'")
        if self.key_table_connection is None and (self.key_table_layer or self.key_table_sql):
            raise ValueError("'key_table_layer' und 'key_table_sql' gelten nur mit 'key_table_connection'")
        return self

    @property
    def has_key_table(self) -> bool:
        return self.key_table is not None or self.key_table_connection is not None


class IndicatorsConfig(_Model):
    catalogue: Path = Field(description="Indikatorenkatalog (YAML)")
    tables: list[TableConfig] = Field(min_length=1)
    aggregate: AggregateConfig | None = Field(None, description="leer = Tabellen liegen schon auf Sozialraum-Ebene")
    levels: dict[str, LevelConfig] = Field(
        default_factory=dict, description="weitere Geografien der Tabellen (Name -> Schlüsseltabelle/Präfix/Polygone)")
    derived: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="abgeleitete Zählspalten als gewichtete Summe, z. B. pop_u21: {pop_u6: 1, pop_18_27: 0.333}",
    )
    index_method: Literal["gewichtet", "mss", "pca"] = "gewichtet"

    @model_validator(mode="after")
    def _levels_known(self):
        for i, t in enumerate(self.tables):
            if t.level is not None and t.level not in self.levels and t.level not in SOZIALRAUM_LEVELS:
                known = ", ".join([*SOZIALRAUM_LEVELS[:1], *self.levels]) 
                raise ValueError(f"tables[{i}].level '{t.level}' ist nicht unter indicators.levels definiert "
                                 f"(bekannt: {known})")
        return self


class KindConfig(_Model):
    share: float = Field(gt=0, le=1, description="Anteil der Fälle dieser Hilfeart")
    cost_per_case_eur: float = Field(gt=0, description="mittlere Jahreskosten je Fall (EUR)")


class SimulateConfig(_Model):
    """Seeded simulator for HzE cases/costs where no real data exist (see geoplan.stages.simulate)."""

    seed: int = Field(2026, ge=0, description="Startwert des Zufallsgenerators (ganze Zahl ≥ 0)")
    rate_per_1000: float = Field(30.0, gt=0, description="mittlere Fälle je 1.000 unter 21 (Eckwert)")
    effects: dict[str, float] = Field(description="log-Effekt je Standardabweichung des Indikators")
    alpha: float = Field(0.04, ge=0, description="Überdispersion (negativ-binomial), 0 = Poisson")
    kinds: dict[Literal["ambulant", "teilstationaer", "stationaer"], KindConfig]
    cost_sd_log: float = Field(0.15, ge=0, description="Streuung der Fallkosten je Sozialraum (log)")
    trend: float = Field(0.02, description="Veränderung der Fallzahl zum Vorjahr (Anteil)")


class HzEConfig(_Model):
    simulate: SimulateConfig | None = None
    case_list: CaseListConfig | None = Field(
        None, description="HzE-Fallliste aus der Fachsoftware (eine Zeile je Hilfe), statt Tabelle oder Simulation")
    path: Path | None = Field(None, description="echte Falldaten je Sozialraum (CSV/XLSX) statt Simulation")
    key: str | None = None
    columns: dict[str, str] = Field(default_factory=dict, description="Quellspalte -> hze_cases, hze_cases_prev, hze_cost_prev_eur …")
    sheet: str | int | None = None
    header_row: int | None = None
    encoding: str | None = None
    delimiter: str | None = None
    decimal: str | None = None
    thousands: str | None = None
    key_width: int | None = Field(None, ge=1)
    allow_mixed_key_lengths: bool = False
    skip_rows: int = Field(0, ge=0)
    drop_rows: DropRows | None = None
    na_markers: list[str] = Field(default_factory=list)
    budget_kinds: list[Literal["ambulant", "teilstationaer", "stationaer"]] = Field(
        default_factory=lambda: ["ambulant", "teilstationaer", "stationaer"],
        description="Hilfearten, deren Kosten das Budget abdeckt",
    )
    cost_per_case_range_eur: tuple[float, float] = Field(
        (200.0, 400_000.0), description="plausible Vorjahreskosten je Fall und Jahr (EUR): [min, max]")

    @model_validator(mode="after")
    def _source(self):
        if sum(x is not None for x in (self.simulate, self.path, self.case_list)) != 1:
            raise ValueError("genau eines von 'simulate', 'path' oder 'case_list' angeben")
        if self.path is not None and not self.key:
            raise ValueError("zu 'path' gehört 'key'")
        return self


class BYM2Config(_Model):
    """Settings of the spatial need model (``model.family: bym2``, :class:`geoplan.stages.model.bym2.BYM2Model`).

    The defaults (2 chains × (500 warm-up + 1000 draws)) fit the 58 Berlin
    Sozialräume in well under a minute on 2 CPU cores; for a budget decision
    4 chains × 1000 draws give steadier intervals.
    """

    chains: int = Field(2, ge=1, le=16, description="Markovketten (nacheinander gerechnet); ≥ 2 für ein belastbares R̂")
    warmup: int = Field(500, ge=10, description="Aufwärmschritte je Kette (werden verworfen)")
    draws: int = Field(1000, ge=10, description="Ziehungen je Kette nach dem Aufwärmen")
    seed: int = Field(0, ge=0, description="Startwert: gleiche Konfiguration, gleiche Zahlen")
    target_accept: float = Field(0.9, ge=0.5, lt=1, description="Ziel-Akzeptanzrate von NUTS (höher = kleinere Schritte, weniger Divergenzen)")
    max_tree_depth: int = Field(10, ge=1, le=15, description="größte Baumtiefe von NUTS")
    sigma_prior: list[Any] = Field(["pc", 1.0, 0.01], description="Prior von σ: [pc, u, alpha] | [halfnormal, scale] | [exponential, rate]")
    rho_prior: list[Any] = Field(["pc", 0.5, 2 / 3], description="Prior von ρ: [pc, u, alpha] | [beta, a, b] | [uniform]")
    coef_prior_sd: float = Field(1.0, gt=0, description="Normal(0, sd) für jeden Koeffizienten je Standardabweichung")
    interval: float = Field(0.9, gt=0.5, lt=1, description="Wahrscheinlichkeit der Intervalle des Zielwerts (0,9 = 5 % bis 95 %)")

    @field_validator("sigma_prior", "rho_prior")
    @classmethod
    def _prior(cls, v, info):
        from geoplan.stages.bym2_priors import RHO_PRIORS, SIGMA_PRIORS, prior_tuple

        name = info.field_name[: -len("_prior")]
        prior_tuple(v, name, SIGMA_PRIORS if name == "sigma" else RHO_PRIORS)
        return v


class ModelConfig(_Model):
    predictors: list[str] = Field(min_length=1, description="Indikatoren (Namen aus dem Katalog) als Prädiktoren")
    family: Literal["auto", "poisson", "negbin", "bym2"] = Field(
        "auto", description="auto/poisson/negbin: Regressionsmodell; bym2: räumliches Modell mit Unsicherheit in Euro")
    bym2: BYM2Config = Field(default_factory=BYM2Config,
                             description="Einstellungen des räumlichen Modells (nur bei family: bym2)")
    exposure: str = Field("pop_u21", description="Bezugsbevölkerung (Offset), eine Zählspalte, z. B. pop_u18")
    exposure_label: str | None = Field(
        None, description="Bezeichnung der Bezugsbevölkerung im Bericht, z. B. 'Einwohner unter 18'; leer = aus dem Namen")
    cv_folds: int = Field(5, ge=2)
    n_boot: int = Field(1000, ge=100)
    seed: int = Field(0, ge=0)
    oe_high: float = Field(1.1, gt=1, description="beobachtet/erwartet über diesem Wert gilt als 'mehr Fälle als erwartet'")
    oe_low: float = Field(0.9, gt=0, lt=1, description="beobachtet/erwartet unter diesem Wert gilt als 'weniger Fälle als erwartet'")


class SensitivityConfig(_Model):
    """Monte Carlo over the component weights (geoplan.stages.sensitivity.weight_sensitivity)."""

    n_draws: int = Field(1000, ge=0, description="Ziehungen der Gewichte; 0 = keine Sensitivitätsanalyse")
    concentration: float = Field(100.0, gt=0, description="Dirichlet-Konzentration: je größer, desto näher an den Gewichten")
    seed: int = Field(0, ge=0)


class PrivacyConfig(_Model):
    k: int = Field(3, ge=2, description="Fallzahlen von 1 bis k-1 werden nie veröffentlicht")


class PostgisOutputConfig(_Model):
    """The result layer (as in ergebnis.gpkg, after suppression) as a PostGIS table, with QGIS styles."""

    connection: str = Field(description="PostGIS-Verbindung ohne Passwort ('PG:service=…', 'PG:host=… dbname=…')")
    table: str = Field(description="schema.tabelle")
    if_exists: Literal["fail", "replace"] = Field(
        "fail", description="fail: abbrechen, wenn es die Tabelle gibt; replace: eine von geoplan geschriebene ersetzen")

    @field_validator("connection")
    @classmethod
    def _postgis_only(cls, v: str) -> str:
        from geoplan.load.postgis import is_postgis_source

        check_connection(v)
        if not is_postgis_source(v):
            raise GeoplanError("Ausgabe nur in PostGIS möglich, nicht in einen WFS.",
                               expected="'PG:…' oder 'postgresql://…'",
                               message_en="Output is possible to PostGIS only, not to a WFS.")
        return v


class OutputConfig(_Model):
    tiles: str | None = Field(None, description="Kachel-URL für einen Hintergrund (aus = keine Anfrage an Dritte)")
    tiles_attribution: str | None = None
    pdf: bool = True
    max_areas_in_report: int = Field(
        300, ge=1,
        description="Höchstzahl der Sozialräume, die der Bericht (HTML/PDF) Zeile für Zeile bzw. Balken für Balken "
                    "zeigt; darüber zeigen die Tabellen je Sozialraum Verteilungen, die kleinsten und größten Werte "
                    "und Summen je Bezirk, und der Bericht nennt, wo die vollständige Tabelle steht "
                    "(verteilung.xlsx, ergebnis.gpkg)")
    pdf_detail_tables_max_areas: int | None = Field(
        30, ge=0,
        description="Höchstzahl der Sozialräume, für die bericht.pdf die Detailtabellen je Sozialraum enthält "
                    "(Indikatorwerte, erwarteter Bedarf, BYM2-Intervalle, Sozialräume an der Korridorgrenze, "
                    "Abstand zum Zielwert, Sensitivität); darüber steht im PDF an ihrer Stelle ein Satz, wo die "
                    "Tabelle steht (bericht.html, verteilung.xlsx). Die Tabelle „Budget je Sozialraum“ steht "
                    "immer im PDF, bericht.html "
                    "enthält immer alle Tabellen. Voreinstellung 30: so viele Sozialräume passen auf eine Seite im "
                    "Querformat. 0 = nie im PDF, leer (null) = immer")
    qgis_project: bool = Field(False, description="QGIS-Projekt ergebnis.qgz (mit Stilen und Bezirksgrenzen) "
                                                  "neben ergebnis.gpkg schreiben")
    postgis: PostgisOutputConfig | None = Field(None, description="Ergebnis zusätzlich in eine PostGIS-Tabelle "
                                                                  "schreiben")


class Config(_Model):
    title: str = Field("Sozialraumbudget Hilfen zur Erziehung", description="Titel des Berichts")
    region: str = Field(description="Gebietskörperschaft, z. B. Berlin")
    budget_year: int = Field(ge=2000, le=2100)
    lang: Literal["de", "en"] = "de"
    boundaries: BoundariesConfig
    indicators: IndicatorsConfig
    hze: HzEConfig
    model: ModelConfig
    allocation: AllocationSpec = Field(description="Budgetformel: Gesamtbudget, Komponenten, Teilbudgets, Korridor")
    settlement: SettlementSpec | None = Field(None, description="Abrechnungsregeln am Ende der Periode")
    sensitivity: SensitivityConfig = SensitivityConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    output: OutputConfig = OutputConfig()
    sources: list[dict[str, str]] = Field(default_factory=list, description="Quellenangaben für den Bericht")

    # where the YAML was read from; relative paths resolve against it
    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("region")
    @classmethod
    def _nonempty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("darf nicht leer sein")
        return v

    def resolve(self, p: Path | None) -> Path | None:
        if p is None:
            return None
        p = Path(p)
        return p if p.is_absolute() else (self.base_dir / p)

    def input_paths(self) -> list[Path]:
        """Every input file the run reads (for the manifest's hashes)."""
        paths = [self.resolve(self.boundaries.path), self.resolve(self.indicators.catalogue)]
        paths += [self.resolve(t.path) for t in self.indicators.tables]
        paths = [p for p in paths if p is not None]  # PostGIS/WFS inputs have no path
        if self.indicators.aggregate and self.indicators.aggregate.key_table:
            paths.append(self.resolve(self.indicators.aggregate.key_table))
        for lv in self.indicators.levels.values():
            for p in (lv.key_table, lv.polygons, *((lv.weights.raster, lv.weights.polygons, lv.weights.table)
                                                   if lv.weights else ())):
                if p is not None:
                    paths.append(self.resolve(p))
        if self.hze.path:
            paths.append(self.resolve(self.hze.path))
        cl = self.hze.case_list
        if cl is not None:
            paths.append(self.resolve(cl.path))
            if cl.subarea_key_table is not None:
                paths.append(self.resolve(cl.subarea_key_table))
            if cl.street_directory is not None:
                paths.append(self.resolve(cl.street_directory.path))
        return paths


def exposure_label(config: "Config", lang: str = "de") -> str:
    """The exposure's label for reports: ``model.exposure_label`` or one derived from its name."""
    if config.model.exposure_label:
        return config.model.exposure_label
    return default_exposure_label(config.model.exposure, lang)


def default_exposure_label(name: str, lang: str = "de") -> str:
    import re

    m = re.fullmatch(r"pop_u(\d+)", name)
    if m:
        return f"Einwohner unter {m.group(1)}" if lang == "de" else f"residents under {m.group(1)}"
    m = re.fullmatch(r"pop_(\d+)_(\d+)", name)
    if m:
        return (f"Einwohner von {m.group(1)} bis unter {m.group(2)}" if lang == "de"
                else f"residents aged {m.group(1)} to under {m.group(2)}")
    if name == "pop_total":
        return "Einwohner" if lang == "de" else "residents"
    return name


def exposure_definition(config: "Config", lang: str = "de") -> str | None:
    """The derived-column formula of the exposure in words, e.g. 'pop_u6 + pop_6_15 + 1/3 · pop_18_27'; None if read as is."""
    formula = config.indicators.derived.get(config.model.exposure)
    if not formula:
        return None
    from fractions import Fraction

    parts = []
    for col, w in formula.items():
        if w == 1:
            parts.append(col)
        else:
            fr = Fraction(w).limit_denominator(12)
            ws = f"{fr.numerator}/{fr.denominator}" if abs(float(fr) - w) < 1e-6 and fr.denominator > 1 else (
                f"{w:g}".replace(".", ",") if lang == "de" else f"{w:g}")
            parts.append(f"{ws} · {col}")
    return " + ".join(parts)


def _loc(loc: tuple) -> str:
    return ".".join(str(x) for x in loc)


def _allowed_fields(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """Walk the schema along ``loc`` (minus the last element) to list allowed field names."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return None
        ann = fields[part].annotation
        current = _unwrap_model(ann)
        if current is None:
            return None
    fields = getattr(current, "model_fields", None)
    return sorted(k for k in fields if k != "base_dir") if fields else None


def _unwrap_model(ann):
    import typing

    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        m = _unwrap_model(arg)
        if m is not None:
            return m
    return None


# pydantic's error types in German ({...} from the error's ctx)
_GERMAN = {
    "greater_than": "muss größer als {gt} sein",
    "greater_than_equal": "muss mindestens {ge} sein",
    "less_than": "muss kleiner als {lt} sein",
    "less_than_equal": "darf höchstens {le} sein",
    "finite_number": "muss eine endliche Zahl sein (nicht NaN oder unendlich)",
    "int_parsing": "muss eine ganze Zahl sein",
    "int_from_float": "muss eine ganze Zahl sein",
    "int_type": "muss eine ganze Zahl sein",
    "float_parsing": "muss eine Zahl sein",
    "float_type": "muss eine Zahl sein",
    "decimal_parsing": "muss eine Zahl sein",
    "decimal_type": "muss eine Zahl sein",
    "bool_parsing": "muss true oder false sein",
    "bool_type": "muss true oder false sein",
    "string_type": "muss ein Text sein",
    "list_type": "muss eine Liste sein",
    "dict_type": "muss eine Zuordnung (Schlüssel: Wert) sein",
    "model_type": "muss eine Zuordnung (Schlüssel: Wert) sein",
    "literal_error": "erlaubt sind: {expected}",
    "too_short": "braucht mindestens {min_length} Einträge",
    "too_long": "darf höchstens {max_length} Einträge haben",
    "string_pattern_mismatch": "hat nicht die erlaubte Form ({pattern})",
    "union_tag_invalid": "unbekannter Typ {tag}; erlaubt sind: {expected_tags}",
    "union_tag_not_found": "das Feld 'type' fehlt",
}


def _german_message(e: dict) -> str:
    """One pydantic error in German (value errors are ours and German already)."""
    msg = e.get("msg", "")
    if msg.startswith("Value error, "):
        return msg[len("Value error, "):]
    template = _GERMAN.get(e.get("type", ""))
    if template is None:
        return msg
    try:
        return template.format(**(e.get("ctx") or {}))
    except (KeyError, IndexError):
        return msg


def _non_finite(raw, where: str = "") -> list[str]:
    """Config locations holding NaN or ±inf (YAML .nan/.inf): never a sensible value."""
    import math

    if isinstance(raw, float) and not math.isfinite(raw):
        return [where or "(oberste Ebene)"]
    if isinstance(raw, dict):
        return [w for k, v in raw.items() for w in _non_finite(v, f"{where}.{k}" if where else str(k))]
    if isinstance(raw, list):
        return [w for i, v in enumerate(raw) for w in _non_finite(v, f"{where}[{i}]")]
    return []


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML would keep the last silently)."""


def _construct_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _value in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # unhashable key: let PyYAML report it
            first = None
        if first is not None:
            raise GeoplanError(
                f"Der Schlüssel '{key}' steht zweimal in derselben Ebene der Konfiguration; "
                "YAML würde stillschweigend den letzten Wert nehmen.",
                location=f"Zeile {first.start_mark.line + 1} und Zeile {key_node.start_mark.line + 1}",
                hint="Einen der beiden Einträge löschen.",
                message_en=f"The key '{key}' appears twice at the same level of the configuration; "
                           "YAML would silently keep the last value.",
                hint_en="Delete one of the two entries.",
            )
        try:
            seen[key] = key_node
        except TypeError:
            pass
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def validation_error_to_geoplan(err: ValidationError, model: type[BaseModel], file: str | Path) -> GeoplanError:
    """Turn pydantic's errors into one message (German, and English for ``--lang en``) naming every bad field."""
    lines, lines_en = [], []
    first_hint = first_hint_en = None
    for e in err.errors():
        loc = tuple(e["loc"])
        where = _loc(loc) or "(oberste Ebene)"
        where_en = _loc(loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            allowed = _allowed_fields(model, loc)
            lines.append(f"- unbekanntes Feld '{where}'" + (f"; erlaubt sind: {', '.join(allowed)}" if allowed else ""))
            lines_en.append(f"- unknown field '{where_en}'" + (f"; allowed are: {', '.join(allowed)}" if allowed else ""))
            first_hint = first_hint or "Tippfehler im Feldnamen korrigieren oder das Feld entfernen."
            first_hint_en = first_hint_en or "Correct the typo in the field name or remove the field."
        elif e["type"] == "missing":
            lines.append(f"- Pflichtfeld '{where}' fehlt")
            lines_en.append(f"- required field '{where_en}' is missing")
            first_hint = first_hint or "Das Feld ergänzen (siehe 'geoplan init' für eine kommentierte Vorlage)."
            first_hint_en = first_hint_en or "Add the field (see 'geoplan init' for a commented template)."
        elif isinstance(e.get("ctx", {}).get("error"), GeoplanError):
            # raised by a validator: keep its own location, expected value and fix
            cause = e["ctx"]["error"]
            inner = cause.location or ""
            where = inner if inner.startswith(where) else where
            details = "; ".join(f"{label} {v}" for label, v in (("Stelle:", inner if inner != where else None),
                                                                 ("erwartet:", cause.expected),
                                                                 ("gefunden:", cause.found)) if v)
            lines.append(f"- Feld '{where}': {cause.message}" + (f" ({details})" if details else ""))
            expected_en = cause.expected_en or english_location(cause.expected)
            found_en = cause.found_en or english_location(cause.found)
            inner_en = (cause.location_en or english_location(inner)) if inner != where else None
            details_en = "; ".join(f"{label} {v}" for label, v in (("location:", inner_en), ("expected:", expected_en),
                                                                    ("found:", found_en)) if v)
            lines_en.append(f"- field '{where}': {cause.text('en')}" + (f" ({details_en})" if details_en else ""))
            first_hint = first_hint or cause.hint or "Den Wert gemäß der Angabe korrigieren."
            first_hint_en = first_hint_en or cause.hint_en or cause.hint or "Correct the value as stated."
        else:
            msg = _german_message(e)
            lines.append(f"- Feld '{where}': {msg} (gefunden: {e.get('input')!r})")
            lines_en.append(f"- field '{where_en}': {e.get('msg', msg)} (found: {e.get('input')!r})")
            first_hint = first_hint or "Den Wert gemäß der Angabe korrigieren."
            first_hint_en = first_hint_en or "Correct the value as stated."
    return GeoplanError(
        "Die Konfiguration ist ungültig:\n" + "\n".join(lines),
        file=file,
        hint=first_hint,
        message_en="The configuration is invalid:\n" + "\n".join(lines_en),
        hint_en=first_hint_en,
    )


#: Plausible upper limit of allocation.total_eur (1 trillion €; cents must still fit 64-bit integers)
MAX_TOTAL_EUR = 1_000_000_000_000


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config; raise GeoplanError with every bad field."""
    path = Path(path)
    if not path.is_file():
        raise GeoplanError(
            "Konfigurationsdatei nicht gefunden.",
            file=path,
            hint="Pfad prüfen oder mit 'geoplan init' eine Vorlage erzeugen.",
            message_en="Configuration file not found.",
            hint_en="Check the path or create a template with 'geoplan init'.",
        )
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except GeoplanError as err:
        err.file = str(path)
        raise
    except UnicodeDecodeError as exc:
        raise GeoplanError(
            "Die Konfiguration ist nicht UTF-8-kodiert.",
            file=path,
            location=f"Byte {exc.start}",
            hint="Datei als UTF-8 speichern.",
            message_en="The configuration is not UTF-8 encoded.", hint_en="Save the file as UTF-8.",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"Zeile {mark.line + 1}, Spalte {mark.column + 1}" if mark else None
        raise GeoplanError(
            f"Die Konfiguration ist kein gültiges YAML: {getattr(exc, 'problem', exc)}",
            file=path,
            location=where,
            hint="Einrückung (Leerzeichen, keine Tabs) und Doppelpunkte prüfen.",
            message_en=f"The configuration is not valid YAML: {getattr(exc, 'problem', exc)}",
            hint_en="Check the indentation (spaces, no tabs) and the colons.",
        ) from None
    if not isinstance(raw, dict):
        raise GeoplanError(
            "Die Konfiguration muss eine YAML-Zuordnung (Schlüssel: Wert) sein.",
            file=path,
            found=type(raw).__name__,
            hint="Mit 'geoplan init' eine Vorlage erzeugen.",
            message_en="The configuration must be a YAML mapping (key: value).",
            hint_en="Create a template with 'geoplan init'.",
        )
    bad = _non_finite(raw)
    if bad:
        raise GeoplanError(
            "Die Konfiguration enthält Werte, die keine endlichen Zahlen sind (NaN oder unendlich).",
            file=path,
            location=", ".join(f"Feld '{w}'" for w in bad),
            expected="eine endliche Zahl",
            hint="Den Wert durch eine gewöhnliche Zahl ersetzen (z. B. 120000000).",
            message_en="The configuration holds values that are not finite numbers (NaN or infinity).",
            hint_en="Replace the value by an ordinary number (e.g. 120000000).",
        )
    cfg = config_from_dict(raw, base_dir=path.parent, file=path)
    if cfg.allocation.total_eur > MAX_TOTAL_EUR:
        raise GeoplanError(
            "Das Gesamtbudget ist unrealistisch groß; so große Beträge lassen sich nicht centgenau verteilen.",
            file=path, location="Feld 'allocation.total_eur'", expected=f"höchstens {MAX_TOTAL_EUR:,.0f} €".replace(",", "."),
            found=f"{cfg.allocation.total_eur:g}",
            hint="Den Betrag in Euro angeben (z. B. 120000000 für 120 Mio. €); Tippfehler bei den Nullen prüfen.",
            message_en="The total budget is unrealistically large; such amounts cannot be distributed to the cent.",
            hint_en="Give the amount in euros (e.g. 120000000 for 120 million €); check the zeros.")
    from geoplan.privacy.components import check_no_observed_counts

    check_no_observed_counts(cfg.allocation, k=cfg.privacy.k, file=path)
    return cfg


def config_from_dict(raw: dict, *, base_dir: Path, file: str | Path = "<config>") -> Config:
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as err:
        raise validation_error_to_geoplan(err, Config, file) from None
    cfg.base_dir = Path(base_dir).resolve()
    return cfg
