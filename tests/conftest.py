"""Shared fixtures: a throwaway warehouse database per test session, on the embedded
server by default or on TIEOUT_TEST_DATABASE_URL, and markers by folder."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from types import ModuleType
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

from .unit.extract import fake_api

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "test-output"


@pytest.fixture
def api() -> Iterator[fake_api.Server]:
    """The small REST API of tests/unit/extract/fake_api.py on a free loopback port: extract's
    tests page through it, the HTTP layer's tests fail and throttle it."""
    server = fake_api.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake() -> ModuleType:
    """The fake_api module (records, State) for tests that build their own data."""
    return fake_api


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in {"unit", "integration", "e2e"}:
            item.add_marker(getattr(pytest.mark, parts[0]))


class SecretUrl(str):
    """A URL whose repr hides its password: pytest prints fixture values in tracebacks."""

    __slots__ = ()

    def __repr__(self) -> str:
        from tieout.db import redact

        return repr(redact(str(self)))


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return SecretUrl(urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, "")))


@pytest.fixture(scope="session")
def server_url() -> str:
    """A URL on the server the tests use (its maintenance database)."""
    configured = os.environ.get("TIEOUT_TEST_DATABASE_URL")
    if configured:
        return SecretUrl(configured)
    from tieout import db
    from tieout.db import embedded

    server, _ = embedded.start()
    # The stage roles' passwords as a deployment configures them (tieout_warehouse_<role>):
    # tests that move TIEOUT_STATE_DIR elsewhere no longer see the server's password file.
    for role, name in db.ROLES.items():
        secret = embedded.password(name)
        if secret:
            os.environ.setdefault(
                "AIRFLOW_CONN_" + db.role_connection_id(role).upper(),
                f"postgresql://{name}:{quote(secret, safe='')}@127.0.0.1:{server.port}/",
            )
    return SecretUrl(server.url("postgres"))


@contextlib.contextmanager
def fresh_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the test server, dropped (with any session left on it)
    afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        yield _with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@contextlib.contextmanager
def fresh_warehouse(server_url: str, prefix: str = "tieout_test") -> Iterator[str]:
    """A new, migrated database on the test server, dropped afterwards."""
    from tieout.db import migrate

    with fresh_database(server_url, prefix) as url:
        with psycopg.connect(url) as conn:
            migrate.migrate(conn)
        yield url


@pytest.fixture(scope="session")
def new_database(server_url: str):
    """Make an empty database (no schema, no migrations), e.g. for Airflow's metadata or a
    test of migrating from nothing: `with new_database("prefix") as url: ...`."""
    return lambda prefix: fresh_database(server_url, prefix)


@pytest.fixture(scope="session")
def new_warehouse(server_url: str):
    """Make another fresh database for a suite whose data must not mix with others':
    `with new_warehouse("prefix") as url: ...`."""
    return lambda prefix="tieout_test": fresh_warehouse(server_url, prefix)


@contextlib.contextmanager
def set_environ(values: dict[str, str]) -> Iterator[None]:
    """Set `values` in os.environ; afterwards put back what each variable was (or unset it)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def scoped_env() -> Callable[[dict[str, str]], AbstractContextManager[None]]:
    """Environment variables for as long as a session- or module-scoped fixture lives
    (monkeypatch is per test): `with scoped_env({"NAME": "value"}): yield ...`."""
    return set_environ


def sandbox_connections(directory: Path, config: Path) -> dict[str, str]:
    """The variables that point tieout at the sandbox in `directory`: a connection per source
    system, and the config folder `config`."""
    from tieout.http import connections
    from tieout_sandbox import credentials

    env = {
        connections.env_name(f"tieout_{system}"): uri
        for system, uri in credentials.sandbox_connections(directory).items()
    }
    env["TIEOUT_CONFIG_DIR"] = str(config)
    return env


@pytest.fixture(scope="session")
def sandbox_env() -> Callable[[Path, Path], dict[str, str]]:
    """`sandbox_env(sandbox_folder, config_folder)`: see sandbox_connections; set them with
    scoped_env."""
    return sandbox_connections


@pytest.fixture(scope="session")
def warehouse_url(server_url: str) -> Iterator[str]:
    """A fresh, migrated warehouse database for this test session (TIEOUT_DATABASE_URL)."""
    with fresh_warehouse(server_url) as url, set_environ({"TIEOUT_DATABASE_URL": url}):
        yield url


@pytest.fixture
def conn(warehouse_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse_url, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT
