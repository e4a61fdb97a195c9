"""Reconcile: compare every system's copy of every entity with the canonical record.

Findings are history in recon.findings; the work happens in PostgreSQL, never in Python memory.
"""

from tieout.reconcile.run import reconcile

__all__ = ["reconcile"]
