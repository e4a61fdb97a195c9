"""The canonical macros quote every name they take from entities.yml and refuse one that is not
a plain lowercase SQL name, even if it got past `tieout config check`."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

import jinja2
import pytest

MACROS = Path(__file__).resolve().parents[3] / "dbt_project" / "macros" / "canonical.sql"


class CompilerError(Exception):
    pass


def render(entities: dict[str, Any], call: str) -> str:
    """Render a macro of canonical.sql with the parts of dbt's context it uses."""

    def raise_compiler_error(message: str) -> None:
        raise CompilerError(message)

    env = jinja2.Environment(extensions=["jinja2.ext.do"], undefined=jinja2.StrictUndefined)
    context = {
        "modules": types.SimpleNamespace(re=re),
        "exceptions": types.SimpleNamespace(raise_compiler_error=raise_compiler_error),
        "adapter": types.SimpleNamespace(quote=lambda name: f'"{name}"'),
        "tieout_entities": lambda: entities,
    }
    template = env.from_string(MACROS.read_text() + "{{ " + call + " }}")
    return template.render(**context)


def entity(field: str = "email", system: str = "crm", key: str = "customer_id") -> dict[str, Any]:
    return {
        "customer": {
            "key": key,
            "master": "erp",
            "systems": {"erp": {}, system: {}},
            "fields": {field: {"source_of_truth": system}},
        }
    }


def test_names_are_quoted() -> None:
    sql = " ".join(render(entity(), "canonical_select('customer', 'by_system')").split())
    assert 'select "erp"."customer_id",' in sql
    assert (
        'when "crm".system_key is not null then "crm"."email" else "erp"."email" end as "email"'
        in sql
    )
    assert '"crm".system_key as "crm_id"' in sql
    assert "\"erp\".system = 'erp'" in sql


@pytest.mark.parametrize(
    "bad",
    [
        entity(field="email from x); drop table raw.crm__contacts; --"),
        entity(system="crm' or '1"),
        entity(key="customer_id, (select 1)"),
    ],
)
def test_a_name_that_is_not_sql_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(CompilerError, match="is not a lowercase SQL name"):
        render(bad, "canonical_select('customer', 'by_system')")
