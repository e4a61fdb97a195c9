"""Each auth kind: the right credentials pass, wrong or missing ones get 401, crm tokens expire."""

from __future__ import annotations

import time

import httpx

from tieout_sandbox import server

from . import walkers

PROBES = {
    "crm": "/crm/v3/objects/contacts",
    "erp": "/api/v1/customers",
    "billing": "/v1/customers",
    "shop": "/admin/api/2024-01/customers.json",
}
WRONG = {
    "crm": {"Authorization": "Bearer pat-wrong"},
    "erp": {"X-API-Key": "wrong"},
    "billing": {"Authorization": "Bearer sk_test_wrong"},
    "shop": {"X-Shopify-Access-Token": "shpat_wrong"},
}


def test_right_credentials_pass(scratch):
    for system, client in scratch.clients().items():
        assert client.get(PROBES[system]).status_code == 200, system


def test_wrong_or_missing_credentials_get_401(scratch):
    for system, url in scratch.urls.items():
        assert httpx.get(url + PROBES[system], headers=WRONG[system]).status_code == 401, system
        assert httpx.get(url + PROBES[system]).status_code == 401, system


def test_crm_token_endpoint_refuses_a_wrong_secret(scratch):
    answer = httpx.post(
        f"{scratch.urls['crm']}/oauth/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_id": scratch.credentials["crm_client_id"],
            "client_secret": "no",
        },
    )
    assert answer.status_code == 401
    answer = httpx.post(
        f"{scratch.urls['crm']}/oauth/v1/token",
        data={"grant_type": "password", "client_id": "a", "client_secret": "b"},
    )
    assert answer.status_code == 400


def test_expired_crm_token_gets_401_and_a_new_token_works(faults_off):
    server.set_faults("crm", faults_off.directory, token_ttl_seconds=1)
    base = faults_off.urls["crm"]
    token = walkers.crm_token(base, faults_off.credentials)
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(base + PROBES["crm"], headers=headers).status_code == 200
    time.sleep(1.2)
    expired = httpx.get(base + PROBES["crm"], headers=headers)
    assert expired.status_code == 401
    assert expired.json()["detail"]["category"] == "EXPIRED_AUTHENTICATION"
    fresh = walkers.crm_token(base, faults_off.credentials)
    assert (
        httpx.get(base + PROBES["crm"], headers={"Authorization": f"Bearer {fresh}"}).status_code
        == 200
    )
