"""Stages in one direction, as DESIGN.md draws them: a stage package imports only the stages
before it and the shared modules, and only the task layer (tieout.orchestration, dags/) turns a
stage's answer into an Airflow task state."""

from __future__ import annotations

from pathlib import Path

from .import_rules import imported_modules

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "include" / "tieout"

# the nightly run's order: each may import the ones before it, never the ones after
STAGES = ("extract", "transform", "validate", "reconcile", "reverse_etl", "report")
# what every stage may use
SHARED = ("db", "config", "paths", "http", "health", "runs", "memory")
# entry points that compose stages (or start one) and are imported by none
ENTRY_POINTS = ("cli", "orchestration", "dev", "pools", "webhooks")


def top_level(path: Path) -> str:
    """The tieout package or module a file belongs to: `reconcile` for reconcile/run.py."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def test_every_module_has_a_place() -> None:
    """A new package must say whether it is a stage, shared, or an entry point."""
    places = {top_level(path) for path in PACKAGE.rglob("*.py")} - {"__init__"}
    assert places - set(STAGES) - set(SHARED) - set(ENTRY_POINTS) == set()
    assert set(STAGES) <= places


def test_stages_import_only_earlier_stages_and_shared_modules() -> None:
    offenders: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        stage = top_level(path)
        if stage not in STAGES:
            continue
        allowed = {*STAGES[: STAGES.index(stage) + 1], *SHARED}
        wrong = sorted(
            name
            for name in imported_modules(path)
            if name.split(".")[0] == "tieout"
            and len(name.split(".")) > 1
            and name.split(".")[1] not in allowed
        )
        if wrong:
            offenders[str(path.relative_to(ROOT))] = wrong
    assert offenders == {}


def test_the_rule_sees_a_later_stage_import(tmp_path: Path) -> None:
    """The check above can fail: an import of the report from reconcile is seen, in a function."""
    module = tmp_path / "module.py"
    module.write_text("def f():\n    from tieout.report.build import report\n")
    assert "tieout.report.build" in imported_modules(module)


def airflow_exceptions(path: Path) -> list[str]:
    return sorted(
        name
        for name in imported_modules(path)
        if name.split(".")[0] == "airflow"
        and ("exceptions" in name.split(".") or name.endswith(("Exception", "Error")))
    )


def test_only_the_task_layer_raises_airflow_exceptions() -> None:
    """Stages return results (a gate decision that says skip) or raise their own errors; the
    DAG's task callables decide what that means for the task's state."""
    allowed = {PACKAGE / "orchestration.py"}
    files = sorted({*PACKAGE.rglob("*.py"), *(ROOT / "plugins").rglob("*.py")} - allowed)
    offenders = {
        str(path.relative_to(ROOT)): names for path in files if (names := airflow_exceptions(path))
    }
    assert offenders == {}
    assert airflow_exceptions(PACKAGE / "orchestration.py"), "the task layer raises them"
