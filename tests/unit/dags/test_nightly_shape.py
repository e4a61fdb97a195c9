"""tieout_nightly has the six stage groups in order, a task per stream in its source's pool,
a validation gate per writable entity, Assets for raw and canonical tables, one active run,
no catchup."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tieout import orchestration
from tieout.extract import plan

ROOT = Path(__file__).resolve().parents[3]

DESCRIBE = """{
    "max_active_runs": dag.max_active_runs,
    "catchup": dag.catchup,
    "groups": [g for g in dag.task_group.children if not g.startswith(("prepare", "transform_"))],
    "tasks": {
        t.task_id: {
            "pool": t.pool,
            "retries": t.retries,
            "priority": t.priority_weight,
            "weight_rule": str(t.weight_rule),
            "downstream": sorted(t.downstream_task_ids),
            "outlets": [getattr(o, "name", str(o)) for o in t.outlets],
        }
        for t in dag.tasks
    },
}"""


@pytest.fixture(scope="module")
def nightly(parse_dags: Callable[..., dict]) -> dict:
    parsed = parse_dags(ROOT / "dags" / "tieout_nightly.py", DESCRIBE)
    assert parsed["errors"] == {}
    return parsed["dags"]["tieout_nightly"]


def test_six_stage_groups_in_order(nightly: dict) -> None:
    groups = [
        g
        for g in nightly["groups"]
        if g in {"extract", "transform", "validate", "reconcile", "reverse_etl", "report"}
    ]
    assert groups == ["extract", "transform", "validate", "reconcile", "reverse_etl", "report"]


def test_one_active_run_no_catchup(nightly: dict) -> None:
    assert nightly["max_active_runs"] == 1
    assert nightly["catchup"] is False


def test_a_task_per_stream_in_its_source_pool(nightly: dict) -> None:
    for source, stream in plan.streams():
        task = nightly["tasks"][f"extract.{source}__{stream}"]
        assert task["pool"] == plan.pool_name(source)
        assert task["outlets"] == [f"raw.{source}__{stream}"]


def test_a_gate_per_writable_entity_before_the_writes(nightly: dict) -> None:
    entities = orchestration.writable_entities()
    assert entities, "reverse_etl.yml names no writable entity"
    for entity in entities:
        assert nightly["tasks"][f"reverse_etl.gate_{entity}"]["downstream"] == [
            "reverse_etl.write_back"
        ]
    assert nightly["tasks"]["reverse_etl.write_back"]["downstream"] == ["report.drift_report"]


def test_canonical_assets_after_dbt(nightly: dict) -> None:
    outlets = nightly["tasks"]["transform_summary"]["outlets"]
    assert set(outlets) == set(orchestration.canonical_tables())
    assert "canonical.customers" in outlets


def test_a_validate_task_per_entity_before_its_gate(nightly: dict) -> None:
    groups = orchestration.validation_groups()
    assert {"customer", "invoice", "order", "payment", "product"} <= set(groups)
    assert "canonical.invoices" in groups["invoice"] and "raw.erp__invoices" in groups["invoice"]
    for entity in groups:
        assert "validate.summary" in nightly["tasks"][f"validate.{entity}"]["downstream"]
    assert "validate.suites" not in nightly["tasks"]
    assert nightly["tasks"]["validate.summary"]["downstream"] == ["reconcile.findings"]
    for entity in orchestration.writable_entities():
        assert f"reverse_etl.gate_{entity}" in nightly["tasks"][f"validate.{entity}"]["downstream"]


def test_the_entity_with_most_canonical_suites_validates_first(nightly: dict) -> None:
    priority = {e: nightly["tasks"][f"validate.{e}"]["priority"] for e in ["order", "no_entity"]}
    # absolute: the gates downstream of some entities add nothing to their weight
    assert {
        nightly["tasks"][f"validate.{e}"]["weight_rule"] for e in orchestration.validation_groups()
    } == {"absolute"}
    # order has two canonical suites (orders, order_lines); no_entity one raw suite
    assert priority["order"] > max(
        nightly["tasks"][f"validate.{e}"]["priority"]
        for e in orchestration.validation_groups()
        if e != "order"
    )
    assert priority["no_entity"] == min(
        nightly["tasks"][f"validate.{e}"]["priority"] for e in orchestration.validation_groups()
    )
