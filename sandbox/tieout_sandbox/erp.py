"""The erp service, shaped like an ERP REST API: customers, products, sales orders, invoices,
offset/limit paging with a total, an API-key header. It must never serve without the key."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field

from tieout_sandbox import clock, service, storage

STATUS_TO_ERP = {"open": "OPEN", "shipped": "SHIPPED", "closed": "CLOSED", "cancelled": "CANCELLED"}
INVOICE_STATUS_TO_ERP = {"open": "OPEN", "paid": "PAID", "void": "VOID"}
LISTS = {
    "customers": ("customers", "customer_no", "email_address"),
    "products": ("products", "sku", "unit_price"),
    "sales-orders": ("sales_orders", "order_no", "total"),
    "invoices": ("invoices", "invoice_no", "total_amount"),
}

api_key = APIKeyHeader(name="X-API-Key", auto_error=False)


def customer_record(
    customer_no: str,
    view: dict[str, Any],
    crm_contact_id: str | None,
    billing_customer_id: str | None,
    blocked: bool,
    updated_ms: int,
) -> dict[str, Any]:
    return {
        "customer_no": customer_no,
        "name": f"{view['first_name']} {view['last_name']}",
        "email_address": view["email"],
        "phone_no": view["phone"],
        "street": view["street"],
        "postcode": view["postcode"],
        "city": view["city"],
        "country_code": view["country"],
        "vat_id": view["vat_number"],
        "crm_contact_id": crm_contact_id,
        "billing_customer_id": billing_customer_id,
        "blocked": blocked,
        "modified_at": clock.erp_time(updated_ms),
    }


def product_record(
    sku: str, description: str, price_cents: int, active: bool, updated_ms: int
) -> dict[str, Any]:
    return {
        "sku": sku,
        "description": description,
        "unit_price": clock.money(price_cents),
        "currency": "EUR",
        "active": active,
        "modified_at": clock.erp_time(updated_ms),
    }


def sales_order_record(
    order_no: str,
    customer_no: str,
    shop_order_id: int | None,
    ordered_ms: int,
    currency: str,
    total_cents: int,
    status: str,
    lines: list[tuple[int, str, int, int]],
    updated_ms: int,
) -> dict[str, Any]:
    """`lines` are (line id, sku, quantity, unit price cents); `status` is canonical."""
    return {
        "order_no": order_no,
        "customer_no": customer_no,
        "shop_order_id": shop_order_id,
        "order_date": clock.erp_date(ordered_ms),
        "currency": currency,
        "total": clock.money(total_cents),
        "status": STATUS_TO_ERP[status],
        "lines": [
            {"line_no": n, "sku": sku, "quantity": quantity, "unit_price": clock.money(price)}
            for n, (_, sku, quantity, price) in enumerate(lines, start=1)
        ],
        "modified_at": clock.erp_time(updated_ms),
    }


def invoice_record(
    invoice_no: str,
    customer_no: str,
    order_no: str,
    currency: str,
    total_cents: int,
    status: str,
    issued_ms: int,
    due_on: str,
    updated_ms: int,
) -> dict[str, Any]:
    tax = round(total_cents * 19 / 119)
    return {
        "invoice_no": invoice_no,
        "customer_no": customer_no,
        "order_no": order_no,
        "currency": currency,
        "total_amount": clock.money(total_cents),
        "tax_amount": clock.money(tax),
        "status": INVOICE_STATUS_TO_ERP[status],
        "issued_on": clock.erp_date(issued_ms),
        "due_on": due_on,
        "modified_at": clock.erp_time(updated_ms),
    }


class CustomerIn(BaseModel):
    """A full customer record, as PUT replaces everything but the number and the timestamp."""

    model_config = ConfigDict(extra="forbid")
    customer_no: str | None = None
    name: str = Field(min_length=1, max_length=200)
    email_address: str = Field(max_length=200)
    phone_no: str | None = Field(default=None, max_length=50)
    street: str = Field(max_length=200)
    postcode: str = Field(max_length=20)
    city: str = Field(max_length=100)
    country_code: str = Field(pattern=r"^[A-Z]{2}$")
    vat_id: str | None = Field(default=None, max_length=40)
    crm_contact_id: str | None = Field(default=None, max_length=40)
    billing_customer_id: str | None = Field(default=None, max_length=60)
    blocked: bool = False


class InvoiceStatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["OPEN", "PAID", "VOID"]


class Page(BaseModel):
    items: list[dict[str, Any]]
    total: int
    offset: int
    limit: int


def authorize(request: Request, key: str | None = Depends(api_key)) -> None:
    expected = service.service_of(request).credentials["erp_api_key"]
    if key is None or not secrets.compare_digest(key, expected):
        raise HTTPException(
            status_code=401,
            detail={"code": "UNAUTHORIZED", "message": "invalid or missing X-API-Key"},
        )


def create_app(directory: Path) -> FastAPI:
    app = service.create_app(
        "erp",
        directory,
        "tieout sandbox erp",
        "ERP-like REST API: offset/limit paging with a total, X-API-Key header, "
        "times in Europe/Berlin without offset, money as decimal strings.",
    )
    app.include_router(router)
    return app


def list_endpoint(table: str, id_field: str, wrong_type_path: str) -> Callable[..., Any]:
    async def list_records(
        request: Request,
        offset: int = Query(0, ge=0, le=10**9),
        limit: int = Query(100, ge=1, le=1000),
        modified_since: str | None = Query(None, max_length=64),
    ) -> Response:
        state = service.service_of(request)
        since = service.query_time(modified_since, clock.BERLIN, "modified_since")
        docs, total = storage.page_by_offset(state.conn, table, offset, limit, since)
        records = service.render_records(state, docs, id_field, wrong_type_path)
        body = f'{{"items":{records},"total":{total},"offset":{offset},"limit":{limit}}}'
        return service.json_page(state.faults.break_json(body))

    return list_records


router = APIRouter()
for _path, (_table, _id_field, _wrong_type_path) in LISTS.items():
    router.add_api_route(
        f"/api/v1/{_path}",
        list_endpoint(_table, _id_field, _wrong_type_path),
        methods=["GET"],
        response_model=Page,
        dependencies=[Depends(authorize)],
        tags=[_path],
    )


def not_found(pk: str) -> dict[str, str]:
    return {"code": "NOT_FOUND", "message": f"{pk} not found"}


def read_one(request: Request, table: str, pk: str) -> Response:
    found = storage.get(service.service_of(request).conn, table, pk)
    if found is None:
        return JSONResponse(not_found(pk), status_code=404)
    return JSONResponse(found[1])


@router.get(
    "/api/v1/customers/{customer_no}", dependencies=[Depends(authorize)], tags=["customers"]
)
async def read_customer(request: Request, customer_no: str = PathParam(max_length=40)) -> Response:
    return read_one(request, "customers", customer_no)


@router.get("/api/v1/invoices/{invoice_no}", dependencies=[Depends(authorize)], tags=["invoices"])
async def read_invoice(request: Request, invoice_no: str = PathParam(max_length=40)) -> Response:
    return read_one(request, "invoices", invoice_no)


def audited_write(
    request: Request, body: BaseModel, apply: Callable[[], service.WriteResult]
) -> Response:
    return service.audited_write(
        service.service_of(request),
        request,
        body.model_dump_json(),
        apply,
        request.headers.get("Idempotency-Key"),
    )


@router.put(
    "/api/v1/customers/{customer_no}", dependencies=[Depends(authorize)], tags=["customers"]
)
async def replace_customer(
    request: Request, customer: CustomerIn, customer_no: str = PathParam(max_length=40)
) -> Response:
    """Replace a customer (every field); `modified_at` moves to now."""
    conn = service.service_of(request).conn

    def apply() -> service.WriteResult:
        if customer.customer_no not in (None, customer_no):
            return 400, {
                "code": "BAD_REQUEST",
                "message": "customer_no in body differs from the URL",
            }
        if storage.get(conn, "customers", customer_no) is None:
            return 404, not_found(customer_no)
        now = service.write_now(conn, "customers")
        record = customer.model_dump()
        record["customer_no"] = customer_no
        record["modified_at"] = clock.erp_time(now)
        storage.put(conn, "customers", customer_no, record, now)
        return 200, record

    return audited_write(request, customer, apply)


@router.put(
    "/api/v1/invoices/{invoice_no}/status", dependencies=[Depends(authorize)], tags=["invoices"]
)
async def set_invoice_status(
    request: Request, change: InvoiceStatusIn, invoice_no: str = PathParam(max_length=40)
) -> Response:
    """Set an invoice's status (OPEN, PAID, VOID); `modified_at` moves to now."""
    conn = service.service_of(request).conn

    def apply() -> service.WriteResult:
        found = storage.get(conn, "invoices", invoice_no)
        if found is None:
            return 404, not_found(invoice_no)
        record = found[1]
        now = service.write_now(conn, "invoices")
        record["status"] = change.status
        record["modified_at"] = clock.erp_time(now)
        storage.put(conn, "invoices", invoice_no, record, now)
        return 200, record

    return audited_write(request, change, apply)
