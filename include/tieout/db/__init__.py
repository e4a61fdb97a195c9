"""How every stage finds and opens the warehouse.

The order is fixed: TIEOUT_DATABASE_URL, then the Airflow connection `tieout_warehouse`,
then the embedded server. Passwords never leave this module in an error or a log line.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

CONN_ID = "tieout_warehouse"
ENV_URL = "TIEOUT_DATABASE_URL"


class DatabaseUnreachable(RuntimeError):
    """The warehouse could not be reached; the message names host and port only."""


class BadConnectionString(DatabaseUnreachable):
    """The configured connection string cannot be read; the message never quotes it."""


def conninfo_params(conninfo: str) -> dict[str, str]:
    """libpq's own reading of a URL or a keyword string (`host=... user=... password=...`)."""
    try:
        return {k: str(v) for k, v in conninfo_to_dict(conninfo).items()}
    except psycopg.Error:
        # libpq's message quotes pieces of the string, which may be the password
        raise BadConnectionString(
            "the warehouse connection string is neither a postgresql:// URL nor libpq "
            "keywords like 'host=db.example dbname=warehouse user=tieout password=...'"
        ) from None


def _keywords_to_url(conninfo: str) -> str:
    """`host=h port=5433 user=u password=p dbname=d sslmode=require` as a postgresql:// URL."""
    params = conninfo_params(conninfo)
    user, password = params.pop("user", ""), params.pop("password", None)
    host, port = params.pop("host", ""), params.pop("port", "")
    dbname = params.pop("dbname", "")
    if host.startswith("/") or "," in host:  # a socket folder or several hosts: a parameter
        params["host"], host = host, ""
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password is not None else "")
    netloc = (auth + "@" if auth else "") + host + (":" + port if port and host else "")
    if port and not host:
        params["port"] = port
    return urlunsplit(("postgresql", netloc, "/" + quote(dbname, safe=""), urlencode(params), ""))


def _from_airflow_uri(value: str) -> str:
    """Accept an Airflow connection in URI or JSON form and return a libpq URL."""
    value = value.strip()
    if value.startswith("{"):
        conn: dict[str, Any] = json.loads(value)
        user = quote(conn.get("login") or "", safe="")
        password = conn.get("password")
        auth = user + (":" + quote(password, safe="") if password else "")
        host = conn.get("host") or "localhost"
        port = conn.get("port") or 5432
        schema = conn.get("schema") or ""
        return f"postgresql://{auth}{'@' if auth else ''}{host}:{port}/{schema}"
    if "://" not in value:
        return _keywords_to_url(value)
    parts = urlsplit(value)
    scheme = "postgresql"
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def in_airflow_task() -> bool:
    """True only while an Airflow task runs in this process.

    Importing Airflow's task runner is not enough (tests and the DAG parser do that); the
    supervisor's channel is set only when a task actually runs, as Airflow itself checks.
    """
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return getattr(runner, "SUPERVISOR_COMMS", None) is not None


def _airflow_connection_url() -> str | None:
    """Inside an Airflow task, ask Airflow for the connection (metadata or secrets backend)."""
    if not in_airflow_task():
        return None
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(CONN_ID)
    except Exception:  # noqa: BLE001 - connection simply not defined
        return None
    return _from_airflow_uri(conn.get_uri())


def configured_url() -> str | None:
    """The URL the user configured, or None when tieout should use its embedded server."""
    if url := os.environ.get(ENV_URL):
        return _from_airflow_uri(url)
    if conn := os.environ.get("AIRFLOW_CONN_" + CONN_ID.upper()):
        return _from_airflow_uri(conn)
    return _airflow_connection_url()


def warehouse_url(database: str | None = None) -> str:
    """The warehouse URL, starting the embedded server if nothing is configured."""
    url = configured_url()
    if url is None:
        from tieout.db import embedded

        server, note = embedded.start()
        if note:
            print(f"tieout: {note}", file=sys.stderr)
        url = server.url()
    if database:
        parts = urlsplit(url)
        url = urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))
    return url


def redact(url: str) -> str:
    """The URL (or keyword string) with its password replaced, wherever it was, safe to print."""
    if "password" not in conninfo_params(url):
        return url
    if "://" not in url:
        return make_conninfo(url, password="***")
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostinfo = netloc.rpartition("@")
        netloc = userinfo.split(":", 1)[0] + ":***@" + hostinfo
    query = urlencode(
        [
            (key, "***" if key == "password" else value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*/",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def host_port(url: str) -> str:
    params = conninfo_params(url)
    return f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"


def connect(url: str | None = None, **kwargs: Any) -> psycopg.Connection[Any]:
    """Open a psycopg 3 connection to the warehouse with a clear error if it is unreachable."""
    url = url or warehouse_url()
    kwargs.setdefault("connect_timeout", 10)
    kwargs.setdefault("application_name", "tieout")
    try:
        return psycopg.connect(url, **kwargs)
    except psycopg.OperationalError as exc:
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        reason = lines[0].rsplit("failed: ", 1)[-1] if lines else type(exc).__name__
        password = conninfo_params(url).get("password")
        if password:
            reason = reason.replace(password, "***")
        raise DatabaseUnreachable(
            f"cannot reach the warehouse at {host_port(url)}: {reason}"
        ) from None


def sqlalchemy_url(url: str | None = None, driver: str = "psycopg") -> str:
    url = url or warehouse_url()
    return url.replace("postgresql://", f"postgresql+{driver}://", 1)
