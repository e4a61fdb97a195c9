"""Runs the four sandbox services as background uvicorn processes and reports on them.

It only ever stops processes it started itself (pids in services.json, checked by command line).
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from tieout_sandbox import SYSTEMS, datadir, faults

HOST = os.environ.get("TIEOUT_SANDBOX_HOST", "127.0.0.1")  # 0.0.0.0 only inside a container
MARKER = "tieout_sandbox.server"


def create_app(system: str, directory: Path) -> Any:
    """The ASGI app of one system (for uvicorn, or in-process tests with TestClient)."""
    from tieout_sandbox import billing, crm, erp, shop

    factories = {
        "crm": crm.create_app,
        "erp": erp.create_app,
        "billing": billing.create_app,
        "shop": shop.create_app,
    }
    return factories[system](directory)


def free_ports(count: int) -> list[int]:
    """`count` distinct ports the OS reports free right now (for tests)."""
    sockets, ports = [], []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((HOST, 0))
        sockets.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return ports


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def port_holder(port: int) -> str:
    """`pid N (name)` of the process listening on `port`, as far as this user may see."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            listening = conn.status == psutil.CONN_LISTEN and conn.pid
            if listening and conn.laddr and conn.laddr.port == port:
                return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
    except (psutil.Error, OSError):
        pass
    return "another process"


def free_port_block(count: int = len(SYSTEMS)) -> int:
    """A base port such that base .. base + count - 1 are all free right now (for --base-port)."""
    for base in range(20_000 + os.getpid() % 20_000, 60_000, 7):
        if all(port_free(port) for port in range(base, base + count)):
            return base
    raise RuntimeError("no block of free ports found")


def is_ours(pid: int) -> bool:
    try:
        return MARKER in " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


@functools.cache
def local_client() -> httpx.Client:
    """One reused client: creating an httpx client costs ~50 ms (TLS context)."""
    return httpx.Client(timeout=10, trust_env=False)


def healthy(url: str, timeout: float = 1.0) -> bool:
    try:
        return local_client().get(f"{url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def read_services(directory: Path) -> dict[str, dict[str, Any]]:
    path = datadir.services_path(directory)
    return datadir.read_json(path) if path.exists() else {}


def status(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """Per system: url, pid, running (process alive and ours), healthy (GET /health answers)."""
    folder = datadir.resolve(directory)
    services = read_services(folder)
    return {system: entry_status(services.get(system)) for system in SYSTEMS}


def entry_status(entry: dict[str, Any] | None) -> dict[str, Any]:
    if entry is None:
        return {"url": None, "pid": None, "running": False, "healthy": False}
    running = is_ours(entry["pid"])
    return {**entry, "running": running, "healthy": running and healthy(entry["url"])}


def up(
    directory: Path | None = None,
    base_port: int | None = None,
    ports: dict[str, int] | None = None,
    timeout: float = 30.0,
) -> dict[str, dict[str, Any]]:
    """Start every system that is not already running; wait until all answer /health.

    Ports: `ports` per system, else `base_port` + 0..3 (crm, erp, billing, shop), else
    TIEOUT_SANDBOX_BASE_PORT or 8101. Returns the services.json content.
    """
    folder = datadir.resolve(directory)
    if (
        not (folder / "credentials.json").exists()
        or not datadir.database_path(folder, "crm").exists()
    ):
        raise RuntimeError(f"no sandbox data in {folder}: run `tieout sandbox seed` first")
    current = status(folder)
    first = base_port if base_port is not None else datadir.base_port()
    chosen = ports or {system: first + n for n, system in enumerate(SYSTEMS)}
    wanted = [chosen[system] for system in SYSTEMS if not current[system]["healthy"]]
    held = [port for port in wanted if not port_free(port)]
    if held:
        if ports is not None or base_port is not None or "TIEOUT_SANDBOX_BASE_PORT" in os.environ:
            raise RuntimeError(
                f"sandbox port {held[0]} is in use by another process ({port_holder(held[0])}); "
                "stop it or choose other ports (--base-port or TIEOUT_SANDBOX_BASE_PORT)"
            )
        # the default ports belong to another sandbox (the demo's, say): never answer for it
        first = free_port_block()
        print(
            f"tieout sandbox: port {held[0]} is held by {port_holder(held[0])}; "
            f"this sandbox uses ports {first}-{first + len(SYSTEMS) - 1} instead",
            file=sys.stderr,
        )
        chosen = {system: first + n for n, system in enumerate(SYSTEMS)}
    services: dict[str, dict[str, Any]] = {}
    started: list[str] = []
    for system in SYSTEMS:
        if current[system]["healthy"]:
            services[system] = {"url": current[system]["url"], "pid": current[system]["pid"]}
            continue
        port = chosen[system]
        log = datadir.log_path(folder, system)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as handle:
            process = subprocess.Popen(
                [sys.executable, "-m", MARKER, system, str(port), str(folder)],
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=folder,
            )
        services[system] = {"url": f"http://{HOST}:{port}", "pid": process.pid, "log": str(log)}
        started.append(system)
    deadline = time.monotonic() + timeout
    for system in started:
        # our process must be alive and answering: a server on the same port is not ours
        while True:
            alive = is_ours(services[system]["pid"])
            if alive and healthy(services[system]["url"]):
                break
            if not alive or time.monotonic() > deadline:
                datadir.write_json(datadir.services_path(folder), services)
                raise RuntimeError(f"sandbox {system} did not start; see {services[system]['log']}")
            time.sleep(0.1)
    datadir.write_json(datadir.services_path(folder), services)
    return {system: {**services[system], "started": system in started} for system in SYSTEMS}


def down(directory: Path | None = None, timeout: float = 10.0) -> list[str]:
    """Stop the services recorded in services.json (only if their command line is ours)."""
    folder = datadir.resolve(directory)
    services = read_services(folder)
    stopped = []
    for system, entry in services.items():
        pid = entry["pid"]
        if not is_ours(pid):
            continue
        os.kill(pid, signal.SIGTERM)
        try:
            psutil.Process(pid).wait(timeout)
        except psutil.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
        stopped.append(system)
    datadir.services_path(folder).unlink(missing_ok=True)
    return stopped


def admin_request(
    folder: Path, system: str, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """Send an admin request to `system` if it is running and healthy; None when it is not.

    A 400 answer raises ValueError with the service's reason."""
    entry = entry_status(read_services(folder).get(system))
    if not entry["healthy"]:
        return None
    from tieout_sandbox.credentials import load_credentials

    answer = local_client().request(
        method,
        f"{entry['url']}{path}",
        json=body,
        timeout=10,
        headers={"X-Sandbox-Admin": load_credentials(folder)["admin_token"]},
    )
    if answer.status_code == 400:
        raise ValueError(answer.json()["detail"])
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


def set_faults(system: str, directory: Path | None = None, **knobs: Any) -> dict[str, Any]:
    """Change fault knobs of `system` (partial update). Applies to the running service through
    its admin endpoint, and is saved so a restart keeps it. Returns the knobs now in force."""
    folder = datadir.resolve(directory)
    answer = admin_request(folder, system, "PUT", "/_admin/faults", knobs)
    if answer is not None:
        return answer
    merged = faults.knobs_from_dict(system, knobs, base=faults.load_knobs(folder, system))
    faults.save_knobs(folder, system, merged)
    return faults.snapshot(merged)


def clear_faults(system: str, directory: Path | None = None) -> dict[str, Any]:
    """Back to the default knobs (all faults off)."""
    folder = datadir.resolve(directory)
    answer = admin_request(folder, system, "DELETE", "/_admin/faults")
    if answer is not None:
        return answer
    knobs = faults.default_knobs(system)
    faults.save_knobs(folder, system, knobs)
    return faults.snapshot(knobs)


def set_webhook(url: str | None, directory: Path | None = None) -> dict[str, Any]:
    """Where billing sends its webhook events (None: nowhere). Applies to the running service
    and is saved for its next start. Returns the URL and the sender's counts."""
    from tieout_sandbox import webhooks

    folder = datadir.resolve(directory)
    answer = admin_request(folder, "billing", "PUT", "/_admin/webhook", {"url": url})
    if answer is not None:
        return answer
    webhooks.save_url(folder, url)
    return {"url": url}


def run(system: str, port: int, directory: Path) -> None:
    """Serve one system in the foreground (what `up` starts in the background)."""
    import uvicorn

    uvicorn.run(
        create_app(system, directory), host=HOST, port=port, log_level="info", access_log=False
    )


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
