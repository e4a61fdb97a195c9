"""Analysts read the canonical and finance tables in a SQL client and in the dbt docs: every
column of every table those models build carries the description from the model's YAML."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tieout.paths import dbt_project_dir

DOCUMENTED_LAYERS = ("canonical", "finance")


def model_names(layer: str) -> list[str]:
    return sorted(path.stem for path in (dbt_project_dir() / "models" / layer).glob("*.sql"))


def test_every_column_of_every_canonical_and_finance_table_carries_its_description(
    built: dict[str, Any], sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    undescribed = []
    for layer in DOCUMENTED_LAYERS:
        for model in model_names(layer):
            rows = sql(
                """select a.attname, col_description(a.attrelid, a.attnum),
                          obj_description(a.attrelid, 'pg_class')
                   from pg_attribute a
                   where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped
                   order by a.attnum""",
                f"{layer}.{model}",
            )
            assert rows, f"{layer}.{model} was not built"
            if not (rows[0][2] or "").strip():
                undescribed.append(f"{layer}.{model} (the table)")
            undescribed += [
                f"{layer}.{model}.{column}" for column, doc, _ in rows if not (doc or "").strip()
            ]
    assert undescribed == [], "describe these in the model's YAML: " + ", ".join(undescribed)
