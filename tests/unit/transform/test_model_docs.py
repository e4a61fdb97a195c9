"""Analysts read the canonical and finance models in the dbt docs and in their SQL client (the
descriptions become column comments), so every column those models select is described in the
model's YAML, and the YAML describes no column the model does not have.

The columns come from the model's SQL, without a database: its final select list, followed
through `*` into the CTE it reads, `canonical_select(entity)` expanded from
include/config/entities.yml the way the macro does, and `columns_of(alias, columns)` from the
model's `{% set columns = [...] %}`. tests/integration/transform/test_column_docs.py checks the
built tables' comments as well.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tieout.config import load_config
from tieout.paths import dbt_project_dir

DOCUMENTED_LAYERS = ("canonical", "finance")
OPEN, CLOSE = "([{", ")]}"


def model_files() -> list[Path]:
    models = dbt_project_dir() / "models"
    return sorted(path for layer in DOCUMENTED_LAYERS for path in (models / layer).glob("*.sql"))


def yaml_models() -> dict[str, dict]:
    models: dict[str, dict] = {}
    for layer in DOCUMENTED_LAYERS:
        for path in (dbt_project_dir() / "models" / layer).glob("*.yml"):
            for model in yaml.safe_load(path.read_text()).get("models", []):
                models[model["name"]] = model
    return models


def without_comments(sql: str) -> str:
    sql = re.sub(r"\{#.*?#\}", " ", sql, flags=re.S)
    return re.sub(r"--[^\n]*", " ", sql)


def top_level(text: str) -> list[tuple[int, str]]:
    """(position, character) of every character outside brackets and quotes."""
    depth, quote, out = 0, "", []
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in OPEN:
            depth += 1
        elif char in CLOSE:
            depth -= 1
        elif depth == 0:
            out.append((i, char))
    return out


def final_select(body: str) -> tuple[list[str], str]:
    """The items of the last top-level `select ... from x` of `body`, and x."""
    outside = dict(top_level(body))
    flat = "".join(outside.get(i, " ") for i in range(len(body)))
    starts = [m.end() for m in re.finditer(r"\bselect\b", flat)]
    assert starts, f"no top-level select in: {body[:200]}"
    start = starts[-1]
    end_match = re.search(r"\bfrom\b", flat[start:])
    end = start + end_match.start() if end_match else len(body)
    source = re.match(r"\s*(\w+)", body[end + 4 :]) if end_match else None
    items, last = [], start
    for i, char in top_level(body):
        if start <= i < end and char == ",":
            items.append(body[last:i])
            last = i + 1
    items.append(body[last:end])
    return [item.strip() for item in items if item.strip()], source.group(1) if source else ""


def ctes(sql: str) -> dict[str, str]:
    """Every `name as ( ... )` of the model, by name."""
    found = {}
    for match in re.finditer(r"\b(\w+) as \(", sql):
        depth, i = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            i += 1
        found[match.group(1)] = sql[match.end() : i - 1]
    return found


def canonical_select_columns(entity: str) -> list[str]:
    """What `canonical_select(entity)` selects (macros/canonical.sql), from entities.yml."""
    spec = load_config().entities[entity]
    return [
        spec.key,
        *spec.fields,
        *(f"{system}_id" for system in spec.systems),
        "field_sources",
        "_source_extracted_at",
    ]


def columns_of(body: str, model_sql: str, names: dict[str, str]) -> list[str]:
    call = re.fullmatch(r"\s*\{\{\s*canonical_select\(\s*'(\w+)'.*\}\}\s*", body, flags=re.S)
    if call:
        return canonical_select_columns(call.group(1))
    items, source = final_select(body)
    columns: list[str] = []
    for item in items:
        star = re.fullmatch(r"(?:(\w+)\.)?\*", item)
        if star:
            cte = star.group(1) or source
            columns += columns_of(names[cte], model_sql, names)
        elif item.startswith("{{") and "columns_of(" in item:
            listed = re.search(r"set columns = \[(.*?)\]", model_sql, flags=re.S)
            assert listed, "columns_of(...) without a `set columns` list"
            columns += re.findall(r"'(\w+)'", listed.group(1))
        else:
            alias = re.search(r"(\w+)\s*$", item)
            assert alias, f"cannot name the column {item!r}"
            columns.append(alias.group(1))
    return columns


def keep_column_lists(match: re.Match[str]) -> str:
    return match.group(0) if "set columns" in match.group(0) else " "


def selected_columns(path: Path) -> list[str]:
    sql = without_comments(path.read_text())
    # jinja statements select nothing; only `set columns` names columns (for columns_of)
    sql = re.sub(r"\{%.*?%\}", keep_column_lists, sql, flags=re.S)
    return columns_of(sql, sql, ctes(sql))


@pytest.mark.parametrize("path", model_files(), ids=lambda path: path.stem)
def test_every_column_the_model_selects_is_described_in_its_yaml(path: Path) -> None:
    model = yaml_models().get(path.stem)
    assert model, f"{path.stem} has no entry in a YAML file beside it"
    assert (model.get("description") or "").strip(), f"{path.stem} has no description"
    described = {
        column["name"]: (column.get("description") or "").strip()
        for column in model.get("columns", [])
    }
    selected = selected_columns(path)
    assert len(selected) == len(set(selected)), f"{path.stem}: a column is selected twice"
    assert [c for c in selected if not described.get(c)] == [], (
        f"describe these columns of {path.stem} in its YAML"
    )
    assert sorted(set(described) - set(selected)) == [], (
        f"the YAML of {path.stem} describes columns the model does not select"
    )


def test_a_column_added_to_a_model_is_seen_without_a_database(tmp_path: Path) -> None:
    real = dbt_project_dir() / "models" / "finance" / "revenue_by_month.sql"
    sql = real.read_text()
    added = sql.replace(
        "as payment_count\nfrom invoiced", "as payment_count,\n    1 as x\nfrom invoiced"
    )
    assert added != sql
    (tmp_path / real.name).write_text(added)
    assert selected_columns(tmp_path / real.name) == [*selected_columns(real), "x"]
