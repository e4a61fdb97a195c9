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
    assert caught.value.problems == [expected.format(dir=config_copy)]


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
