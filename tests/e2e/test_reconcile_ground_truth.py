"""At sandbox scale 1 the open findings are exactly the generator's ground truth, kind by kind;
after `tieout sandbox mutate` the next run opens the new divergences, resolves none that
still exist, and resolves the one a write to the ERP fixed. Runs sandbox -> extract -> dbt ->
reconcile -> report through the CLI."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest

from .tieout_cli import Pipeline, tieout

KINDS = ("missing_in_system", "extra_in_system", "value_mismatch", "duplicate_key", "null_key")
Identity = tuple[str, str, str, str]  # entity, system, field, record


def truth_by_kind(path: Path) -> dict[str, set[Identity]]:
    truth = json.loads(path.read_text())
    found: dict[str, set[Identity]] = defaultdict(set)
    for item in truth["divergences"]:
        keys = item["keys"]
        record = keys["canonical"] if item["kind"] != "extra_in_system" else keys[item["system"]]
        found[item["kind"]].add((item["entity"], item["system"], item["field"] or "", str(record)))
    return found


def findings_by_kind(url: str, where: str, run_id: str | None = None) -> dict[str, set[Identity]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"""select kind, entity, system, field,
                       coalesce(entity_ref, system_keys ->> 0, '')
                from recon.findings where {where}""",
            {"run": run_id},
        ).fetchall()
    found: dict[str, set[Identity]] = defaultdict(set)
    for kind, entity, system, field, record in rows:
        found[kind].add((entity, system, field, record))
    return found


def assert_per_kind(got: dict[str, set[Identity]], want: dict[str, set[Identity]]) -> None:
    for kind in KINDS:
        extra, missed = got[kind] - want[kind], want[kind] - got[kind]
        assert not extra and not missed, (
            f"{kind}: {len(extra)} not in the ground truth (e.g. {sorted(extra)[:5]}), "
            f"{len(missed)} injected but not found (e.g. {sorted(missed)[:5]})"
        )


@pytest.fixture(scope="module")
def pipeline(pipeline_of_its_own: Callable[[str, int], ContextManager[Pipeline]]):
    """A database and a sandbox of its own, so no other test's findings or tables interfere."""
    with pipeline_of_its_own("reconcile-e2e", 18600) as (env, log, url, _):
        yield env, log, url


def nightly(env: dict[str, str], log: Path, run_id: str) -> dict[str, Any]:
    tieout(env, log, "extract", "--run-id", run_id, "--quiet")
    tieout(env, log, "transform", "--run-id", run_id, "--json")
    out = tieout(env, log, "reconcile", "--run-id", run_id, "--json")
    return json.loads(out.strip().splitlines()[-1])


def assert_balance_breaks(url: str, truth_path: Path, run_id: str) -> None:
    """Unpaid-but-paid, order-without-invoice and unapplied payments equal the injected breaks."""
    subject = {
        "order_without_invoice": lambda b: str(b["order"]["canonical"]),
        "payment_without_invoice": lambda b: b["payment"],
        "paid_amount_mismatch": lambda b: b["invoice"]["canonical"],
    }
    want = {
        (b["kind"], subject[b["kind"]](b))
        for b in json.loads(truth_path.read_text())["balance_breaks"]
    }
    with psycopg.connect(url) as conn:
        got = set(
            conn.execute(
                "select outcome, subject_ref from recon.balances where run_id = %s "
                "and outcome = any(%s)",
                (run_id, list(subject)),
            ).fetchall()
        )
    assert got == want, (sorted(got - want)[:5], sorted(want - got)[:5])


def fix_one_invoice_status(env: dict[str, str], truth_path: Path) -> Identity:
    """Set one ERP invoice status to billing's, as reverse ETL would; returns its finding."""
    truth = json.loads(truth_path.read_text())
    item = next(
        i
        for i in truth["divergences"]
        if (i["kind"], i["entity"], i["system"], i["field"])
        == ("value_mismatch", "invoice", "erp", "status")
    )
    connection = urlsplit(env["AIRFLOW_CONN_TIEOUT_ERP"])
    api_key = parse_qs(connection.query)["api_key"][0]
    number = item["keys"]["erp"]
    response = httpx.put(
        f"{connection.scheme}://{connection.netloc}/api/v1/invoices/{number}/status",
        json={"status": item["expected"].upper()},
        headers={"X-API-Key": api_key},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return ("invoice", "erp", "status", str(item["keys"]["canonical"]))


def test_findings_equal_ground_truth_then_mutate(pipeline) -> None:
    env, log, url = pipeline
    truth_path = Path(tieout(env, log, "sandbox", "truth").strip())

    first = nightly(env, log, "e2e-day-1")
    before = truth_by_kind(truth_path)
    assert_per_kind(findings_by_kind(url, "status = 'open'"), before)
    assert Path(first["report"]["html"]).exists()
    assert first["new_findings"] == sum(len(v) for v in before.values())
    assert_balance_breaks(url, truth_path, "e2e-day-1")

    fixed = fix_one_invoice_status(env, truth_path)
    tieout(env, log, "sandbox", "mutate", "--days", "1")
    second = nightly(env, log, "e2e-day-2")
    after = truth_by_kind(truth_path)
    after["value_mismatch"].discard(fixed)
    assert_per_kind(findings_by_kind(url, "status = 'open'"), after)
    new = {kind: after[kind] - before[kind] for kind in KINDS}
    gone = {kind: before[kind] - after[kind] for kind in KINDS}
    assert gone["value_mismatch"] == {fixed}
    assert_balance_breaks(url, truth_path, "e2e-day-2")
    assert sum(len(v) for v in new.values()) > 0, "mutate injected no new divergence"
    assert_per_kind(findings_by_kind(url, "first_seen_run_id = %(run)s", "e2e-day-2"), new)
    assert_per_kind(findings_by_kind(url, "resolved_run_id = %(run)s", "e2e-day-2"), gone)
    html = Path(second["report"]["html"]).read_text()
    assert f"New this run ({second['new_findings']:,})" in html
    assert "Resolved this run (1)" in html
    with Path(second["report"]["csv"]).open() as handle:
        rows = list(csv.DictReader(handle))
    identity = [
        (r["entity"], r["system"], r["field"], r["entity_ref"] or json.loads(r["system_keys"])[0])
        for r in rows
    ]
    reported_new = {i for i, r in zip(identity, rows, strict=True) if r["new_in_run"] == "t"}
    reported_gone = {i for i, r in zip(identity, rows, strict=True) if r["status"] == "resolved"}
    assert reported_new == set().union(*new.values())
    assert reported_gone == {fixed}
    assert len(rows) == second["open_findings"] + 1
