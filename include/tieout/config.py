"""Typed configuration for sources, entities and reverse ETL, checked before anything runs.

A bad file stops tieout with the file, the key path and what was expected; nothing
is written to any database or system before every file has passed.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tieout.paths import config_dir

# libyaml's safe loader where PyYAML has it: about 5x faster (config files, dbt model YAML)
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# PostgreSQL keeps the first 63 bytes of a name (NAMEDATALEN - 1) and silently drops the rest
MAX_NAME_BYTES = 63
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
RECORD_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# a path into an API record: `a.b`, or `items[].sku` for a field of every element of a list
RECORD_PATH = re.compile(rf"{RECORD_NAME}(?:\.{RECORD_NAME})*(?:\[\](?:\.{RECORD_NAME})+)?")
# how a system names a field: record paths joined by ||, with 'quoted text' between them
TEXT_LITERAL = re.compile(r"'[^'\\]*'")
IDENTIFIER_EXPECTED = (
    f"a lowercase SQL name (a letter or _, then letters, digits or _; at most {MAX_NAME_BYTES} "
    "bytes)"
)
DURATION = re.compile(r"^(\d+)\s*(s|m|h|d)$")
FIELD_TYPES = ("text", "money", "integer", "numeric", "boolean", "date", "timestamp", "currency")


class ConfigError(ValueError):
    """One or more configuration problems, each naming the file and the key path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def is_identifier(value: str) -> bool:
    """Whether tieout may write `value` into SQL as a name: lower-case letters, digits and _,
    not starting with a digit, and short enough that PostgreSQL keeps all of it."""
    return bool(IDENTIFIER.fullmatch(value)) and len(value.encode()) <= MAX_NAME_BYTES


def check_identifier(value: str) -> str:
    """A name tieout writes into SQL (table, column, schema, system): letters, digits, _ only."""
    if not is_identifier(value):
        raise ValueError(f"expected {IDENTIFIER_EXPECTED}, got {value!r}")
    return value


def check_table(value: str) -> str:
    """`schema.table`, each part a SQL name."""
    parts = value.split(".")
    if len(parts) != 2 or not all(is_identifier(p) for p in parts):
        raise ValueError(f"expected schema.table, each {IDENTIFIER_EXPECTED}, got {value!r}")
    return value


def check_key_columns(value: str) -> str:
    """The canonical key: one column, or several separated by commas (compared as a tuple)."""
    for part in value.split(","):
        part = part.strip()
        if not is_identifier(part):
            raise ValueError(
                f"expected {IDENTIFIER_EXPECTED}, or several separated by commas, got {value!r}"
            )
    return value


def check_record_path(value: str) -> str:
    if not RECORD_PATH.fullmatch(value):
        raise ValueError(
            "expected a record path like 'email', 'address.city' or 'variants[].sku' "
            f"(names of letters, digits or _), got {value!r}"
        )
    return value


def check_name_expression(value: str) -> str:
    """`email`, or `first_name || ' ' || last_name`: record paths and quoted text joined by ||."""
    parts = [part.strip() for part in value.split("||")]
    if (
        not parts
        or not all(RECORD_PATH.fullmatch(p) or TEXT_LITERAL.fullmatch(p) for p in parts)
        or not any(RECORD_PATH.fullmatch(p) for p in parts)
    ):
        raise ValueError(
            "expected record paths joined by ||, with optional 'quoted text' between them "
            f"(like first_name || ' ' || last_name), got {value!r}"
        )
    return value


Identifier = Annotated[str, AfterValidator(check_identifier)]
TableName = Annotated[str, AfterValidator(check_table)]
KeyColumns = Annotated[str, AfterValidator(check_key_columns)]
RecordPath = Annotated[str, AfterValidator(check_record_path)]
NameExpression = Annotated[str, AfterValidator(check_name_expression)]


def parse_duration(value: str | int) -> int:
    """'10m' -> 600 seconds; a bare integer is seconds."""
    if isinstance(value, int):
        return value
    match = DURATION.match(value.strip())
    if not match:
        raise ValueError(f"expected a duration like '30s', '10m', '2h' or '1d', got {value!r}")
    amount, unit = int(match.group(1)), match.group(2)
    return amount * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


# ---------------------------------------------------------------- sources


class ApiKeyAuth(Strict):
    kind: Literal["api_key"]
    header: str = "X-API-Key"


class BearerAuth(Strict):
    kind: Literal["bearer"]


class HeaderTokenAuth(Strict):
    kind: Literal["header_token"]
    header: str


class BasicAuth(Strict):
    kind: Literal["basic"]


class OAuth2ClientCredentials(Strict):
    kind: Literal["oauth2_client_credentials"]
    token_url: str
    scope: str | None = None
    refresh_margin_s: int = Field(default=60, ge=0)


class NoAuth(Strict):
    kind: Literal["none"]


Auth = Annotated[
    ApiKeyAuth | BearerAuth | HeaderTokenAuth | BasicAuth | OAuth2ClientCredentials | NoAuth,
    Field(discriminator="kind"),
]


class OffsetPaginator(Strict):
    kind: Literal["offset"]
    offset_param: str = "offset"
    limit_param: str = "limit"
    total_path: str | None = None


class PageNumberPaginator(Strict):
    kind: Literal["page_number"]
    page_param: str = "page"
    size_param: str = "per_page"
    first_page: int = 1
    total_pages_path: str | None = None


class BodyCursorPaginator(Strict):
    kind: Literal["body_cursor"]
    cursor_path: str
    cursor_param: str


class StartingAfterPaginator(Strict):
    kind: Literal["starting_after"]
    param: str = "starting_after"
    has_more_path: str = "has_more"
    id_field: str = "id"
    limit_param: str = "limit"


class LinkHeaderPaginator(Strict):
    kind: Literal["link_header"]
    limit_param: str = "limit"


class SinglePage(Strict):
    kind: Literal["none"]


Paginator = Annotated[
    OffsetPaginator
    | PageNumberPaginator
    | BodyCursorPaginator
    | StartingAfterPaginator
    | LinkHeaderPaginator
    | SinglePage,
    Field(discriminator="kind"),
]


class Incremental(Strict):
    """How to ask the API for records changed since the cursor."""

    param: str
    format: Literal["iso", "epoch", "date"] = "iso"
    cursor_timezone: str = "UTC"


class RateLimit(Strict):
    requests_per_second: float = Field(default=10.0, gt=0)
    burst: int = Field(default=10, ge=1)
    max_concurrency: int = Field(default=2, ge=1)


class Freshness(Strict):
    """How old the newest record (the stream's cursor) may get: degraded after `warn_after`,
    failing after `error_after` (dbt's source freshness, for the API instead of the table)."""

    warn_after: str | int | None = None
    error_after: str | int | None = None

    @field_validator("warn_after", "error_after")
    @classmethod
    def _is_duration(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _error_after_warn(self) -> Freshness:
        if self.warn_after is None and self.error_after is None:
            raise ValueError("expected warn_after, error_after or both")
        warn, error = self.seconds()
        if warn is not None and error is not None and error <= warn:
            raise ValueError(
                f"error_after ({self.error_after}) must be longer than "
                f"warn_after ({self.warn_after})"
            )
        return self

    def seconds(self) -> tuple[int | None, int | None]:
        """(warn, error) in seconds; None where not set."""
        warn, error = self.warn_after, self.error_after
        return (
            parse_duration(warn) if warn is not None else None,
            parse_duration(error) if error is not None else None,
        )


class Stream(Strict):
    name: Identifier
    path: str
    records_path: str | None = None
    primary_key: list[RecordPath] = Field(min_length=1)
    cursor_field: RecordPath | None = None
    paginator: Paginator | None = None
    incremental: Incremental | None = None
    page_size: int | None = Field(default=None, ge=1, le=10_000)
    lookback: str | int | None = None
    params: dict[str, str | int | bool] = Field(default_factory=dict)
    deletion_scan: bool = False
    # the source's max_quarantined_share for this stream
    max_quarantined_share: float | None = Field(default=None, ge=0, le=1)
    freshness: Freshness | None = None  # overrides the source's

    @field_validator("path")
    @classmethod
    def _path_starts_with_slash(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"expected a path starting with '/', got {value!r}")
        return value

    @field_validator("lookback")
    @classmethod
    def _lookback_is_duration(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _incremental_needs_cursor(self) -> Stream:
        if self.incremental is not None and self.cursor_field is None:
            raise ValueError("incremental reads need a cursor_field")
        return self


HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
MAX_WEBHOOK_TOLERANCE_S = 300
DEFAULT_SIGNATURE_HEADERS = {"stripe": "Stripe-Signature", "hex": "X-Signature-256"}


class Webhook(Strict):
    """How a source signs the events it pushes to `tieout webhooks serve` (docs/webhooks.md).

    The secret is read from an Airflow connection's extra, never from this file.
    """

    scheme: Literal["stripe", "hex"]
    connection_id: str | None = None  # default: the source's own connection
    secret_field: str = "webhook_secret"
    signature_header: str | None = None  # default: Stripe-Signature or X-Signature-256
    hex_prefix: str = ""  # hex only, e.g. "sha256="
    timestamp_path: str | None = None  # hex only, required: the signed body's event time (epoch s)
    tolerance: str | int = "5m"
    id_path: str = "id"
    type_path: str = "type"
    object_id_path: str | None = "data.object.id"
    streams: dict[str, str] = Field(default_factory=dict)  # event type prefix -> stream
    debounce_s: float = Field(default=1.0, ge=0, le=300)

    @field_validator("signature_header")
    @classmethod
    def _header_name(cls, value: str | None) -> str | None:
        if value is not None and not HEADER_NAME.match(value):
            raise ValueError(f"expected an HTTP header name like 'X-Signature', got {value!r}")
        return value

    @field_validator("tolerance")
    @classmethod
    def _tolerance_at_most_five_minutes(cls, value: str | int) -> str | int:
        seconds = parse_duration(value)
        if not 0 < seconds <= MAX_WEBHOOK_TOLERANCE_S:
            raise ValueError(f"expected a duration from 1s to 5m, got {value!r}")
        return value

    @model_validator(mode="after")
    def _scheme_fields(self) -> Webhook:
        if self.scheme == "hex" and not self.timestamp_path:
            raise ValueError(
                "scheme 'hex' needs timestamp_path: the signed body's event time, "
                "so old events can be refused"
            )
        if self.scheme == "stripe" and (self.hex_prefix or self.timestamp_path):
            raise ValueError(
                "hex_prefix and timestamp_path are for scheme 'hex'; 'stripe' signs "
                "the time in its header"
            )
        return self

    @property
    def header(self) -> str:
        return self.signature_header or DEFAULT_SIGNATURE_HEADERS[self.scheme]

    @property
    def tolerance_s(self) -> int:
        return parse_duration(self.tolerance)


class Source(Strict):
    name: Identifier
    base_url: str
    connection_id: str
    auth: Auth
    paginator: Paginator = Field(default_factory=lambda: SinglePage(kind="none"))
    page_size: int = Field(default=100, ge=1, le=10_000)
    lookback: str | int = "10m"
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    timeout_s: float = Field(default=30.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    max_retries: int = Field(default=5, ge=0)
    backoff_base_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    circuit_breaker_failures: int = Field(default=10, ge=1)
    commit_every_rows: int = Field(default=10_000, ge=1)
    # a stream whose run quarantines more than this share of its records fails (see extract)
    max_quarantined_share: float = Field(default=0.5, ge=0, le=1)
    freshness: Freshness | None = None
    streams: list[Stream] = Field(min_length=1)
    webhook: Webhook | None = None
    # where a person opens one record of an entity in this system (the drift report links to
    # it): an http(s) URL or a path under base_url, with {key} for the system's record key
    record_urls: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name_keeps_tables_apart(cls, value: str) -> str:
        if "__" in value:
            raise ValueError(
                f"expected no '__' in a source name (raw tables are <source>__<stream>), "
                f"got {value!r}"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        if "@" in value.split("//", 1)[1].split("/", 1)[0]:
            raise ValueError("credentials must not be in base_url; use the Airflow connection")
        return value.rstrip("/")

    @field_validator("record_urls")
    @classmethod
    def _record_urls_have_a_key(cls, urls: dict[str, str]) -> dict[str, str]:
        for entity, template in urls.items():
            placeholders = set(re.findall(r"{([^{}]*)}", template))
            if placeholders != {"key"}:
                raise ValueError(
                    f"{entity}: expected a URL with exactly the placeholder {{key}}, "
                    f"got {template!r}"
                )
            if not (template.startswith("/") or re.match(r"^https?://[^/\s]+", template)):
                raise ValueError(
                    f"{entity}: expected an http(s) URL or a path starting with '/', "
                    f"got {template!r}"
                )
            if re.match(r"^https?://[^/]*@", template):
                raise ValueError(f"{entity}: credentials must not be in a record URL")
        return urls

    def record_url(self, entity: str, key: str) -> str | None:
        """The web address of one record of `entity` here, or None when none is configured."""
        template = self.record_urls.get(entity)
        if template is None or not key:
            return None
        url = template.replace("{key}", quote(str(key), safe=""))
        return self.base_url + url if url.startswith("/") else url

    @field_validator("lookback")
    @classmethod
    def _lookback_is_duration(cls, value: str | int) -> str | int:
        parse_duration(value)
        return value

    @field_validator("streams")
    @classmethod
    def _unique_streams(cls, streams: list[Stream]) -> list[Stream]:
        seen: set[str] = set()
        for stream in streams:
            if stream.name in seen:
                raise ValueError(f"stream {stream.name!r} is declared twice")
            seen.add(stream.name)
        return streams

    def stream(self, name: str) -> Stream:
        for stream in self.streams:
            if stream.name == name:
                return stream
        raise KeyError(f"source {self.name!r} has no stream {name!r}")


# ---------------------------------------------------------------- entities


class Tolerance(Strict):
    case_insensitive: bool = False
    trim: bool = True
    collapse_whitespace: bool = False
    null_equals_empty: bool = True
    money_minor_units: bool = True
    timestamp_precision: Literal["second", "millisecond", "minute", "day"] = "second"
    absolute: float | None = Field(default=None, ge=0)
    digits_only: bool = False
    timezone: str = "UTC"  # where a day starts when timestamps are cut to `day` precision


class EntityField(Strict):
    type: Literal["text", "money", "integer", "numeric", "boolean", "date", "timestamp", "currency"]
    source_of_truth: Identifier
    names: dict[Identifier, NameExpression] = Field(min_length=1)
    tolerance: Tolerance = Field(default_factory=Tolerance)
    description: str = ""
    # money a mismatch of this field touches: the difference, the record's amount, or none
    # (default: difference for the money field, amount for the currency field, none otherwise)
    money_impact: Literal["difference", "amount", "none"] | None = None


class EntitySystem(Strict):
    stream: Identifier
    key: RecordPath


class Entity(Strict):
    table: TableName
    key: KeyColumns
    master: Identifier
    description: str = ""
    currency_field: Identifier | None = None
    money_field: Identifier | None = None
    systems: dict[Identifier, EntitySystem] = Field(min_length=1)
    fields: dict[Identifier, EntityField] = Field(min_length=1)

    @model_validator(mode="after")
    def _systems_are_consistent(self) -> Entity:
        problems: list[str] = []  # every one of them, a line each (format_errors splits them)
        systems = ", ".join(sorted(self.systems))
        if self.master not in self.systems:
            problems.append(
                f"master {self.master!r} is not one of this entity's systems ({systems})"
            )
        for name, spec in self.fields.items():
            if spec.source_of_truth not in self.systems:
                problems.append(
                    f"fields.{name}.source_of_truth: {spec.source_of_truth!r} is not one of "
                    f"this entity's systems ({systems})"
                )
            elif spec.source_of_truth not in spec.names:
                problems.append(
                    f"fields.{name}.names: the source of truth {spec.source_of_truth!r} "
                    "must name the field"
                )
            for system in spec.names:
                if system not in self.systems:
                    problems.append(
                        f"fields.{name}.names.{system}: {system!r} is not one of this "
                        "entity's systems"
                    )
        for attr in ("currency_field", "money_field"):
            value = getattr(self, attr)
            if value is not None and value not in self.fields:
                problems.append(f"{attr}: {value!r} is not a field of this entity")
        if problems:
            raise ValueError("\n".join(problems))
        return self


class Entities(Strict):
    entities: dict[Identifier, Entity] = Field(min_length=1)


# ---------------------------------------------------------------- reverse ETL


class BrakeWindow(Strict):
    """Records written per target and field over the last `hours`, across runs."""

    hours: float = Field(gt=0)
    max_share: float = Field(gt=0, le=1)


def _default_windows() -> list[BrakeWindow]:
    return [BrakeWindow(hours=24, max_share=0.2), BrakeWindow(hours=168, max_share=0.25)]


class SafetyBrake(Strict):
    max_share: float = Field(default=0.2, gt=0, le=1)
    min_rows: int = Field(default=20, ge=0)
    windows: list[BrakeWindow] = Field(default_factory=_default_windows)


class ChangeRate(Strict):
    """The share of rows whose written field may change between two validated builds before
    the validation fails critically; `fields` overrides it per `entity.field`."""

    max_share: float = Field(default=0.02, ge=0, le=1)
    fields: dict[str, float] = Field(default_factory=dict)

    def limit(self, entity: str, field: str) -> float:
        return self.fields.get(f"{entity}.{field}", self.max_share)


class Target(Strict):
    system: Identifier
    entity: Identifier
    mode: Literal["update", "upsert"] = "update"
    fields: list[Identifier] = Field(min_length=1)
    batch_size: int | None = Field(default=None, ge=1, le=10_000)
    rate_limit_rps: float | None = Field(default=None, gt=0)
    safety_brake: SafetyBrake | None = None
    method: Literal["PATCH", "PUT", "POST"]
    path: str
    body: dict[str, Any] = Field(default_factory=dict)
    idempotency_header: str | None = None
    read_before_write: bool = False
    # fields the target must never be sent empty (validation checks them not null)
    required: list[str] = Field(default_factory=list)
    # where the record is read back (default `path`); PUT of a full record merges the read one
    read_path: str | None = None
    merge_current: bool = False
    # canonical value -> the target's vocabulary, per field; then a conversion per field
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    convert: dict[str, Literal["lower", "upper", "minor_units", "berlin_midnight_epoch"]] = Field(
        default_factory=dict
    )


class ReverseEtl(Strict):
    enabled: bool = True
    batch_size: int = Field(default=50, ge=1, le=10_000)
    max_attempts: int = Field(default=5, ge=1)
    safety_brake: SafetyBrake = Field(default_factory=SafetyBrake)
    change_rate: ChangeRate = Field(default_factory=ChangeRate)
    targets: list[Target] = Field(default_factory=list)


# ---------------------------------------------------------------- loading


class Config(BaseModel):
    """Everything under include/config/, cross-checked."""

    model_config = ConfigDict(frozen=True)

    sources: dict[str, Source]
    entities: dict[str, Entity]
    reverse_etl: ReverseEtl
    files: dict[str, Path] = Field(default_factory=dict)


UNION_TAGS = {
    "api_key",
    "bearer",
    "header_token",
    "basic",
    "oauth2_client_credentials",
    "none",
    "offset",
    "page_number",
    "body_cursor",
    "starting_after",
    "link_header",
}


def _is_internal_loc(item: Any, parts: list[str]) -> bool:
    """pydantic puts union tags and validator names in error locations; users never wrote them."""
    if item in FIELD_TYPES or str(item).startswith(("function-", "tagged-union")):
        return True
    return item in UNION_TAGS and bool(parts) and parts[-1].endswith(("auth", "paginator"))


def _key_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if item == "[key]":  # a mapping's key itself is wrong: the path already ends with it
            continue
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif not _is_internal_loc(item, parts):
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    msg = str(error["msg"])
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key (check the spelling)"
    if kind == "union_tag_invalid":
        expected = error.get("ctx", {}).get("expected_tags", "")
        found = error.get("ctx", {}).get("tag", "")
        return f"unknown kind {found!r}; expected one of {expected}"
    if kind == "union_tag_not_found":
        return "required key 'kind' is missing"
    return msg.removeprefix("Value error, ")


def format_errors(path: Path, exc: ValidationError, prefix: tuple[Any, ...] = ()) -> list[str]:
    """One line per problem; a validator that found several returns them a line each."""
    return [
        f"{path}: {_key_path(prefix + tuple(err['loc']))}: {line}"
        for err in exc.errors()
        for line in _message(dict(err)).splitlines()
    ]


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except PermissionError:
        raise ConfigError([f"{path}: cannot read the file (permission denied)"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory, expected a YAML file"]) from None
    try:
        try:
            data = yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - a safe loader
        except yaml.YAMLError:
            data = yaml.safe_load(text)  # fails again, in the pure-Python parser's clearer words
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{path}: invalid YAML at {where}: {problem}"]) from None
    if not isinstance(data, dict):
        raise ConfigError(
            [f"{path}: expected a mapping at the top level, got {type(data).__name__}"]
        )
    return data


def raw_table_problems(path: Path, data: dict[str, Any]) -> list[str]:
    """Streams whose raw table name PostgreSQL would cut to 63 bytes (two such can share one).

    Read from the file as written, so it is reported beside any other problem of the file.
    """
    name = data.get("name")
    source = name if isinstance(name, str) else path.stem
    streams = data.get("streams")
    if not isinstance(streams, list):
        return []
    tables = {
        index: f"{source}__{stream['name']}"
        for index, stream in enumerate(streams)
        if isinstance(stream, dict) and isinstance(stream.get("name"), str)
    }
    problems: list[str] = []
    for index, table in tables.items():
        size = len(table.encode())
        if size <= MAX_NAME_BYTES:
            continue
        cut = table.encode()[:MAX_NAME_BYTES]
        others = [
            f"streams[{other}] ({name!r})"
            for other, name in tables.items()
            if other != index and name.encode()[:MAX_NAME_BYTES] == cut
        ]
        fate = (
            f"it would load into the same table as {', '.join(others)}"
            if others
            else f"PostgreSQL would cut it to {cut.decode(errors='ignore')!r}"
        )
        problems.append(
            f"{path}: streams[{index}].name: raw table {table!r} is {size} bytes, longer than "
            f"the {MAX_NAME_BYTES} PostgreSQL keeps: {fate}; expected <source>__<stream> of "
            f"at most {MAX_NAME_BYTES} bytes"
        )
    return problems


def load_source(path: Path) -> Source:
    data = read_yaml(path)
    problems = raw_table_problems(path, data)
    try:
        source = Source.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_errors(path, exc) + problems) from None
    if source.webhook is not None:
        names = [stream.name for stream in source.streams]
        problems.extend(
            f"{path}: webhook.streams.{prefix}: no stream {stream!r} "
            f"(expected one of {', '.join(names)})"
            for prefix, stream in source.webhook.streams.items()
            if stream not in names
        )
    if source.name != path.stem:
        problems.insert(
            0, f"{path}: name: expected {path.stem!r} (the file name), got {source.name!r}"
        )
    if problems:
        raise ConfigError(problems)
    return source


def load_config(directory: Path | None = None) -> Config:
    """Load and cross-check every config file; raise ConfigError listing every problem."""
    directory = directory or config_dir()
    if not directory.is_dir():
        raise ConfigError([f"{directory}: config folder not found"])
    problems: list[str] = []
    sources: dict[str, Source] = {}
    files: dict[str, Path] = {}
    for path in sorted((directory / "sources").glob("*.yml")):
        try:
            sources[path.stem] = load_source(path)
            files[f"sources/{path.name}"] = path
        except ConfigError as exc:
            problems.extend(exc.problems)

    entities_path = directory / "entities.yml"
    entities: dict[str, Entity] = {}
    try:
        entities = Entities.model_validate(read_yaml(entities_path)).entities
        files["entities.yml"] = entities_path
    except ConfigError as exc:
        problems.extend(exc.problems)
    except ValidationError as exc:
        problems.extend(format_errors(entities_path, exc))

    reverse_path = directory / "reverse_etl.yml"
    reverse = ReverseEtl()
    try:
        reverse = ReverseEtl.model_validate(read_yaml(reverse_path))
        files["reverse_etl.yml"] = reverse_path
    except ConfigError as exc:
        problems.extend(exc.problems)
    except ValidationError as exc:
        problems.extend(format_errors(reverse_path, exc))

    if not problems:
        problems.extend(_cross_check(sources, entities, reverse, entities_path, reverse_path))
    if problems:
        raise ConfigError(problems)
    return Config(sources=sources, entities=entities, reverse_etl=reverse, files=files)


def _cross_check(
    sources: dict[str, Source],
    entities: dict[str, Entity],
    reverse: ReverseEtl,
    entities_path: Path,
    reverse_path: Path,
) -> list[str]:
    problems: list[str] = []
    for entity_name, entity in entities.items():
        for system, spec in entity.systems.items():
            where = f"{entities_path}: entities.{entity_name}.systems.{system}"
            if system not in sources:
                problems.append(
                    f"{where}: no source named {system!r} "
                    f"(expected one of {', '.join(sorted(sources)) or 'none'})"
                )
                continue
            names = [s.name for s in sources[system].streams]
            if spec.stream not in names:
                problems.append(
                    f"{where}.stream: source {system!r} has no stream {spec.stream!r} "
                    f"(expected one of {', '.join(names)})"
                )
    for name, source in sources.items():
        for entity_name in source.record_urls:
            if entity_name not in entities or name not in entities[entity_name].systems:
                holds = sorted(e for e, spec in entities.items() if name in spec.systems)
                problems.append(
                    f"{entities_path.parent / 'sources' / (name + '.yml')}: "
                    f"record_urls.{entity_name}: {name!r} holds no copy of "
                    f"{entity_name!r} (expected one of {', '.join(holds) or 'none'})"
                )
    for index, target in enumerate(reverse.targets):
        where = f"{reverse_path}: targets[{index}]"
        if target.mode == "upsert":
            problems.append(
                f"{where}.mode: 'upsert' is not supported yet: reverse ETL only corrects records "
                "the target already holds (a record missing from a system is listed for a "
                "person); use 'update'"
            )
        if target.entity not in entities:
            problems.append(
                f"{where}.entity: unknown entity {target.entity!r} "
                f"(expected one of {', '.join(sorted(entities))})"
            )
            continue
        entity = entities[target.entity]
        if target.system not in entity.systems:
            problems.append(
                f"{where}.system: {target.system!r} holds no copy of {target.entity!r} "
                f"(expected one of {', '.join(sorted(entity.systems))})"
            )
            continue
        for field in target.fields:
            if field not in entity.fields:
                problems.append(f"{where}.fields: {target.entity!r} has no field {field!r}")
            elif entity.fields[field].source_of_truth == target.system:
                problems.append(
                    f"{where}.fields: {field!r} must not be written to {target.system!r}, "
                    "which is its source of truth"
                )
            elif target.system not in entity.fields[field].names:
                problems.append(
                    f"{where}.fields: {target.system!r} does not hold {target.entity}.{field}"
                )
        for field in target.required:
            if field not in target.fields:
                problems.append(f"{where}.required: {field!r} is not one of the target's fields")
    for name in reverse.change_rate.fields:
        entity_name, _, field = name.partition(".")
        if entity_name not in entities or field not in entities[entity_name].fields:
            problems.append(
                f"{reverse_path}: change_rate.fields.{name}: expected entity.field of a "
                "canonical entity"
            )
    return problems


# ---------------------------------------------------------------- alerts (reconcile)


class AlertNotify(Strict):
    log: bool = True
    webhook_connection_id: str | None = None


class Threshold(Strict):
    """A share at or above `warn` is degraded, at or above `error` failing."""

    warn: float = Field(ge=0, le=1)
    error: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _error_above_warn(self) -> Threshold:
        if self.error < self.warn:
            raise ValueError(f"error ({self.error}) must be at least warn ({self.warn})")
        return self


class HealthRules(Strict):
    """What makes a source or reverse-ETL target degraded or failing (see tieout.health)."""

    # failed requests (4xx, 5xx, timeouts, connection errors; not 429s) per request
    error_rate: Threshold = Field(default_factory=lambda: Threshold(warn=0.05, error=0.25))
    # records quarantined per record read (targets: rows failed or dead per row sent)
    quarantine_share: Threshold = Field(default_factory=lambda: Threshold(warn=0.01, error=0.1))


class Alerts(Strict):
    """When a run's drift is big enough to mark the run and tell someone."""

    money_at_stake: dict[str, float] = Field(default_factory=dict)
    new_findings_share: float | None = Field(default=None, gt=0, le=1)
    min_new_findings: int = Field(default=1, ge=0)
    notify: AlertNotify = Field(default_factory=AlertNotify)
    health: HealthRules = Field(default_factory=HealthRules)
    # a finding open longer than this many days is prolonged divergence, per entity
    # (`default` for entities not listed; no entry and no default: never)
    divergence_days: dict[str, int] = Field(default_factory=dict)

    @field_validator("divergence_days")
    @classmethod
    def _positive_days(cls, value: dict[str, int]) -> dict[str, int]:
        for entity, days in value.items():
            if days < 1:
                raise ValueError(f"{entity}: expected a number of days >= 1, got {days}")
        return value

    def divergence_limit(self, entity: str) -> int | None:
        return self.divergence_days.get(entity, self.divergence_days.get("default"))

    @field_validator("money_at_stake")
    @classmethod
    def _currency_codes(cls, value: dict[str, float]) -> dict[str, float]:
        for currency, amount in value.items():
            if currency != "default" and not re.match(r"^[A-Z]{3}$", currency):
                raise ValueError(
                    f"expected ISO 4217 currency codes (or 'default') as keys, got {currency!r}"
                )
            if amount < 0:
                raise ValueError(f"{currency}: expected a threshold >= 0, got {amount}")
        return value

    def money_threshold(self, currency: str) -> float | None:
        return self.money_at_stake.get(currency.upper(), self.money_at_stake.get("default"))


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[str, ...] = (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
)  # fmt: skip


class Validation(Strict):
    """include/config/validation.yml: when the validate stage runs every suite on whole tables.

    On other nights it validates the rows that changed since each suite's last validation, plus
    the checks that need the whole table (counts, uniqueness, references, change rates)."""

    # nights (the run's logical date, UTC) on which every suite reads its whole table
    full_suites_on: list[Weekday] = Field(default_factory=lambda: list[Weekday](["monday"]))
    # more changed rows than this share of a table: validate the whole table instead
    max_changed_share: float = Field(default=0.5, gt=0, le=1)
    # the newest validations whose fingerprints (ops.validated_rows), GX results and Data Docs
    # pages are kept, besides each entity's last passing one; verdicts stay in the warehouse
    keep_validations: int = Field(default=14, ge=1)

    def full_on(self, day: date) -> bool:
        return WEEKDAYS[day.weekday()] in self.full_suites_on


def load_validation(directory: Path | None = None) -> Validation:
    """include/config/validation.yml; no file means the defaults (whole tables on Mondays)."""
    path = (directory or config_dir()) / "validation.yml"
    if not path.exists():
        return Validation()
    try:
        return Validation.model_validate(read_yaml(path) or {})
    except ValidationError as exc:
        raise ConfigError(format_errors(path, exc)) from None


def load_alerts(directory: Path | None = None) -> Alerts:
    """include/config/alerts.yml; no file means no thresholds."""
    path = (directory or config_dir()) / "alerts.yml"
    if not path.exists():
        return Alerts()
    try:
        return Alerts.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise ConfigError(format_errors(path, exc)) from None
