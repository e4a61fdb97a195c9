"""The reconcile stage's long SQL, kept as Jinja templates in sql/*.sql.j2 beside this module.

A statement longer than a screen reads better as SQL than as a Python list of strings. The
templates render SQL, not HTML, so nothing is escaped: every name they receive must already be
checked as a SQL identifier (tieout.config.is_identifier) or quoted with the `literal` filter,
and data never goes through a template, only through query parameters.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined


def literal(value: str) -> str:
    """A SQL string literal for a name taken from config (never for data)."""
    return "'" + value.replace("'", "''") + "'"


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("tieout.reconcile", "sql"),
        autoescape=False,  # noqa: S701 - renders SQL from checked names, never HTML or data
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["literal"] = literal
    return env


def render(name: str, **context: Any) -> str:
    """The statement of template sql/<name>.sql.j2 for `context`."""
    return environment().get_template(f"{name}.sql.j2").render(**context)
