"""Retries, backoff with jitter, Retry-After, timeouts and the breaker of a GET."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from tieout.http.auth import HeaderAuth
from tieout.http.budget import LocalBudget
from tieout.http.client import CircuitOpen, Client, RequestFailed, Settings
from tieout.http.retry import backoff_delay, retry_after_seconds


def make_client(api: Any, sleeps: list[float], **settings: Any) -> Client:
    defaults: dict[str, Any] = {"max_retries": 5, "backoff_base_s": 0.5, "read_timeout_s": 5}
    defaults.update(settings)
    return Client(
        HeaderAuth("X-API-Key", api.state.api_key),
        Settings(**defaults, secrets=[api.state.api_key]),
        LocalBudget(1000, 1000, sleep=lambda _: None),
        "fake.items",
        sleep=sleeps.append,
        seed=1,
    )


def test_backoff_is_jittered_and_capped() -> None:
    rng = random.Random(0)
    delays = [backoff_delay(a, 0.5, 4.0, rng) for a in range(10) for _ in range(50)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 100
    early = [backoff_delay(0, 0.5, 4.0, rng) for _ in range(100)]
    assert max(early) <= 0.5


def test_retry_after_forms() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert 28 <= (retry_after_seconds(format_datetime(later, usegmt=True)) or 0) <= 31


def test_5xx_retried_then_success(api: Any) -> None:
    api.state.fail_next = [500, 502, 503]
    sleeps: list[float] = []
    client = make_client(api, sleeps)
    response, _ = client.get(api.url + "/offset/items")
    assert response.status_code == 200
    assert client.counters.retries == 3 and len(sleeps) == 3
    assert client.consecutive_failures == 0


def test_429_honours_retry_after(api: Any) -> None:
    api.state.fail_next = [429, 429]
    api.state.retry_after = "7"
    sleeps: list[float] = []
    client = make_client(api, sleeps)
    response, _ = client.get(api.url + "/offset/items")
    assert response.status_code == 200
    assert sleeps == [7.0, 7.0]
    assert client.counters.http_429 == 2


def test_429_without_retry_after_backs_off(api: Any) -> None:
    api.state.fail_next = [429]
    sleeps: list[float] = []
    client = make_client(api, sleeps)
    client.get(api.url + "/offset/items")
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 30


def test_read_timeout_is_retried(api: Any) -> None:
    api.state.hang_next = 1
    api.state.hang_seconds = 1.0
    sleeps: list[float] = []
    client = make_client(api, sleeps, read_timeout_s=0.3)
    response, _ = client.get(api.url + "/offset/items")
    assert response.status_code == 200
    assert client.counters.retries == 1


def test_connection_refused_is_retried_then_fails(api: Any) -> None:
    sleeps: list[float] = []
    client = make_client(api, sleeps, max_retries=2, circuit_breaker_failures=50)
    with pytest.raises(RequestFailed, match="gave up after 3 attempts; last: ConnectionError"):
        client.get("http://127.0.0.1:9/nothing")
    assert len(sleeps) == 2


def test_4xx_is_not_retried(api: Any) -> None:
    sleeps: list[float] = []
    client = make_client(api, sleeps)
    with pytest.raises(RequestFailed) as err:
        client.get(api.url + "/nope")
    assert err.value.status == 404 and sleeps == []


def test_circuit_breaker_names_the_failure_and_hides_secrets(api: Any) -> None:
    api.state.fail_next = [503] * 20
    sleeps: list[float] = []
    client = make_client(api, sleeps, max_retries=50, circuit_breaker_failures=4)
    with pytest.raises(CircuitOpen) as err:
        client.get(api.url + "/offset/items", {"token": api.state.api_key})
    message = str(err.value)
    assert "fake.items: stopped after 4 consecutive failed requests; last: HTTP 503" in message
    assert api.state.api_key not in message
    assert api.state.requests == 4


def test_truncated_json_is_retried(api: Any) -> None:
    from tieout.extract.paginate import parse_page

    api.state.broken_next = 2
    sleeps: list[float] = []
    client = make_client(api, sleeps)
    _, (body, records, total, texts, strict, _shape, _parsed) = client.get(
        api.url + "/offset/items", {"limit": 5}, parse_page("items", "total")
    )
    assert len(records) == 5 and total == 55 and len(sleeps) == 2
    assert (
        strict
        and texts is not None
        and [bytes(t) for t in texts] == [json.dumps(r).encode() for r in records]
    )


def test_truncated_json_forever_keeps_the_body(api: Any) -> None:
    from tieout.extract.paginate import parse_page

    api.state.broken_next = 10
    client = make_client(api, [], max_retries=2)
    with pytest.raises(RequestFailed) as err:
        client.get(api.url + "/offset/items", {"limit": 5}, parse_page("items", "total"))
    assert err.value.body and err.value.body.startswith('{"items"')


def test_environment_proxies_are_honoured_and_read_once(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "direct.invalid")
    client = make_client(api, [])
    proxied = client._settings_for("http://api.invalid/items?page=2")
    assert proxied["proxies"].get("http") == "http://proxy.invalid:3128"
    assert client._settings_for("http://direct.invalid/x")["proxies"] == {}
    monkeypatch.setenv("HTTP_PROXY", "http://changed.invalid:1")
    assert client._settings_for("http://api.invalid/other") is proxied  # once per host
    # the client's own requests do not re-read the environment per request
    assert client.session.trust_env is False
