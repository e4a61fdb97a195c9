"""Report: the drift report of a run, as HTML for finance, CSV, and a recon.drift_runs row.

Reads what reconcile wrote; it must never change a finding.
"""

from tieout.report.build import report

__all__ = ["report"]
