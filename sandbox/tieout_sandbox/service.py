"""What the four sandbox services share: app factory, fault middleware, admin endpoints, audited
writes and Billing-style idempotency. It must never hold a system's records in memory."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from tieout_sandbox import clock, credentials, datadir, faults, storage

UNFAULTED_PATHS = ("/health", "/openapi.json", "/docs", "/redoc")

WriteResult = tuple[int, dict[str, Any]]


@dataclass
class Service:
    system: str
    directory: Path
    conn: sqlite3.Connection
    faults: faults.FaultState
    credentials: dict[str, str]
    tokens: dict[str, float] = field(default_factory=dict)


def service_of(request: Request) -> Service:
    found: Service = request.app.state.service
    return found


def create_app(system: str, directory: Path, title: str, description: str) -> FastAPI:
    """A FastAPI app for `system` over `<directory>/<system>.sqlite`, with health and admin."""
    directory = directory.resolve()
    conn = storage.open_database(datadir.database_path(directory, system))
    service = Service(
        system=system,
        directory=directory,
        conn=conn,
        faults=faults.FaultState(system, faults.load_knobs(directory, system)),
        credentials=credentials.load_credentials(directory),
    )
    app = FastAPI(title=title, description=description, version="1.0.0")
    app.state.service = service
    app.middleware("http")(apply_faults)
    app.add_exception_handler(sqlite3.OperationalError, database_busy)
    app.include_router(router)
    return app


async def apply_faults(request: Request, call_next: Callable[..., Any]) -> Any:
    """The request-level fault knobs: an outage, rate limit, 429s, errors, timeouts, latency."""
    path = request.url.path
    if path in UNFAULTED_PATHS or path.startswith("/_admin"):
        return await call_next(request)
    state = service_of(request).faults
    knobs = state.knobs
    if knobs.outage_status:
        return JSONResponse(
            {"error": f"{state.system} is down (outage)"}, status_code=knobs.outage_status
        )
    if state.over_rate_limit() or state.hit(knobs.rate_429):
        return JSONResponse(
            {"error": {"type": "rate_limit_error", "message": "Too many requests"}},
            status_code=429,
            headers={"Retry-After": str(knobs.retry_after_seconds)},
        )
    if state.hit(knobs.error_rate):
        status = state.error_status()
        return JSONResponse({"error": "injected fault"}, status_code=status)
    if state.hit(knobs.timeout_rate):
        await asyncio.sleep(knobs.timeout_seconds)
        return JSONResponse({"error": "upstream timeout"}, status_code=504)
    if knobs.latency_ms > 0:
        await asyncio.sleep(knobs.latency_ms / 1000)
    return await call_next(request)


async def database_busy(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": "database busy, retry"}, status_code=503)


router = APIRouter()


@router.get("/health", include_in_schema=False)
async def health(request: Request) -> dict[str, str]:
    return {"status": "ok", "system": service_of(request).system}


@router.get("/_admin/faults", include_in_schema=False)
async def read_faults(request: Request) -> dict[str, Any]:
    service = service_of(request)
    require_admin(request, service)
    return faults.snapshot(service.faults.knobs)


@router.put("/_admin/faults", include_in_schema=False)
async def update_faults(request: Request) -> dict[str, Any]:
    service = service_of(request)
    require_admin(request, service)
    try:
        values = json.loads(await request.body() or b"{}")
        if not isinstance(values, dict):
            raise ValueError("body must be a JSON object of knob names and values")
        knobs = faults.knobs_from_dict(service.system, values, base=service.faults.knobs)
    except ValueError as error:
        raise HTTPException(status_code=400, detail=str(error)) from error
    return set_knobs(service, knobs)


@router.delete("/_admin/faults", include_in_schema=False)
async def reset_faults(request: Request) -> dict[str, Any]:
    service = service_of(request)
    require_admin(request, service)
    return set_knobs(service, faults.default_knobs(service.system))


def set_knobs(service: Service, knobs: faults.Knobs) -> dict[str, Any]:
    """Put `knobs` in force and save them, so that a restart keeps them."""
    service.faults.set(knobs)
    faults.save_knobs(service.directory, service.system, knobs)
    return faults.snapshot(knobs)


def require_admin(request: Request, service: Service) -> None:
    if request.headers.get("X-Sandbox-Admin") != service.credentials["admin_token"]:
        raise HTTPException(status_code=401, detail="admin token required")


def json_page(body: str, headers: dict[str, str] | None = None) -> Response:
    return Response(content=body, media_type="application/json", headers=headers)


def render_records(service: Service, docs: list[str], id_field: str, wrong_type_path: str) -> str:
    """Records joined as a JSON array, after the record-level fault knobs."""
    return "[" + ",".join(service.faults.distort_records(docs, id_field, wrong_type_path)) + "]"


def query_time(text: str | None, zone: ZoneInfo | None, name: str) -> int | None:
    if text is None:
        return None
    try:
        return clock.parse_time(text, zone)
    except (ValueError, OverflowError) as error:
        raise HTTPException(status_code=400, detail=f"{name}: not an ISO-8601 time") from error


def write_now(conn: sqlite3.Connection, table: str) -> int:
    """Now in ms, but never earlier than the newest record: updates always move `updated` up."""
    newest = conn.execute(f"select max(updated_ms) from {table}").fetchone()[0] or 0
    return max(clock.now_ms(), newest + 1)


def audited_write(
    service: Service,
    request: Request,
    body: str,
    apply: Callable[[], WriteResult],
    idempotency_key: str | None = None,
    on_applied: Callable[[dict[str, Any]], None] | None = None,
) -> Response:
    """Run `apply` in a transaction, honouring the drop-write knob, and log it in audit_log.

    `apply` returns (status, response body) and may raise HTTPException for a refused write.
    `on_applied` gets the response body once a write is committed (billing's webhooks). A
    repeated `idempotency_key` gets the first answer back and applies nothing, on every system.
    """
    if idempotency_key is not None:
        replay = replay_idempotent(service, request, idempotency_key, body)
        if replay is not None:
            return replay
    conn = service.conn
    method, path = request.method, request.url.path
    dropped = False
    conn.execute("begin immediate")
    try:
        status, result = apply()
        dropped = status < 300 and service.faults.drop_write()
        conn.execute("rollback" if dropped or status >= 300 else "commit")
    except HTTPException as error:
        conn.execute("rollback")
        status, result = error.status_code, {"error": error.detail}
    except Exception:
        conn.execute("rollback")
        raise
    text = json.dumps(result, separators=(",", ":"))
    conn.execute("begin immediate")
    try:
        storage.record_audit(
            conn,
            method,
            path,
            idempotency_key,
            body,
            status,
            text,
            applied=status < 300 and not dropped,
            dropped=dropped,
        )
        if idempotency_key is not None and status < 500:
            conn.execute(
                "insert into idempotency"
                " (key, method, path, body_hash, status, response, created_ms)"
                " values (?, ?, ?, ?, ?, ?, ?)",
                (idempotency_key, method, path, body_hash(body), status, text, clock.now_ms()),
            )
    except Exception:
        conn.execute("rollback")  # never leave the connection inside a transaction
        raise
    conn.execute("commit")
    if status < 300:
        if on_applied is not None and not dropped:
            on_applied(result)
        return json_page(text)
    return JSONResponse(result, status_code=status)


def replay_idempotent(service: Service, request: Request, key: str, body: str) -> Response | None:
    """The stored answer for a repeated Idempotency-Key (logged as replayed), else None.

    The same key with a different method, path or body is refused with 400, like Stripe.
    """
    conn = service.conn
    row = conn.execute(
        "select method, path, body_hash, status, response from idempotency where key = ?", (key,)
    ).fetchone()
    if row is None:
        return None
    method, path, digest, status, response = row
    if (method, path, digest) != (request.method, request.url.path, body_hash(body)):
        error = {
            "error": {
                "type": "idempotency_error",
                "message": "Keys for idempotent requests can only be used with the same "
                "parameters they were first used with.",
            }
        }
        return JSONResponse(error, status_code=400)
    conn.execute("begin immediate")
    storage.record_audit(
        conn,
        request.method,
        request.url.path,
        key,
        body,
        status,
        response,
        applied=False,
        replayed=True,
    )
    conn.execute("commit")
    return Response(
        content=response,
        status_code=status,
        media_type="application/json",
        headers={"Idempotent-Replayed": "true"},
    )


def body_hash(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()
