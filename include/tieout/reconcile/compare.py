"""Set-based comparison SQL: every system's copy of an entity against its canonical record.

Generated from entities.yml and run inside PostgreSQL; it must never pull rows into Python
and never compare composite keys by concatenating them (keys are compared as row tuples).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from tieout.config import Entity, EntityField

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
RELATION = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
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


def literal(value: str) -> str:
    """A SQL string literal for a name taken from config (never for data)."""
    return "'" + value.replace("'", "''") + "'"


def ident(name: str, what: str) -> str:
    if not IDENTIFIER.match(name):
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
            if not RELATION.match(relation):
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


def tuple_of(alias: str, key: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"{alias}.{column}" for column in key) + ")"


def key_object(alias: str, key: tuple[str, ...]) -> str:
    pairs = ", ".join(f"{literal(column)}, {alias}.{column}" for column in key)
    return f"jsonb_build_object({pairs})"


# ---------------------------------------------------------------- tolerance as SQL


def is_text(column_type: str) -> bool:
    return column_type.lower() in TEXT_TYPES


def as_numeric(expression: str, column_type: str) -> str:
    if is_text(column_type):
        return f"cast(nullif(btrim({expression}), '') as numeric)"
    return f"cast({expression} as numeric)"


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
    """One INSERT of every difference of one entity into the run's temporary findings table."""
    key = plan.key
    keys = ", ".join(key)
    systems = ", ".join(literal(s) for s in plan.systems)
    held = ", ".join(f"({literal(s)})" for s in plan.systems)
    compared = plan.fields
    entity = literal(plan.entity)

    canonical_currency = plan.currency_column(plan.canonical_columns)
    canonical_money = plan.money_column(plan.canonical_columns)
    copy_currency = plan.currency_column(plan.by_system_columns)
    copy_money = plan.money_column(plan.by_system_columns)
    has_rank = "duplicate_rank" in plan.by_system_columns

    canonical_select = [
        *key,
        f"{plan.entity_ref} as entity_ref",
        (f"cast({canonical_currency} as text)" if canonical_currency else "cast(null as text)")
        + " as record_currency",
        (
            as_numeric(canonical_money, plan.canonical_columns[canonical_money])
            if canonical_money
            else "cast(null as numeric)"
        )
        + " as record_amount",
        *[f.name for f in compared],
    ]

    rank = (
        "coalesce(duplicate_rank, 1)"
        if has_rank
        else f"row_number() over (partition by {keys}, system order by system_key)"
    )
    copies_select = [
        *key,
        "system",
        "cast(system_key as text) as system_key",
        f"{rank} as duplicate_rank",
        (f"upper(cast({copy_currency} as text))" if copy_currency else "cast(null as text)")
        + " as record_currency",
        (
            as_numeric(copy_money, plan.by_system_columns[copy_money])
            if copy_money
            else "cast(null as numeric)"
        )
        + " as record_amount",
        *[f.name for f in compared],
    ]

    any_key_null = " or ".join(f"copies.{column} is null" for column in key)
    canonical_key_null = " or ".join(f"{column} is null" for column in key)
    canonical_key_present = " and ".join(f"canonical.{column} is not null" for column in key)

    # the currency a canonical value is rounded in: the record's, else the copy's
    rounding = "coalesce(canonical.record_currency, copies.record_currency)"
    comparisons = []
    values_rows = []
    for f in compared:
        canonical_value = normalized(f"canonical.{f.name}", f.spec, f.canonical_type, rounding)
        system_value = normalized(f"copies.{f.name}", f.spec, f.system_type, rounding)
        in_scope = "copies.system in (" + ", ".join(literal(s) for s in f.systems) + ")"
        comparisons.append(f"canonical.{f.name} as {f.name}__canonical")
        comparisons.append(f"copies.{f.name} as {f.name}__system")
        comparisons.append(
            f"({in_scope} and {differs(canonical_value, system_value, f.spec)}) "
            f"as {f.name}__differs"
        )
        mode = impact_mode(f.name, f.spec, plan.spec)
        if mode == "difference" and f.spec.type in ("money", "integer", "numeric"):
            comparisons.append(f"abs({canonical_value} - {system_value}) as {f.name}__impact")
        elif mode in ("amount", "difference"):
            comparisons.append(f"canonical.record_amount as {f.name}__impact")
        else:
            comparisons.append(f"cast(null as numeric) as {f.name}__impact")
        values_rows.append(
            f"({literal(f.name)}, {literal(f.spec.source_of_truth)}, "
            f"cast({f.name}__canonical as text), cast({f.name}__system as text), "
            f"{f.name}__differs, {f.name}__impact)"
        )

    lines = [
        f"insert into {CURRENT_TABLE} ({', '.join(CURRENT_COLUMNS)})",
        "with",
        "",
        "canonical as not materialized (",
        "    select",
        "        " + ",\n        ".join(canonical_select),
        f"    from {plan.canonical}",
        "),",
        "",
        "copies as not materialized (",
        "    select",
        "        " + ",\n        ".join(copies_select),
        f"    from {plan.by_system}",
        f"    where system in ({systems}) and system_key is not null",
        "),",
        "",
        "-- records nothing can identify: no system key, or a canonical row without its key",
        "keyless as (",
        "    select",
        "        system,",
        "        " + copies_select[len(key) + 3] + ",",
        "        " + copies_select[len(key) + 4],
        f"    from {plan.by_system}",
        f"    where system in ({systems}) and system_key is null",
        "),",
        "",
        "null_keys as (",
        "    select",
        "        'null_key' as kind,",
        "        system,",
        "        '' as field,",
        "        jsonb_build_object('system_key', null) as finding_key,",
        "        cast(null as jsonb) as entity_key,",
        "        cast(null as text) as entity_ref,",
        "        '[]'::jsonb as system_keys,",
        "        cast(null as text) as source_of_truth,",
        "        'identified' as canonical_value,",
        "        count(*) || ' without a key' as system_value,",
        "        min(record_currency) as currency,",
        "        sum(record_amount) as money_impact",
        "    from keyless",
        "    group by system",
        "    union all",
        "    select",
        "        'null_key',",
        f"        {literal(plan.spec.master)},",
        "        '',",
        "        jsonb_build_object('system_key', null),",
        "        null,",
        "        null,",
        "        '[]'::jsonb,",
        "        null,",
        "        'identified',",
        "        count(*) || ' canonical rows without a key',",
        "        min(record_currency),",
        "        sum(record_amount)",
        "    from canonical",
        f"    where {canonical_key_null}",
        "    having count(*) > 0",
        "),",
        "",
        "-- records a system holds that belong to no canonical record",
        "extras as (",
        "    select",
        "        'extra_in_system' as kind,",
        "        copies.system,",
        "        '' as field,",
        "        jsonb_build_object('system_key', copies.system_key) as finding_key,",
        "        cast(null as jsonb) as entity_key,",
        "        cast(null as text) as entity_ref,",
        "        jsonb_build_array(copies.system_key) as system_keys,",
        "        cast(null as text) as source_of_truth,",
        "        'absent' as canonical_value,",
        "        'present' as system_value,",
        "        copies.record_currency as currency,",
        "        copies.record_amount as money_impact",
        "    from copies",
        f"    where {any_key_null} or not exists (",
        "        select 1 from canonical",
        f"        where {tuple_of('canonical', key)} = {tuple_of('copies', key)}",
        "    )",
        "),",
        "",
        "-- canonical records a system that should hold them does not",
        "missing as (",
        "    select",
        "        'missing_in_system' as kind,",
        "        held.system,",
        "        '' as field,",
        f"        {key_object('canonical', key)} as finding_key,",
        f"        {key_object('canonical', key)} as entity_key,",
        "        canonical.entity_ref,",
        "        '[]'::jsonb as system_keys,",
        "        cast(null as text) as source_of_truth,",
        "        'present' as canonical_value,",
        "        'absent' as system_value,",
        "        canonical.record_currency as currency,",
        "        canonical.record_amount as money_impact",
        "    from canonical",
        f"    cross join (values {held}) as held (system)",
        "    where",
        f"        {canonical_key_present}",
        "        and not exists (",
        "            select 1 from copies",
        "            where",
        f"                {tuple_of('copies', key)} = {tuple_of('canonical', key)}",
        "                and copies.system = held.system",
        "        )",
        "),",
        "",
        "-- more than one record of a system resolving to the same canonical record",
        "duplicated as (",
        f"    select distinct {keys}, system",
        "    from copies",
        "    where duplicate_rank > 1",
        "),",
        "",
        "duplicates as (",
        "    select",
        "        'duplicate_key' as kind,",
        "        copies.system,",
        "        '' as field,",
        f"        {key_object('canonical', key)} as finding_key,",
        f"        {key_object('canonical', key)} as entity_key,",
        "        min(canonical.entity_ref) as entity_ref,",
        "        jsonb_agg(copies.system_key order by copies.system_key) as system_keys,",
        "        cast(null as text) as source_of_truth,",
        "        '1' as canonical_value,",
        "        cast(count(*) as text) as system_value,",
        "        min(canonical.record_currency) as currency,",
        "        (count(*) - 1) * min(canonical.record_amount) as money_impact",
        "    from copies",
        "    inner join duplicated",
        f"        on {tuple_of('copies', key)} = {tuple_of('duplicated', key)}",
        "        and copies.system = duplicated.system",
        "    inner join canonical",
        f"        on {tuple_of('canonical', key)} = {tuple_of('copies', key)}",
        f"    group by {', '.join('canonical.' + c for c in key)}, copies.system",
        "),",
    ]
    if compared:
        any_differs = "\n        or ".join(f"{f.name}__differs" for f in compared)
        lines += [
            "",
            "-- the first copy of every canonical record, field by field, after tolerance rules",
            "compared as (",
            "    select",
            *[f"        canonical.{column}," for column in key],
            "        canonical.entity_ref,",
            "        canonical.record_currency,",
            "        copies.system,",
            "        copies.system_key,",
            "        " + ",\n        ".join(comparisons),
            "    from canonical",
            "    inner join copies",
            f"        on {tuple_of('copies', key)} = {tuple_of('canonical', key)}",
            "        and copies.duplicate_rank = 1",
            "),",
            "",
            "mismatches as (",
            "    select",
            "        'value_mismatch' as kind,",
            "        compared.system,",
            "        field.name as field,",
            f"        {key_object('compared', key)} as finding_key,",
            f"        {key_object('compared', key)} as entity_key,",
            "        compared.entity_ref,",
            "        jsonb_build_array(compared.system_key) as system_keys,",
            "        field.source_of_truth,",
            "        field.canonical_value,",
            "        field.system_value,",
            "        compared.record_currency as currency,",
            "        field.money_impact",
            "    from compared",
            "    cross join lateral (values",
            "        " + ",\n        ".join(values_rows),
            "    ) as field (name, source_of_truth, canonical_value, system_value, differs,"
            " money_impact)",
            f"    where ({any_differs})",
            "        and field.differs",
            "),",
        ]
    lines += [
        "",
        "found as (",
        "    select * from null_keys",
        "    union all",
        "    select * from extras",
        "    union all",
        "    select * from missing",
        "    union all",
        "    select * from duplicates",
    ]
    if compared:
        lines += ["    union all", "    select * from mismatches"]
    lines += [
        ")",
        "",
        f"select {entity}, " + ", ".join(CURRENT_COLUMNS[1:]),
        "from found",
    ]
    return "\n".join(lines)
