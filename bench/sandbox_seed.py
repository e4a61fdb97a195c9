"""Times `tieout sandbox seed` + `up` at scale 1 and `seed` at a large scale; prints the figures.

Usage: .venv/bin/python bench/sandbox_seed.py [--large-scale 100]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from tieout_sandbox import generate, server


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--large-scale", type=float, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        started = time.monotonic()
        generate.seed(directory, scale=1, seed_value=42)
        seeded = time.monotonic()
        try:
            server.up(directory, base_port=server.free_port_block())
            ready = time.monotonic()
        finally:
            server.down(directory)
        total = ready - started
        print(
            f"scale 1: seed {seeded - started:.1f} s, up {ready - seeded:.1f} s, sum {total:.1f} s"
        )
    with tempfile.TemporaryDirectory() as folder:
        started = time.monotonic()
        summary = generate.seed(Path(folder), scale=args.large_scale, seed_value=42)
        size = sum(p.stat().st_size for p in Path(folder).glob("*.sqlite")) / 1e9
        print(
            f"scale {args.large_scale:g}: seed {time.monotonic() - started:.0f} s, "
            f"{size:.1f} GB of SQLite, peak RSS {peak_rss_mb():.0f} MB, "
            f"entities {summary['entities']}"
        )


if __name__ == "__main__":
    main()
