"""Set-based comparison SQL: every system's copy of an entity against its canonical record.

Generated from entities.yml and run inside PostgreSQL; it must never pull rows into Python
and never compare composite keys by concatenating them (keys are compared as row tuples).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tieout.config import Entity, EntityField, is_identifier
from tieout.reconcile import statements
from tieout.reconcile.statements import literal

TEXT_TYPES = ("text", "character varying", "character", "unknown")
KINDS = ("missing_in_system", "extra_in_system", "value_mismatch", "duplicate_key", "null_key")

# the temporary table every entity's findings of this run land in before they are merged
CURRENT_TABLE = "recon_current"
CURRENT_COLUMNS = (
    "entity",
    "kind",
    "system",
    "field",
    "finding_key",
    "entity_key",
    "entity_ref",
    "system_keys",
    "source_of_truth",
    "canonical_value",
    "system_value",
    "currency",
    "money_impact",
)
CREATE_CURRENT = f"""
create temporary table if not exists {CURRENT_TABLE} (
    entity          text    not null,
    kind            text    not null,
    system          text    not null,
    field           text    not null,
    finding_key     jsonb   not null,
    entity_key      jsonb,
    entity_ref      text,
    system_keys     jsonb   not null,
    source_of_truth text,
    canonical_value text,
    system_value    text,
    currency        text,
    money_impact    numeric
) on commit drop
"""


class PlanError(ValueError):
    """The entity cannot be compared as configured (a name or column problem)."""


def ident(name: str, what: str) -> str:
    if not is_identifier(name):
        raise PlanError(f"{what} {name!r} is not a plain lower-case SQL identifier")
    return name


def default_relations(entity: Entity) -> tuple[str, str]:
    """The canonical table and by-system model: canonical.X and intermediate.int_X_by_system."""
    table = entity.table.split(".")[-1]
    return entity.table, f"intermediate.int_{table}_by_system"


@dataclass(frozen=True)
class ComparedField:
    name: str
    spec: EntityField
    systems: tuple[str, ...]  # the systems whose copy is compared with canonical
    canonical_type: str
    system_type: str


@dataclass(frozen=True)
class Plan:
    """What one entity's comparison reads, knows about its columns, and compares."""

    entity: str
    spec: Entity
    canonical: str
    by_system: str
    canonical_columns: Mapping[str, str]
    by_system_columns: Mapping[str, str]
    key: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        for relation in (self.canonical, self.by_system):
            schema, _, table = relation.partition(".")
            if not (is_identifier(schema) and is_identifier(table)):
                raise PlanError(f"{self.entity}: relation {relation!r} is not schema.table")
        key = tuple(ident(part.strip(), "key column") for part in self.spec.key.split(","))
        object.__setattr__(self, "key", key)
        for column in key:
            for relation, columns in (
                (self.canonical, self.canonical_columns),
                (self.by_system, self.by_system_columns),
            ):
                if column not in columns:
                    raise PlanError(f"{self.entity}: {relation} has no key column {column!r}")
        for column in ("system", "system_key"):
            if column not in self.by_system_columns:
                raise PlanError(f"{self.entity}: {self.by_system} has no column {column!r}")

    @property
    def systems(self) -> tuple[str, ...]:
        return tuple(ident(system, "system") for system in self.spec.systems)

    @property
    def fields(self) -> list[ComparedField]:
        compared = []
        for name, spec in self.spec.fields.items():
            ident(name, "field")
            if name in self.key or name not in self.canonical_columns:
                continue
            if name not in self.by_system_columns:
                continue
            systems = tuple(
                s for s in self.systems if s in spec.names and s != spec.source_of_truth
            )
            if systems:
                compared.append(
                    ComparedField(
                        name,
                        spec,
                        systems,
                        self.canonical_columns[name],
                        self.by_system_columns[name],
                    )
                )
        return compared

    @property
    def skipped_fields(self) -> list[str]:
        """Fields some system names but that one side's table does not carry."""
        return [
            name
            for name, spec in self.spec.fields.items()
            if len(spec.names) > 1
            and name not in self.key
            and (name not in self.canonical_columns or name not in self.by_system_columns)
        ]

    @property
    def entity_ref(self) -> str:
        """How finance recognises the record: the master system's id, else the key itself."""
        column = f"{self.spec.master}_id"
        if column in self.canonical_columns and column not in self.key:
            return f"cast({column} as text)"
        return concat_display(self.key)

    def money_column(self, columns: Mapping[str, str]) -> str | None:
        name = self.spec.money_field
        return name if name and name in columns else None

    def currency_column(self, columns: Mapping[str, str]) -> str | None:
        name = self.spec.currency_field
        return name if name and name in columns else None


def concat_display(key: tuple[str, ...]) -> str:
    """A human-readable label for a key (display only; keys are never compared this way)."""
    if len(key) == 1:
        return f"cast({key[0]} as text)"
    return "concat_ws(' / ', " + ", ".join(key) + ")"


# ---------------------------------------------------------------- tolerance as SQL


def is_text(column_type: str) -> bool:
    return column_type.lower() in TEXT_TYPES


def as_numeric(expression: str, column_type: str) -> str:
    if is_text(column_type):
        return f"cast(nullif(btrim({expression}), '') as numeric)"
    return f"cast({expression} as numeric)"


def record_amount(money: str | None, columns: Mapping[str, str]) -> str:
    """A record's money column as `record_amount`, null when the entity has none."""
    amount = as_numeric(money, columns[money]) if money else "cast(null as numeric)"
    return f"{amount} as record_amount"


def as_timestamptz(expression: str, column_type: str) -> str:
    """Timestamps as absolute instants; naive values are taken as UTC (the session zone)."""
    kind = column_type.lower()
    if kind == "timestamp with time zone":
        return expression
    if kind == "timestamp without time zone":
        return f"({expression} at time zone 'UTC')"
    if kind == "date":
        return f"cast({expression} as timestamp) at time zone 'UTC'"
    return f"cast(nullif(btrim({expression}), '') as timestamptz)"


def normalized(
    expression: str, spec: EntityField, column_type: str, currency: str | None = None
) -> str:
    """The SQL that puts one side's value in the form both sides are compared in."""
    rules = spec.tolerance
    if spec.type in ("text", "currency"):
        value = f"cast({expression} as text)"
        if rules.digits_only:
            value = f"regexp_replace({value}, '[^0-9]', '', 'g')"
        if rules.collapse_whitespace:
            value = f"regexp_replace({value}, '\\s+', ' ', 'g')"
        if rules.trim or rules.collapse_whitespace:
            value = f"btrim({value}, E' \\t\\r\\n')"
        if rules.case_insensitive:
            value = f"lower({value})"
        if rules.null_equals_empty:
            value = f"nullif({value}, '')"
        return value
    if spec.type == "money":
        value = as_numeric(expression, column_type)
        if rules.money_minor_units:
            digits = f"recon.minor_units({currency})" if currency else "2"
            value = f"round({value}, {digits})"
        return value
    if spec.type in ("integer", "numeric"):
        return as_numeric(expression, column_type)
    if spec.type == "boolean":
        if is_text(column_type):
            return f"cast(nullif(btrim({expression}), '') as boolean)"
        return f"cast({expression} as boolean)"
    if spec.type == "date":
        if column_type.lower() == "date":
            return expression
        if is_text(column_type):
            return f"cast(nullif(btrim({expression}), '') as date)"
        instant = as_timestamptz(expression, column_type)
        return f"cast({instant} at time zone {literal(rules.timezone)} as date)"
    # timestamp: cut to the configured precision in the configured zone
    instant = as_timestamptz(expression, column_type)
    if rules.timestamp_precision == "day":
        return f"cast({instant} at time zone {literal(rules.timezone)} as date)"
    return (
        f"date_trunc({literal(rules.timestamp_precision)}, "
        f"{instant} at time zone {literal(rules.timezone)})"
    )


def differs(canonical: str, system: str, spec: EntityField) -> str:
    """True when two normalised values disagree (nulls equal nulls; -0 equals 0 as numbers)."""
    absolute = spec.tolerance.absolute
    if absolute is not None and spec.type in ("money", "integer", "numeric"):
        return (
            f"coalesce(abs({canonical} - {system}) > {absolute!r}, "
            f"({canonical} is null) <> ({system} is null))"
        )
    return f"{canonical} is distinct from {system}"


def raw_differs(f: ComparedField) -> str:
    """A cheap first test: values equal as stored are equal after any tolerance rule, so the
    normalising expressions only run on the few pairs whose stored values differ."""
    canonical, system = f"canonical.{f.name}", f"copies.{f.name}"
    if f.canonical_type != f.system_type:
        canonical, system = f"cast({canonical} as text)", f"cast({system} as text)"
    return f"{canonical} is distinct from {system}"


def impact_mode(name: str, spec: EntityField, entity: Entity) -> str:
    if spec.money_impact is not None:
        return spec.money_impact
    if name == entity.money_field:
        return "difference"
    if name == entity.currency_field:
        return "amount"
    return "none"


# ---------------------------------------------------------------- the statement


def findings_sql(plan: Plan) -> str:
    """One INSERT of every difference of one entity into the run's temporary findings table.

    One pass over the system copies, hashed against canonical, finds extra records and value
    mismatches; missing records come from canonical's per-system ids when it carries them (the
    by-system contract) or else from an anti-join; duplicates from the ranks of the copies.
    The statement is sql/current_findings.sql.j2; this function works out the names and the
    tolerance expressions it is rendered with.
    """
    key = plan.key
    canonical_currency = plan.currency_column(plan.canonical_columns)
    canonical_money = plan.money_column(plan.canonical_columns)
    copy_currency = plan.currency_column(plan.by_system_columns)
    copy_money = plan.money_column(plan.by_system_columns)
    system_ids = {s: f"{s}_id" for s in plan.systems}
    ids_known = all(
        column in plan.canonical_columns and column not in key for column in system_ids.values()
    )

    canonical_select = [
        *key,
        f"{plan.entity_ref} as entity_ref",
        (f"cast({canonical_currency} as text)" if canonical_currency else "cast(null as text)")
        + " as record_currency",
        record_amount(canonical_money, plan.canonical_columns),
        *([f"cast({c} as text) as {c}" for c in system_ids.values()] if ids_known else []),
        *[f.name for f in plan.fields],
    ]
    rank = (
        "duplicate_rank"
        if "duplicate_rank" in plan.by_system_columns
        else f"row_number() over (partition by {', '.join(key)}, system order by system_key)"
    )
    copy_record = [
        (f"upper(cast({copy_currency} as text))" if copy_currency else "cast(null as text)")
        + " as record_currency",
        record_amount(copy_money, plan.by_system_columns),
    ]
    copies_select = [
        *key,
        "system",
        "cast(system_key as text) as system_key",
        f"{rank} as duplicate_rank",
        *copy_record,
        *[f.name for f in plan.fields],
    ]
    return statements.render(
        "current_findings",
        current_table=CURRENT_TABLE,
        current_columns=CURRENT_COLUMNS,
        entity=plan.entity,
        master=plan.spec.master,
        key=key,
        canonical=plan.canonical,
        by_system=plan.by_system,
        systems=", ".join(literal(s) for s in plan.systems),
        system_list=plan.systems,
        system_ids=system_ids if ids_known else {},
        canonical_select=canonical_select,
        copies_select=copies_select,
        copy_record=copy_record,
        compared=[comparison(plan, f) for f in plan.fields],
    )


def comparison(plan: Plan, f: ComparedField) -> dict[str, object]:
    """How one field is compared: the tests that make it differ and its money impact."""
    # the currency a value is rounded in: the canonical record's, else the copy's
    rounding = "coalesce(canonical.record_currency, copies.record_currency)"
    canonical_value = normalized(f"canonical.{f.name}", f.spec, f.canonical_type, rounding)
    system_value = normalized(f"copies.{f.name}", f.spec, f.system_type, rounding)
    in_scope = "copies.system in (" + ", ".join(literal(s) for s in f.systems) + ")"
    tests = [f"canonical.{plan.key[0]} is not null and copies.duplicate_rank = 1", in_scope]
    tests.append(raw_differs(f))
    if (canonical_value, system_value) != (f"canonical.{f.name}", f"copies.{f.name}"):
        tests.append(differs(canonical_value, system_value, f.spec))
    mode = impact_mode(f.name, f.spec, plan.spec)
    if mode == "difference" and f.spec.type in ("money", "integer", "numeric"):
        impact = f"abs({canonical_value} - {system_value})"
    elif mode in ("amount", "difference"):
        impact = "canonical.record_amount"
    else:
        impact = "cast(null as numeric)"
    return {
        "name": f.name,
        "source_of_truth": f.spec.source_of_truth,
        "tests": tests,
        "impact": impact,
    }
