"""The `sandbox` click group: seed, truth, up (idempotent), status, fault, mutate, down."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tieout_sandbox import SYSTEMS, server
from tieout_sandbox.cli import sandbox


def test_cli_round_trip(tmp_path):
    runner = CliRunner()
    folder = ["--data-dir", str(tmp_path)]
    result = runner.invoke(sandbox, ["seed", "--scale", "0.02", "--seed", "1", *folder])
    assert result.exit_code == 0, result.output
    assert "ground truth" in result.output
    result = runner.invoke(sandbox, ["truth", *folder])
    assert result.output.strip() == str(tmp_path / "ground_truth.json")

    result = runner.invoke(
        sandbox, ["fault", "shop", "latency_ms=10", "rename_field=email:mail", *folder]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rename_field"] == {"email": "mail"}
    result = runner.invoke(sandbox, ["fault", "shop", "--reset", *folder])
    assert json.loads(result.output)["latency_ms"] == 0
    assert runner.invoke(sandbox, ["fault", "shop", "nope=1", *folder]).exit_code != 0

    base = server.free_port_block()
    try:
        result = runner.invoke(sandbox, ["up", "--base-port", str(base), *folder])
        assert result.exit_code == 0, result.output
        assert result.output.count("started") == len(SYSTEMS)
        again = runner.invoke(sandbox, ["up", "--base-port", str(base), *folder])
        assert again.output.count("already up") == len(SYSTEMS)
        status = runner.invoke(sandbox, ["status", *folder])
        assert status.output.count("healthy") == len(SYSTEMS)
        result = runner.invoke(sandbox, ["fault", "erp", "error_rate=0.5", *folder])
        assert json.loads(result.output)["error_rate"] == 0.5
        refused = runner.invoke(sandbox, ["seed", "--scale", "0.02", *folder])
        assert refused.exit_code != 0 and "down" in refused.output
        result = runner.invoke(sandbox, ["mutate", "--days", "1", *folder])
        assert json.loads(result.output)["days_mutated"] == 1
        for secret in json.loads((tmp_path / "credentials.json").read_text()).values():
            assert secret not in status.output
            for log in (tmp_path / "logs").glob("*.log"):
                assert secret not in log.read_text()
    finally:
        result = runner.invoke(sandbox, ["down", *folder])
    assert "stopped" in result.output
    assert runner.invoke(sandbox, ["status", *folder]).output.count("down") == len(SYSTEMS)


def test_sandbox_connections(tmp_path, monkeypatch):
    from tieout_sandbox import credentials, generate

    monkeypatch.delenv("TIEOUT_SANDBOX_BASE_PORT", raising=False)
    monkeypatch.delenv("TIEOUT_SANDBOX_HOST", raising=False)
    generate.seed(tmp_path, scale=0.02, seed_value=1)
    uris = credentials.sandbox_connections(tmp_path)
    assert set(uris) == set(SYSTEMS)
    assert uris["crm"].startswith("http://127.0.0.1:8101?client_id=")
    assert "api_key=" in uris["erp"] and "secret_key=sk_test_" in uris["billing"]
    assert "access_token=shpat_" in uris["shop"]
