"""The dbt as-of date renders for scheduled runs and for manual Airflow 3 runs, which may have
no logical date (Airflow renders with StrictUndefined, so a missing name is an error)."""

from __future__ import annotations

from types import SimpleNamespace

import jinja2
import pendulum
import pytest
from airflow.sdk.definitions._internal.templater import FILTERS

from tieout.paths import dbt_project_dir
from tieout.transform.cosmos import AS_OF_DATE, AS_OF_DATE_ENV, operator_args
from tieout.transform.runner import as_of_date_env


def render(**context: object) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)  # noqa: S701 - not HTML
    env.filters.update(FILTERS)
    return env.from_string(AS_OF_DATE).render(**context)


def test_scheduled_run_uses_its_logical_date() -> None:
    run = SimpleNamespace(
        logical_date=pendulum.datetime(2026, 11, 20), run_after=pendulum.datetime(2026, 11, 21)
    )
    assert render(dag_run=run, logical_date=run.logical_date) == "2026-11-20"


def test_manual_run_without_logical_date_uses_run_after() -> None:
    run = SimpleNamespace(logical_date=None, run_after=pendulum.datetime(2026, 11, 22, 5))
    assert render(dag_run=run) == "2026-11-22"


def test_a_template_naming_logical_date_would_fail_without_one() -> None:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)  # noqa: S701
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ logical_date }}").render(dag_run=None)


def test_cosmos_tasks_get_the_as_of_date() -> None:
    """Through the environment: a var that changes every night would make dbt parse the whole
    project on every run."""
    assert operator_args()["env"] == {AS_OF_DATE_ENV: AS_OF_DATE}
    assert "vars" not in operator_args()
    model = (dbt_project_dir() / "models" / "finance" / "receivables_aging.sql").read_text()
    assert f'env_var("{AS_OF_DATE_ENV}", "")' in model
    assert as_of_date_env("2026-01-31") == {AS_OF_DATE_ENV: "2026-01-31"}
    assert as_of_date_env(None) == {}
