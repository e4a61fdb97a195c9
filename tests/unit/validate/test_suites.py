"""The suites are generated from config: every table has one, every expectation has a severity and
an entity, and the committed files in expectations/gx are what the generator makes today."""

from __future__ import annotations

import json

import pytest

from tieout.config import load_config
from tieout.validate import suites
from tieout.validate.run import select_suites, suite_files


@pytest.fixture(scope="module")
def built() -> list[suites.SuiteSpec]:
    return suites.build_suites()


def test_committed_project_is_up_to_date() -> None:
    stale = suites.stale_files()
    assert stale == [], f"run `tieout validate --write-suites` and commit: {stale}"


def test_a_suite_per_raw_stream_and_canonical_table(built: list[suites.SuiteSpec]) -> None:
    config = load_config()
    names = {s.name for s in built}
    streams = {
        f"raw.{src.name}__{st.name}" for src in config.sources.values() for st in src.streams
    }
    tables = {e.table for e in config.entities.values()} | {"canonical.order_lines"}
    assert names == streams | tables


def test_every_expectation_has_a_severity_and_an_entity(built: list[suites.SuiteSpec]) -> None:
    entities = set(load_config().entities)
    for suite in built:
        for check in suite.checks:
            assert check.severity in {"critical", "warning"}, (suite.name, check.name)
            if check.entity is None:
                # only streams no entity reads (crm companies) go without, and never block
                assert suite.schema == "raw" and check.severity == "warning", check
            else:
                assert check.entity in entities, (suite.name, check.name)


def test_committed_files_carry_severity_in_meta_and_natively() -> None:
    root = suites.gx_root()
    paths = sorted((root / "expectations").rglob("*.json"))
    assert paths
    for path in paths:
        data = json.loads(path.read_text())
        assert data["meta"]["guards"] == data["name"]
        for expectation in data["expectations"]:
            meta = expectation["meta"]
            assert meta["severity"] in {"critical", "warning"}
            assert expectation["severity"] == meta["severity"]
            assert "entity" in meta and meta["name"]


def test_expectation_names_are_unique_per_suite(built: list[suites.SuiteSpec]) -> None:
    for suite in built:
        names = [c.name for c in suite.checks]
        assert len(names) == len(set(names)), suite.name


def test_source_of_truth_fields_are_critical_other_copies_warnings(
    built: list[suites.SuiteSpec],
) -> None:
    by_name = {s.name: {c.name: c for c in s.checks} for s in built}
    crm = by_name["raw.crm__contacts"]
    assert crm["properties.email present as text"].severity == "critical"  # crm owns email
    assert crm["properties.address present as text"].severity == "warning"  # erp owns street
    erp = by_name["raw.erp__invoices"]
    assert erp["total_amount present as money"].severity == "critical"
    assert erp["modified_at never goes backwards"].entity == "invoice"
    billing = by_name["raw.billing__invoices"]
    assert billing["status present as text"].severity == "critical"  # billing owns status
    assert billing["amount_due present as money"].severity == "warning"
    shop = by_name["raw.shop__products"]
    assert "variants[].price present as money" in shop


def test_canonical_rules(built: list[suites.SuiteSpec]) -> None:
    by_name = {s.name: {c.name: c for c in s.checks} for s in built}
    invoices = by_name["canonical.invoices"]
    for name in (
        "invoice_id not null",
        "invoice_id unique",
        "customer_id references canonical.customers",
        "amount not negative",
        "currency ISO 4217",
        "status in set",
        "amount equals sum of lines",
        "row count within bounds of raw.erp__invoices",
    ):
        assert invoices[name].severity == "critical", name
    assert invoices["status in set"].kwargs["value_set"] == [
        "open",
        "paid",
        "uncollectible",
        "void",
    ]
    assert by_name["canonical.customers"]["country ISO 3166 alpha-2"].severity == "warning"
    assert "invoice_id not null" not in by_name["canonical.payments"]  # unapplied payments exist
    assert (
        by_name["canonical.order_lines"]["order_id references canonical.orders"].entity == "order"
    )


def test_queries_fill_only_the_batch_placeholder(built: list[suites.SuiteSpec]) -> None:
    from string import Formatter

    for suite in built:
        for check in suite.checks:
            query = check.kwargs.get("unexpected_rows_query")
            if query is None:
                continue
            fields = {f[1] for f in Formatter().parse(query) if f[1] is not None}
            assert fields == {"batch"}, (suite.name, check.name)
            assert " join " not in query.lower()


def test_rows_refuses_join_keyword() -> None:
    suite = suites.SuiteSpec("canonical", "x", "id", "x")
    with pytest.raises(ValueError, match="JOIN"):
        suite.rows("bad", "critical", "", "select * from {batch} join y on true")


def test_paths_from_entity_names() -> None:
    assert suites.field_paths("first_name || ' ' || last_name") == ["first_name", "last_name"]
    assert suites.json_path("variants[].sku") == (["variants"], ["sku"])
    assert suites.json_path("address.line1") == (["address", "line1"], [])


def test_selecting_suites_by_name_or_layer() -> None:
    assert [s.name for s in select_suites(["canonical.invoices"])] == ["canonical.invoices"]
    assert {s.schema for s in select_suites(["raw"])} == {"raw"}
    assert len(select_suites(None)) == len(suite_files())
    with pytest.raises(KeyError, match="no suite named canonical.nope"):
        select_suites(["canonical.nope"])


def test_gx_loads_every_committed_suite() -> None:
    import great_expectations as gx

    for path in sorted((suites.gx_root() / "expectations").rglob("*.json")):
        data = json.loads(path.read_text())
        suite = gx.ExpectationSuite(**data)
        assert len(suite.expectations) == len(data["expectations"])
        assert {e.severity.value for e in suite.expectations} <= {"critical", "warning"}
