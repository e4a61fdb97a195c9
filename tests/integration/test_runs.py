"""A run killed with SIGKILL is found by the next run of a stage and marked `abandoned` with
when and by whom; a live run on another host, whose lease is renewed, is left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import psycopg
import pytest

from tieout import runs

STAGE_THEN_HANG = textwrap.dedent(
    """
    import sys, time
    from tieout import db, runs
    from tieout.extract import load

    url, run_id = sys.argv[1], sys.argv[2]
    with runs.record_stage(run_id, "extract:crm.contacts", url):
        with db.connect(url) as conn, conn.cursor() as cur:
            load.add_run_counters(cur, run_id, "crm", "contacts", {"records": 3})
            conn.commit()
        print("running", flush=True)
        time.sleep(600)
    """
)


def killed_run(url: str, run_id: str) -> int:
    """Start a stage in a real process, wait until it is running, SIGKILL it."""
    process = subprocess.Popen(
        [sys.executable, "-c", STAGE_THEN_HANG, url, run_id],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TIEOUT_RUN_LEASE_S": "3600"},
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "running"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return process.pid


def live_run_elsewhere(conn: psycopg.Connection, run_id: str, pid: int) -> None:
    """A stage another Celery worker is running right now: its lease is fresh."""
    conn.execute(
        """insert into ops.stage_runs (run_id, stage, status, host, pid_namespace, pid,
               heartbeat_at, lease_expires_at)
           values (%s, 'extract:erp.customers', 'running', 'worker-2', 'pid:[1]', %s,
                   now(), now() + interval '1 hour')""",
        (run_id, pid),
    )
    conn.execute(
        """insert into ops.extract_runs (run_id, source, stream, status)
           values (%s, 'erp', 'customers', 'running')""",
        (run_id,),
    )
    conn.commit()


def test_killed_run_is_abandoned_and_a_live_one_elsewhere_is_not(
    warehouse_url: str, conn: psycopg.Connection
) -> None:
    pid = killed_run(warehouse_url, "run-killed")
    # same pid number, other host: a pid check alone would wrongly call this one dead
    live_run_elsewhere(conn, "run-elsewhere", pid)
    killed = conn.execute(
        "select status from ops.stage_runs where run_id = 'run-killed'"
    ).fetchone()
    assert killed == ("running",)

    with runs.record_stage("run-next", "extract:crm.contacts", warehouse_url):
        pass

    stage = conn.execute(
        """select status, abandoned_at is not null, abandoned_by, pid from ops.stage_runs
           where run_id = 'run-killed' and stage = 'extract:crm.contacts'"""
    ).fetchone()
    assert stage == (
        "abandoned",
        True,
        "extract:crm.contacts of run run-next on " + runs.this_process()[0],
        pid,
    )
    stream = conn.execute(
        """select status, abandoned_at is not null, abandoned_by, records from ops.extract_runs
           where run_id = 'run-killed'"""
    ).fetchone()
    assert stream == ("abandoned", True, stage[2], 3)
    elsewhere = conn.execute(
        """select s.status, s.abandoned_at, e.status from ops.stage_runs s
           join ops.extract_runs e using (run_id) where run_id = 'run-elsewhere'"""
    ).fetchone()
    assert elsewhere == ("running", None, "running")
    assert (
        runs.summary(warehouse_url, "run-killed")["stages"]["extract:crm.contacts"]["status"]
        == "abandoned"
    )


def test_run_on_another_host_whose_lease_expired_is_abandoned(
    warehouse_url: str, conn: psycopg.Connection
) -> None:
    conn.execute(
        """insert into ops.stage_runs (run_id, stage, status, host, pid_namespace, pid,
               heartbeat_at, lease_expires_at)
           values ('run-lost-worker', 'validate', 'running', 'worker-3', 'pid:[1]', 1,
                   now() - interval '10 minutes', now() - interval '8 minutes')"""
    )
    conn.commit()
    with runs.record_stage("run-after-lost-worker", "validate", warehouse_url):
        pass
    row = conn.execute(
        """select status, abandoned_by from ops.stage_runs
           where run_id = 'run-lost-worker'"""
    ).fetchone()
    assert row == (
        "abandoned",
        f"validate of run run-after-lost-worker on {runs.this_process()[0]}",
    )


def test_lease_is_renewed_while_the_stage_runs(warehouse_url: str, conn) -> None:
    with runs.record_stage("run-renewing", "report", warehouse_url):
        before = conn.execute(
            "select lease_expires_at from ops.stage_runs where run_id = 'run-renewing'"
        ).fetchone()[0]
        conn.commit()
        renewed = runs.Lease(warehouse_url, "run-renewing", "report", 600).renew()
        after = conn.execute(
            "select lease_expires_at, status from ops.stage_runs where run_id = 'run-renewing'"
        ).fetchone()
        conn.commit()
    assert renewed and after[1] == "running" and after[0] > before
    done = conn.execute(
        "select status, lease_expires_at from ops.stage_runs where run_id = 'run-renewing'"
    ).fetchone()
    assert done == ("success", None)


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_bad_lease_setting_is_named(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIEOUT_RUN_LEASE_S", value)
    with pytest.raises(ValueError, match="TIEOUT_RUN_LEASE_S"):
        runs.lease_seconds()
