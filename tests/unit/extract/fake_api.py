"""A small REST API that is not part of the sandbox: every paginator and auth kind tieout
declares, with fault switches, on a free loopback port."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

START = datetime(2026, 1, 1, tzinfo=UTC)


def make_record(i: int, version: int = 0) -> dict[str, Any]:
    return {
        "id": i,
        "name": f"item {i} v{version}",
        "amount": round(i * 1.25, 2),
        "updated": (START + timedelta(seconds=i + version * 100_000))
        .isoformat()
        .replace("+00:00", "Z"),
        "address": {"city": f"city {i % 7}", "zip": f"{10000 + i}"},
    }


@dataclass
class State:
    records: list[dict[str, Any]]
    api_key: str = "key-123456"
    token_ttl: int = 3600
    tokens_issued: int = 0
    valid_tokens: set[str] = field(default_factory=set)
    client_id: str = "client-abc"
    client_secret: str = "secret-xyz-987"
    auth: str = "api_key"  # api_key | bearer | basic | oauth | none
    fail_next: list[int] = field(default_factory=list)
    retry_after: str | None = None
    hang_next: int = 0
    hang_seconds: float = 1.0
    broken_next: int = 0
    token_fail_next: list[int] = field(default_factory=list)  # statuses the token URL answers
    patch_body: Any = None  # bytes -> bytes, applied to every page body served
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set_records(self, records: list[dict[str, Any]]) -> None:
        self.records = records


def _sorted(state: State) -> list[dict[str, Any]]:
    return state.records


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        if urlsplit(self.path).path != "/oauth/token":
            self._send(404, {"error": "not found"})
            return
        with state.lock:
            failing = state.token_fail_next.pop(0) if state.token_fail_next else None
        if failing is not None:
            self._send(failing, {"error": "injected"})
            return
        if (
            form.get("grant_type") != ["client_credentials"]
            or form.get("client_id") != [state.client_id]
            or form.get("client_secret") != [state.client_secret]
        ):
            self._send(401, {"error": "invalid_client"})
            return
        with state.lock:
            state.tokens_issued += 1
            token = f"tok{state.tokens_issued}"
            state.valid_tokens = {token}
        self._send(
            200, {"access_token": token, "token_type": "bearer", "expires_in": state.token_ttl}
        )

    def _authorized(self) -> bool:
        state = self.server.state
        if state.auth == "none":
            return True
        if state.auth == "api_key":
            return self.headers.get("X-API-Key") == state.api_key
        if state.auth == "bearer":
            return self.headers.get("Authorization") == f"Bearer {state.api_key}"
        if state.auth == "basic":
            expected = base64.b64encode(f"user:{state.api_key}".encode()).decode()
            return self.headers.get("Authorization") == f"Basic {expected}"
        header = self.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[7:] in state.valid_tokens

    def do_GET(self) -> None:  # noqa: N802
        state = self.server.state
        with state.lock:
            state.requests += 1
            # one injected fault per request: a hang, else a status, else a broken body
            hang = state.hang_next > 0
            status = state.fail_next.pop(0) if state.fail_next and not hang else None
            broken = state.broken_next > 0 and not hang and status is None
            if hang:
                state.hang_next -= 1
            if broken:
                state.broken_next -= 1
        if hang:
            time.sleep(state.hang_seconds)
            with contextlib.suppress(OSError):
                self._send(504, {"error": "timed out"})
            return
        if status is not None:
            headers = (
                {"Retry-After": state.retry_after} if status == 429 and state.retry_after else {}
            )
            self._send(status, {"error": "injected"}, headers)
            return
        if not self._authorized():
            self._send(401, {"error": "unauthorized"})
            return
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        records = state.records
        since = query.get("since")
        if since:
            cutoff = datetime.fromisoformat(since.replace("Z", "+00:00"))
            records = [
                r
                for r in records
                if "updated" not in r
                or datetime.fromisoformat(r["updated"].replace("Z", "+00:00")) >= cutoff
            ]
        route = parts.path
        headers: dict[str, str] = {}
        if route == "/offset/items":
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 10))
            body: Any = {"items": records[offset : offset + limit], "total": len(records)}
        elif route == "/pages/items":
            page, size = int(query.get("page", 1)), int(query.get("per_page", 10))
            pages = max(1, -(-len(records) // size))
            body = {
                "data": records[(page - 1) * size : page * size],
                "meta": {"total_pages": pages},
            }
        elif route == "/cursor/items":
            start, limit = int(query.get("after", 0)), int(query.get("limit", 10))
            chunk = records[start : start + limit]
            body = {"results": chunk}
            if start + limit < len(records):
                body["paging"] = {"next": {"after": str(start + limit)}}
        elif route == "/after/items":
            limit = int(query.get("limit", 10))
            after = query.get("starting_after")
            start = 0
            if after is not None:
                ids = [str(r.get("id")) for r in records]
                start = ids.index(after) + 1
            chunk = records[start : start + limit]
            body = {"object": "list", "data": chunk, "has_more": start + limit < len(records)}
        elif route == "/link/items":
            limit = int(query.get("limit", 10))
            start = int(query.get("page_info", 0))
            body = records[start : start + limit]
            if start + limit < len(records):
                host = self.headers.get("Host")
                following = f"http://{host}/link/items?limit={limit}&page_info={start + limit}"
                headers["Link"] = f'<{following}>; rel="next"'
        else:
            self._send(404, {"error": "not found"})
            return
        data = json.dumps(body).encode()
        if state.patch_body is not None:
            data = state.patch_body(data)
        if broken:
            data = data[: len(data) // 2]
        self._send(200, data, headers)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: State) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = state

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def start(records: int = 55) -> Server:
    server = Server(State(records=[make_record(i) for i in range(1, records + 1)]))
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    return server
