"""Each auth kind sends what the API expects; OAuth2 tokens are fetched once and refreshed."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tieout.config import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    HeaderTokenAuth,
    OAuth2ClientCredentials,
)
from tieout.http import auth
from tieout.http.budget import LocalBudget
from tieout.http.client import Client, RequestFailed, Settings
from tieout.http.connections import Connection, parse

TIMEOUT = (2.0, 5.0)


def get_all(api: Any, request_auth: Any) -> int:
    client = Client(request_auth, Settings(max_retries=0), LocalBudget(1000, 1000), "fake.items")
    response, _ = client.get(api.url + "/offset/items", {"limit": 5})
    return response.status_code


def test_api_key_header(api: Any) -> None:
    conn = parse("fake", f"{api.url}?api_key={api.state.api_key}")
    assert get_all(api, auth.build(ApiKeyAuth(kind="api_key"), conn, api.url, TIMEOUT)) == 200


def test_bearer(api: Any) -> None:
    api.state.auth = "bearer"
    conn = parse("fake", f"{api.url}?secret_key={api.state.api_key}")
    assert get_all(api, auth.build(BearerAuth(kind="bearer"), conn, api.url, TIMEOUT)) == 200


def test_header_token_from_password(api: Any) -> None:
    api.state.auth = "api_key"
    conn = Connection("fake", password=api.state.api_key)
    spec = HeaderTokenAuth(kind="header_token", header="X-API-Key")
    assert get_all(api, auth.build(spec, conn, api.url, TIMEOUT)) == 200


def test_basic(api: Any) -> None:
    api.state.auth = "basic"
    conn = parse("fake", f"http://user:{api.state.api_key}@127.0.0.1")
    assert get_all(api, auth.build(BasicAuth(kind="basic"), conn, api.url, TIMEOUT)) == 200


def test_wrong_key_fails_without_retry_or_secret(api: Any) -> None:
    conn = Connection("fake", extra={"api_key": "wrong-key-value"})
    request_auth = auth.build(ApiKeyAuth(kind="api_key"), conn, api.url, TIMEOUT)
    with pytest.raises(RequestFailed) as err:
        get_all(api, request_auth)
    assert err.value.status == 401
    assert "wrong-key-value" not in str(err.value)
    assert api.state.requests == 1


def oauth(api: Any, margin: int = 0) -> auth.OAuth2Auth:
    api.state.auth = "oauth"
    conn = parse(
        "fake",
        f"{api.url}?client_id={api.state.client_id}&client_secret={api.state.client_secret}",
    )
    spec = OAuth2ClientCredentials(
        kind="oauth2_client_credentials", token_url="/oauth/token", refresh_margin_s=margin
    )
    built = auth.build(spec, conn, api.url, TIMEOUT)
    assert isinstance(built, auth.OAuth2Auth)
    return built


def test_oauth_token_fetched_once(api: Any) -> None:
    request_auth = oauth(api)
    for _ in range(3):
        assert get_all(api, request_auth) == 200
    assert api.state.tokens_issued == 1


def test_oauth_refreshes_before_expiry(api: Any) -> None:
    api.state.token_ttl = 2
    request_auth = oauth(api, margin=1)
    assert get_all(api, request_auth) == 200
    time.sleep(1.1)
    assert get_all(api, request_auth) == 200
    assert api.state.tokens_issued == 2


def test_oauth_refreshes_on_401(api: Any) -> None:
    request_auth = oauth(api)
    assert get_all(api, request_auth) == 200
    api.state.valid_tokens.clear()  # the server revoked it early
    assert get_all(api, request_auth) == 200
    assert api.state.tokens_issued == 2


def test_oauth_bad_secret_is_clear_and_redacted(api: Any) -> None:
    api.state.auth = "oauth"
    conn = Connection("fake", extra={"client_id": "c", "client_secret": "not-the-secret"})
    spec = OAuth2ClientCredentials(kind="oauth2_client_credentials", token_url="/oauth/token")
    request_auth = auth.build(spec, conn, api.url, TIMEOUT)
    with pytest.raises(auth.AuthError) as err:
        get_all(api, request_auth)
    assert "HTTP 401" in str(err.value)
    assert "not-the-secret" not in str(err.value)
    assert "not-the-secret" not in repr(request_auth)


def test_missing_credentials_name_the_connection() -> None:
    with pytest.raises(auth.AuthError, match="connection 'tieout_erp' has no an API key"):
        auth.build(ApiKeyAuth(kind="api_key"), Connection("tieout_erp"), "http://x", TIMEOUT)


@pytest.mark.parametrize(
    ("status", "meaning"),
    [
        (500, "the source's token service is failing, not the credentials"),
        (503, "the source's token service is failing, not the credentials"),
        (401, "the credentials were refused; check the client id and secret"),
        (403, "the credentials were refused; check the client id and secret"),
        (400, "check the token URL"),
    ],
)
def test_token_endpoint_status_says_whose_fault(api: Any, status: int, meaning: str) -> None:
    api.state.auth = "oauth"
    api.state.token_fail_next = [status]
    request_auth = oauth(api)
    with pytest.raises(auth.AuthError) as err:
        get_all(api, request_auth)
    assert f"answered HTTP {status}: " in str(err.value) and meaning in str(err.value)
    assert api.state.client_secret not in str(err.value)
