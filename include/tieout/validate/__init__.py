"""tieout.validate: GX suites with severities; a bad table blocks reverse ETL for its entity only.

It never edits the data it checks; importing it stays cheap (GX loads only when a validation runs).
"""

from tieout.validate.context import data_docs_dir
from tieout.validate.run import (
    EntityBlocked,
    GateDecision,
    NotValidated,
    blocked_entities,
    gate,
    gate_decision,
    validate,
    warnings_for,
)

__all__ = [
    "EntityBlocked",
    "GateDecision",
    "NotValidated",
    "blocked_entities",
    "data_docs_dir",
    "gate",
    "gate_decision",
    "validate",
    "warnings_for",
]
