"""How long `tieout demo` takes from an empty state folder, and again on the state it left: the
second run finds the servers set up, the warehouse migrated and dbt's manifest parsed, so it
must be faster than the first. Target: second run faster than the first.

    .venv/bin/python bench/demo.py [--embedded-port 54410] [--sandbox-base-port 18111]

Each run is `tieout demo` in a fresh process on the same temporary state folder, with its own
embedded PostgreSQL port and sandbox ports so it does not meet a test session's servers. The
last line is one JSON object: {"first_s", "second_s", "second_over_first", "target_met"}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def demo_environment(state: Path, embedded_port: int, sandbox_base_port: int) -> dict[str, str]:
    """The caller's environment without anything that points the demo at other servers."""
    env = {
        **os.environ,
        "TIEOUT_STATE_DIR": str(state),
        "TIEOUT_EMBEDDED_PORT": str(embedded_port),
        "TIEOUT_SANDBOX_BASE_PORT": str(sandbox_base_port),
    }
    for name in ("TIEOUT_DATABASE_URL", "TIEOUT_AIRFLOW_DATABASE_URL"):
        env.pop(name, None)
    for name in [n for n in env if n.startswith("AIRFLOW_CONN_TIEOUT_WAREHOUSE")]:
        env.pop(name)
    return env


def timed_demo(env: dict[str, str], log: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "tieout.cli", "demo"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"tieout demo failed (log: {log}):\n{result.stderr[-3000:]}")
    return elapsed


def stop_servers(state: Path) -> None:
    """The demo leaves its sandbox and PostgreSQL running for a person; a benchmark must not."""
    script = (
        "from pathlib import Path; import sys\n"
        "from tieout.db import embedded\n"
        "from tieout_sandbox import server\n"
        "server.down(Path(sys.argv[1]) / 'sandbox')\n"
        "embedded.stop()\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(state)],
        env={**os.environ, "TIEOUT_STATE_DIR": str(state)},
        check=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedded-port", type=int, default=54410)
    parser.add_argument("--sandbox-base-port", type=int, default=18111)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tieout-demo-bench-") as folder:
        state = Path(folder) / "state"
        state.mkdir()
        env = demo_environment(state, args.embedded_port, args.sandbox_base_port)
        try:
            first = timed_demo(env, Path(folder) / "first.log")
            print(f"first demo (empty state): {first:.1f} s")
            second = timed_demo(env, Path(folder) / "second.log")
            print(f"second demo (same state): {second:.1f} s")
        finally:
            stop_servers(state)
    ratio = second / first
    met = second < first
    print(f"second / first = {ratio:.2f} (target: under 1): {'met' if met else 'NOT met'}")
    print(
        json.dumps(
            {
                "first_s": round(first, 1),
                "second_s": round(second, 1),
                "second_over_first": round(ratio, 3),
                "target_met": met,
            }
        )
    )


if __name__ == "__main__":
    main()
