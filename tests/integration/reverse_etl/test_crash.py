"""kill -9 at several points of a run, then run again: every planned write lands at the target
exactly once (the sandbox audit log shows no record written twice) and none is lost."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import Company

RUN = "from tieout.reverse_etl.run import reverse_etl; reverse_etl('crash-run')"


def run_reverse_etl(company: Company, failpoint: str | None) -> int:
    env = {**os.environ, "TIEOUT_DATABASE_URL": company.url}
    env.pop("TIEOUT_REVERSE_ETL_FAILPOINT", None)
    if failpoint:
        env["TIEOUT_REVERSE_ETL_FAILPOINT"] = failpoint
    return subprocess.run([sys.executable, "-c", RUN], env=env, timeout=120).returncode


@pytest.mark.parametrize("system", ["crm", "billing"])
@pytest.mark.parametrize("failpoint", ["claimed:1", "sent:1", "sent:4", "recorded:3"])
def test_kill_and_rerun_applies_each_write_once(
    company: Company, system: str, failpoint: str
) -> None:
    table = {"crm": "contacts", "billing": "customers"}[system]
    field = {"crm": "city", "billing": "name"}[system]
    records = company.records(system, table, 8)
    for record in records:
        company.finding("customer", system, field, record["id"], f"Crash {record['id'][-6:]}")
    company.validated("crash-run")

    assert run_reverse_etl(company, failpoint) == -9
    states = {row["state"] for row in company.outbox()}
    assert states <= {"planned", "sent", "acknowledged"} and len(company.outbox()) == 8

    assert run_reverse_etl(company, None) == 0
    rows = company.outbox()
    assert [row["state"] for row in rows] == ["acknowledged"] * 8
    applied = company.applied(system)
    assert len(applied) == 8 and set(applied.values()) == {1}, applied
    if system == "billing" and failpoint.startswith("sent"):
        assert any(row["replayed"] for row in company.audit(system))  # resent, not reapplied
    for record in records:
        held = company.record(system, table, record["id"])
        value = held["properties"]["city"] if system == "crm" else held["name"]
        assert value == f"Crash {record['id'][-6:]}"
