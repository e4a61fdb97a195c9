"""Two sandboxes on one machine: the second never mistakes the first one's servers for its own.

A sandbox left running (the demo's, say) holds the default ports; a second one seeded into
another folder must start servers of its own and say where, or refuse when its ports were
asked for explicitly."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tieout_sandbox import SYSTEMS, credentials, generate, server


def seeded(folder: Path, seed: int) -> Path:
    generate.seed(folder, scale=0.05, seed_value=seed)
    return folder


def test_a_second_sandbox_on_held_default_ports_starts_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = server.free_port_block()
    first, second = seeded(tmp_path / "first", 1), seeded(tmp_path / "second", 2)
    monkeypatch.setattr(server.datadir, "base_port", lambda: base)
    monkeypatch.delenv("TIEOUT_SANDBOX_BASE_PORT", raising=False)
    try:
        server.up(first)
        services = server.up(second)
        said = capsys.readouterr().err
        urls = {system: services[system]["url"] for system in SYSTEMS}
        assert all(not url.endswith(f":{base + n}") for n, url in enumerate(urls.values()))
        assert f"port {base} is held by pid" in said
        assert all(server.status(second)[s]["healthy"] for s in SYSTEMS)
        # the second folder's credentials work on its servers: they are its own
        assert credentials.sandbox_connections(second)["crm"].startswith(urls["crm"] + "?")
        assert set(credentials.load_credentials(first).values()) != set(
            credentials.load_credentials(second).values()
        )
    finally:
        server.down(second)
        server.down(first)


def test_explicit_ports_that_are_held_are_refused_by_name(tmp_path: Path) -> None:
    folder = seeded(tmp_path / "sandbox", 3)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"sandbox port {port} is in use"):
            server.up(folder, ports={system: port for system in SYSTEMS})
    assert not any(entry["running"] for entry in server.status(folder).values())
