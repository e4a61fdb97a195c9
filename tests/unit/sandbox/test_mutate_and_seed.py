"""Same seed, same data; `mutate` adds a day of change and keeps the ground truth exact."""

from __future__ import annotations

import json
import sqlite3

from tieout_sandbox import SYSTEMS, datadir, faults, generate, mutate, storage

from . import reference_recon, walkers


def digest(directory):
    digests = {}
    for system in SYSTEMS:
        conn = sqlite3.connect(datadir.database_path(directory, system))
        digests[system] = storage.table_digest(conn, storage.RESOURCES[system])
        conn.close()
    return digests


def no_rate_limit(directory):
    faults.save_knobs(
        directory, "billing", faults.knobs_from_dict("billing", {"rate_limit_per_second": 0})
    )


def test_same_seed_same_data(tmp_path):
    generate.seed(tmp_path / "a", scale=0.1, seed_value=5)
    generate.seed(tmp_path / "b", scale=0.1, seed_value=5)
    generate.seed(tmp_path / "c", scale=0.1, seed_value=6)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")
    truth_a = json.loads((tmp_path / "a" / "ground_truth.json").read_text())
    truth_b = json.loads((tmp_path / "b" / "ground_truth.json").read_text())
    assert truth_a == truth_b
    credentials_a = json.loads((tmp_path / "a" / "credentials.json").read_text())
    credentials_b = json.loads((tmp_path / "b" / "credentials.json").read_text())
    assert credentials_a != credentials_b, "secrets are random, never derived from the seed"


def test_reseed_keeps_credentials(tmp_path):
    generate.seed(tmp_path, scale=0.02, seed_value=1)
    first = (tmp_path / "credentials.json").read_text()
    generate.seed(tmp_path, scale=0.02, seed_value=2)
    assert (tmp_path / "credentials.json").read_text() == first
    assert oct((tmp_path / "credentials.json").stat().st_mode & 0o777) == "0o600"


def test_mutate_extends_the_ground_truth_and_it_stays_exact(tmp_path):
    generate.seed(tmp_path, scale=0.3, seed_value=9)
    before = json.loads(datadir.ground_truth_path(tmp_path).read_text())
    summary = mutate.mutate(tmp_path, days=2)
    after = json.loads(datadir.ground_truth_path(tmp_path).read_text())

    assert summary["days_mutated"] == 2 and summary["payments"] > 0 and summary["shipments"] > 0
    assert summary["customer_updates"] > 0
    assert after["days_mutated"] == 2
    assert after["entities"]["customer"] == before["entities"]["customer"] + summary["customers"]
    assert after["entities"]["order"] == before["entities"]["order"] + summary["orders"]
    assert after["divergences"][: len(before["divergences"])] == before["divergences"]
    assert {item["day"] for item in after["divergences"]} >= {0, 1, 2}

    no_rate_limit(tmp_path)
    records = walkers.read_everything(walkers.in_process_clients(tmp_path))
    assert reference_recon.reconcile(records) == reference_recon.truth_findings(after)
    assert reference_recon.balance_breaks(records) == reference_recon.truth_breaks(after)
    assert len(records["erp.customers"]) == after["entities"]["customer"]
    assert len(records["shop.orders"]) == after["entities"]["order"]
    assert len(records["billing.payments"]) == after["entities"]["payment"]


def test_mutate_moves_update_times_forward(tmp_path):
    generate.seed(tmp_path, scale=0.05, seed_value=4)
    conn = sqlite3.connect(datadir.database_path(tmp_path, "erp"))
    newest = conn.execute("select max(updated_ms) from invoices").fetchone()[0]
    mutate.mutate(tmp_path, days=1)
    changed = conn.execute(
        "select count(*) from invoices where updated_ms > ?", (newest,)
    ).fetchone()[0]
    conn.close()
    assert changed > 0


def stamps(directory):
    """(system, table, pk) -> updated_ms of every record the sandbox holds."""
    found = {}
    for system in SYSTEMS:
        conn = sqlite3.connect(datadir.database_path(directory, system))
        for table in storage.RESOURCES[system]:
            for pk, updated_ms in conn.execute(f"select pk, updated_ms from {table}"):
                found[(system, table, pk)] = updated_ms
        conn.close()
    return found


def test_every_change_of_a_day_is_stamped_after_everything_before_it(tmp_path):
    # an extract's cursor stands at the newest update it was served: anything a later day
    # stamps behind that would never be fetched (day 2 used to place orders hours behind it)
    generate.seed(tmp_path, scale=0.05, seed_value=4)
    for _ in range(3):
        before = stamps(tmp_path)
        newest = max(before.values())
        mutate.mutate(tmp_path, days=1)
        changed = {k: v for k, v in stamps(tmp_path).items() if before.get(k) != v}
        assert changed
        behind = {k: v for k, v in changed.items() if v <= newest}
        assert not behind, f"{len(behind)} stamped at or before {newest}: {list(behind)[:3]}"
