"""Privacy: HzE counts describe vulnerable families.

- :mod:`geoplan.privacy.suppress`: primary and secondary suppression of small
  counts (k), rates as ranges, the protected Sozialraum frame.
- :mod:`geoplan.privacy.scan`: the audit of a written output folder for
  planted small counts.
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
from geoplan.privacy.scan import ScanHit, scan_for_values, scan_output_dir  # noqa: F401
