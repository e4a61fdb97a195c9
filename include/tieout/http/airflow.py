"""Airflow 3's own REST API, as tieout's tasks and the webhook receiver call it: log in at
`/auth/token` with the `tieout_airflow_api` connection, send the JWT, log in again on a 401.

Airflow 3 tasks may not touch its metadata database, so this is how they change Airflow
(pools, DAG runs). The password never leaves this object: not in its repr, not in an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

import requests

from tieout.http import connections

API_CONNECTION = "tieout_airflow_api"


class LoginRefused(RuntimeError):
    """Airflow answered the login with an error status."""


@dataclass
class AirflowClient:
    """Airflow's REST API with a JWT that is reused across calls and renewed once when Airflow
    answers 401. Each call has its own session, so threads may share one client."""

    base_url: str
    username: str
    password: str = field(repr=False)
    timeout_s: float = 10.0
    conn_id: str = API_CONNECTION
    # proxies from the environment (HTTP_PROXY, ...): the webhook trigger never used them
    trust_env: bool = True
    _token: str | None = field(default=None, repr=False)

    @classmethod
    def from_connection(cls, conn_id: str = API_CONNECTION, **options: Any) -> Self:
        """From the API connection; ConnectionMissing when it is not defined or names no host."""
        conn = connections.get(conn_id)
        base = conn.base_url()
        if not base:
            raise connections.ConnectionMissing(f"connection {conn_id!r} names no host")
        return cls(
            base_url=base, username=conn.login, password=conn.password, conn_id=conn_id, **options
        )

    def token(self, session: requests.Session, renew: bool = False) -> str:
        if self._token is None or renew:
            answer = session.post(
                f"{self.base_url}/auth/token",
                json={"username": self.username, "password": self.password},
                timeout=self.timeout_s,
            )
            if answer.status_code >= 300:
                raise LoginRefused(
                    f"Airflow refused the API login of {self.conn_id}: HTTP {answer.status_code}"
                )
            self._token = str(answer.json()["access_token"])
        return self._token

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """`method` on `base_url + path` with the JWT; logs in again once on a 401."""
        kwargs.setdefault("timeout", self.timeout_s)
        url = f"{self.base_url}{path}"
        with requests.Session() as session:
            session.trust_env = self.trust_env
            answer = session.request(method, url, headers=self._auth(session), **kwargs)
            if answer.status_code == 401:
                answer = session.request(
                    method, url, headers=self._auth(session, renew=True), **kwargs
                )
        return answer

    def _auth(self, session: requests.Session, renew: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(session, renew)}"}
