"""The billing service, shaped like Stripe: customers, invoices, payments, `starting_after` and
`has_more`, a bearer secret key, Idempotency-Key on POST. A repeated key must never apply twice."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tieout_sandbox import clock, credentials, service, storage, webhooks

LISTS = {
    "customers": ("customers", "email"),
    "invoices": ("invoices", "amount_due"),
    "payments": ("payments", "amount"),
}
MAX_EPOCH = 2**40
Model = TypeVar("Model", bound=BaseModel)

bearer = HTTPBearer(auto_error=False, description="Secret key sk_test_...")


def customer_record(
    customer_id: str,
    view: dict[str, Any],
    erp_customer_no: str | None,
    created_ms: int,
    updated_ms: int,
    deleted: bool = False,
) -> dict[str, Any]:
    return {
        "id": customer_id,
        "object": "customer",
        "email": view["email"],
        "name": f"{view['first_name']} {view['last_name']}",
        "phone": view["phone"],
        "address": {
            "line1": view["street"],
            "postal_code": view["postcode"],
            "city": view["city"],
            "country": view["country"],
        },
        "metadata": {"erp_customer_no": erp_customer_no} if erp_customer_no else {},
        "created": clock.billing_time(created_ms),
        "updated": clock.billing_time(updated_ms),
        "deleted": deleted,
    }


def invoice_record(
    invoice_id: str,
    customer_id: str,
    currency: str,
    amount_cents: int,
    status: str,
    erp_invoice_no: str | None,
    created_ms: int,
    updated_ms: int,
    due_on: str,
) -> dict[str, Any]:
    """`due_on` is a date; billing stores it as the epoch of 00:00 Europe/Berlin that day."""
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer_id,
        "currency": currency.lower(),
        "amount_due": amount_cents,
        "amount_paid": amount_cents if status == "paid" else 0,
        "status": status,
        "metadata": {"erp_invoice_no": erp_invoice_no} if erp_invoice_no else {},
        "created": clock.billing_time(created_ms),
        "updated": clock.billing_time(updated_ms),
        "due_date": clock.berlin_midnight_epoch(due_on),
    }


def payment_record(
    payment_id: str,
    customer_id: str,
    invoice_id: str | None,
    amount_cents: int,
    currency: str,
    status: str,
    created_ms: int,
    updated_ms: int,
) -> dict[str, Any]:
    return {
        "id": payment_id,
        "object": "payment",
        "customer": customer_id,
        "invoice": invoice_id,
        "amount": amount_cents,
        "currency": currency.lower(),
        "status": status,
        "created": clock.billing_time(created_ms),
        "updated": clock.billing_time(updated_ms),
    }


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    line1: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, max_length=20)
    city: str | None = Field(default=None, max_length=100)
    country: str | None = Field(default=None, max_length=2)


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=50)
    address: AddressIn | None = None
    metadata: dict[str, str] | None = None


class InvoiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount_due: int | None = Field(default=None, ge=0, le=10**12)
    currency: str | None = Field(default=None, pattern=r"^[a-z]{3}$")
    customer: str | None = Field(default=None, max_length=60)
    due_date: int | None = Field(default=None, ge=0, le=MAX_EPOCH)
    metadata: dict[str, str] | None = None


class InvoiceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: str = Field(max_length=60)
    amount_due: int = Field(ge=0, le=10**12)
    currency: str = Field(pattern=r"^[a-z]{3}$")
    due_date: int = Field(ge=0, le=MAX_EPOCH)
    metadata: dict[str, str] | None = None


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: str = Field(max_length=60)
    invoice: str | None = Field(default=None, max_length=60)
    amount: int = Field(gt=0, le=10**12)
    currency: str = Field(pattern=r"^[a-z]{3}$")


class ListAnswer(BaseModel):
    object: str
    data: list[dict[str, Any]]
    has_more: bool
    url: str


def stripe_error(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


def authorize(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> None:
    expected = service.service_of(request).credentials["billing_secret_key"]
    if credentials is None or not secrets.compare_digest(credentials.credentials, expected):
        raise HTTPException(status_code=401, detail=stripe_error("Invalid API Key provided."))


def form_to_nested(body: str) -> dict[str, Any]:
    """Stripe form encoding: `address[city]=Berlin&metadata[k]=v` → nested dicts."""
    nested: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node = nested
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"{key} mixes a value and an object")
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise ValueError(f"{key} mixes a value and an object")
        node[parts[-1]] = value
    return nested


async def read_body(request: Request, model: type[Model]) -> tuple[Model, str]:
    """Parse a JSON or form body into `model`; (model, canonical body text) or HTTP 400."""
    raw = (await request.body()).decode("utf-8", errors="replace")
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            values = json.loads(raw or "{}")
        else:
            values = form_to_nested(raw)
        if not isinstance(values, dict):
            raise ValueError("body must be an object")
        parsed = model.model_validate(values)
    except (ValueError, ValidationError) as error:
        message = str(error).splitlines()[0] if str(error) else "invalid body"
        raise HTTPException(status_code=400, detail=stripe_error(message)) from error
    return parsed, parsed.model_dump_json(exclude_none=True)


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": schema},
                "application/json": {"schema": schema},
            },
        },
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 255},
            }
        ],
    }


def create_app(directory: Path) -> FastAPI:
    app = service.create_app(
        "billing",
        directory,
        "tieout sandbox billing",
        "Stripe-like billing: newest-first lists with starting_after/has_more, bearer secret key, "
        "Idempotency-Key on POST, 429 + Retry-After above the rate limit, money in minor units.",
    )
    state = app.state.service
    app.state.webhooks = webhooks.Sender(
        state.directory,
        credentials.ensure_credentials(state.directory)["billing_webhook_secret"],
        state.faults,
    )
    app.include_router(router)
    return app


def sender_of(request: Request) -> webhooks.Sender:
    found: webhooks.Sender = request.app.state.webhooks
    return found


def list_endpoint(path: str, table: str, wrong_type_path: str) -> Callable[..., Any]:
    async def list_records(
        request: Request,
        limit: int = Query(10, ge=1, le=100),
        starting_after: str | None = Query(None, max_length=60),
        created_gte: int | None = Query(None, alias="created[gte]", ge=0, le=MAX_EPOCH),
        updated_gte: int | None = Query(None, alias="updated[gte]", ge=0, le=MAX_EPOCH),
    ) -> Response:
        return list_page(
            request, path, table, wrong_type_path, limit, starting_after, created_gte, updated_gte
        )

    return list_records


def list_page(
    request: Request,
    path: str,
    table: str,
    wrong_type_path: str,
    limit: int,
    starting_after: str | None,
    created_gte: int | None,
    updated_gte: int | None,
) -> Response:
    """A page newest first; `starting_after` is the last id of the previous page."""
    state = service.service_of(request)
    before = None
    if starting_after is not None:
        found = storage.get(state.conn, table, starting_after)
        if found is None:
            return JSONResponse(
                stripe_error(f"No such object: '{starting_after}'"), status_code=400
            )
        before = found[0]
    docs, has_more = storage.page_newest_first(
        state.conn,
        table,
        limit,
        before,
        updated_gte * 1000 if updated_gte is not None else None,
        created_gte * 1000 if created_gte is not None else None,
    )
    records = service.render_records(state, docs, "id", wrong_type_path)
    body = (
        f'{{"object":"list","data":{records},"has_more":{json.dumps(has_more)},"url":"/v1/{path}"}}'
    )
    return service.json_page(state.faults.break_json(body))


def read_endpoint(table: str) -> Callable[..., Any]:
    async def read_record(request: Request, object_id: str = PathParam(max_length=60)) -> Response:
        found = storage.get(service.service_of(request).conn, table, object_id)
        if found is None:
            return JSONResponse(stripe_error(f"No such object: '{object_id}'"), status_code=404)
        return JSONResponse(found[1])

    return read_record


router = APIRouter()
for _path, (_table, _wrong_type_path) in LISTS.items():
    router.add_api_route(
        f"/v1/{_path}",
        list_endpoint(_path, _table, _wrong_type_path),
        methods=["GET"],
        response_model=ListAnswer,
        dependencies=[Depends(authorize)],
        tags=[_path],
    )
    router.add_api_route(
        f"/v1/{_path}/{{object_id}}",
        read_endpoint(_table),
        methods=["GET"],
        dependencies=[Depends(authorize)],
        tags=[_path],
    )


def idempotent_write(
    request: Request, body: str, apply: Callable[[], service.WriteResult], event_type: str
) -> Response:
    """An idempotent write; once applied, the event `event_type` goes to the webhook URL."""
    state = service.service_of(request)
    sender = sender_of(request)
    return service.audited_write(
        state,
        request,
        body,
        apply,
        request.headers.get("Idempotency-Key"),
        on_applied=lambda r: sender.emit(event_type, r),
    )


@router.get("/_admin/webhook", include_in_schema=False)
async def read_webhook(request: Request) -> dict[str, Any]:
    service.require_admin(request, service.service_of(request))
    sender = sender_of(request)
    return {"url": sender.url, **sender.counts}


@router.put("/_admin/webhook", include_in_schema=False)
async def update_webhook(request: Request) -> dict[str, Any]:
    """{"url": "http://.../webhooks/billing"} sends events there; {"url": null} stops."""
    service.require_admin(request, service.service_of(request))
    try:
        values = json.loads(await request.body() or b"{}")
        url = values.get("url") if isinstance(values, dict) else ""
        if url is not None and not (
            isinstance(url, str) and url.startswith(("http://", "https://"))
        ):
            raise ValueError("url must be an http(s) URL or null")
    except ValueError as error:
        raise HTTPException(status_code=400, detail=str(error)) from error
    sender = sender_of(request)
    sender.set_url(url)
    return {"url": sender.url, **sender.counts}


def live_customer(conn: Any, customer_id: str) -> dict[str, Any] | None:
    found = storage.get(conn, "customers", customer_id)
    return None if found is None or found[1]["deleted"] else found[1]


def no_such(kind: str, object_id: str) -> dict[str, Any]:
    return stripe_error(f"No such {kind}: '{object_id}'")


def created(conn: Any, table: str, record: dict[str, Any], now: int) -> service.WriteResult:
    storage.insert(conn, table, record["id"], record, now)
    return 200, record


def updated(conn: Any, table: str, pk: str, record: dict[str, Any]) -> service.WriteResult:
    """Store a changed record; its `updated` moves to now."""
    now = service.write_now(conn, table)
    record["updated"] = clock.billing_time(now)
    storage.put(conn, table, pk, record, now)
    return 200, record


@router.post(
    "/v1/customers",
    dependencies=[Depends(authorize)],
    tags=["customers"],
    openapi_extra=body_schema(CustomerIn),
)
async def create_customer(request: Request) -> Response:
    """Create a customer; `Idempotency-Key` makes a retry return the first answer."""
    state = service.service_of(request)
    customer, body = await read_body(request, CustomerIn)

    def apply() -> service.WriteResult:
        now = service.write_now(state.conn, "customers")
        address = customer.address or AddressIn()
        record = {
            "id": "cus_" + secrets.token_hex(8),
            "object": "customer",
            "email": customer.email,
            "name": customer.name,
            "phone": customer.phone,
            "address": address.model_dump(),
            "metadata": customer.metadata or {},
            "created": clock.billing_time(now),
            "updated": clock.billing_time(now),
            "deleted": False,
        }
        return created(state.conn, "customers", record, now)

    return idempotent_write(request, body, apply, "customer.created")


@router.post(
    "/v1/customers/{customer_id}",
    dependencies=[Depends(authorize)],
    tags=["customers"],
    openapi_extra=body_schema(CustomerIn),
)
async def update_customer(
    request: Request, customer_id: str = PathParam(max_length=60)
) -> Response:
    """Update the given fields of a customer; metadata keys merge; `updated` moves to now."""
    state = service.service_of(request)
    change, body = await read_body(request, CustomerIn)

    def apply() -> service.WriteResult:
        record = live_customer(state.conn, customer_id)
        if record is None:
            return 404, no_such("customer", customer_id)
        for name in ("email", "name", "phone"):
            if getattr(change, name) is not None:
                record[name] = getattr(change, name)
        if change.address is not None:
            record["address"].update(change.address.model_dump(exclude_none=True))
        if change.metadata is not None:
            record["metadata"].update(change.metadata)
        return updated(state.conn, "customers", customer_id, record)

    return idempotent_write(request, body, apply, "customer.updated")


@router.post(
    "/v1/invoices/{invoice_id}",
    dependencies=[Depends(authorize)],
    tags=["invoices"],
    openapi_extra=body_schema(InvoiceIn),
)
async def update_invoice(request: Request, invoice_id: str = PathParam(max_length=60)) -> Response:
    """Update amount_due, currency, customer, due_date or metadata of an invoice."""
    state = service.service_of(request)
    change, body = await read_body(request, InvoiceIn)

    def apply() -> service.WriteResult:
        found = storage.get(state.conn, "invoices", invoice_id)
        if found is None:
            return 404, no_such("invoice", invoice_id)
        record = found[1]
        if change.customer is not None and live_customer(state.conn, change.customer) is None:
            return 400, no_such("customer", change.customer)
        for name in ("amount_due", "currency", "customer", "due_date"):
            if getattr(change, name) is not None:
                record[name] = getattr(change, name)
        if change.metadata is not None:
            record["metadata"].update(change.metadata)
        if record["status"] == "paid":
            record["amount_paid"] = record["amount_due"]
        return updated(state.conn, "invoices", invoice_id, record)

    return idempotent_write(request, body, apply, "invoice.updated")


@router.post(
    "/v1/invoices",
    dependencies=[Depends(authorize)],
    tags=["invoices"],
    openapi_extra=body_schema(InvoiceCreate),
)
async def create_invoice(request: Request) -> Response:
    """Create an open invoice for a customer."""
    state = service.service_of(request)
    invoice, body = await read_body(request, InvoiceCreate)

    def apply() -> service.WriteResult:
        if live_customer(state.conn, invoice.customer) is None:
            return 400, no_such("customer", invoice.customer)
        now = service.write_now(state.conn, "invoices")
        record = {
            "id": "in_" + secrets.token_hex(8),
            "object": "invoice",
            "customer": invoice.customer,
            "currency": invoice.currency,
            "amount_due": invoice.amount_due,
            "amount_paid": 0,
            "status": "open",
            "metadata": invoice.metadata or {},
            "created": clock.billing_time(now),
            "updated": clock.billing_time(now),
            "due_date": invoice.due_date,
        }
        return created(state.conn, "invoices", record, now)

    return idempotent_write(request, body, apply, "invoice.created")


@router.post("/v1/invoices/{invoice_id}/pay", dependencies=[Depends(authorize)], tags=["invoices"])
async def pay_invoice(request: Request, invoice_id: str = PathParam(max_length=60)) -> Response:
    """Mark an open invoice paid in full (Stripe's /pay)."""
    state = service.service_of(request)
    body = (await request.body()).decode("utf-8", errors="replace")

    def apply() -> service.WriteResult:
        found = storage.get(state.conn, "invoices", invoice_id)
        if found is None:
            return 404, no_such("invoice", invoice_id)
        record = found[1]
        if record["status"] != "open":
            return 400, stripe_error(f"Invoice is {record['status']}, not open")
        record.update(status="paid", amount_paid=record["amount_due"])
        return updated(state.conn, "invoices", invoice_id, record)

    return idempotent_write(request, body, apply, "invoice.paid")


@router.post(
    "/v1/payments",
    dependencies=[Depends(authorize)],
    tags=["payments"],
    openapi_extra=body_schema(PaymentIn),
)
async def create_payment(request: Request) -> Response:
    """Record a payment; with `Idempotency-Key` a retried request never pays twice."""
    state = service.service_of(request)
    payment, body = await read_body(request, PaymentIn)

    def apply() -> service.WriteResult:
        if live_customer(state.conn, payment.customer) is None:
            return 400, no_such("customer", payment.customer)
        if (
            payment.invoice is not None
            and storage.get(state.conn, "invoices", payment.invoice) is None
        ):
            return 400, no_such("invoice", payment.invoice)
        now = service.write_now(state.conn, "payments")
        record = payment_record(
            "py_" + secrets.token_hex(8),
            payment.customer,
            payment.invoice,
            payment.amount,
            payment.currency,
            "succeeded",
            now,
            now,
        )
        return created(state.conn, "payments", record, now)

    return idempotent_write(request, body, apply, "payment.created")
