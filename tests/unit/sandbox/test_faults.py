"""Every fault knob does what it says on the running service, and only while it is set."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tieout_sandbox import SYSTEMS, datadir, server, storage

CUSTOMERS = {
    "crm": "/crm/v3/objects/contacts",
    "erp": "/api/v1/customers",
    "billing": "/v1/customers",
    "shop": "/admin/api/2024-01/customers.json",
}
RECORDS = {"crm": "results", "erp": "items", "billing": "data", "shop": "customers"}
ID_FIELD = {"crm": "id", "erp": "customer_no", "billing": "id", "shop": "id"}


def records(system, answer):
    return answer.json()[RECORDS[system]]


@pytest.mark.parametrize("system", list(CUSTOMERS))
def test_error_rate_answers_5xx(faults_off, system):
    client = faults_off.clients()[system]
    server.set_faults(system, faults_off.directory, error_rate=1.0)
    statuses = {client.get(CUSTOMERS[system]).status_code for _ in range(30)}
    assert statuses <= {500, 502, 503} and len(statuses) >= 2
    server.set_faults(system, faults_off.directory, error_rate=0.0)
    assert client.get(CUSTOMERS[system]).status_code == 200


def test_outage_answers_every_request_until_lifted(faults_off):
    """An outage is a whole API down: lists, single records and the OAuth token endpoint answer
    the status every time; health and admin still answer, and lifting it brings all back."""
    client = faults_off.clients()["crm"]
    assert server.set_faults("crm", faults_off.directory, outage_status=500)["outage_status"] == 500
    token = client.post("/oauth/v1/token", data={"grant_type": "client_credentials"})
    listed = [client.get(CUSTOMERS["crm"]).status_code for _ in range(20)]
    assert listed == [500] * 20 and token.status_code == 500
    assert client.get("/health").status_code == 200
    server.set_faults("crm", faults_off.directory, outage_status=0)
    assert client.get(CUSTOMERS["crm"]).status_code == 200


@pytest.mark.parametrize("value", [404, 1, True, 600])
def test_outage_status_must_be_a_5xx(faults_off, value):
    with pytest.raises(ValueError, match="outage_status"):
        server.set_faults("crm", faults_off.directory, outage_status=value)


def test_error_rate_is_a_share(faults_off):
    client = faults_off.clients()["erp"]
    server.set_faults("erp", faults_off.directory, error_rate=0.3, seed=5)
    statuses = [client.get(CUSTOMERS["erp"]).status_code for _ in range(100)]
    assert 10 <= sum(status >= 500 for status in statuses) <= 50


def test_rate_429_answers_retry_after(faults_off):
    client = faults_off.clients()["shop"]
    server.set_faults("shop", faults_off.directory, rate_429=1.0, retry_after_seconds=7)
    answer = client.get(CUSTOMERS["shop"])
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"


def test_billing_rate_limit_answers_429_above_it(faults_off):
    client = faults_off.clients()["billing"]
    server.set_faults("billing", faults_off.directory, rate_limit_per_second=5)
    time.sleep(1.0)
    statuses = [
        client.get(CUSTOMERS["billing"], params={"limit": 1}).status_code for _ in range(12)
    ]
    assert statuses.count(429) >= 5 and statuses[0] == 200
    limited = client.get(CUSTOMERS["billing"])
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    time.sleep(1.1)
    assert client.get(CUSTOMERS["billing"]).status_code == 200


def test_latency_is_added(faults_off):
    client = faults_off.clients()["crm"]
    server.set_faults("crm", faults_off.directory, latency_ms=400)
    started = time.monotonic()
    assert client.get(CUSTOMERS["crm"]).status_code == 200
    assert time.monotonic() - started >= 0.4


def test_timeout_hangs_then_504(faults_off):
    client = faults_off.clients()["erp"]
    server.set_faults("erp", faults_off.directory, timeout_rate=1.0, timeout_seconds=1.5)
    with pytest.raises(httpx.ReadTimeout):
        client.get(CUSTOMERS["erp"], timeout=0.5)
    assert client.get(CUSTOMERS["erp"], timeout=5).status_code == 504


@pytest.mark.parametrize("system", list(CUSTOMERS))
def test_broken_json_page(faults_off, system):
    client = faults_off.clients()[system]
    server.set_faults(system, faults_off.directory, broken_json_rate=1.0)
    answer = client.get(CUSTOMERS[system])
    assert answer.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.text)


@pytest.mark.parametrize("system", list(CUSTOMERS))
def test_wrong_type_and_missing_key_are_stable_per_record(faults_off, system):
    client = faults_off.clients()[system]
    clean = records(system, client.get(CUSTOMERS[system], params={"limit": 50}))
    server.set_faults(
        system, faults_off.directory, wrong_type_rate=0.3, missing_key_rate=0.2, seed=1
    )
    first = records(system, client.get(CUSTOMERS[system], params={"limit": 50}))
    again = records(system, client.get(CUSTOMERS[system], params={"limit": 50}))
    assert first == again
    missing = [r for r in first if ID_FIELD[system] not in r]
    assert 0 < len(missing) < len(first)

    def email(record):
        return (
            record["properties"]["email"]
            if system == "crm"
            else record.get("email", record.get("email_address"))
        )

    retyped = [r for r in first if not isinstance(email(r), str)]
    assert 0 < len(retyped) < len(first)
    assert len(first) == len(clean)


@pytest.mark.parametrize(
    ("system", "path", "new_name", "check"),
    [
        (
            "crm",
            "properties.email",
            "e_mail",
            lambda r: "e_mail" in r["properties"] and "email" not in r["properties"],
        ),
        ("erp", "email_address", "email", lambda r: "email" in r and "email_address" not in r),
        ("billing", "email", "mail", lambda r: "mail" in r and "email" not in r),
        (
            "shop",
            "default_address.zip",
            "postal_code",
            lambda r: "postal_code" in r["default_address"],
        ),
    ],
)
def test_renamed_field(faults_off, system, path, new_name, check):
    client = faults_off.clients()[system]
    server.set_faults(system, faults_off.directory, rename_field={path: new_name})
    served = records(system, client.get(CUSTOMERS[system], params={"limit": 5}))
    assert served and all(check(record) for record in served)


def test_dropped_writes_answer_ok_but_change_nothing(faults_off):
    client = faults_off.clients()["shop"]
    customer = records("shop", client.get(CUSTOMERS["shop"], params={"limit": 1}))[0]
    server.set_faults("shop", faults_off.directory, drop_write_rate=1.0)
    url = f"/admin/api/2024-01/customers/{customer['id']}.json"
    answer = client.put(url, json={"customer": {"phone": "+10000000000"}})
    assert answer.status_code == 200 and answer.json()["customer"]["phone"] == "+10000000000"
    assert client.get(url).json()["customer"]["phone"] == customer["phone"]
    row = storage.read_audit(datadir.database_path(faults_off.directory, "shop"))[-1]
    assert (row["applied"], row["dropped"]) == (0, 1)


def test_unknown_knob_is_refused(faults_off):
    with pytest.raises(ValueError, match="unknown fault knobs"):
        server.set_faults("crm", faults_off.directory, explode=1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        server.set_faults("crm", faults_off.directory, error_rate=2)


def test_admin_endpoint_needs_the_admin_token(faults_off):
    url = faults_off.urls["erp"] + "/_admin/faults"
    assert httpx.put(url, json={"error_rate": 1}).status_code == 401
    token = faults_off.credentials["admin_token"]
    answer = httpx.put(url, json={"latency_ms": 5}, headers={"X-Sandbox-Admin": token})
    assert answer.status_code == 200 and answer.json()["latency_ms"] == 5
    assert httpx.get(url, headers={"X-Sandbox-Admin": token}).json()["latency_ms"] == 5


def test_knobs_survive_a_restart(tmp_path):
    from tieout_sandbox import generate

    generate.seed(tmp_path, scale=0.02, seed_value=1)
    server.set_faults("erp", tmp_path, latency_ms=123)
    ports = dict(zip(SYSTEMS, server.free_ports(len(SYSTEMS)), strict=True))
    try:
        services = server.up(tmp_path, ports=ports)
        token = json.loads((tmp_path / "credentials.json").read_text())["admin_token"]
        answer = httpx.get(
            f"{services['erp']['url']}/_admin/faults", headers={"X-Sandbox-Admin": token}
        )
        assert answer.json()["latency_ms"] == 123
    finally:
        server.down(tmp_path)
