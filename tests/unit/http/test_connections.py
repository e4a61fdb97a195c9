"""Airflow connections in URI and JSON form, as the sandbox and real deployments write them."""

from __future__ import annotations

import pytest

from tieout.http import connections


def test_sandbox_style_uri() -> None:
    conn = connections.parse(
        "tieout_crm",
        "http://127.0.0.1:18101?client_id=tieout-1&client_secret=s3cr%2Ft&token_url=%2Foauth%2Fv1%2Ftoken",
    )
    assert conn.base_url() == "http://127.0.0.1:18101"
    assert conn.extra == {
        "client_id": "tieout-1",
        "client_secret": "s3cr/t",
        "token_url": "/oauth/v1/token",
    }
    assert "s3cr/t" not in repr(conn)


def test_uri_with_login_password_and_extra_json() -> None:
    conn = connections.parse(
        "x",
        "https://bob:p%40ss@api.example.com:8443/v2?__extra__=%7B%22api_key%22%3A%20%22k1%22%7D",
    )
    assert (conn.login, conn.password, conn.schema) == ("bob", "p@ss", "v2")
    assert conn.extra == {"api_key": "k1"}
    assert conn.base_url() == "https://api.example.com:8443"
    assert conn.secret("api_key") == "k1"


def test_json_form() -> None:
    conn = connections.parse(
        "x",
        '{"conn_type": "http", "host": "erp.local", "schema": "https", "password": "pw12", '
        '"extra": "{\\"a\\": 1}"}',
    )
    assert conn.base_url() == "https://erp.local"
    assert conn.secret("api_key") == "pw12"
    assert conn.extra == {"a": 1}


def test_no_host_means_yaml_base_url() -> None:
    assert connections.parse("x", '{"password": "p"}').base_url() is None


def test_env_lookup_and_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_TIEOUT_SHOP", "http://h:1?access_token=t123")
    assert connections.get("tieout_shop").secret("access_token") == "t123"
    monkeypatch.delenv("AIRFLOW_CONN_TIEOUT_NOPE", raising=False)
    with pytest.raises(connections.ConnectionMissing, match="set AIRFLOW_CONN_TIEOUT_NOPE"):
        connections.get("tieout_nope")


def test_redact() -> None:
    assert connections.redact("token=abcd1234 and abcd1234", ["abcd1234"]) == "token=*** and ***"
