"""Reverse ETL: push agreed (canonical) values back to the systems that hold them wrong.

Every write goes through rev.outbox first; nothing is ever sent that the outbox does not hold.
"""

from tieout.reverse_etl.hold import held_writes

__all__ = ["held_writes"]
