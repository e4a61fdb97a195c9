"""`tieout config check` names every bad SQL name of a config folder at once, each with its
file, key path and what was expected (tests/unit/config/bad_names holds one of each)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tieout.cli import cli

BAD_NAMES = Path(__file__).parent / "bad_names"
SQL_NAME = "a lowercase SQL name (a letter or _, then letters, digits or _; at most 63 bytes)"
RECORD_PATH = (
    "a record path like 'email', 'address.city' or 'variants[].sku' (names of letters, digits or _)"
)
LONG = "contacts_with_their_companies_and_every_association_made_v"


def expected_problems(root: Path) -> list[str]:
    crm, entities, reverse = (
        root / "sources/crm.yml",
        root / "entities.yml",
        root / "reverse_etl.yml",
    )
    vat = "vat_number from x); drop table raw.crm__contacts; --"
    return [
        f'{crm}: streams[0].primary_key[0]: expected {RECORD_PATH}, got "id\') or true; --"',
        f"{crm}: streams[3].name: expected {SQL_NAME}, "
        "got 'Companies; drop table raw.crm__contacts'",
        f"{crm}: streams[1].name: raw table 'crm__{LONG}1' is 64 bytes, longer than the 63 "
        f"PostgreSQL keeps: it would load into the same table as streams[2] ('crm__{LONG}2'); "
        "expected <source>__<stream> of at most 63 bytes",
        f"{crm}: streams[2].name: raw table 'crm__{LONG}2' is 64 bytes, longer than the 63 "
        f"PostgreSQL keeps: it would load into the same table as streams[1] ('crm__{LONG}1'); "
        "expected <source>__<stream> of at most 63 bytes",
        f"{entities}: entities.customer.table: expected schema.table, each {SQL_NAME}, "
        "got 'canonical.customers; drop table raw.crm__contacts'",
        f"{entities}: entities.customer.key: expected {SQL_NAME}, or several separated by "
        "commas, got 'customer id'",
        f"{entities}: entities.customer.systems.crm.key: expected {RECORD_PATH}, got 'id; --'",
        f"{entities}: entities.customer.fields.email.names.crm: expected record paths joined by "
        "||, with optional 'quoted text' between them (like first_name || ' ' || last_name), "
        'got "email\') from raw.crm__contacts; --"',
        f"{entities}: entities.customer.fields.{vat}: expected {SQL_NAME}, got {vat!r}",
        f"{entities}: entities.Customer-Notes: expected {SQL_NAME}, got 'Customer-Notes'",
        f"{entities}: entities.Customer-Notes.systems.CRM: expected {SQL_NAME}, got 'CRM'",
        f"{reverse}: targets[0].fields[0]: expected {SQL_NAME}, "
        "got 'email; delete from rev.outbox'",
    ]


def test_config_check_lists_every_bad_name_at_once() -> None:
    result = CliRunner().invoke(cli, ["config", "check", "--dir", str(BAD_NAMES)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines() == expected_problems(BAD_NAMES)
