"""Privacy: HzE counts describe vulnerable families.

- :mod:`geoplan.privacy.suppress`: primary and secondary suppression of small
  counts (k), rates as ranges, the protected Sozialraum frame.
- :mod:`geoplan.privacy.scan`: the audit of a written output folder for
  planted small counts and for published columns proportional to small counts.
- :mod:`geoplan.privacy.components`: budget formulas on observed counts are refused.
"""

from geoplan.privacy.suppress import (  # noqa: F401
    DisclosureError,
    SuppressionResult,
    assert_no_small_counts,
    audit_suppression,
    find_small_counts,
    format_rate_range,
    primary_marker,
    protect_sozialraum_frame,
    suppress_counts,
    suppress_rates,
)
from geoplan.privacy.components import check_no_observed_counts, observed_count_uses  # noqa: F401
from geoplan.privacy.scan import (  # noqa: F401
    ProportionalHit,
    ScanHit,
    proportional_columns,
    scan_for_values,
    scan_output_dir,
    scan_output_proportional,
)
