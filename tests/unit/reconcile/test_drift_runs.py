"""Alert config and the webhook lookup: thresholds per currency, connections in both forms."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tieout.config import Alerts, load_alerts
from tieout.reconcile import drift_runs


def test_shipped_alerts_config_is_valid():
    config = load_alerts()
    assert config.money_threshold("eur") == config.money_at_stake["EUR"]
    assert config.money_threshold("SEK") == config.money_at_stake["default"]


def test_currency_keys_are_checked():
    with pytest.raises(ValidationError, match="ISO 4217"):
        Alerts(money_at_stake={"euro": 1})


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("https://hooks.example/abc", "https://hooks.example/abc"),
        ('{"conn_type": "http", "host": "http://127.0.0.1:9/x"}', "http://127.0.0.1:9/x"),
        ("postgresql://user:pw@db/x", None),
    ],
)
def test_webhook_url_from_environment(monkeypatch, value, url):
    monkeypatch.setenv("AIRFLOW_CONN_TIEOUT_HOOK_TEST", value)
    assert drift_runs.webhook_url("tieout_hook_test") == url


def test_nothing_to_notify():
    assert drift_runs.notify("r", [], Alerts())["webhook"] == "nothing to send"
