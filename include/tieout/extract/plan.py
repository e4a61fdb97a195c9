"""What the extract stage will run: every (source, stream) pair and each source's Airflow pool.

Reads config only; it must never open a network or database connection (DAG parse time).
"""

from __future__ import annotations

from pathlib import Path

from tieout.config import Source, load_source
from tieout.paths import config_dir


def sources(directory: Path | None = None) -> list[Source]:
    folder = (directory or config_dir()) / "sources"
    return [load_source(path) for path in sorted(folder.glob("*.yml"))]


def streams(
    source: str | None = None, stream: str | None = None, directory: Path | None = None
) -> list[tuple[str, str]]:
    """(source, stream) pairs in config order, optionally narrowed; unknown names raise KeyError."""
    found = sources(directory)
    if source is not None:
        found = [s for s in found if s.name == source]
        if not found:
            raise KeyError(f"no source named {source!r}")
    pairs = [(s.name, t.name) for s in found for t in s.streams]
    if stream is not None:
        pairs = [p for p in pairs if p[1] == stream]
        if not pairs:
            raise KeyError(f"no stream named {stream!r}" + (f" in {source!r}" if source else ""))
    return pairs


def pool_name(source: str) -> str:
    """The Airflow pool that caps concurrent tasks of one source."""
    return f"source_{source}"


def pools(directory: Path | None = None) -> dict[str, int]:
    """Airflow pool name -> slots (the source's rate_limit.max_concurrency)."""
    return {pool_name(s.name): s.rate_limit.max_concurrency for s in sources(directory)}
