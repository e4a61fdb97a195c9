"""Bad numbers and names on the command line stop with click's usage error (exit 2), a message
saying what was expected, no traceback, and leave the sandbox as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from tieout_sandbox import generate
from tieout_sandbox.cli import sandbox


def usage_error(args: list[str]) -> str:
    result = CliRunner().invoke(sandbox, args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.stderr


@pytest.mark.timeout(30)
@pytest.mark.parametrize("scale", ["-1", "0", "nan", "inf", "1e9", "100.5"])
def test_seed_refuses_a_scale_out_of_range(tmp_path: Path, scale: str) -> None:
    message = usage_error(["seed", "--scale", scale, "--data-dir", str(tmp_path)])
    assert "Invalid value for '--scale': expected a number above 0 and at most 100" in message
    assert not list(tmp_path.glob("*.sqlite"))
    assert not (tmp_path / "ground_truth.json").exists()


def test_seed_api_refuses_a_scale_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scale must be above 0 and at most 100, got nan"):
        generate.seed(tmp_path, float("nan"), 1)


def digests(folder: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.iterdir())
        if path.is_file()
    }


def test_an_interrupted_seed_leaves_the_previous_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate.seed(tmp_path, 0.02, 1)
    before = digests(tmp_path)
    assert "ground_truth.json" in before and "crm.sqlite" in before

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(generate, "build_orders", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate.seed(tmp_path, 0.03, 2)
    assert digests(tmp_path) == before
    assert not (tmp_path / ".seeding").exists()


@pytest.mark.parametrize(
    ("knob", "expected"),
    [
        ("latency_ms=-5", "latency_ms must be a whole number between 0 and 600000, got -5"),
        ("latency_ms=2.5", "latency_ms must be a whole number between 0 and 600000, got 2.5"),
        ("timeout_seconds=-1", "timeout_seconds must be a number between 0 and 3600, got -1"),
        ("retry_after_seconds=-1", "retry_after_seconds must be a whole number between 0 and"),
        ("token_ttl_seconds=0", "token_ttl_seconds must be a whole number between 1 and 86400"),
        ("rate_limit_per_second=-3", "rate_limit_per_second must be a number between 0 and"),
        ("error_rate=NaN", "error_rate must be a number between 0 and 1, got nan"),
        ("error_rate=true", "error_rate must be a number between 0 and 1, got True"),
        ("seed=-1", "seed must be a whole number between 0 and"),
        ("latency=5", "unknown fault knobs: ['latency']"),
    ],
)
def test_fault_refuses_a_knob_out_of_range(tmp_path: Path, knob: str, expected: str) -> None:
    message = usage_error(["fault", "shop", knob, "--data-dir", str(tmp_path)])
    assert "Invalid value for KNOBS: " + expected in message
    assert not (tmp_path / "faults" / "shop.json").exists()
