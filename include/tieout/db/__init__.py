"""How every stage finds and opens the warehouse, and as which role.

The warehouse URL is the owner's; the order is fixed: TIEOUT_DATABASE_URL, then the Airflow
connection `tieout_warehouse`, then the embedded server. Only migrations connect as the owner:
every stage asks for its role (`connect(role="loader")`, `role_url("loader")`), which is the
same server and database as that role, with the role's password from the Airflow connection
`tieout_warehouse_<role>` (or the embedded server's password file). A stage never falls back
to the owner. Passwords never leave this module in an error or a log line.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

CONN_ID = "tieout_warehouse"
ENV_URL = "TIEOUT_DATABASE_URL"

# The database role of each stage; what each may touch is in db/grants.sql.
ROLES: dict[str, str] = {
    "loader": "tieout_loader",  # extract
    "transformer": "tieout_transformer",  # dbt
    "validator": "tieout_validator",  # validate
    "reconciler": "tieout_reconciler",  # reconcile, report
    "reverse_etl": "tieout_reverse_etl",  # reverse ETL
    "analyst": "tieout_analyst",  # people: canonical and finance, read only
    "finance": "tieout_finance",  # people and the report pages in the Airflow UI, read only
}


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


def role_connection_id(role: str) -> str:
    """The Airflow connection holding a role's login and password: tieout_warehouse_<role>."""
    return f"{CONN_ID}_{role}"


def _role_credentials(role: str) -> tuple[str | None, str | None]:
    """Login and password from the connection tieout_warehouse_<role>, when one is defined."""
    conn_id = role_connection_id(role)
    value = os.environ.get("AIRFLOW_CONN_" + conn_id.upper())
    if value:
        parts = urlsplit(_from_airflow_uri(value))
        return (
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password is not None else None,
        )
    if in_airflow_task():
        try:
            from airflow.sdk import BaseHook

            conn = BaseHook.get_connection(conn_id)
        except Exception:  # noqa: BLE001 - connection simply not defined
            return None, None
        return conn.login or None, conn.password or None
    return None, None


def role_url(role: str, url: str | None = None) -> str:
    """The warehouse (or `url`'s server and database) as the stage role `role`.

    The password comes from the connection tieout_warehouse_<role>, else from the embedded
    server's password file when `url` is that server; with neither the URL has none (a
    server that trusts local connections needs none). The owner's password is never kept.
    """
    if role not in ROLES:
        raise ValueError(f"unknown warehouse role {role!r} (expected one of {', '.join(ROLES)})")
    url = url or warehouse_url()
    parts = urlsplit(url)
    login, secret = _role_credentials(role)
    login = login or ROLES[role]
    if secret is None:
        from tieout.db import embedded

        if embedded.serves(url):
            secret = embedded.password(login)
    if secret is None and parts.username and unquote(parts.username) == login:
        secret = unquote(parts.password) if parts.password is not None else None
    auth = quote(login, safe="") + (":" + quote(secret, safe="") if secret is not None else "")
    host = parts.netloc.rsplit("@", 1)[-1]
    # the owner's login and password may also sit in the query string: never hand them on
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in ("user", "password")])
    return urlunsplit((parts.scheme, f"{auth}@{host}", parts.path, query, parts.fragment))


def _role_hint(url: str) -> str:
    """What to configure when a stage role cannot log in."""
    user = unquote(urlsplit(url).username or "")
    role = next((key for key, name in ROLES.items() if name == user), None)
    if role is None:
        return ""
    conn_id = role_connection_id(role)
    return (
        f" (connecting as {user}, the {role} role: set its password in the Airflow connection "
        f"{conn_id}, e.g. AIRFLOW_CONN_{conn_id.upper()}=postgresql://{user}:PASSWORD@host/db, "
        "and run `tieout db migrate` as the owner so the role exists with LOGIN)"
    )


def warehouse_url(database: str | None = None, *, role: str | None = None) -> str:
    """The warehouse URL (the owner's, or `role`'s), starting the embedded server if nothing
    is configured."""
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
    return role_url(role, url) if role else url


def redact(url: str) -> str:
    """The URL (or keyword string) with its password replaced, wherever it was, safe to print.
    SQLAlchemy URLs (`postgresql+psycopg2://`, Airflow's metadata) are URLs too, though libpq
    cannot read them."""
    if "://" not in url:
        return make_conninfo(url, password="***") if "password" in conninfo_params(url) else url
    if urlsplit(url).scheme in ("postgresql", "postgres"):
        conninfo_params(url)  # an unreadable libpq URL is named, never quoted
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


def connect(
    url: str | None = None, *, role: str | None = None, **kwargs: Any
) -> psycopg.Connection[Any]:
    """Open a psycopg 3 connection to the warehouse (as `role` when given, else as `url` says)
    with a clear error if it is unreachable or the role cannot log in."""
    url = role_url(role, url) if role else (url or warehouse_url())
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
            f"cannot reach the warehouse at {host_port(url)}: {reason}{_role_hint(url)}"
        ) from None


def sqlalchemy_url(url: str | None = None, driver: str = "psycopg") -> str:
    url = url or warehouse_url()
    return url.replace("postgresql://", f"postgresql+{driver}://", 1)
