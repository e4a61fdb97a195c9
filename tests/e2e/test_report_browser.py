"""The drift report as finance sees it, in a real Chromium: a sandbox at scale 1 runs two nights
(extract, dbt, reconcile, validate, reverse ETL) through the CLI, then the static report and the
Airflow plugin's page are opened and read. Each assertion is one defect the report used to have:
headers not over their values, customers shown by hash, trend axes labelled by run id, cards
that disagree with the tables after a waiver, receivables shown as breaks. Screenshots are saved
in test-output/."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path

import psycopg
import pytest

from .tieout_cli import Pipeline, tieout

HASH = re.compile(r"\b[0-9a-f]{32}\b")
DATE_LABEL = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2})?$")
INJECTED = ("paid_amount_mismatch", "order_without_invoice", "payment_without_invoice")


def night(env: dict[str, str], log: Path, run_id: str) -> None:
    tieout(env, log, "extract", "--run-id", run_id, "--quiet")
    tieout(env, log, "transform", "--run-id", run_id, "--json")
    tieout(env, log, "reconcile", "--run-id", run_id, "--no-report")
    tieout(env, log, "validate", "--run-id", run_id)
    tieout(env, log, "reverse-etl", "run", "--run-id", run_id)


@pytest.fixture(scope="module")
def reported(pipeline_of_its_own: Callable[[str, int], ContextManager[Pipeline]]):
    """Two nights on a database and sandbox of their own; day 2's report, its state and env."""
    with pipeline_of_its_own("report-e2e", 19600) as (env, log, url, state):
        night(env, log, "night-1")
        tieout(env, log, "sandbox", "mutate", "--days", "1")
        night(env, log, "night-2")
        truth = Path(tieout(env, log, "sandbox", "truth").strip())
        yield {"env": env, "log": log, "url": url, "state": state, "truth": truth}


# For every table: each column's header text and the text of its first cells, with their left
# and right edges as drawn (a Range over the text, not the cell box, which always lines up).
EDGES = """
const out = [];
for (const table of document.querySelectorAll('table[id]')) {
  if (!table.offsetParent) continue;  // in a closed <details>
  const heads = Array.from(table.tHead.rows[0].cells);
  const rows = Array.from(table.tBodies[0].rows).slice(0, 8);
  heads.forEach((th, col) => {
    const text = (el) => { const r = document.createRange(); r.selectNodeContents(el);
                           const b = r.getBoundingClientRect(); return [b.left, b.right]; };
    const cells = rows.map(r => r.cells[col]).filter(c => c && c.textContent.trim());
    out.push({table: table.id, header: th.textContent.trim(), numeric: th.classList.contains('num'),
              head: text(th), cells: cells.map(c => [c.textContent.trim(), ...text(c)])});
  });
}
return out;
"""


def open_report(browser, path: Path) -> None:
    browser.get(path.as_uri())
    browser.find_element("id", "what-to-do")


def assert_aligned(browser) -> None:
    columns = browser.execute_script(EDGES)
    assert columns, "no table on the page"
    for c in columns:
        for text, left, right in c["cells"]:
            if c["numeric"]:
                assert abs(right - c["head"][1]) <= 2, (c["table"], c["header"], text, right, c)
            else:
                assert abs(left - c["head"][0]) <= 2, (c["table"], c["header"], text, left, c)


def visible_text(browser) -> str:
    return browser.execute_script("return document.body.innerText")


def money_of(text: str) -> dict[str, float]:
    words = text.split()
    return {c: float(a.replace(",", "")) for a, c in zip(words[::2], words[1::2], strict=True)}


def assert_cards_equal_tables(browser) -> dict[str, float]:
    page = browser.execute_script(
        """
        const cards = {};
        document.querySelectorAll('[data-card="money"]').forEach(c =>
            cards[c.dataset.currency] = c.querySelector('b').textContent);
        const table = [];
        document.querySelectorAll('#money-table tbody tr').forEach(r =>
            table.push([r.cells[0].textContent.trim(), r.cells[3].dataset.v]));
        const lines = [];
        document.querySelectorAll('table.actions:not(#actions-breaks) tbody tr').forEach(r =>
            lines.push([r.dataset.state, r.cells[4].innerText]));
        const headings = [];
        document.querySelectorAll('summary.heading-count').forEach(s => {
            const t = s.parentElement.querySelector('table');
            headings.push([s.textContent, Number(s.dataset.count),
                           t ? t.tBodies[0].rows.length : 0, t ? Number(t.dataset.total) : 0]);
        });
        return {cards, table, lines, headings};
        """
    )
    cards = {c: float(v.split()[0].replace(",", "")) for c, v in page["cards"].items()}
    table: dict[str, float] = defaultdict(float)
    for currency, value in page["table"]:
        table[currency] += float(value)
    lines: dict[str, float] = defaultdict(float)
    for state, text in page["lines"]:
        if state not in ("fixed", "resolved"):
            for currency, value in money_of(text).items():
                lines[currency] += value
    assert cards and cards == {c: round(v, 2) for c, v in table.items()}
    assert cards == {c: round(v, 2) for c, v in lines.items()}
    for heading, count, shown, total in page["headings"]:
        assert shown == count or (total == count and shown < count), heading
    return cards


def test_report_reads_right_in_chromium(reported, browser, output_dir: Path) -> None:
    env, log, url = reported["env"], reported["log"], reported["url"]
    out = tieout(env, log, "report", "--run-id", "night-2")
    html = Path(re.search(r"drift report: (\S+)", out).group(1))
    open_report(browser, html)
    browser.save_screenshot(str(output_dir / "report-first-screen.png"))

    # what to do comes first, in plain words, with the technical kind beside it
    headings = browser.execute_script(
        "return Array.from(document.querySelectorAll('main h2')).map(h => h.textContent)"
    )
    assert headings[0] == "What to do", headings
    lines = browser.execute_script(
        """return Array.from(document.querySelectorAll('table.actions tbody tr')).map(
               r => [r.dataset.state, r.cells[0].textContent, r.cells[2].textContent])"""
    )
    states = {state for state, _, _ in lines}
    assert "needs_person" in states and "fixed" in states, states
    what = [text for _, text, _ in lines]
    assert any(re.match(r"Create \d+ invoices? in billing", w) for w in what), what
    assert any(re.match(r"Merge \d+ duplicate ERP orders?", w) for w in what), what
    assert all(not kind.startswith(("missing_in_system", "value_mismatch")) for *_, kind in lines)
    browser.execute_script(
        "const t = document.getElementById('actions-erp');"
        "window.scrollTo(0, t.getBoundingClientRect().top + window.scrollY - 48)"
    )
    time.sleep(0.3)
    browser.save_screenshot(str(output_dir / "report-what-to-do.png"))

    # a line's link opens its rows; each row names its record and customer, never a hash
    link = browser.find_element("css selector", "#actions-billing a.rows-link")
    target = link.get_attribute("href").split("#", 1)[1]
    link.click()
    time.sleep(0.3)
    assert browser.execute_script(f"return document.getElementById('{target}').open")
    rows = browser.find_elements("css selector", f"#{target}-table tbody tr")
    assert rows and all(r.find_element("css selector", "td.record").text for r in rows)

    for details in browser.find_elements("css selector", "details"):
        browser.execute_script("arguments[0].open = true", details)
    text = visible_text(browser)
    assert not HASH.search(text), HASH.search(text).group(0)
    customers = browser.execute_script(
        "return Array.from(document.querySelectorAll('td.customer')).map(c => c.textContent)"
    )
    assert any(re.match(r"^C-\d+ \S", c) for c in customers), customers[:5]
    assert "present" not in {
        c.text for c in browser.find_elements("css selector", "#open tbody td")
    }

    # headers line up with their values; trend axes are dates
    assert_aligned(browser)
    labels = [e.text for e in browser.find_elements("css selector", "svg .x-label")]
    assert labels and all(DATE_LABEL.match(label) for label in labels), labels

    # cards equal the tables; balance breaks are the injected ones, receivables apart
    assert_cards_equal_tables(browser)
    truth = json.loads(reported["truth"].read_text())
    subject = {
        "order_without_invoice": lambda b: str(b["order"]["canonical"]),
        "payment_without_invoice": lambda b: b["payment"],
        "paid_amount_mismatch": lambda b: b["invoice"]["canonical"],
    }
    injected = {(b["kind"], subject[b["kind"]](b)) for b in truth["balance_breaks"]}
    shown = set()
    for group in browser.find_elements("css selector", "#breaks details"):
        kind = group.get_attribute("data-kind")
        for cell in group.find_elements("css selector", "tbody td.record"):
            shown.add((kind, cell.text))
    counts = browser.execute_script(
        """return Array.from(document.querySelectorAll('#actions-breaks tbody tr')).map(
               r => Number(r.dataset.count)).reduce((a, b) => a + b, 0)"""
    )
    assert counts == len(injected)
    assert shown == {i for i in injected if i[0] in INJECTED}
    with psycopg.connect(url) as conn:
        receivable = conn.execute(
            "select count(*) from recon.balances where run_id = 'night-2' "
            "and outcome in ('unpaid', 'underpaid')"
        ).fetchone()[0]
    assert receivable > counts, "the sandbox has ordinary receivables the report must set apart"
    assert browser.find_element("id", "receivables-table").is_displayed()
    browser.execute_script("document.getElementById('breaks').scrollIntoView()")
    time.sleep(0.3)
    browser.save_screenshot(str(output_dir / "report-breaks.png"))


def test_waiver_moves_one_finding_everywhere(reported, browser, output_dir: Path) -> None:
    env, log, url = reported["env"], reported["log"], reported["url"]
    out = tieout(env, log, "report", "--run-id", "night-2")
    html = Path(re.search(r"drift report: (\S+)", out).group(1))
    open_report(browser, html)
    before = assert_cards_equal_tables(browser)
    with psycopg.connect(url) as conn:
        finding_id, currency, money = conn.execute(
            """select finding_id, upper(currency), money_impact from recon.findings
               where status = 'open' and money_impact > 0 order by finding_id limit 1"""
        ).fetchone()
    tieout(env, log, "findings", "waive", str(finding_id), "--reason", "written off")
    tieout(env, log, "report", "--run-id", "night-2")
    open_report(browser, html)
    after = assert_cards_equal_tables(browser)
    assert round(before[currency] - after[currency], 2) == round(float(money), 2)
    waived = browser.find_element("css selector", "#waived-findings summary").text
    assert waived == "Waived (1)"
    browser.execute_script("document.getElementById('waived-findings').open = true")
    assert len(browser.find_elements("css selector", "#waived tbody tr")) == 1


def test_plugin_page_shows_runs_and_held_writes(reported, browser, output_dir: Path) -> None:
    """The plugin's FastAPI app served over real HTTP (Airflow's sign-in is replaced by a user
    for the test; tests/e2e/test_demo.py signs in through the real Airflow UI)."""
    import uvicorn
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import FastAPI

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))
    import tieout_drift_report as plugin

    with psycopg.connect(reported["url"]) as conn:
        conn.execute(
            """insert into rev.outbox (idempotency_key, system, entity, record_key, entity_ref,
                   fields, finding_id, finding_ids, canonical_values, target_values, method,
                   path, body, planned_run_id, state, held_reason, held_at)
               select 'held-e2e', system, entity, 'held-e2e', entity_ref, array[field],
                   finding_id, array[finding_id], '{}', '{}', 'POST', '/held', '{}', 'night-2',
                   'held', 'safety brake: 31% of billing invoices would change (limit 20%)',
                   now()
               from recon.findings
               where status = 'open' and kind = 'value_mismatch' and system = 'billing'
               order by finding_id limit 1"""
        )
    tieout(reported["env"], reported["log"], "report", "--run-id", "night-2")
    saved = {k: os.environ.get(k) for k in ("TIEOUT_DATABASE_URL", "TIEOUT_STATE_DIR")}
    os.environ["TIEOUT_DATABASE_URL"] = reported["url"]
    os.environ["TIEOUT_STATE_DIR"] = str(reported["state"])
    host = FastAPI()
    host.mount("/tieout", plugin.app)
    plugin.app.dependency_overrides[get_user] = lambda: object()
    server = uvicorn.Server(uvicorn.Config(host, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.1)
        port = server.servers[0].sockets[0].getsockname()[1]
        browser.get(f"http://127.0.0.1:{port}/tieout/")
        text = visible_text(browser)
        browser.save_screenshot(str(output_dir / "plugin-runs.png"))
        assert "night-2" in text and "Held writes (1)" in text
        assert "safety brake: 31% of billing invoices would change (limit 20%)" in text
        assert_aligned(browser)
        browser.find_element("link text", "report").click()
        browser.find_element("id", "what-to-do")
        assert (
            browser.execute_script(
                "return document.querySelectorAll('table.actions tr[data-state=held]').length"
            )
            >= 1
        )
        browser.save_screenshot(str(output_dir / "plugin-report.png"))
    finally:
        server.should_exit = True
        thread.join(10)
        plugin.app.dependency_overrides.clear()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
