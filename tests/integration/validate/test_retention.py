"""GX results and Data Docs keep the validations the fingerprints keep (validation.yml
keep_validations, and each entity's last passing one), so the site, the disk and the summary
task do not grow with every night; every verdict stays in ops.validation_results."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tieout.paths import config_dir
from tieout.validate.context import data_docs_dir, results_dir
from tieout.validate.fingerprints import kept_runs
from tieout.validate.run import validate

from .conftest import load_raw

KEEP = 2
RUNS = [f"night-{n}" for n in range(4)]


def stored_runs(results: Path) -> set[str]:
    """The run names GX holds results of (…/<suite>/<run name>/<run time>/<batch>.json)."""
    return {path.parent.parent.name for path in results.rglob("*.json")}


def page_runs(site: Path) -> set[str]:
    return {path.parent.parent.name for path in (site / "validations").rglob("*.html")}


@pytest.fixture(scope="module")
def history(
    new_warehouse: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """Four bound validations of the raw suites with keep_validations 2, an unbound one (a
    night whose summary never ran) before the last, and a last one with no binding at all."""
    state = tmp_path_factory.mktemp("state")
    config = tmp_path_factory.mktemp("config") / "config"
    shutil.copytree(config_dir(), config)
    settings = config / "validation.yml"
    settings.write_text(
        settings.read_text().replace("keep_validations: 14", f"keep_validations: {KEEP}")
    )
    with new_warehouse("tieout_retention") as url, pytest.MonkeyPatch.context() as mp:
        mp.setenv("TIEOUT_STATE_DIR", str(state))
        mp.setenv("TIEOUT_DATABASE_URL", url)
        mp.setenv("TIEOUT_CONFIG_DIR", str(config))
        load_raw(url)
        seen = {}
        for run in RUNS[:-1]:
            validate(run, suites=["raw"], url=url)
            seen[run] = stored_runs(results_dir())
        # a night whose validate tasks ran but whose summary did not (nothing bound it)
        validate("unbound", suites=["raw"], url=url, bind=False, build_docs=False)
        validate(RUNS[-1], suites=["raw"], url=url)
        with psycopg.connect(url) as conn:
            kept = kept_runs(conn)  # keep_validations from the config folder above
            verdicts = {
                row[0] for row in conn.execute("select distinct run_id from ops.validation_results")
            }
        yield {
            "url": url,
            "kept": kept,
            "seen": seen,
            "verdicts": verdicts,
            "results": stored_runs(results_dir()),
            "pages": page_runs(data_docs_dir()),
            "index": (data_docs_dir() / "index.html").read_text(encoding="utf-8"),
            "state": state,
        }


def test_the_config_setting_is_what_keeps(history: dict[str, Any]) -> None:
    # every night validated the same rows, so an entity's last passing validation, if any, is
    # the newest: the two newest bound validations are all that is kept
    assert history["kept"] == {RUNS[-1], RUNS[-2]}


def test_gx_results_and_pages_are_those_of_the_kept_validations(history: dict[str, Any]) -> None:
    assert history["results"] == history["kept"]
    assert history["pages"] == history["kept"]
    for run in {*RUNS, "unbound"} - history["kept"]:
        assert run not in history["index"], f"the Data Docs index still lists {run}"


def test_results_grew_before_the_limit_was_reached(history: dict[str, Any]) -> None:
    # the first nights kept everything: retention removes only what falls out of the window
    assert history["seen"][RUNS[0]] == {RUNS[0]}
    assert history["seen"][RUNS[1]] == {RUNS[0], RUNS[1]}


def test_every_verdict_stays_in_the_warehouse(history: dict[str, Any]) -> None:
    assert {*RUNS, "unbound"} <= history["verdicts"]


def test_the_run_being_published_is_never_pruned(
    history: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A validation published without binding (no ops.validations row, so outside every
    retention window) keeps its own results and pages until the next bound one."""
    monkeypatch.setenv("TIEOUT_STATE_DIR", str(history["state"]))
    monkeypatch.setenv("TIEOUT_DATABASE_URL", history["url"])
    figures = validate("by-hand", suites=["raw"], url=history["url"], bind=False)
    assert figures["data_docs"]
    assert "by-hand" in stored_runs(results_dir())
    assert "by-hand" in page_runs(data_docs_dir())
    # the next bound validation keeps its own window, and the unbound one falls out
    validate("night-4", suites=["raw"], url=history["url"])
    assert stored_runs(results_dir()) == {"night-4", RUNS[-1]}
    assert page_runs(data_docs_dir()) == {"night-4", RUNS[-1]}
