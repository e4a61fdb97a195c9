"""Schemathesis fuzzes each service from its own OpenAPI description: with the error knob off,
no request may get a 5xx answer. Bounded to a few examples per operation to stay quick."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode

from tieout_sandbox import credentials, faults, generate, server

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fuzz")
    generate.seed(directory, scale=0.02, seed_value=2)
    faults.save_knobs(
        directory, "billing", faults.knobs_from_dict("billing", {"rate_limit_per_second": 0})
    )
    return directory


def schema_for(system, directory):
    return schemathesis.openapi.from_asgi("/openapi.json", server.create_app(system, directory))


def auth_headers(system, directory):
    secrets = credentials.load_credentials(directory)
    if system == "crm":
        client = TestClient(server.create_app("crm", directory))
        token = client.post(
            "/oauth/v1/token",
            data={
                "grant_type": "client_credentials",
                "client_id": secrets["crm_client_id"],
                "client_secret": secrets["crm_client_secret"],
            },
        ).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}
    return {
        "erp": {"X-API-Key": secrets["erp_api_key"]},
        "billing": {"Authorization": f"Bearer {secrets['billing_secret_key']}"},
        "shop": {"X-Shopify-Access-Token": secrets["shop_access_token"]},
    }[system]


def call(case, headers):
    answer = case.call(headers={**(case.headers or {}), **headers})
    assert answer.status_code < 500, f"{case.method} {case.formatted_path} -> {answer.status_code}"


@pytest.mark.parametrize("system", ["crm", "erp", "billing", "shop"])
def test_no_request_gets_a_5xx(fuzz_dir, system):
    schema = schema_for(system, fuzz_dir)
    headers = auth_headers(system, fuzz_dir)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 4
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @FUZZ
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case):
                call(case, headers)

            fuzz()


@pytest.mark.parametrize("system", ["crm", "erp", "billing", "shop"])
def test_openapi_documents_auth_and_paging(fuzz_dir, system):
    document = TestClient(server.create_app(system, fuzz_dir)).get("/openapi.json").json()
    assert document["components"]["securitySchemes"]
    assert not any(path.startswith("/_admin") or path == "/health" for path in document["paths"])
    paging = {"crm": "after", "erp": "offset", "billing": "starting_after", "shop": "page_info"}[
        system
    ]
    names = {
        p["name"]
        for op in document["paths"].values()
        for m in op.values()
        for p in m.get("parameters", [])
    }
    assert paging in names
