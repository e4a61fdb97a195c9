"""The CRM answers 500 for a whole night, and the night goes on without it.

Three nights against a real sandbox and PostgreSQL, each run through the functions the nightly
DAG's tasks call, in the DAG's order (dbt through `tieout transform`, as the CLI runs it):

1. every system up: the open findings equal the sandbox's ground truth; reverse ETL corrects.
2. the CRM down (`outage_status=500`, token endpoint included): its streams fail; the other
   sources load, dbt builds from the raw data there, reconcile resolves exactly what night 1's
   writes fixed in the other systems and opens nothing, while every finding that depends on the
   CRM keeps its state and is marked stale; reverse ETL sends nothing to the CRM nor anything
   whose value comes from it; the drift report, `tieout summary` and the Drift reports page
   name the failed streams, their error and the run they have been failing since.
3. the CRM up again: no stale mark is left, the findings the night-1 writes to the CRM fixed are
   resolved, and the open findings are the ground truth less what reverse ETL fixed.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tieout import orchestration, runs
from tieout.config import load_config
from tieout.extract import plan
from tieout.paths import config_dir
from tieout_sandbox import SYSTEMS, datadir, generate, server

Identity = tuple[str, str, str, str, str]  # kind, entity, system, field, record


@pytest.fixture(scope="module")
def night_env(
    tmp_path_factory: pytest.TempPathFactory,
    new_warehouse: Callable[[str], ContextManager[str]],
    scoped_env: Callable[[dict[str, str]], ContextManager[None]],
    sandbox_env: Callable[[Path, Path], dict[str, str]],
) -> Iterator[dict[str, Any]]:
    """A warehouse, a state folder and a sandbox (scale 0.2, seed 7) of this module's own."""
    directory = tmp_path_factory.mktemp("outage-sandbox")
    generate.seed(directory, scale=0.2, seed_value=7)
    ports = dict(zip(SYSTEMS, server.free_ports(len(SYSTEMS)), strict=True))
    server.up(directory, ports=ports)
    config = tmp_path_factory.mktemp("outage-config") / "config"
    shutil.copytree(config_dir(), config)
    state = tmp_path_factory.mktemp("outage-state")
    try:
        with new_warehouse("tieout_outage") as url:
            env = {
                **sandbox_env(directory, config),
                "TIEOUT_DATABASE_URL": url,
                "TIEOUT_STATE_DIR": str(state),
            }
            with scoped_env(env):
                yield {"url": url, "directory": directory, "env": env}
    finally:
        server.down(directory)


def transform(run_id: str) -> None:
    """dbt as `tieout transform` runs it (the DAG runs the same project through Cosmos)."""
    done = subprocess.run(
        [sys.executable, "-m", "tieout.cli", "transform", "--run-id", run_id, "--json"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def night(run_id: str) -> dict[str, Any]:
    """One night in the DAG's order; a failing stream fails its task, the rest goes on."""
    figures: dict[str, Any] = {"failed_streams": {}, "gated": {}}
    started = time.monotonic()
    for source, stream in plan.streams():
        stream_started = time.monotonic()
        try:
            orchestration.extract_stream(source, stream, run_id)
        except Exception as exc:  # noqa: BLE001 - the task goes red; the night goes on
            figures["failed_streams"][f"{source}.{stream}"] = {
                "error": str(exc),
                "seconds": round(time.monotonic() - stream_started, 3),
            }
    figures["extract_s"] = round(time.monotonic() - started, 3)
    figures["outcome"] = orchestration.extract_outcome(run_id)
    transform(run_id)
    orchestration.record_transform(run_id)
    orchestration.validate(run_id)
    figures["reconcile"] = orchestration.reconcile(run_id)
    for entity in orchestration.writable_entities():
        try:
            orchestration.gate(run_id, entity)
        except Exception as exc:  # noqa: BLE001 - a skipped gate, as the DAG shows it
            figures["gated"][entity] = str(exc)
    figures["reverse_etl"] = orchestration.reverse_etl(run_id)
    figures["report"] = orchestration.report(run_id)
    figures["health"] = orchestration.integration_health(run_id)
    return figures


def truth(directory: Path) -> set[Identity]:
    items = json.loads(datadir.ground_truth_path(directory).read_text())["divergences"]
    found = set()
    for item in items:
        keys = item["keys"]
        record = keys["canonical"] if item["kind"] != "extra_in_system" else keys[item["system"]]
        found.add((item["kind"], item["entity"], item["system"], item["field"] or "", str(record)))
    return found


IDENTITY = "kind, entity, system, coalesce(field, ''), coalesce(entity_ref, system_keys ->> 0, '')"


def findings(url: str, where: str, params: Any = None) -> set[Identity]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"select {IDENTITY} from recon.findings where {where}",  # type: ignore[arg-type]
            params,
        ).fetchall()
    return {(k, e, s, f, str(r)) for k, e, s, f, r in rows}


def depends_on_crm(identity: Identity) -> bool:
    """Its system is the CRM, or its canonical value comes from the CRM, or (missing/extra) the
    entity's master is the CRM: the rule of tieout.reconcile.findings.STALE."""
    kind, entity, system, field, _ = identity
    spec = load_config().entities[entity]
    if system == "crm":
        return True
    if field and field in spec.fields and spec.fields[field].source_of_truth == "crm":
        return True
    return kind in ("missing_in_system", "extra_in_system") and spec.master == "crm"


def fixed_by_writes(url: str, run_id: str) -> set[Identity]:
    """The findings the writes planned in `run_id` corrected (acknowledged or verified)."""
    return findings(
        url,
        """finding_id in (select unnest(finding_ids) from rev.outbox
                          where planned_run_id = %s and state in ('acknowledged', 'verified'))""",
        (run_id,),
    )


def assert_same(got: set[Identity], want: set[Identity]) -> None:
    extra, missed = sorted(got - want), sorted(want - got)
    assert not extra and not missed, (
        f"{len(extra)} unexpected (e.g. {extra[:5]}), {len(missed)} missing (e.g. {missed[:5]})"
    )


def test_a_night_with_the_crm_down_goes_on_and_says_so(night_env) -> None:
    url, directory = night_env["url"], night_env["directory"]
    crm_streams = {f"crm.{stream}" for source, stream in plan.streams() if source == "crm"}
    assert crm_streams

    # night 1: every system up
    first = night("outage-night-1")
    assert first["failed_streams"] == {} and first["outcome"]["failed"] == []
    truth_set = truth(directory)
    assert_same(findings(url, "first_seen_run_id = 'outage-night-1'"), truth_set)
    fixed_1 = fixed_by_writes(url, "outage-night-1")
    assert {i for i in fixed_1 if depends_on_crm(i)}, "night 1 writes values from the CRM"
    assert {i for i in fixed_1 if i[2] != "crm" and not depends_on_crm(i)}
    with psycopg.connect(url) as conn:
        before = dict(
            conn.execute(
                """select finding_id, (status, last_seen_run_id, times_seen)::text
                   from recon.findings where status <> 'resolved'"""
            ).fetchall()
        )
        crm_outbox_before = conn.execute(
            "select outbox_id, state, attempts from rev.outbox where system = 'crm' order by 1"
        ).fetchall()

    # night 2: the CRM answers 500 to everything
    server.set_faults("crm", directory, outage_status=500)
    try:
        second = night("outage-night-2")
    finally:
        server.set_faults("crm", directory, outage_status=0)

    # its streams failed, quickly, and only they did
    assert set(second["failed_streams"]) == crm_streams
    for failure in second["failed_streams"].values():
        assert "500" in failure["error"]
        assert failure["seconds"] < 30, second["failed_streams"]
    recorded = {f"{f['source']}.{f['stream']}": f for f in second["outcome"]["failed"]}
    assert set(recorded) == crm_streams
    for failure in recorded.values():
        assert failure["failing_since_run_id"] == "outage-night-2"
        assert "500" in failure["error"]
    assert second["outcome"]["stale_sources"] == ["crm"]

    # reconcile: nothing that depends on the CRM moved; the rest is exact
    stale = findings(url, "status <> 'resolved' and stale_since_run_id = 'outage-night-2'")
    open_before = {i for i in truth_set if depends_on_crm(i)}
    assert stale and all(depends_on_crm(i) for i in stale)
    assert {i for i in findings(url, "status <> 'resolved'") if depends_on_crm(i)} == stale
    assert stale == open_before, "every CRM finding night 1 left open is kept, none added"
    with psycopg.connect(url) as conn:
        kept = dict(
            conn.execute(
                """select finding_id, (status, last_seen_run_id, times_seen)::text
                   from recon.findings where stale_since_run_id = 'outage-night-2'"""
            ).fetchall()
        )
    assert kept == {k: before[k] for k in kept}, "stale findings keep their state"
    assert findings(url, "first_seen_run_id = 'outage-night-2'") == set()
    resolved_2 = findings(url, "resolved_run_id = 'outage-night-2'")
    assert_same(resolved_2, {i for i in fixed_1 if not depends_on_crm(i)})
    open_fresh = {i for i in findings(url, "status = 'open'") if not depends_on_crm(i)}
    assert_same(open_fresh, {i for i in truth_set - fixed_1 if not depends_on_crm(i)})
    reconciled = second["reconcile"]
    assert reconciled["stale_findings"] == len(stale)
    assert reconciled["by_system"]["crm"]["stale"] > 0

    # reverse ETL: nothing to the CRM, nothing whose value comes from it
    sent = second["reverse_etl"]
    assert not [t for t in sent["send"] if t.startswith("crm.")]
    assert {t.split(".")[0] for t in sent["stale"]["targets"]} == {"crm"}
    assert all("crm failed to extract" in why for why in sent["stale"]["targets"].values())
    spec = load_config().entities
    with psycopg.connect(url) as conn:
        planned = conn.execute(
            """select system, entity, fields from rev.outbox
               where planned_run_id = 'outage-night-2'"""
        ).fetchall()
        crm_outbox_after = conn.execute(
            "select outbox_id, state, attempts from rev.outbox where system = 'crm' order by 1"
        ).fetchall()
        skips = dict(
            conn.execute(
                """select system || '.' || entity, reason from rev.skips
                   where run_id = 'outage-night-2'"""
            ).fetchall()
        )
    for system, entity, fields in planned:
        assert system != "crm"
        assert all(spec[entity].fields[f].source_of_truth != "crm" for f in fields), fields
    assert crm_outbox_after == crm_outbox_before, "the CRM's writes wait, untouched"
    assert any(k.startswith("crm.") and "crm failed to extract" in v for k, v in skips.items())

    # the report names the failure at its top; the summary and the page name it too
    html = Path(second["report"]["html"]).read_text()
    top = html[: html.index('id="what-to-do"')]
    assert 'id="source-failures"' in top
    for name in crm_streams:
        source, stream = name.split(".")
        assert f'data-source="{source}" data-stream="{stream}"' in top
    assert "HTTP 500" in top or "500" in top
    assert "outage-night-2" in top
    with Path(second["report"]["csv"]).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    stale_rows = {int(row["finding_id"]) for row in rows if row["stale_since"]}
    assert stale_rows == set(kept), "the report lists every stale finding, as last seen"
    summary = json.loads(Path(second["report"]["html"]).with_name("summary.json").read_text())
    assert {f"{f['source']}.{f['stream']}" for f in summary["source_failures"]} == crm_streams
    lines = runs.format_summary(runs.summary(run_id="outage-night-2"))
    for name in crm_streams:
        line = next(line for line in lines if f"FAILED       {name} " in line)
        assert "500" in line and "failing since run outage-night-2" in line

    from tieout import db
    from tieout.report.page import nights, render_runs

    with db.connect(role="finance") as conn:
        listed = {row["run_id"]: row for row in nights(conn)}
    assert listed["outage-night-1"]["state"] == "complete"
    assert listed["outage-night-2"]["state"] == "partial"
    assert {f"extract:{name}" for name in crm_streams} <= set(listed["outage-night-2"]["failing"])
    page = render_runs(list(listed.values()), [])
    assert 'data-run="outage-night-2" data-state="partial"' in page

    # night 3: the CRM answers again
    third = night("outage-night-3")
    assert third["failed_streams"] == {} and third["outcome"]["failed"] == []
    assert findings(url, "status <> 'resolved' and stale_since is not null") == set()
    assert third["reconcile"]["stale_findings"] == 0
    assert findings(url, "first_seen_run_id = 'outage-night-3'") == set()
    fixed_2 = fixed_by_writes(url, "outage-night-2")
    assert_same(findings(url, "status = 'open'"), truth_set - fixed_1 - fixed_2)
    resolved_3 = findings(url, "resolved_run_id = 'outage-night-3'")
    assert {i for i in fixed_1 if depends_on_crm(i)} <= resolved_3
    with db.connect(role="finance") as conn:
        assert {row["run_id"]: row for row in nights(conn)}["outage-night-3"]["state"] == (
            "complete"
        )
