"""Reverse ETL writes one ops.integration_metrics row per target per run: its read-backs and
writes, the 4xx of a row the target does not hold, and the share of rows that failed."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from tieout.reverse_etl.run import reverse_etl

from .conftest import Company


def test_target_row_counts_requests_errors_and_failed_rows(company: Company) -> None:
    contacts = company.records("crm", "contacts", 3)
    for contact in contacts:
        company.finding("customer", "crm", "city", contact["id"], f"Fixed {contact['id']}")
    # a contact id the crm does not have: a 404 on its read-back, for this row only
    company.finding("customer", "crm", "city", "999999999", "Nowhere")
    company.validated("m1")
    figures = reverse_etl("m1")
    sent = figures["send"]["crm.customer"]
    with psycopg.connect(company.url) as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """select * from ops.integration_metrics
               where run_id = 'm1' and direction = 'reverse_etl'"""
        ).fetchall()
    by_target = {(r["source"], r["stream"]): r for r in rows}
    row = by_target["crm", "customer"]
    assert row["requests"] == sent["write_requests"] + sent["read_requests"] > 0
    assert row["records"] == 4 and row["quarantined"] == 1 and row["quarantine_share"] == 0.25
    assert row["errors_4xx"] >= 1 and row["errors_5xx"] == 0
    assert row["status"] == "success"  # rows fail alone; their share is the signal
    assert row["latency_p50_ms"] is not None and row["freshness_lag_s"] is None
