"""Need models: expected HzE demand per Sozialraum.

:mod:`geoplan.stages.model.glm` holds the Poisson / negative binomial GLM
(:class:`HzEDemandModel`, :func:`fit_need_model`) and its diagnostics.
"""

from geoplan.stages.model.glm import (  # noqa: F401
    CostModelResult,
    expected_demand,
    HzEDemandModel,
    NeedModelResult,
    calibration_table,
    deviance_explained,
    fit_cost_model,
    fit_need_model,
    funnel_table,
    mae_per_1000,
    morans_i,
    negbin_limits,
    overdispersion_test,
    poisson_deviance,
    poisson_limits,
    queen_weights,
)
