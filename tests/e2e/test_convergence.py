"""Convergence: run the nightly chain, then again. After the first run's reverse ETL, the second
run resolves every correctable finding and verifies its write; what stays open needs a person.
Runs sandbox -> extract -> dbt -> validate -> reconcile -> reverse ETL twice through the CLI."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import psycopg

from tieout.config import load_config

from .test_reconcile_ground_truth import pipeline  # noqa: F401 - the fixture
from .tieout_cli import tieout

__all__ = ["pipeline"]


def nightly(env: dict[str, str], log: Path, run_id: str) -> dict:
    tieout(env, log, "extract", "--run-id", run_id, "--quiet")
    tieout(env, log, "transform", "--run-id", run_id, "--json")
    # a failed critical expectation exits non-zero; the gate's figures are checked below
    with contextlib.suppress(AssertionError):
        tieout(env, log, "validate", "--run-id", run_id, "--no-docs", "--json")
    tieout(env, log, "reconcile", "--run-id", run_id, "--json")
    out = tieout(env, log, "reverse-etl", "run", "--run-id", run_id, "--json")
    return json.loads(out.strip().splitlines()[-1])


def test_two_runs_converge(pipeline) -> None:  # noqa: F811
    env, log, url = pipeline
    writable = {
        (t.system, t.entity, f) for t in load_config().reverse_etl.targets for f in t.fields
    }
    first = nightly(env, log, "converge-1")
    assert first["skipped"] == {}, first["skipped"]
    assert first["inserted"] > 0 and not first["unmappable"]
    with psycopg.connect(url) as conn:
        correctable = {
            row[0]
            for row in conn.execute(
                """select finding_id, system, entity, field from recon.findings
                   where status = 'open' and kind = 'value_mismatch'"""
            )
            if (row[1], row[2], row[3]) in writable
        }
    assert correctable

    second = nightly(env, log, "converge-2")
    with psycopg.connect(url) as conn:
        still_open = conn.execute(
            "select finding_id from recon.findings where status = 'open' and finding_id = any(%s)",
            (list(correctable),),
        ).fetchall()
        assert still_open == []
        unverified = conn.execute(
            """select f.finding_id, o.state, o.last_error from recon.findings f
               left join rev.outbox o on f.finding_id = any(o.finding_ids)
               where f.finding_id = any(%s) and o.state is distinct from 'verified'""",
            (list(correctable),),
        ).fetchall()
        assert unverified == []
        remaining = conn.execute(
            "select system, entity, kind, field from recon.findings where status = 'open'"
        ).fetchall()
    for system, entity, kind, field in remaining:
        assert kind != "value_mismatch" or (system, entity, field) not in writable
    assert second["needs_person"], "the seeded company has findings no write can fix"
    assert all(item["reason"] for item in second["needs_person"])
    assert second["inserted"] == 0
