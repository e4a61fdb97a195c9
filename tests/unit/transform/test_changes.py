"""What a rerun selects: every raw table dbt reads is known, and any file change is seen."""

from __future__ import annotations

import shutil
from pathlib import Path

from tieout.extract import plan
from tieout.paths import dbt_project_dir
from tieout.transform.changes import project_fingerprint, raw_sources


def test_every_source_maps_to_its_raw_table() -> None:
    sources = raw_sources()
    assert len(sources) == len(plan.streams())
    assert set(sources.values()) == {f"raw.{source}__{stream}" for source, stream in plan.streams()}
    assert sources["source:tieout.crm.contacts"] == "raw.crm__contacts"
    assert sources["source:tieout.shop.orders"] == "raw.shop__orders"
    assert all(table.startswith("raw.") for table in sources.values())


def test_fingerprint_changes_with_any_project_file(tmp_path: Path) -> None:
    project = tmp_path / "dbt_project"
    shutil.copytree(dbt_project_dir(), project, ignore=shutil.ignore_patterns("target", "logs"))
    before = project_fingerprint(project)
    assert project_fingerprint(project) == before
    (project / "target").mkdir(exist_ok=True)
    (project / "target" / "run_results.json").write_text("{}")
    assert project_fingerprint(project) == before  # dbt's own output is not the project
    seed = project / "seeds" / "currencies.csv"
    seed.write_text(seed.read_text() + "XTS,0,Testing\n")
    assert project_fingerprint(project) != before
