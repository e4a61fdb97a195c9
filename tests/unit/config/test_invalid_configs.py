"""Every invalid config stops with the file, the key path and what was expected."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tieout.config import ConfigError, load_config, parse_duration
from tieout.paths import config_dir

Mutation = Callable[[Path], None]


def edit(relative: str, change: Callable[[Any], None]) -> Mutation:
    def apply(root: Path) -> None:
        path = root / relative
        data = yaml.safe_load(path.read_text())
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    return apply


def write(relative: str, text: str) -> Mutation:
    def apply(root: Path) -> None:
        (root / relative).write_text(text)

    return apply


def remove(relative: str) -> Mutation:
    def apply(root: Path) -> None:
        (root / relative).unlink()

    return apply


def stream(data: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return data["streams"][index]


def rename(mapping: dict[str, Any], old: str, new: str) -> None:
    mapping[new] = mapping.pop(old)


INJECTION = "vat_number from x); drop table raw.crm__contacts; --"
SQL_NAME = "a lowercase SQL name (a letter or _, then letters, digits or _; at most 63 bytes)"
# shop__ + this + one character: 65 bytes
LONG_STREAM = "orders_with_every_line_item_and_fulfilment_event_ever_made"


CASES: list[tuple[str, Mutation, str]] = [
    (
        "missing base_url",
        edit("sources/crm.yml", lambda d: d.pop("base_url")),
        "{dir}/sources/crm.yml: base_url: required key is missing",
    ),
    (
        "base_url not http",
        edit("sources/erp.yml", lambda d: d.update(base_url="ftp://erp.example.com")),
        "{dir}/sources/erp.yml: base_url: expected an http(s) URL, got 'ftp://erp.example.com'",
    ),
    (
        "credentials in base_url",
        edit("sources/erp.yml", lambda d: d.update(base_url="https://bob:pw@erp.example.com")),
        "{dir}/sources/erp.yml: base_url: credentials must not be in base_url; "
        "use the Airflow connection",
    ),
    (
        "unknown auth kind",
        edit("sources/crm.yml", lambda d: d["auth"].update(kind="saml")),
        "{dir}/sources/crm.yml: auth: unknown kind 'saml'; expected one of 'api_key', "
        "'bearer', 'header_token', 'basic', 'oauth2_client_credentials', 'none'",
    ),
    (
        "oauth2 without token_url",
        edit("sources/crm.yml", lambda d: d["auth"].pop("token_url")),
        "{dir}/sources/crm.yml: auth.token_url: required key is missing",
    ),
    (
        "unknown paginator kind",
        edit("sources/shop.yml", lambda d: d["paginator"].update(kind="infinite_scroll")),
        "{dir}/sources/shop.yml: paginator: unknown kind 'infinite_scroll'; expected one of "
        "'offset', 'page_number', 'body_cursor', 'starting_after', 'link_header', 'none'",
    ),
    (
        "body cursor without cursor_path",
        edit("sources/crm.yml", lambda d: d["paginator"].pop("cursor_path")),
        "{dir}/sources/crm.yml: paginator.cursor_path: required key is missing",
    ),
    (
        "misspelled key in a stream",
        edit("sources/billing.yml", lambda d: stream(d).update(primary_keys=["id"])),
        "{dir}/sources/billing.yml: streams[0].primary_keys: unknown key (check the spelling)",
    ),
    (
        "empty primary key",
        edit("sources/billing.yml", lambda d: stream(d, 1).update(primary_key=[])),
        "{dir}/sources/billing.yml: streams[1].primary_key: List should have at least 1 item "
        "after validation, not 0",
    ),
    (
        "page size out of range",
        edit("sources/erp.yml", lambda d: d.update(page_size=0)),
        "{dir}/sources/erp.yml: page_size: Input should be greater than or equal to 1",
    ),
    (
        "quarantine share above 1",
        edit("sources/erp.yml", lambda d: stream(d).update(max_quarantined_share=1.5)),
        "{dir}/sources/erp.yml: streams[0].max_quarantined_share: Input should be less than or "
        "equal to 1",
    ),
    (
        "lookback not a duration",
        edit("sources/erp.yml", lambda d: stream(d, 2).update(lookback="ten minutes")),
        "{dir}/sources/erp.yml: streams[2].lookback: expected a duration like '30s', '10m', "
        "'2h' or '1d', got 'ten minutes'",
    ),
    (
        "incremental without cursor field",
        edit("sources/shop.yml", lambda d: stream(d).pop("cursor_field")),
        "{dir}/sources/shop.yml: streams[0]: incremental reads need a cursor_field",
    ),
    (
        "path without slash",
        edit("sources/shop.yml", lambda d: stream(d, 1).update(path="orders.json")),
        "{dir}/sources/shop.yml: streams[1].path: expected a path starting with '/', "
        "got 'orders.json'",
    ),
    (
        "stream declared twice",
        edit("sources/crm.yml", lambda d: d["streams"].append(dict(d["streams"][0]))),
        "{dir}/sources/crm.yml: streams: stream 'contacts' is declared twice",
    ),
    (
        "name differs from file name",
        edit("sources/crm.yml", lambda d: d.update(name="hubspot")),
        "{dir}/sources/crm.yml: name: expected 'crm' (the file name), got 'hubspot'",
    ),
    (
        "rate limit must be positive",
        edit("sources/billing.yml", lambda d: d["rate_limit"].update(requests_per_second=0)),
        "{dir}/sources/billing.yml: rate_limit.requests_per_second: Input should be greater than 0",
    ),
    (
        "freshness not a duration",
        edit("sources/crm.yml", lambda d: d.update(freshness={"warn_after": "a day"})),
        "{dir}/sources/crm.yml: freshness.warn_after: expected a duration like '30s', '10m', "
        "'2h' or '1d', got 'a day'",
    ),
    (
        "freshness error before warn",
        edit(
            "sources/erp.yml",
            lambda d: d.update(freshness={"warn_after": "2d", "error_after": "26h"}),
        ),
        "{dir}/sources/erp.yml: freshness: error_after (26h) must be longer than warn_after (2d)",
    ),
    (
        "freshness without a limit",
        edit("sources/shop.yml", lambda d: stream(d, 1).update(freshness={})),
        "{dir}/sources/shop.yml: streams[1].freshness: expected warn_after, error_after or both",
    ),
    (
        "freshness misspelled key",
        edit("sources/billing.yml", lambda d: d.update(freshness={"warn_afer": "1h"})),
        "{dir}/sources/billing.yml: freshness.warn_afer: unknown key (check the spelling)",
    ),
    (
        "broken YAML",
        write("sources/shop.yml", "name: shop\nstreams: [\n  - {name: a\n"),
        "{dir}/sources/shop.yml: invalid YAML at line 3, column 3: expected the node content, "
        "but found '-'",
    ),
    (
        "top level is a list",
        write("entities.yml", "- customer\n"),
        "{dir}/entities.yml: expected a mapping at the top level, got list",
    ),
    (
        "missing entities file",
        remove("entities.yml"),
        "{dir}/entities.yml: file not found",
    ),
    (
        "unknown field type",
        edit(
            "entities.yml",
            lambda d: d["entities"]["customer"]["fields"]["email"].update(type="string"),
        ),
        "{dir}/entities.yml: entities.customer.fields.email.type: Input should be 'text', "
        "'money', 'integer', 'numeric', 'boolean', 'date', 'timestamp' or 'currency'",
    ),
    (
        "source of truth not a system of the entity",
        edit(
            "entities.yml",
            lambda d: d["entities"]["invoice"]["fields"]["status"].update(source_of_truth="crm"),
        ),
        "{dir}/entities.yml: entities.invoice: fields.status.source_of_truth: 'crm' is not one "
        "of this entity's systems (billing, erp)",
    ),
    (
        "master not a system",
        edit("entities.yml", lambda d: d["entities"]["order"].update(master="billing")),
        "{dir}/entities.yml: entities.order: master 'billing' is not one of this entity's "
        "systems (erp, shop)",
    ),
    (
        "entity system names an unknown stream",
        edit(
            "entities.yml",
            lambda d: d["entities"]["customer"]["systems"]["shop"].update(stream="clients"),
        ),
        "{dir}/entities.yml: entities.customer.systems.shop.stream: source 'shop' has no stream "
        "'clients' (expected one of customers, orders, products)",
    ),
    (
        "reverse ETL writes a source of truth",
        edit("reverse_etl.yml", lambda d: d["targets"][0]["fields"].append("email")),
        "{dir}/reverse_etl.yml: targets[0].fields: 'email' must not be written to 'crm', "
        "which is its source of truth",
    ),
    (
        "reverse ETL to a system without the entity",
        edit("reverse_etl.yml", lambda d: d["targets"][2].update(system="shop")),
        "{dir}/reverse_etl.yml: targets[2].system: 'shop' holds no copy of 'invoice' "
        "(expected one of billing, erp)",
    ),
    (
        "reverse ETL unknown mode",
        edit("reverse_etl.yml", lambda d: d["targets"][1].update(mode="merge")),
        "{dir}/reverse_etl.yml: targets[1].mode: Input should be 'update' or 'upsert'",
    ),
    (
        "reverse ETL upsert is refused, not ignored",
        edit("reverse_etl.yml", lambda d: d["targets"][1].update(mode="upsert")),
        "{dir}/reverse_etl.yml: targets[1].mode: 'upsert' is not supported yet: reverse ETL "
        "only corrects records the target already holds (a record missing from a system is "
        "listed for a person); use 'update'",
    ),
    (
        "safety brake above one",
        edit("reverse_etl.yml", lambda d: d["safety_brake"].update(max_share=1.5)),
        "{dir}/reverse_etl.yml: safety_brake.max_share: Input should be less than or equal to 1",
    ),
    (
        "SQL in a field name",
        edit(
            "entities.yml",
            lambda d: rename(d["entities"]["customer"]["fields"], "vat_number", INJECTION),
        ),
        "{dir}/entities.yml: entities.customer.fields.vat_number from x); drop table "
        "raw.crm__contacts; --: expected {sql}, got 'vat_number from x); drop table "
        "raw.crm__contacts; --'",
    ),
    (
        "SQL in an entity key",
        edit("entities.yml", lambda d: d["entities"]["order"].update(key="order_id) or (true")),
        "{dir}/entities.yml: entities.order.key: expected {sql}, or several separated by "
        "commas, got 'order_id) or (true'",
    ),
    (
        "entity name with a dash",
        edit("entities.yml", lambda d: rename(d["entities"], "payment", "payment-received")),
        "{dir}/entities.yml: entities.payment-received: expected {sql}, got 'payment-received'",
    ),
    (
        "system name in capitals",
        edit(
            "entities.yml",
            lambda d: rename(d["entities"]["payment"]["systems"], "billing", "Billing"),
        ),
        "{dir}/entities.yml: entities.payment.systems.Billing: expected {sql}, got 'Billing'",
    ),
    (
        "table without a schema",
        edit("entities.yml", lambda d: d["entities"]["product"].update(table="products")),
        "{dir}/entities.yml: entities.product.table: expected schema.table, each {sql}, "
        "got 'products'",
    ),
    (
        "SQL in a table name",
        edit(
            "entities.yml",
            lambda d: d["entities"]["product"].update(table="canonical.products; drop schema raw"),
        ),
        "{dir}/entities.yml: entities.product.table: expected schema.table, each {sql}, "
        "got 'canonical.products; drop schema raw'",
    ),
    (
        "name longer than PostgreSQL keeps",
        edit("entities.yml", lambda d: d["entities"]["invoice"].update(key="k" * 64)),
        "{dir}/entities.yml: entities.invoice.key: expected {sql}, or several separated by "
        "commas, got '" + "k" * 64 + "'",
    ),
    (
        "SQL in a system's key path",
        edit(
            "entities.yml",
            lambda d: d["entities"]["invoice"]["systems"]["erp"].update(key="invoice_no' or '1"),
        ),
        "{dir}/entities.yml: entities.invoice.systems.erp.key: expected a record path like "
        "'email', 'address.city' or 'variants[].sku' (names of letters, digits or _), "
        "got \"invoice_no' or '1\"",
    ),
    (
        "SQL in how a system names a field",
        edit(
            "entities.yml",
            lambda d: d["entities"]["customer"]["fields"]["email"]["names"].update(
                shop="email') from raw.shop__customers; --"
            ),
        ),
        "{dir}/entities.yml: entities.customer.fields.email.names.shop: expected record paths "
        "joined by ||, with optional 'quoted text' between them (like first_name || ' ' || "
        'last_name), got "email\') from raw.shop__customers; --"',
    ),
    (
        "several inconsistencies of one entity, all of them",
        edit(
            "entities.yml",
            lambda d: (
                d["entities"]["order"].update(master="billing"),
                d["entities"]["order"]["fields"]["status"].update(source_of_truth="crm"),
            ),
        ),
        "{dir}/entities.yml: entities.order: master 'billing' is not one of this entity's "
        "systems (erp, shop)\n"
        "{dir}/entities.yml: entities.order: fields.status.source_of_truth: 'crm' is not one "
        "of this entity's systems (erp, shop)",
    ),
    (
        "stream name in capitals",
        edit("sources/shop.yml", lambda d: stream(d, 1).update(name="Orders")),
        "{dir}/sources/shop.yml: streams[1].name: expected {sql}, got 'Orders'",
    ),
    (
        "SQL in a primary key",
        edit("sources/erp.yml", lambda d: stream(d).update(primary_key=["id'; --"])),
        "{dir}/sources/erp.yml: streams[0].primary_key[0]: expected a record path like "
        "'email', 'address.city' or 'variants[].sku' (names of letters, digits or _), "
        'got "id\'; --"',
    ),
    (
        "source name that blurs raw table names",
        edit("sources/erp.yml", lambda d: d.update(name="erp__v2")),
        "{dir}/sources/erp.yml: name: expected no '__' in a source name (raw tables are "
        "<source>__<stream>), got 'erp__v2'",
    ),
    (
        "raw table name longer than PostgreSQL keeps",
        edit("sources/shop.yml", lambda d: stream(d, 2).update(name=LONG_STREAM + "1")),
        "{dir}/sources/shop.yml: streams[2].name: raw table 'shop__" + LONG_STREAM + "1' is 65 "
        "bytes, longer than the 63 PostgreSQL keeps: PostgreSQL would cut it to 'shop__"
        + LONG_STREAM[:57]
        + "'; expected <source>__<stream> of at most 63 bytes",
    ),
    (
        "two streams cut to the same raw table",
        edit(
            "sources/shop.yml",
            lambda d: (
                stream(d, 1).update(name=LONG_STREAM + "1"),
                stream(d, 2).update(name=LONG_STREAM + "2"),
            ),
        ),
        "{dir}/sources/shop.yml: streams[1].name: raw table 'shop__" + LONG_STREAM + "1' is 65 "
        "bytes, longer than the 63 PostgreSQL keeps: it would load into the same table as "
        "streams[2] ('shop__" + LONG_STREAM + "2'); expected <source>__<stream> of at most "
        "63 bytes\n"
        "{dir}/sources/shop.yml: streams[2].name: raw table 'shop__" + LONG_STREAM + "2' is 65 "
        "bytes, longer than the 63 PostgreSQL keeps: it would load into the same table as "
        "streams[1] ('shop__" + LONG_STREAM + "1'); expected <source>__<stream> of at most "
        "63 bytes",
    ),
    (
        "SQL in a reverse ETL field",
        edit("reverse_etl.yml", lambda d: d["targets"][1]["fields"].append("phone; --")),
        "{dir}/reverse_etl.yml: targets[1].fields[2]: expected {sql}, got 'phone; --'",
    ),
    (
        "webhook scheme unknown",
        edit("sources/billing.yml", lambda d: d["webhook"].update(scheme="md5")),
        "{dir}/sources/billing.yml: webhook.scheme: Input should be 'stripe' or 'hex'",
    ),
    (
        "webhook tolerance above five minutes",
        edit("sources/billing.yml", lambda d: d["webhook"].update(tolerance="1h")),
        "{dir}/sources/billing.yml: webhook.tolerance: expected a duration from 1s to 5m, got '1h'",
    ),
    (
        "webhook tolerance not a duration",
        edit("sources/billing.yml", lambda d: d["webhook"].update(tolerance="soon")),
        "{dir}/sources/billing.yml: webhook.tolerance: expected a duration like '30s', '10m', "
        "'2h' or '1d', got 'soon'",
    ),
    (
        "webhook hex without timestamp_path",
        edit("sources/billing.yml", lambda d: d["webhook"].update(scheme="hex")),
        "{dir}/sources/billing.yml: webhook: scheme 'hex' needs timestamp_path: the signed "
        "body's event time, so old events can be refused",
    ),
    (
        "webhook stripe with hex_prefix",
        edit("sources/billing.yml", lambda d: d["webhook"].update(hex_prefix="sha256=")),
        "{dir}/sources/billing.yml: webhook: hex_prefix and timestamp_path are for scheme "
        "'hex'; 'stripe' signs the time in its header",
    ),
    (
        "webhook header name with a space",
        edit("sources/billing.yml", lambda d: d["webhook"].update(signature_header="X Sig")),
        "{dir}/sources/billing.yml: webhook.signature_header: expected an HTTP header name "
        "like 'X-Signature', got 'X Sig'",
    ),
    (
        "webhook maps an event to an unknown stream",
        edit("sources/billing.yml", lambda d: d["webhook"]["streams"].update(refund="refunds")),
        "{dir}/sources/billing.yml: webhook.streams.refund: no stream 'refunds' "
        "(expected one of customers, invoices, payments)",
    ),
    (
        "webhook secret inline is an unknown key",
        edit("sources/billing.yml", lambda d: d["webhook"].update(secret="whsec_x")),
        "{dir}/sources/billing.yml: webhook.secret: unknown key (check the spelling)",
    ),
    (
        "webhook debounce negative",
        edit("sources/billing.yml", lambda d: d["webhook"].update(debounce_s=-1)),
        "{dir}/sources/billing.yml: webhook.debounce_s: Input should be greater than or equal to 0",
    ),
    (
        "record URL without the key",
        edit("sources/erp.yml", lambda d: d.update(record_urls={"invoice": "/invoices/{no}"})),
        "{dir}/sources/erp.yml: record_urls: invoice: expected a URL with exactly the "
        "placeholder {{key}}, got '/invoices/{{no}}'",
    ),
    (
        "record URL neither a URL nor a path",
        edit("sources/erp.yml", lambda d: d.update(record_urls={"invoice": "invoices/{key}"})),
        "{dir}/sources/erp.yml: record_urls: invoice: expected an http(s) URL or a path "
        "starting with '/', got 'invoices/{{key}}'",
    ),
    (
        "record URL for an entity the system does not hold",
        edit("sources/erp.yml", lambda d: d.update(record_urls={"payment": "/p/{key}"})),
        "{dir}/sources/erp.yml: record_urls.payment: 'erp' holds no copy of 'payment' "
        "(expected one of customer, invoice, order, product)",
    ),
    (
        "brake window without hours",
        edit("reverse_etl.yml", lambda d: d["safety_brake"]["windows"][0].pop("hours")),
        "{dir}/reverse_etl.yml: safety_brake.windows[0].hours: required key is missing",
    ),
    (
        "required field the target does not write",
        edit("reverse_etl.yml", lambda d: d["targets"][0].update(required=["email"])),
        "{dir}/reverse_etl.yml: targets[0].required: 'email' is not one of the target's fields",
    ),
    (
        "change rate for an unknown field",
        edit("reverse_etl.yml", lambda d: d["change_rate"]["fields"].update({"customer.x": 0.1})),
        "{dir}/reverse_etl.yml: change_rate.fields.customer.x: expected entity.field of a "
        "canonical entity",
    ),
]


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(config_dir(), target)
    return target


def test_shipped_config_is_valid() -> None:
    config = load_config()
    assert set(config.sources) == {"crm", "erp", "billing", "shop"}
    assert set(config.entities) == {"customer", "product", "order", "invoice", "payment"}


@pytest.mark.parametrize(("case", "mutate", "expected"), CASES, ids=[c[0] for c in CASES])
def test_invalid_config_message(
    config_copy: Path, case: str, mutate: Mutation, expected: str
) -> None:
    mutate(config_copy)
    with pytest.raises(ConfigError) as caught:
        load_config(config_copy)
    assert caught.value.problems == expected.format(dir=config_copy, sql=SQL_NAME).split("\n")


def test_every_problem_is_reported_at_once(config_copy: Path) -> None:
    edit("sources/crm.yml", lambda d: d.pop("base_url"))(config_copy)
    edit("sources/erp.yml", lambda d: d.update(page_size=0))(config_copy)
    with pytest.raises(ConfigError) as caught:
        load_config(config_copy)
    assert len(caught.value.problems) == 2


def test_unreadable_file_names_path_and_reason(config_copy: Path) -> None:
    path = config_copy / "reverse_etl.yml"
    path.unlink()
    path.mkdir()
    with pytest.raises(ConfigError) as caught:
        load_config(config_copy)
    assert caught.value.problems == [f"{path}: is a directory, expected a YAML file"]


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), (45, 45)]
)
def test_parse_duration(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds
