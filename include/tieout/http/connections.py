"""Credentials and base URLs of source systems, from Airflow connections or AIRFLOW_CONN_*.

Secrets stay inside the returned object; this module must never log, print or raise them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit


class ConnectionMissing(LookupError):
    """No Airflow connection and no AIRFLOW_CONN_* variable for a source."""


@dataclass(frozen=True)
class Connection:
    conn_id: str
    conn_type: str = ""
    host: str = ""
    port: int | None = None
    schema: str = ""
    login: str = ""
    password: str = field(default="", repr=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def base_url(self) -> str | None:
        """`scheme://host[:port]` when the connection names a host, else None (use the YAML)."""
        if not self.host:
            return None
        if "://" in self.host:
            return self.host.rstrip("/")
        scheme = self.schema if self.schema in {"http", "https"} else ""
        if not scheme:
            scheme = "https" if self.conn_type == "https" else "http"
        port = f":{self.port}" if self.port else ""
        return f"{scheme}://{self.host}{port}"

    def secret(self, *names: str) -> str:
        """The first non-empty of extra[name] for each name, falling back to the password."""
        for name in names:
            value = self.extra.get(name)
            if value:
                return str(value)
        return self.password

    def secrets(self) -> list[str]:
        """Every value that must be redacted from messages."""
        values = [self.password, *(str(v) for v in self.extra.values() if isinstance(v, str))]
        return [v for v in values if len(v) >= 4]


def env_name(conn_id: str) -> str:
    return "AIRFLOW_CONN_" + conn_id.upper()


def parse(conn_id: str, value: str) -> Connection:
    """An Airflow connection in URI or JSON form, as in AIRFLOW_CONN_* variables."""
    value = value.strip()
    if value.startswith("{"):
        data: dict[str, Any] = json.loads(value)
        extra = data.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra.strip() else {}
        return Connection(
            conn_id=conn_id,
            conn_type=str(data.get("conn_type") or ""),
            host=str(data.get("host") or ""),
            port=int(data["port"]) if data.get("port") else None,
            schema=str(data.get("schema") or ""),
            login=str(data.get("login") or ""),
            password=str(data.get("password") or ""),
            extra=dict(extra),
        )
    parts = urlsplit(value)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    extras: dict[str, Any] = json.loads(query.pop("__extra__", "{}") or "{}")
    extras.update(query)
    return Connection(
        conn_id=conn_id,
        conn_type=parts.scheme.replace("-", "_"),
        host=unquote(parts.hostname or ""),
        port=parts.port,
        schema=unquote(parts.path.lstrip("/")),
        login=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        extra=extras,
    )


def _in_airflow_task() -> bool:
    from tieout.db import in_airflow_task

    return in_airflow_task()


def from_airflow(conn_id: str) -> Any | None:
    """Airflow's own connection object (metadata or secrets backend); None when Airflow is not
    installed or the lookup fails."""
    try:
        from airflow.sdk import BaseHook

        return BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - any lookup failure means "not defined"
        return None


def get(conn_id: str) -> Connection:
    """The connection from AIRFLOW_CONN_<ID>, else from Airflow inside a task."""
    value = os.environ.get(env_name(conn_id))
    if value:
        return parse(conn_id, value)
    if _in_airflow_task():
        conn = from_airflow(conn_id)
        if conn is not None:
            return Connection(
                conn_id=conn_id,
                conn_type=conn.conn_type or "",
                host=conn.host or "",
                port=conn.port,
                schema=conn.schema or "",
                login=conn.login or "",
                password=conn.password or "",
                extra=dict(conn.extra_dejson or {}),
            )
    raise ConnectionMissing(
        f"no credentials for connection {conn_id!r}: define the Airflow connection "
        f"or set {env_name(conn_id)}"
    )


def redact(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
