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
    """
    key = plan.key
    keys = ", ".join(key)
    systems = ", ".join(literal(s) for s in plan.systems)
    compared = plan.fields
    entity = literal(plan.entity)

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
        (
            as_numeric(canonical_money, plan.canonical_columns[canonical_money])
            if canonical_money
            else "cast(null as numeric)"
        )
        + " as record_amount",
        *([f"cast({c} as text) as {c}" for c in system_ids.values()] if ids_known else []),
        *[f.name for f in compared],
    ]
    rank = (
        "duplicate_rank"
        if "duplicate_rank" in plan.by_system_columns
        else f"row_number() over (partition by {keys}, system order by system_key)"
    )
    copy_record = [
        (f"upper(cast({copy_currency} as text))" if copy_currency else "cast(null as text)")
        + " as record_currency",
        (
            as_numeric(copy_money, plan.by_system_columns[copy_money])
            if copy_money
            else "cast(null as numeric)"
        )
        + " as record_amount",
    ]
    copies_select = [
        *key,
        "system",
        "cast(system_key as text) as system_key",
        f"{rank} as duplicate_rank",
        *copy_record,
        *[f.name for f in compared],
    ]

    matched = f"canonical.{key[0]} is not null"
    comparable = f"{matched} and copies.duplicate_rank = 1"
    # the currency a value is rounded in: the canonical record's, else the copy's
    rounding = "coalesce(canonical.record_currency, copies.record_currency)"
    comparisons = []
    finding_rows = [
        "('extra_in_system', '', jsonb_build_object('system_key', paired.system_key), "
        "cast(null as jsonb), cast(null as text), 'absent', 'present', paired.copy_currency, "
        "paired.copy_amount, paired.is_extra)"
    ]
    for f in compared:
        canonical_value = normalized(f"canonical.{f.name}", f.spec, f.canonical_type, rounding)
        system_value = normalized(f"copies.{f.name}", f.spec, f.system_type, rounding)
        in_scope = "copies.system in (" + ", ".join(literal(s) for s in f.systems) + ")"
        comparisons.append(f"canonical.{f.name} as {f.name}__canonical")
        comparisons.append(f"copies.{f.name} as {f.name}__system")
        tests = [comparable, in_scope, raw_differs(f)]
        if (canonical_value, system_value) != (f"canonical.{f.name}", f"copies.{f.name}"):
            tests.append(differs(canonical_value, system_value, f.spec))
        comparisons.append("(" + "\n            and ".join(tests) + f") as {f.name}__differs")
        mode = impact_mode(f.name, f.spec, plan.spec)
        if mode == "difference" and f.spec.type in ("money", "integer", "numeric"):
            impact = f"abs({canonical_value} - {system_value})"
        elif mode in ("amount", "difference"):
            impact = "canonical.record_amount"
        else:
            impact = "cast(null as numeric)"
        comparisons.append(f"{impact} as {f.name}__impact")
        finding_rows.append(
            f"('value_mismatch', {literal(f.name)}, {key_object('paired', key)}, "
            f"{key_object('paired', key)}, {literal(f.spec.source_of_truth)}, "
            f"cast(paired.{f.name}__canonical as text), cast(paired.{f.name}__system as text), "
            f"paired.record_currency, paired.{f.name}__impact, paired.{f.name}__differs)"
        )
    keep = " or ".join(["paired.is_extra", *[f"paired.{f.name}__differs" for f in compared]])

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
        "    from (",
        "        select system, " + ", ".join(copy_record),
        f"        from {plan.by_system}",
        f"        where system in ({systems}) and system_key is null",
        "    ) as keyless",
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
        "    where " + " or ".join(f"{column} is null" for column in key),
        "    having count(*) > 0",
        "),",
        "",
        "-- every copy beside the canonical record it belongs to (none: an extra record), with",
        "-- each field compared after its tolerance rules (first-ranked copies only)",
        "paired as (",
        "    select",
        *[f"        canonical.{column}," for column in key],
        "        canonical.entity_ref,",
        "        canonical.record_currency,",
        "        copies.system,",
        "        copies.system_key,",
        "        copies.record_currency as copy_currency,",
        "        copies.record_amount as copy_amount,",
        f"        canonical.{key[0]} is null as is_extra" + ("," if comparisons else ""),
        *(["        " + ",\n        ".join(comparisons)] if comparisons else []),
        "    from copies",
        "    left join canonical",
        f"        on {tuple_of('canonical', key)} = {tuple_of('copies', key)}",
        "),",
        "",
        "extras_and_mismatches as (",
        "    select",
        "        finding.kind,",
        "        paired.system,",
        "        finding.field,",
        "        finding.finding_key,",
        "        finding.entity_key,",
        "        paired.entity_ref,",
        "        jsonb_build_array(paired.system_key) as system_keys,",
        "        finding.source_of_truth,",
        "        finding.canonical_value,",
        "        finding.system_value,",
        "        finding.currency,",
        "        finding.money_impact",
        "    from paired",
        "    cross join lateral (values",
        "        " + ",\n        ".join(finding_rows),
        "    ) as finding (kind, field, finding_key, entity_key, source_of_truth, canonical_value,",
        "        system_value, currency, money_impact, keep)",
        f"    where ({keep})",
        "        and finding.keep",
        "),",
        "",
        "-- canonical records a system that should hold them does not",
    ]
    if ids_known:
        held = ", ".join(f"({literal(s)}, canonical.{c})" for s, c in system_ids.items())
        lines += [
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
            f"    cross join lateral (values {held}) as held (system, system_id)",
            "    where",
            "        " + " and ".join(f"canonical.{c} is not null" for c in key),
            "        and held.system_id is null",
            "),",
        ]
    else:
        held = ", ".join(f"({literal(s)})" for s in plan.systems)
        lines += [
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
            "        " + " and ".join(f"canonical.{c} is not null" for c in key),
            "        and not exists (",
            "            select 1 from copies",
            "            where",
            f"                {tuple_of('copies', key)} = {tuple_of('canonical', key)}",
            "                and copies.system = held.system",
            "        )",
            "),",
        ]
    lines += [
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
        "    from duplicated",
        "    inner join copies",
        f"        on {tuple_of('copies', key)} = {tuple_of('duplicated', key)}",
        "        and copies.system = duplicated.system",
        "    inner join canonical",
        f"        on {tuple_of('canonical', key)} = {tuple_of('duplicated', key)}",
        f"    group by {', '.join('canonical.' + c for c in key)}, copies.system",
        "),",
        "",
        "found as (",
        "    select * from null_keys",
        "    union all",
        "    select * from extras_and_mismatches",
        "    union all",
        "    select * from missing",
        "    union all",
        "    select * from duplicates",
        ")",
        "",
        f"select {entity}, " + ", ".join(CURRENT_COLUMNS[1:]),
        "from found",
    ]
    return "\n".join(lines)
