"""A task's own parse of tieout_nightly (Airflow names the task in its parsing context) builds
only what the task needs, and what it builds is the same task: every task of the transform
group, parsed for itself, has the class and arguments it has in the whole DAG, and a task
outside the group parses without rendering the dbt project."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tieout.transform import cosmos, parse_manifest

ROOT = Path(__file__).resolve().parents[3]

# Parses the DAG file once whole and once for each task id given on stdin, as Airflow's task
# runner does (the parsing context's two environment variables), and prints what it found and
# the connections it tried (`calls`, from the `probe` fixture's prelude).
PROBE = textwrap.dedent(
    """
    import json, os, sys
    from airflow.dag_processing.dagbag import DagBag

    ARGS = ("select", "exclude", "producer_task_id", "dbt_cmd_flags", "env", "retries",
            "trigger_rule", "pool", "poke_interval", "timeout", "mode", "deferrable",
            "extra_context", "indirect_selection", "pre_execute", "task_display_name")

    def parse():
        bag = DagBag(dag_folder=sys.argv[1])
        assert not bag.import_errors, bag.import_errors
        return bag.dags["tieout_nightly"]

    def describe(task):
        return {"class": type(task).__name__,
                "group": task.task_group.group_id if task.task_group else None,
                **{a: repr(getattr(task, a, None)) for a in ARGS}}

    whole = parse()
    found = {"whole": {t.task_id: describe(t) for t in whole.tasks}, "each": {}}
    for task_id in json.loads(sys.stdin.read()):
        os.environ["_AIRFLOW_PARSING_CONTEXT_DAG_ID"] = "tieout_nightly"
        os.environ["_AIRFLOW_PARSING_CONTEXT_TASK_ID"] = task_id
        dag = parse()
        found["each"][task_id] = {
            "task": describe(dag.task_dict[task_id]) if task_id in dag.task_dict else None,
            "tasks": sorted(dag.task_dict),
            "downstream": sorted(dag.task_dict[task_id].downstream_task_ids)
            if task_id in dag.task_dict else None,
        }
    found["refused"] = calls  # connection attempts, from the probe's prelude
    print(json.dumps(found))
    """
)


@pytest.fixture(scope="module")
def parsed(probe: Callable[..., dict]) -> dict:
    def parse_for(task_ids: list[str]) -> dict:
        return probe(PROBE, str(ROOT / "dags" / "tieout_nightly.py"), stdin=json.dumps(task_ids))

    parse_manifest()
    whole = parse_for([])["whole"]
    dbt_tasks = sorted(t for t in whole if t.startswith("transform."))
    # a task of the group with a node's kind of name that the manifest does not hold
    others = [
        "validate.order",
        "extract.outcome",
        "transform_summary",
        "transform.no_such_model_run",
    ]
    return parse_for(dbt_tasks + others)


def test_every_dbt_task_parsed_for_itself_is_the_task_of_the_whole_dag(parsed: dict) -> None:
    whole, each = parsed["whole"], parsed["each"]
    dbt_tasks = [t for t in whole if t.startswith("transform.")]
    assert len(dbt_tasks) > 50
    for task_id in dbt_tasks:
        assert each[task_id]["task"] == whole[task_id], task_id


def test_a_model_task_builds_its_node_not_the_project(parsed: dict) -> None:
    whole, each = parsed["whole"], parsed["each"]
    model_runs = [t for t in whole if t.startswith("transform.models.") and t.endswith("run")]
    assert model_runs
    for task_id in model_runs:
        built = [t for t in each[task_id]["tasks"] if t.startswith("transform.")]
        # the node's run and tests, the producer and its gate
        assert len(built) <= 4, (task_id, built)


def test_the_producer_builds_the_whole_project(parsed: dict) -> None:
    whole, each = parsed["whole"], parsed["each"]
    producer = "transform.dbt_producer_watcher"
    assert producer in whole
    assert each[producer]["tasks"] == sorted(whole)


def test_a_name_the_manifest_does_not_hold_builds_the_whole_project(parsed: dict) -> None:
    assert parsed["each"]["transform.no_such_model_run"]["tasks"] == sorted(parsed["whole"])


@pytest.mark.parametrize(
    ("task_id", "node"),
    [
        ("transform.models.canonical.customers.run", "customers"),
        ("transform.models.canonical.customers.test", "customers"),
        ("transform.models.finance.revenue_by_month_run", "revenue_by_month"),
        ("transform.seeds.field_rules_seed", "field_rules"),
        ("transform.snapshots.customers_history_snapshot", "customers_history"),
        ("transform.dbt_producer_watcher", None),
        ("transform.dbt_producer_watcher_done", None),
    ],
)
def test_the_node_a_task_reports(task_id: str, node: str | None) -> None:
    assert cosmos.reported_node(task_id, "transform") == node


def test_only_a_model_seed_or_snapshot_of_the_manifest_counts() -> None:
    parse_manifest()
    assert cosmos.manifest_has_node("customers")
    assert not cosmos.manifest_has_node("no_such_model")
    # a test's name is not a node a task reports
    assert not cosmos.manifest_has_node("not_null_customers_customer_id")


def test_no_task_parse_touches_the_network_or_a_database(parsed: dict) -> None:
    assert len(parsed["each"]) > 50
    assert parsed["refused"] == []


def test_a_task_outside_transform_does_not_render_dbt(parsed: dict) -> None:
    whole, each = parsed["whole"], parsed["each"]
    for task_id in ("validate.order", "extract.outcome", "transform_summary"):
        assert each[task_id]["task"] == whole[task_id]
        assert not [t for t in each[task_id]["tasks"] if t.startswith("transform.")]
    # the other stages are all there
    outside = sorted(t for t in whole if not t.startswith("transform."))
    assert [t for t in each["validate.order"]["tasks"] if not t.startswith("transform.")] == outside
