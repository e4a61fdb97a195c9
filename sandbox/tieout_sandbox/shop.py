"""The shop service, shaped like Shopify: customers, orders, products, `Link` header paging
with `page_info`, an access-token header, New York times. It never serves without the token."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field

from tieout_sandbox import clock, service, storage

API = "/admin/api/2024-01"
LISTS = {
    "customers": ("customers", "email"),
    "orders": ("orders", "total_price"),
    "products": ("products", "title"),
}
MAX_ID = 2**53

access_token = APIKeyHeader(name="X-Shopify-Access-Token", auto_error=False)


def customer_record(
    customer_id: int,
    view: dict[str, Any],
    erp_customer_no: str | None,
    created_ms: int,
    updated_ms: int,
) -> dict[str, Any]:
    return {
        "id": customer_id,
        "email": view["email"],
        "first_name": view["first_name"],
        "last_name": view["last_name"],
        "phone": view["phone"],
        "default_address": {
            "address1": view["street"],
            "zip": view["postcode"],
            "city": view["city"],
            "country_code": view["country"],
        },
        "tags": f"erp:{erp_customer_no}" if erp_customer_no else "",
        "created_at": clock.shop_time(created_ms),
        "updated_at": clock.shop_time(updated_ms),
    }


def order_record(
    order_id: int,
    number: int,
    customer_id: int,
    currency: str,
    total_cents: int,
    status: str,
    financial_status: str,
    lines: list[tuple[int, str, int, int]],
    created_ms: int,
    updated_ms: int,
    status_ms: int,
) -> dict[str, Any]:
    """`status` is canonical (open, shipped, closed, cancelled); `status_ms` is when it was set."""
    return {
        "id": order_id,
        "name": f"#{number}",
        "customer": {"id": customer_id},
        "currency": currency,
        "total_price": clock.money(total_cents),
        "financial_status": "voided" if status == "cancelled" else financial_status,
        "fulfillment_status": "fulfilled" if status in ("shipped", "closed") else None,
        "line_items": [
            {"id": line_id, "sku": sku, "quantity": quantity, "price": clock.money(price)}
            for line_id, sku, quantity, price in lines
        ],
        "created_at": clock.shop_time(created_ms),
        "updated_at": clock.shop_time(updated_ms),
        "cancelled_at": clock.shop_time(status_ms) if status == "cancelled" else None,
        "closed_at": clock.shop_time(status_ms) if status == "closed" else None,
    }


def order_status(order: dict[str, Any]) -> str:
    """The canonical order status a shop order expresses."""
    if order.get("cancelled_at"):
        return "cancelled"
    if order.get("closed_at"):
        return "closed"
    return "shipped" if order.get("fulfillment_status") == "fulfilled" else "open"


def product_record(
    product_id: int,
    variant_id: int,
    title: str,
    sku: str,
    price_cents: int,
    created_ms: int,
    updated_ms: int,
) -> dict[str, Any]:
    return {
        "id": product_id,
        "title": title,
        "variants": [{"id": variant_id, "sku": sku, "price": clock.money(price_cents)}],
        "created_at": clock.shop_time(created_ms),
        "updated_at": clock.shop_time(updated_ms),
    }


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address1: str | None = Field(default=None, max_length=200)
    zip: str | None = Field(default=None, max_length=20)
    city: str | None = Field(default=None, max_length=100)
    country_code: str | None = Field(default=None, max_length=2)


class CustomerFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int | None = Field(default=None, ge=1, le=MAX_ID)
    email: str | None = Field(default=None, max_length=200)
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=50)
    tags: str | None = Field(default=None, max_length=500)
    default_address: AddressIn | None = None


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: CustomerFields


def authorize(request: Request, token: str | None = Depends(access_token)) -> None:
    expected = service.service_of(request).credentials["shop_access_token"]
    if token is None or not secrets.compare_digest(token, expected):
        raise HTTPException(
            status_code=401,
            detail={
                "errors": "[API] Invalid API key or access token "
                "(unrecognized login or wrong password)"
            },
        )


def encode_page_info(updated_min: int | None, after: tuple[int, int]) -> str:
    raw = json.dumps({"min": updated_min, "after": list(after)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_info(page_info: str) -> tuple[int | None, tuple[int, int]]:
    try:
        raw = base64.urlsafe_b64decode((page_info + "=" * (-len(page_info) % 4)).encode())
        values = json.loads(raw)
        updated_min, (updated, seq) = values["min"], values["after"]
        checked = [value for value in (updated_min, updated, seq) if value is not None]
        if not all(isinstance(v, int) and abs(v) < 2**62 for v in checked):
            raise ValueError("out of range")
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as error:
        raise HTTPException(
            status_code=400, detail={"errors": {"page_info": "Invalid value."}}
        ) from error
    return updated_min, (updated, seq)


def create_app(directory: Path) -> FastAPI:
    app = service.create_app(
        "shop",
        directory,
        "tieout sandbox shop",
        "Shopify-like webshop: cursor paging through the Link header (page_info), "
        "X-Shopify-Access-Token, times in America/New_York with offset.",
    )
    app.include_router(router)
    return app


def list_endpoint(path: str, table: str, wrong_type_path: str) -> Callable[..., Any]:
    async def list_records(
        request: Request,
        limit: int = Query(50, ge=1, le=250),
        updated_at_min: str | None = Query(None, max_length=64),
        page_info: str | None = Query(None, max_length=400),
    ) -> Response:
        """A page ordered by update time; the next page's URL is in the `Link` header."""
        return list_page(request, path, table, wrong_type_path, limit, updated_at_min, page_info)

    return list_records


def list_page(
    request: Request,
    path: str,
    table: str,
    wrong_type_path: str,
    limit: int,
    updated_at_min: str | None,
    page_info: str | None,
) -> Response:
    state = service.service_of(request)
    if page_info is not None:
        if updated_at_min is not None:
            return JSONResponse(
                {"errors": {"page_info": "cannot be combined with updated_at_min"}},
                status_code=400,
            )
        updated_min, after = decode_page_info(page_info)
        position: tuple[int, int] | None = after
    else:
        updated_min = service.query_time(updated_at_min, clock.NEW_YORK, "updated_at_min")
        position = None
    rows = storage.page_by_updated(state.conn, table, limit + 1, updated_min, position)
    page = rows[:limit]
    headers = {}
    if len(rows) > limit:
        cursor = encode_page_info(updated_min, (page[-1][0], page[-1][1]))
        url = str(request.url.replace(query=f"limit={limit}&page_info={cursor}"))
        headers["Link"] = f'<{url}>; rel="next"'
    records = service.render_records(state, [row[2] for row in page], "id", wrong_type_path)
    body = state.faults.break_json(f'{{"{path}":{records}}}')
    return service.json_page(body, headers)


router = APIRouter()
for _path, (_table, _wrong_type_path) in LISTS.items():
    router.add_api_route(
        f"{API}/{_path}.json",
        list_endpoint(_path, _table, _wrong_type_path),
        methods=["GET"],
        dependencies=[Depends(authorize)],
        tags=[_path],
    )


@router.get(
    f"{API}/customers/{{customer_id}}.json",
    dependencies=[Depends(authorize)],
    tags=["customers"],
)
async def read_customer(
    request: Request, customer_id: int = PathParam(ge=1, le=MAX_ID)
) -> Response:
    found = storage.get(service.service_of(request).conn, "customers", customer_id)
    if found is None:
        return JSONResponse({"errors": "Not Found"}, status_code=404)
    return JSONResponse({"customer": found[1]})


@router.put(
    f"{API}/customers/{{customer_id}}.json",
    dependencies=[Depends(authorize)],
    tags=["customers"],
)
async def update_customer(
    request: Request, change: CustomerIn, customer_id: int = PathParam(ge=1, le=MAX_ID)
) -> Response:
    """Update the given fields of a customer; `updated_at` moves to now."""
    state = service.service_of(request)
    fields = change.customer

    def apply() -> service.WriteResult:
        if fields.id not in (None, customer_id):
            return 422, {"errors": {"id": ["does not match the URL"]}}
        found = storage.get(state.conn, "customers", customer_id)
        if found is None:
            return 404, {"errors": "Not Found"}
        record = found[1]
        for name in ("email", "first_name", "last_name", "phone", "tags"):
            if getattr(fields, name) is not None:
                record[name] = getattr(fields, name)
        if fields.default_address is not None:
            record["default_address"].update(fields.default_address.model_dump(exclude_none=True))
        now = service.write_now(state.conn, "customers")
        record["updated_at"] = clock.shop_time(now)
        storage.put(state.conn, "customers", customer_id, record, now)
        return 200, {"customer": record}

    body = change.model_dump_json(exclude_none=True)
    return service.audited_write(
        state, request, body, apply, request.headers.get("Idempotency-Key")
    )
