"""Request authentication for each auth kind a source spec can declare, from its connection.

Credentials live only in the objects built here; they must never reach a log line or an error.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from tieout.config import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    HeaderTokenAuth,
    NoAuth,
    OAuth2ClientCredentials,
)
from tieout.http.connections import Connection


class AuthError(RuntimeError):
    """Authentication failed; the message never contains a secret."""


class HeaderAuth(AuthBase):
    def __init__(self, header: str, value: str) -> None:
        self.header = header
        self._value = value

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers[self.header] = self._value
        return request

    def __repr__(self) -> str:
        return f"HeaderAuth({self.header!r}, '***')"


class NoopAuth(AuthBase):
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class OAuth2Auth(AuthBase):
    """Client-credentials grant; fetches a token lazily and refreshes it before it expires."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None,
        refresh_margin_s: int,
        timeout: tuple[float, float],
    ) -> None:
        self.token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.refresh_margin_s = refresh_margin_s
        self.timeout = timeout
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.fetches = 0

    def __repr__(self) -> str:
        return f"OAuth2Auth({self.token_url!r}, client_id='***')"

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at - self.refresh_margin_s:
                self._token, lifetime = self._fetch()
                self._expires_at = time.monotonic() + lifetime
            return self._token

    def _fetch(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        if self.scope:
            form["scope"] = self.scope
        self.fetches += 1
        try:
            response = requests.post(self.token_url, data=form, timeout=self.timeout)
        except requests.RequestException as exc:
            raise AuthError(
                f"token request to {self.token_url} failed: {type(exc).__name__}"
            ) from None
        if response.status_code != 200:
            raise AuthError(
                f"token request to {self.token_url} answered HTTP {response.status_code}: "
                + token_status_meaning(response.status_code)
            )
        try:
            body: dict[str, Any] = response.json()
            token = str(body["access_token"])
        except (ValueError, KeyError, TypeError):
            raise AuthError(f"token response from {self.token_url} has no access_token") from None
        return token, float(body.get("expires_in") or 3600)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request


def token_status_meaning(status: int) -> str:
    """What a token endpoint's failing status says, and so what to do about it."""
    if status >= 500:
        return (
            "a server error: the source's token service is failing, not the credentials; "
            "try again later or check the source's status"
        )
    if status in (401, 403):
        return "the credentials were refused; check the client id and secret of the connection"
    if status == 429:
        return "the token service is rate limiting; try again later"
    if status in (400, 404, 405):
        return (
            "the request was not understood; check the token URL (auth.token_url or the "
            "connection's extra 'token_url'), the scope, and the client id and secret"
        )
    return "unexpected status; check the token URL and the connection"


def build(
    spec: ApiKeyAuth | BearerAuth | HeaderTokenAuth | BasicAuth | OAuth2ClientCredentials | NoAuth,
    connection: Connection,
    base_url: str,
    timeout: tuple[float, float],
) -> AuthBase:
    """The requests auth object for an auth spec and the source's connection."""
    conn_id = connection.conn_id
    if isinstance(spec, NoAuth):
        return NoopAuth()
    if isinstance(spec, ApiKeyAuth):
        key = connection.secret("api_key", "key", "token")
        _require(key, conn_id, "an API key (extra 'api_key' or the password)")
        return HeaderAuth(spec.header, key)
    if isinstance(spec, BearerAuth):
        token = connection.secret("token", "secret_key", "api_key", "access_token")
        _require(token, conn_id, "a bearer token (extra 'token' or the password)")
        return HeaderAuth("Authorization", f"Bearer {token}")
    if isinstance(spec, HeaderTokenAuth):
        token = connection.secret("access_token", "token", "api_key")
        _require(token, conn_id, "an access token (extra 'access_token' or the password)")
        return HeaderAuth(spec.header, token)
    if isinstance(spec, BasicAuth):
        _require(connection.login, conn_id, "a login")
        return HTTPBasicAuth(connection.login, connection.password)
    client_id = str(connection.extra.get("client_id") or connection.login)
    client_secret = connection.secret("client_secret")
    _require(client_id, conn_id, "a client id (extra 'client_id' or the login)")
    _require(client_secret, conn_id, "a client secret (extra 'client_secret' or the password)")
    token_url = str(connection.extra.get("token_url") or spec.token_url)
    if token_url.startswith("/"):
        token_url = base_url + token_url
    return OAuth2Auth(
        token_url, client_id, client_secret, spec.scope, spec.refresh_margin_s, timeout
    )


def _require(value: str, conn_id: str, what: str) -> None:
    if not value:
        raise AuthError(f"connection {conn_id!r} has no {what}")
