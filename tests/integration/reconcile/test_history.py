"""recon.findings remembers: first and last seen, resolved by the run that saw a difference gone,
waived with who, when and why (audited), and a difference that comes back opens a new row."""

from __future__ import annotations

import pytest

from tieout.reconcile import findings as store
from tieout.reconcile.run import reconcile

from .conftest import NO_ALERTS


def run(case, relations, url, run_id):
    return reconcile(
        run_id,
        url=url,
        specs={case.name: case.entity},
        relations=relations,
        alerts=NO_ALERTS,
        with_balances=False,
    )


def rows(conn, entity):
    return conn.execute(
        """select finding_id, kind, system, field, entity_ref, status, first_seen_run_id,
                  last_seen_run_id, resolved_run_id, times_seen
           from recon.findings where entity = %s order by finding_id""",
        (entity,),
    ).fetchall()


def find(conn, entity, kind, system, field, ref, status=None):
    matches = [
        r
        for r in rows(conn, entity)
        if r[1:5] == (kind, system, field, ref) and (status is None or r[5] == status)
    ]
    assert len(matches) == 1, matches
    return matches[0]


def test_history_across_runs(load_case, conn, warehouse_url):
    case, relations = load_case("kinds")
    entity = case.name = "history_kinds"
    relations = {entity: next(iter(relations.values()))}
    _, by_system = relations[entity]

    first = run(case, relations, warehouse_url, "h-1")
    assert first["entities"][entity]["opened"] == 8
    name_typo = find(conn, entity, "value_mismatch", "shop", "name", "C-4")
    missing = find(conn, entity, "missing_in_system", "shop", "", "C-2")
    assert name_typo[6] == name_typo[7] == "h-1"

    # day 2: the shop fixes the name typo and receives the missing customer; a new difference
    conn.execute(f"update {by_system} set name = 'Edsger Dijkstra' where system_key = '205'")
    conn.execute(
        f"insert into {by_system} values ('c2', 'shop', '202', 1, 'Alan Turing', "
        "'alan@example.com')"
    )
    conn.execute(f"update {by_system} set email = 'ada@typo.example' where system_key = '201'")
    second = run(case, relations, warehouse_url, "h-2")
    assert second["entities"][entity]["resolved"] == 2
    assert second["entities"][entity]["opened"] == 1
    fixed = [r for r in rows(conn, entity) if r[0] in (name_typo[0], missing[0])]
    assert {r[5] for r in fixed} == {"resolved"}
    assert {r[8] for r in fixed} == {"h-2"}
    still = find(conn, entity, "value_mismatch", "erp", "email", "C-4")
    assert (still[6], still[7], still[9]) == ("h-1", "h-2", 2)
    new = find(conn, entity, "value_mismatch", "shop", "email", "C-1")
    assert (new[5], new[6]) == ("open", "h-2")

    # a rerun of the same run changes nothing
    again = run(case, relations, warehouse_url, "h-2")
    assert again["entities"][entity]["opened"] == 0
    assert again["entities"][entity]["resolved"] == 0
    assert find(conn, entity, "value_mismatch", "erp", "email", "C-4")[9] == 2

    # waive with who and why; it stays waived while seen, and the audit keeps the story
    waived = store.waive(conn, new[0], "shop migrates emails next week", by="finance@example")
    assert (waived["status"], waived["waived_by"]) == ("waived", "finance@example")
    assert waived["audit"][0]["reason"] == "shop migrates emails next week"
    with pytest.raises(store.WaiveError, match="reason"):
        store.waive(conn, still[0], "  ")
    with pytest.raises(store.WaiveError, match="waived"):
        store.waive(conn, new[0], "twice")
    with pytest.raises(store.WaiveError, match="only open"):
        store.waive(conn, name_typo[0], "already fixed")
    third = run(case, relations, warehouse_url, "h-3")
    assert third["waived_findings"] >= 1
    assert find(conn, entity, "value_mismatch", "shop", "email", "C-1")[5:8] == (
        "waived",
        "h-2",
        "h-3",
    )

    # the waived difference disappears: resolved; the name typo comes back: a new row
    conn.execute(f"update {by_system} set email = 'ada@example.com' where system_key = '201'")
    conn.execute(f"update {by_system} set name = 'Edsger Dikstra' where system_key = '205'")
    run(case, relations, warehouse_url, "h-4")
    assert find(conn, entity, "value_mismatch", "shop", "email", "C-1")[5] == "resolved"
    back = find(conn, entity, "value_mismatch", "shop", "name", "C-4", status="open")
    assert back[0] != name_typo[0] and back[6] == "h-4"
    audit = conn.execute(
        "select action, actor from recon.finding_audit where finding_id = %s", (new[0],)
    ).fetchall()
    assert audit == [("waive", "finance@example")]


def test_unwaive_is_audited(load_case, conn, warehouse_url):
    case, relations = load_case("kinds")
    entity = case.name = "history_unwaive"
    relations = {entity: next(iter(relations.values()))}
    run(case, relations, warehouse_url, "u-1")
    target = find(conn, entity, "missing_in_system", "shop", "", "C-2")
    store.waive(conn, target[0], "known gap", by="ann")
    reopened = store.unwaive(conn, target[0], "gap must be fixed after all", by="bob")
    assert reopened["status"] == "open" and reopened["waived_by"] is None
    assert [(a["action"], a["actor"]) for a in reopened["audit"]] == [
        ("waive", "ann"),
        ("unwaive", "bob"),
    ]
