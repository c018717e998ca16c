"""Prior specifications of the BYM2 model, checked without loading any statistics code.

Shared by :class:`geoplan.stages.model.bym2.BYM2Model` and the config schema
(``model.bym2.sigma_prior`` / ``rho_prior``), so a bad prior is reported when
the config is read, with the field's name.
"""

from __future__ import annotations

import math

from geoplan.errors import GeoplanError

__all__ = ["RHO_PRIORS", "SIGMA_PRIORS", "prior_tuple"]


def prior_tuple(value, name: str, allowed: dict) -> tuple:
    if isinstance(value, str):
        value = (value,)
    if isinstance(value, dict):
        value = (value.get("type"), *[v for k, v in value.items() if k != "type"])
    value = tuple(value)
    kind = value[0] if value else None
    if kind not in allowed or len(value) - 1 != allowed[kind][0]:
        raise GeoplanError(
            f"Unbekannte oder unvollständige Prior-Angabe für {name}.",
            location=f"model.bym2.{name}_prior",
            expected=" | ".join(f"{k}: {v[1]}" for k, v in allowed.items()),
            found=repr(value), message_en=f"Unknown or incomplete prior for {name}.",
        )
    try:
        params = tuple(float(v) for v in value[1:])
    except (TypeError, ValueError):
        raise GeoplanError(f"Die Prior-Parameter für {name} müssen Zahlen sein.", location=f"model.bym2.{name}_prior",
                           found=repr(value), message_en=f"The prior parameters for {name} must be numbers.") from None
    if any(not math.isfinite(p) or p <= 0 for p in params):
        raise GeoplanError(f"Die Prior-Parameter für {name} müssen positive Zahlen sein.",
                           location=f"model.bym2.{name}_prior", found=repr(value),
                           message_en=f"The prior parameters for {name} must be positive numbers.")
    if kind == "pc" and name == "rho" and not (0 < params[0] < 1 and 0 < params[1] < 1):
        raise GeoplanError("PC-Prior für ρ: u und alpha müssen zwischen 0 und 1 liegen.",
                           location="model.bym2.rho_prior", expected="(\"pc\", u, alpha), z. B. (\"pc\", 0.5, 2/3)",
                           found=repr(value), message_en="PC prior for ρ: u and alpha must lie between 0 and 1.",
                           expected_en="(\"pc\", u, alpha), e.g. (\"pc\", 0.5, 2/3)")
    if kind == "pc" and name == "sigma" and not params[1] < 1:
        raise GeoplanError("PC-Prior für σ: alpha muss zwischen 0 und 1 liegen.",
                           location="model.bym2.sigma_prior", expected="(\"pc\", u, alpha), z. B. (\"pc\", 1, 0.01)",
                           found=repr(value), message_en="PC prior for σ: alpha must lie between 0 and 1.",
                           expected_en="(\"pc\", u, alpha), e.g. (\"pc\", 1, 0.01)")
    return (kind, *params)


SIGMA_PRIORS = {"pc": (2, "(\"pc\", u, alpha): P(σ > u) = alpha"),
                 "halfnormal": (1, "(\"halfnormal\", scale)"),
                 "exponential": (1, "(\"exponential\", rate)")}
RHO_PRIORS = {"pc": (2, "(\"pc\", u, alpha): P(ρ < u) = alpha"),
               "beta": (2, "(\"beta\", a, b)"),
               "uniform": (0, "(\"uniform\",)")}
