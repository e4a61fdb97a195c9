"""The crm service, shaped like HubSpot: contacts and companies, `after` cursors in the body,
OAuth2 client-credentials tokens that expire. It must never accept a request without a token."""

from __future__ import annotations

import base64
import json
import secrets
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict

from tieout_sandbox import clock, service, storage

CONTACT_PROPERTIES = (
    "email",
    "firstname",
    "lastname",
    "phone",
    "company",
    "address",
    "zip",
    "city",
    "country",
    "erp_customer_no",
    "vat_number",
)
# crm writes countries as English names; everyone else uses ISO-2 codes.
COUNTRY_NAMES = {
    "DE": "Germany",
    "AT": "Austria",
    "FR": "France",
    "NL": "Netherlands",
    "GB": "United Kingdom",
    "US": "United States",
    "CH": "Switzerland",
}
WRONG_TYPE_PATH = {"contacts": "properties.email", "companies": "properties.name"}

bearer = HTTPBearer(auto_error=False, description="Access token from POST /oauth/v1/token")


def contact_record(
    contact_id: str,
    view: dict[str, Any],
    erp_customer_no: str | None,
    created_ms: int,
    updated_ms: int,
    archived: bool = False,
) -> dict[str, Any]:
    properties = {
        "email": view["email"],
        "firstname": view["first_name"],
        "lastname": view["last_name"],
        "phone": view["phone"],
        "company": view["company"],
        "address": view["street"],
        "zip": view["postcode"],
        "city": view["city"],
        "country": COUNTRY_NAMES[view["country"]],
        "erp_customer_no": erp_customer_no,
        "vat_number": view["vat_number"],
    }
    return {
        "id": contact_id,
        "properties": properties,
        "createdAt": clock.crm_time(created_ms),
        "updatedAt": clock.crm_time(updated_ms),
        "archived": archived,
    }


def company_record(
    company_id: str, name: str, domain: str, vat_number: str, created_ms: int, updated_ms: int
) -> dict[str, Any]:
    return {
        "id": company_id,
        "properties": {"name": name, "domain": domain, "vat_number": vat_number},
        "createdAt": clock.crm_time(created_ms),
        "updatedAt": clock.crm_time(updated_ms),
        "archived": False,
    }


class TokenAnswer(BaseModel):
    access_token: str
    token_type: str
    expires_in: int


class ContactPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    properties: dict[str, str | None]


def authorize(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> None:
    state = service.service_of(request)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status_code=401, detail=hubspot_error("Authentication credentials not found.")
        )
    expires_at = state.tokens.get(credentials.credentials)
    if expires_at is None:
        raise HTTPException(status_code=401, detail=hubspot_error("The OAuth token is invalid."))
    if expires_at <= time.time():
        raise HTTPException(
            status_code=401,
            detail=hubspot_error("The OAuth token has expired.", "EXPIRED_AUTHENTICATION"),
        )


def hubspot_error(message: str, category: str = "INVALID_AUTHENTICATION") -> dict[str, str]:
    return {"status": "error", "message": message, "category": category}


def encode_cursor(updated_ms: int, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{updated_ms}.{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        updated, seq = base64.urlsafe_b64decode(padded.encode()).decode().split(".")
        position = (int(updated), int(seq))
    except (ValueError, UnicodeDecodeError) as error:
        raise HTTPException(
            status_code=400, detail=hubspot_error("Invalid 'after' cursor.", "VALIDATION_ERROR")
        ) from error
    if not all(-(2**62) < part < 2**62 for part in position):
        raise HTTPException(
            status_code=400, detail=hubspot_error("Invalid 'after' cursor.", "VALIDATION_ERROR")
        )
    return position


def list_page(
    request: Request, table: str, limit: int, after: str | None, updated_after: str | None
) -> Response:
    state = service.service_of(request)
    position = decode_cursor(after) if after else None
    updated_min = service.query_time(updated_after, None, "updatedAfter")
    rows = storage.page_by_updated(state.conn, table, limit + 1, updated_min, position)
    page = rows[:limit]
    records = service.render_records(state, [row[2] for row in page], "id", WRONG_TYPE_PATH[table])
    body = '{"results":' + records
    if len(rows) > limit:
        cursor = encode_cursor(page[-1][0], page[-1][1])
        link = str(request.url.include_query_params(after=cursor))
        body += ',"paging":' + json.dumps({"next": {"after": cursor, "link": link}})
    return service.json_page(state.faults.break_json(body + "}"))


def create_app(directory: Path) -> FastAPI:
    app = service.create_app(
        "crm",
        directory,
        "tieout sandbox crm",
        "HubSpot-like CRM: contacts and companies, `after` cursor paging, "
        "OAuth2 client credentials.",
    )
    app.include_router(router)
    return app


router = APIRouter()


@router.post("/oauth/v1/token", response_model=TokenAnswer, tags=["auth"])
async def issue_token(
    request: Request,
    grant_type: str = Form(...),
    client_id: str = Form(...),
    client_secret: str = Form(...),
) -> Any:
    state = service.service_of(request)
    if grant_type != "client_credentials":
        return JSONResponse(
            {"status": "BAD_GRANT_TYPE", "message": "grant_type must be client_credentials"},
            status_code=400,
        )
    expected = (state.credentials["crm_client_id"], state.credentials["crm_client_secret"])
    if not (
        secrets.compare_digest(client_id, expected[0])
        and secrets.compare_digest(client_secret, expected[1])
    ):
        return JSONResponse(
            {"status": "BAD_CLIENT_ID", "message": "unknown client or wrong secret"},
            status_code=401,
        )
    ttl = state.faults.knobs.token_ttl_seconds
    token = "pat-" + secrets.token_urlsafe(24)
    now = time.time()
    state.tokens = {key: expiry for key, expiry in state.tokens.items() if expiry > now}
    state.tokens[token] = now + ttl
    return {"access_token": token, "token_type": "bearer", "expires_in": ttl}


@router.get("/crm/v3/objects/contacts", dependencies=[Depends(authorize)], tags=["contacts"])
async def list_contacts(
    request: Request,
    limit: int = Query(10, ge=1, le=100),
    after: str | None = Query(None, max_length=200),
    updatedAfter: str | None = Query(None, max_length=64),  # noqa: N803 (HubSpot's name)
) -> Response:
    """Contacts ordered by update time; `paging.next.after` until the last page."""
    return list_page(request, "contacts", limit, after, updatedAfter)


@router.get("/crm/v3/objects/companies", dependencies=[Depends(authorize)], tags=["companies"])
async def list_companies(
    request: Request,
    limit: int = Query(10, ge=1, le=100),
    after: str | None = Query(None, max_length=200),
    updatedAfter: str | None = Query(None, max_length=64),  # noqa: N803
) -> Response:
    return list_page(request, "companies", limit, after, updatedAfter)


@router.get(
    "/crm/v3/objects/contacts/{contact_id}",
    dependencies=[Depends(authorize)],
    tags=["contacts"],
)
async def read_contact(request: Request, contact_id: str = PathParam(max_length=40)) -> Response:
    found = storage.get(service.service_of(request).conn, "contacts", contact_id)
    if found is None:
        return JSONResponse(
            hubspot_error("resource not found", "OBJECT_NOT_FOUND"), status_code=404
        )
    return JSONResponse(found[1])


@router.patch(
    "/crm/v3/objects/contacts/{contact_id}",
    dependencies=[Depends(authorize)],
    tags=["contacts"],
)
async def update_contact(
    request: Request, patch: ContactPatch, contact_id: str = PathParam(max_length=40)
) -> Response:
    """Change some properties; `updatedAt` moves to now. Archived contacts cannot change."""
    state = service.service_of(request)
    body = patch.model_dump_json()

    def apply() -> service.WriteResult:
        unknown = sorted(set(patch.properties) - set(CONTACT_PROPERTIES))
        if unknown:
            return 400, hubspot_error(
                f"Property values were not valid: {unknown} do not exist", "VALIDATION_ERROR"
            )
        found = storage.get(state.conn, "contacts", contact_id)
        if found is None or found[1]["archived"]:
            return 404, hubspot_error("resource not found", "OBJECT_NOT_FOUND")
        record = found[1]
        record["properties"].update(patch.properties)
        now = service.write_now(state.conn, "contacts")
        record["updatedAt"] = clock.crm_time(now)
        storage.put(state.conn, "contacts", contact_id, record, now)
        return 200, record

    return service.audited_write(
        state, request, body, apply, request.headers.get("Idempotency-Key")
    )
