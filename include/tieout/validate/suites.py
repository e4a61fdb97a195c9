"""The expectation suites, derived from include/config (sources, entities) and the dbt status seeds.

Generated once into expectations/gx as plain GX 1.x files with stable ids, committed, and checked
by a test to be up to date; it never connects to a database and never writes a secret.
"""

from __future__ import annotations

import csv
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tieout.config import Config, Entity, Source, Stream, Tolerance, load_config
from tieout.paths import dbt_project_dir, project_root

Severity = Literal["critical", "warning"]
# What an expectation must read: `row` judges each row (of raw, each key's versions) by its own
# values, so on a night with little new data it runs on the changed rows only; `table` needs
# the whole table (counts, uniqueness, references, sums over other tables, change rates).
Scope = Literal["row", "table"]
TABLE_TYPES = {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"}

GX_VERSION = "1.24.1"
DATASOURCE = "warehouse"
# the same warehouse, one asset per suite on its changed rows (tieout.validate.scope)
CHANGES_DATASOURCE = "changed_rows"
CHANGES_SCHEMA = "validate_scope"
URL_VARIABLE = "TIEOUT_GX_WAREHOUSE_URL"
BATCH_DEFINITION = "whole table"
ID_NAMESPACE = uuid.UUID("6f1c1b4e-3c55-4a54-9d3e-7469656f7574")

# ISO 4217 active currency codes (2024).
ISO_4217_CODES = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD "
    "FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY "
    "KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP "
    "MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR "
    "RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT "
    "TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR "
    "ZMW ZWG"
)
ISO_4217 = ISO_4217_CODES.split()
EMAIL_REGEX = r"[^@\s]+@[^@\s]+\.[^@\s]+"
COUNTRY_REGEX = r"[A-Z]{2}"
# References that may be empty (docs/data-model.md: a billing payment's invoice is nullable).
OPTIONAL_REFERENCES = {("payment", "invoice_id")}
# The fewest canonical rows, as a share of the master system's raw keys, before a build is suspect.
MIN_ROW_SHARE = 0.9

# JSON types (and, for strings, the shape) a raw field of each entity field type may have.
DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"
DATE_LIKE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
RAW_TYPES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "text": (("string", "number"), None),
    "money": (("number", "string"), DECIMAL),
    "numeric": (("number", "string"), DECIMAL),
    "integer": (("number", "string"), r"^-?[0-9]+$"),
    "boolean": (("boolean",), None),
    "currency": (("string",), r"^[A-Za-z]{3}$"),
    "date": (("string", "number"), DATE_LIKE),
    "timestamp": (("string", "number"), DATE_LIKE),
}


@dataclass(frozen=True)
class Check:
    """One expectation: what GX runs, how bad a failure is, and which entity it protects."""

    name: str
    type: str
    kwargs: dict[str, Any]
    severity: Severity
    entity: str | None
    description: str
    scope: Scope = "row"


@dataclass
class SuiteSpec:
    """One suite, named after the table it guards (`canonical.invoices`, `raw.erp__invoices`)."""

    schema: str
    table: str
    key: str
    entity: str | None
    checks: list[Check] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    def add(
        self,
        name: str,
        type_: str,
        severity: Severity,
        description: str,
        entity: str | None = None,
        scope: Scope | None = None,
        **kwargs: Any,
    ) -> None:
        if any(check.name == name for check in self.checks):
            raise ValueError(f"{self.name}: expectation {name!r} is declared twice")
        scope = scope or ("table" if type_ in TABLE_TYPES else "row")
        self.checks.append(
            Check(name, type_, kwargs, severity, entity or self.entity, description.strip(), scope)
        )

    def rows(
        self, name: str, severity: Severity, description: str, query: str, scope: Scope = "table"
    ) -> None:
        """An UnexpectedRowsExpectation: the query returns the failing rows, `key` first.

        GX fills `{batch}` with str.format, so every other brace (JSON paths, regex counts) is
        doubled here. The query must not contain the word JOIN: GX then drops the batch alias.
        """
        if " join " in f" {query.lower()} ":
            raise ValueError(f"{self.name}: {name!r}: write the join without the JOIN keyword")
        text = " ".join(query.split()).replace("{", "{{").replace("}", "}}")
        self.add(
            name,
            "unexpected_rows_expectation",
            severity,
            description,
            scope=scope,
            unexpected_rows_query=text.replace("{{batch}}", "{batch}"),
        )


# ---------------------------------------------------------------- canonical


def status_values(entity: str, seeds: Path) -> list[str] | None:
    """The canonical statuses dbt maps every system's status to (seeds/<entity>_status_map.csv)."""
    path = seeds / f"{entity}_status_map.csv"
    if not path.exists():
        return None
    with path.open(newline="") as handle:
        return sorted({row["status"] for row in csv.DictReader(handle)})


def anchored(pattern: str, tolerance: Tolerance) -> str:
    """The whole-value regex, as lenient as the field's tolerance in entities.yml.

    Canonical values stay as the source of truth holds them; reconcile trims and ignores case
    where the tolerance says so, so validation must not call those differences errors.
    """
    if tolerance.case_insensitive:
        pattern = pattern.replace("[A-Z]", "[A-Za-z]")
    if tolerance.trim:
        return rf"^\s*{pattern}\s*$"
    return rf"^{pattern}$"


def tolerance_note(tolerance: Tolerance) -> str:
    notes = [
        text
        for flag, text in (
            (tolerance.trim, "surrounding spaces"),
            (tolerance.case_insensitive, "either case"),
        )
        if flag
    ]
    return f"Allowed by its tolerance: {' and '.join(notes)}." if notes else ""


def master_raw_table(config: Config, entity: Entity) -> str:
    return f"raw.{entity.master}__{entity.systems[entity.master].stream}"


def latest(table: str) -> str:
    """The newest version of each key, as dbt's latest_raw macro picks it."""
    return f"(select distinct on (_pk) * from {table} order by _pk, _extracted_at desc, _seq desc)"


def entity_suite(name: str, entity: Entity, config: Config, seeds: Path) -> SuiteSpec:
    schema, _, table = entity.table.partition(".")
    suite = SuiteSpec(schema, table, entity.key, name)
    key = entity.key
    suite.add(
        f"{key} not null",
        "expect_column_values_to_not_be_null",
        "critical",
        f"Every {name} has its key.",
        column=key,
    )
    suite.add(
        f"{key} unique",
        "expect_column_values_to_be_unique",
        "critical",
        f"No two rows are the same {name}.",
        column=key,
    )
    master_id = f"{entity.master}_id"
    suite.add(
        f"{master_id} not null",
        "expect_column_values_to_not_be_null",
        "critical",
        f"Every {name} exists in {entity.master}, its master system.",
        column=master_id,
    )
    for system in entity.systems:
        suite.add(
            f"{system}_id unique",
            "expect_column_values_to_be_unique",
            "critical",
            f"No {system} record is the copy of two {name}s; reverse ETL writes by this id.",
            column=f"{system}_id",
        )
    keys_of = {other.key: other.table for other_name, other in config.entities.items()}
    for column, spec in entity.fields.items():
        if spec.type == "money":
            not_negative(suite, column)
        if spec.type == "currency":
            iso_4217(suite, column)
        if column in {entity.money_field, entity.currency_field}:
            suite.add(
                f"{column} not null",
                "expect_column_values_to_not_be_null",
                "critical",
                f"Every {name} says how much and in which currency.",
                column=column,
            )
        if column == "status" and (values := status_values(name, seeds)):
            suite.add(
                "status in set",
                "expect_column_values_to_be_in_set",
                "critical",
                f"Only the canonical {name} statuses of the dbt status seed.",
                column=column,
                value_set=values,
            )
        if column == "email":
            suite.add(
                "email format",
                "expect_column_values_to_match_regex",
                "critical",
                "Emails look like emails; reverse ETL writes them to every system. "
                + tolerance_note(spec.tolerance),
                column=column,
                regex=anchored(EMAIL_REGEX, spec.tolerance),
            )
        if column == "country":
            suite.add(
                "country ISO 3166 alpha-2",
                "expect_column_values_to_match_regex",
                "warning",
                "Countries are two-letter codes. " + tolerance_note(spec.tolerance),
                column=column,
                regex=anchored(COUNTRY_REGEX, spec.tolerance),
            )
        if column in keys_of and keys_of[column] != entity.table:
            references(suite, column, keys_of[column], column, "critical")
            if (name, column) not in OPTIONAL_REFERENCES:
                suite.add(
                    f"{column} not null",
                    "expect_column_values_to_not_be_null",
                    "critical",
                    f"Every {name} belongs to a {column.removesuffix('_id')}.",
                    column=column,
                )
    raw = master_raw_table(config, entity)
    suite.rows(
        f"row count within bounds of {raw}",
        "critical",
        f"Canonical keeps between {MIN_ROW_SHARE:.0%} and 100% of the live keys "
        f"{entity.master} serves; more means invented rows, fewer means a broken join.",
        f"""
        with canonical as (select count(*) as n from {{batch}}),
             raw as (select count(*) as n from {latest(raw)} as keys where not _deleted)
        select canonical.n as canonical_rows, raw.n as raw_keys from canonical, raw
        where canonical.n > raw.n or canonical.n < {MIN_ROW_SHARE} * raw.n
        """,
    )
    return suite


def not_negative(suite: SuiteSpec, column: str) -> None:
    suite.add(
        f"{column} not negative",
        "expect_column_values_to_be_between",
        "critical",
        "Money amounts are never negative.",
        column=column,
        min_value=0,
    )


def iso_4217(suite: SuiteSpec, column: str) -> None:
    suite.add(
        f"{column} ISO 4217",
        "expect_column_values_to_be_in_set",
        "critical",
        "Currencies are ISO 4217 codes in upper case.",
        column=column,
        value_set=ISO_4217,
    )


def references(suite: SuiteSpec, column: str, parent: str, parent_key: str, sev: Severity) -> None:
    suite.rows(
        f"{column} references {parent}",
        sev,
        f"Every {column} that is set exists in {parent}.",
        f"""
        with child as (select * from {{batch}})
        select child.{suite.key} as key, child.{column} as missing
        from child
        where child.{column} is not null
          and not exists (
              select 1 from {parent} as parent where parent.{parent_key} = child.{column})
        """,
    )


def lines_sum(suite: SuiteSpec, key: str) -> None:
    suite.rows(
        "amount equals sum of lines",
        "critical",
        f"A {suite.entity}'s amount is the sum of its order lines in canonical.order_lines.",
        f"""
        with parent as (select * from {{batch}}),
             lines as (select order_id, sum(amount) as total
                       from canonical.order_lines group by order_id)
        select parent.{key} as key, parent.amount, lines.total as lines_total
        from parent, lines
        where lines.order_id = parent.order_id and parent.amount is distinct from lines.total
        union all
        select parent.{key} as key, parent.amount, null as lines_total
        from parent
        where parent.order_id is not null
          and not exists (select 1 from lines where lines.order_id = parent.order_id)
        """,
    )


def order_lines_suite(seeds: Path) -> SuiteSpec:
    """Order lines are not in entities.yml (they are part of an order); their rules live here."""
    suite = SuiteSpec("canonical", "order_lines", "order_line_id", "order")
    suite.add(
        "order_line_id not null",
        "expect_column_values_to_not_be_null",
        "critical",
        "Every line has its key.",
        column="order_line_id",
    )
    suite.add(
        "order_line_id unique",
        "expect_column_values_to_be_unique",
        "critical",
        "No two rows are the same line.",
        column="order_line_id",
    )
    suite.add(
        "order_id, line_number unique",
        "expect_compound_columns_to_be_unique",
        "critical",
        "An order numbers its lines once each.",
        column_list=["order_id", "line_number"],
    )
    for column in ("order_id", "line_number", "quantity", "unit_price", "amount", "currency"):
        suite.add(
            f"{column} not null",
            "expect_column_values_to_not_be_null",
            "critical",
            "Lines carry what finance needs to add them up.",
            column=column,
        )
    suite.add(
        "quantity positive",
        "expect_column_values_to_be_between",
        "critical",
        "A line orders at least something.",
        column="quantity",
        min_value=0,
        strict_min=True,
    )
    for column in ("unit_price", "amount"):
        not_negative(suite, column)
    iso_4217(suite, "currency")
    references(suite, "order_id", "canonical.orders", "order_id", "critical")
    references(suite, "product_id", "canonical.products", "product_id", "warning")
    suite.add(
        "product_id not null",
        "expect_column_values_to_not_be_null",
        "warning",
        "Every line's SKU is in the ERP catalogue.",
        column="product_id",
    )
    suite.rows(
        "row count within bounds of raw.shop__orders line_items",
        "critical",
        f"Canonical keeps between {MIN_ROW_SHARE:.0%} and 100% of the line items the shop serves.",
        f"""
        with canonical as (select count(*) as n from {{batch}}),
             raw as (select coalesce(sum(jsonb_array_length(_record -> 'line_items')), 0) as n
                     from {latest("raw.shop__orders")} as orders
                     where jsonb_typeof(_record -> 'line_items') = 'array')
        select canonical.n as canonical_rows, raw.n as raw_lines from canonical, raw
        where canonical.n > raw.n or canonical.n < {MIN_ROW_SHARE} * raw.n
        """,
    )
    return suite


PHONE_REGEX = r"\+?[0-9 ()./-]{5,}"


def written_checks(suite: SuiteSpec, name: str, entity: Entity, config: Config) -> None:
    """Every field reverse ETL may write (reverse_etl.yml) is guarded: not null where a target
    requires it, its format or its targets' vocabulary where known, and a change rate against
    the last validated build (critical above `change_rate`), so a bad value cannot spread."""
    from tieout.validate.fingerprints import value_hash

    targets = [t for t in config.reverse_etl.targets if t.entity == name]
    written = sorted({f for t in targets for f in t.fields})
    for column in written:
        required = sorted(t.system for t in targets if column in t.required)
        if required and not any(c.name == f"{column} not null" for c in suite.checks):
            suite.add(
                f"{column} not null",
                "expect_column_values_to_not_be_null",
                "critical",
                f"{', '.join(required)} must never be sent an empty {column}.",
                column=column,
            )
        if column == "phone":
            suite.add(
                "phone format",
                "expect_column_values_to_match_regex",
                "warning",
                "Phones are digits with the usual separators; reverse ETL writes them.",
                column=column,
                regex=f"^{PHONE_REGEX}$",
            )
        for target in targets:
            vocabulary = target.values.get(column)
            if column in target.fields and vocabulary:
                suite.add(
                    f"{column} in {target.system} vocabulary",
                    "expect_column_values_to_be_in_set",
                    "warning",
                    f"{target.system} takes only these {column} values; others are not written.",
                    column=column,
                    value_set=sorted(vocabulary),
                )
        limit = config.reverse_etl.change_rate.limit(name, column)
        suite.rows(
            f"{column} changed on at most {limit:.0%} of rows since the last validated build",
            "critical",
            f"Reverse ETL writes {column}; a change on more than {limit:.0%} of rows since the "
            "last validation that passed is held for a person (reverse_etl.yml change_rate).",
            f"""
            with current_rows as (
                select cast({entity.key} as text) as key, {value_hash(column)} as value
                from {{batch}}),
            validated_rows as (
                select v.record_key, v.fingerprint ->> '{column}' as value
                from ops.validated_rows as v
                where v.entity = '{name}' and v.run_id = (
                    select b.run_id from ops.validations as b
                    where not exists (
                        select 1 from ops.validation_results as r
                        where r.run_id = b.run_id and r.entity = '{name}'
                          and r.severity = 'critical' and not r.success)
                    order by b.validated_at desc limit 1)),
            compared as (
                select count(*) as rows_compared,
                       count(*) filter (
                           where current_rows.value is distinct from validated_rows.value
                       ) as changed
                from current_rows, validated_rows
                where validated_rows.record_key = current_rows.key)
            select changed, rows_compared, round(changed::numeric / rows_compared, 4) as share
            from compared
            where rows_compared > 0 and changed > {limit} * rows_compared
            """,
        )


def canonical_suites(config: Config, seeds: Path) -> list[SuiteSpec]:
    suites = {
        name: entity_suite(name, entity, config, seeds) for name, entity in config.entities.items()
    }
    for name, suite in suites.items():
        written_checks(suite, name, config.entities[name], config)
    if "invoice" in suites:
        invoices = suites["invoice"]
        references(invoices, "order_id", "canonical.orders", "order_id", "warning")
        lines_sum(invoices, invoices.key)
        invoices.add(
            "due_at not before issued_at",
            "expect_column_pair_values_a_to_be_greater_than_b",
            "warning",
            "An invoice is not due before it is issued.",
            column_A="due_at",
            column_B="issued_at",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        )
    if "order" in suites:
        lines_sum(suites["order"], suites["order"].key)
    return [*suites.values(), order_lines_suite(seeds)]


# ---------------------------------------------------------------- raw


def json_path(path: str) -> tuple[list[str], list[str]]:
    """`a.b` -> (['a', 'b'], []); `variants[].sku` -> (['variants'], ['sku'])."""
    head, _, tail = path.partition("[]")
    return [p for p in head.split(".") if p], [p for p in tail.split(".") if p]


def field_paths(expression: str) -> list[str]:
    """The record paths an entities.yml name reads: `first_name || ' ' || last_name` -> two."""
    return [
        part.strip()
        for part in expression.split("||")
        if part.strip() and not part.strip().startswith("'")
    ]


def path_sql(record: str, parts: list[str]) -> str:
    return f"{record} #> '{{{','.join(parts)}}}'"


def type_problem(value: str, field_type: str, nullable: bool) -> str:
    """A SQL expression naming what is wrong with a jsonb value, or null when it is fine."""
    types, pattern = RAW_TYPES[field_type]
    allowed = ", ".join(f"'{t}'" for t in (*types, *(("null",) if nullable else ())))
    shape = (
        f"when jsonb_typeof({value}) = 'string' and not ({value} #>> '{{}}') ~ '{pattern}' "
        f"then 'badly formed: ' || left({value} #>> '{{}}', 40) "
        if pattern
        else ""
    )
    return (
        f"case when {value} is null then 'missing' "
        f"when jsonb_typeof({value}) not in ({allowed}) then 'type ' || jsonb_typeof({value}) "
        f"{shape}end"
    )


def field_check(
    suite: SuiteSpec, path: str, field_type: str, severity: Severity, why: str, nullable: bool
) -> None:
    head, tail = json_path(path)
    if tail:
        element = path_sql("element", tail)
        problem = (
            f"case when jsonb_typeof({path_sql('_record', head)}) is distinct from 'array' "
            f"then 'missing array' else (select min({type_problem(element, field_type, nullable)}) "
            f"from jsonb_array_elements({path_sql('_record', head)}) as element) end"
        )
    else:
        problem = type_problem(path_sql("_record", head), field_type, nullable)
    suite.rows(
        f"{path} present as {field_type}",
        severity,
        f"Each record serves `{path}` as {field_type}{'' if nullable else ', never null'}. {why}",
        f"""
        with records as (select _pk, {problem} as problem from {latest("{batch}")} as latest)
        select _pk as key, problem from records where problem is not null
        """,
        scope="row",
    )


def cursor_checks(suite: SuiteSpec, stream: Stream, severity: Severity) -> None:
    cursor = stream.cursor_field
    if cursor is None:
        return
    epoch = stream.incremental is not None and stream.incremental.format == "epoch"
    field_check(
        suite,
        cursor,
        "integer" if epoch else "timestamp",
        severity,
        "Incremental extraction resumes from it.",
        nullable=False,
    )
    value = path_sql("_record", json_path(cursor)[0]).replace("#>", "#>>")
    cast, pattern = ("numeric", r"^[0-9]+(\.[0-9]+)?$") if epoch else ("timestamptz", DATE_LIKE)
    suite.rows(
        f"{cursor} never goes backwards",
        severity,
        f"The newest version of a record never has an older `{cursor}` than the version before "
        "it; staging takes the newest, so a step back would roll canonical back.",
        f"""
        with versions as (
            select _pk, {value} as cursor,
                   lag({value}) over (partition by _pk order by _extracted_at, _seq) as previous,
                   row_number() over (
                       partition by _pk order by _extracted_at desc, _seq desc) as newest
            from {{batch}}
        )
        select _pk as key, previous, cursor from versions
        where newest = 1
          and case when cursor ~ '{pattern}' and previous ~ '{pattern}'
                   then cast(cursor as {cast}) < cast(previous as {cast}) else false end
        """,
        scope="row",
    )


def stream_entities(config: Config, source: str, stream: str) -> list[tuple[str, Entity]]:
    return [
        (name, entity)
        for name, entity in config.entities.items()
        if source in entity.systems and entity.systems[source].stream == stream
    ]


def raw_suite(config: Config, source: Source, stream: Stream) -> SuiteSpec:
    users = stream_entities(config, source.name, stream.name)
    entity = users[0][0] if users else None
    important: Severity = "critical" if users else "warning"
    suite = SuiteSpec("raw", f"{source.name}__{stream.name}", "_pk", entity)
    suite.add(
        "_pk not null",
        "expect_column_values_to_not_be_null",
        important,
        "Every raw row carries its record's primary key.",
        column="_pk",
    )
    for key in stream.primary_key:
        field_check(
            suite, key, "text", important, "It is the record's primary key.", nullable=False
        )
    cursor_checks(suite, stream, important)
    seen = {*stream.primary_key, stream.cursor_field}
    for entity_name, spec in users:
        system = spec.systems[source.name]
        if system.key not in seen:
            field_check(
                suite,
                system.key,
                "text",
                "critical",
                f"It identifies the {entity_name} in {source.name}.",
                nullable=False,
            )
            seen.add(system.key)
        for field_name, field_spec in spec.fields.items():
            expression = field_spec.names.get(source.name)
            if expression is None:
                continue
            truth = field_spec.source_of_truth == source.name
            for path in field_paths(expression):
                if path in seen:
                    continue
                seen.add(path)
                why = (
                    f"{source.name} is the source of truth of {entity_name}.{field_name}."
                    if truth
                    else f"Reconcile compares it with {entity_name}.{field_name}."
                )
                field_check(
                    suite,
                    path,
                    field_spec.type,
                    "critical" if truth else "warning",
                    why,
                    nullable=True,
                )
    return suite


def raw_suites(config: Config) -> list[SuiteSpec]:
    return [
        raw_suite(config, source, stream)
        for source in config.sources.values()
        for stream in source.streams
    ]


def build_suites(config: Config | None = None, seeds: Path | None = None) -> list[SuiteSpec]:
    """Every suite, raw contracts first, in a stable order."""
    config = config or load_config()
    seeds = seeds or dbt_project_dir() / "seeds"
    return sorted(
        [*raw_suites(config), *canonical_suites(config, seeds)],
        key=lambda s: (s.schema != "raw", s.name),
    )


# ---------------------------------------------------------------- the GX project on disk


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, "/".join(parts)))


def suite_json(suite: SuiteSpec) -> dict[str, Any]:
    return {
        "expectations": [
            {
                "description": check.description,
                "id": stable_id("expectation", suite.name, check.name),
                "kwargs": check.kwargs,
                "meta": {
                    "entity": check.entity,
                    "name": check.name,
                    "scope": check.scope,
                    "severity": check.severity,
                },
                "severity": check.severity,
                "type": check.type,
            }
            for check in suite.checks
        ],
        "id": stable_id("suite", suite.name),
        "meta": {
            "entity": suite.entity,
            "great_expectations_version": GX_VERSION,
            "guards": suite.name,
            "key": suite.key,
            "generated_by": "tieout.validate.suites from include/config and dbt seeds",
        },
        "name": suite.name,
        "notes": None,
    }


def validation_definition_json(suite: SuiteSpec) -> dict[str, Any]:
    return {
        "data": {
            "asset": {"id": stable_id("asset", suite.name), "name": suite.name},
            "batch_definition": {
                "id": stable_id("batch_definition", suite.name),
                "name": BATCH_DEFINITION,
            },
            "datasource": {"id": stable_id("datasource", DATASOURCE), "name": DATASOURCE},
        },
        "id": stable_id("validation_definition", suite.name),
        "name": suite.name,
        "suite": {"id": stable_id("suite", suite.name), "name": suite.name},
    }


def checkpoint_json(suite: SuiteSpec) -> dict[str, Any]:
    """One checkpoint per suite: it names the key column GX samples failing rows by."""
    return {
        "actions": [],
        "id": stable_id("checkpoint", suite.name),
        "name": suite.name,
        "result_format": {
            "result_format": "COMPLETE",
            "unexpected_index_column_names": [suite.key],
            "partial_unexpected_count": 20,
            "return_unexpected_index_query": False,
        },
        "validation_definitions": [
            {"id": stable_id("validation_definition", suite.name), "name": suite.name}
        ],
    }


def project_yaml(suites: list[SuiteSpec]) -> str:
    """great_expectations.yml: file stores under gx/, the warehouse URL from an env var."""
    lines = [
        "# Generated by `tieout validate --write-suites` (tieout.validate.suites); do not edit.",
        f"# The warehouse URL comes from ${{{URL_VARIABLE}}}, set by tieout at run time from",
        "# tieout.db.sqlalchemy_url(); no URL or password is ever written here.",
        "config_version: 4.0",
        "config_variables_file_path: uncommitted/config_variables.yml",
        "plugins_directory:",
        "analytics_enabled: false",
        f"data_context_id: {stable_id('data_context')}",
        "progress_bars:",
        "  globally: false",
        "  metric_calculations: false",
        "stores:",
        "  expectations_store:",
        "    class_name: ExpectationsStore",
        "    store_backend:",
        "      class_name: TupleFilesystemStoreBackend",
        "      base_directory: expectations/",
        "  validation_results_store:",
        "    class_name: ValidationResultsStore",
        "    store_backend:",
        "      class_name: TupleFilesystemStoreBackend",
        "      base_directory: uncommitted/validations/",
        "  checkpoint_store:",
        "    class_name: CheckpointStore",
        "    store_backend:",
        "      class_name: TupleFilesystemStoreBackend",
        "      suppress_store_backend_id: true",
        "      base_directory: checkpoints/",
        "  validation_definition_store:",
        "    class_name: ValidationDefinitionStore",
        "    store_backend:",
        "      class_name: TupleFilesystemStoreBackend",
        "      base_directory: validation_definitions/",
        "expectations_store_name: expectations_store",
        "validation_results_store_name: validation_results_store",
        "checkpoint_store_name: checkpoint_store",
        "data_docs_sites:",
        "  local_site:",
        "    class_name: SiteBuilder",
        "    show_how_to_buttons: false",
        "    store_backend:",
        "      class_name: TupleFilesystemStoreBackend",
        "      base_directory: uncommitted/data_docs/local_site/",
        "    site_index_builder:",
        "      class_name: DefaultSiteIndexBuilder",
        "fluent_datasources:",
    ]
    lines += datasource_lines(
        DATASOURCE, "", [(suite.name, suite.schema, suite.table) for suite in suites]
    )
    lines += datasource_lines(
        CHANGES_DATASOURCE,
        "changes ",
        [(suite.name, CHANGES_SCHEMA, changes_table(suite.name)) for suite in suites],
    )
    return "\n".join(lines) + "\n"


def datasource_lines(name: str, id_prefix: str, assets: list[tuple[str, str, str]]) -> list[str]:
    """One postgres datasource of great_expectations.yml with a table asset per (asset, schema,
    table); `id_prefix` keeps the second datasource's ids apart from the first's."""
    lines = [
        f"  {name}:",
        "    type: postgres",
        f"    id: {stable_id('datasource', name)}",
        f"    connection_string: ${{{URL_VARIABLE}}}",
        "    assets:",
    ]
    for asset, schema, table in assets:
        lines += [
            f"      {asset}:",
            "        type: table",
            f"        id: {stable_id(id_prefix + 'asset', asset)}",
            f"        table_name: {table}",
            f"        schema_name: {schema}",
            "        batch_metadata: {}",
            "        batch_definitions:",
            f"          {BATCH_DEFINITION}:",
            f"            id: {stable_id(id_prefix + 'batch_definition', asset)}",
            "            partitioner:",
        ]
    return lines


def changes_table(suite: str) -> str:
    """validate_scope's table of a suite's changed rows: `canonical.orders` -> canonical__orders."""
    return suite.replace(".", "__")


def gx_root() -> Path:
    return project_root() / "expectations" / "gx"


def render_project(suites: list[SuiteSpec]) -> dict[str, str]:
    """Every file of the GX project, relative to expectations/gx, as text."""

    def dump(data: dict[str, Any]) -> str:
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    files = {
        "great_expectations.yml": project_yaml(suites),
        ".gitignore": "uncommitted/\n",
        "expectations/.ge_store_backend_id": f"store_backend_id = {stable_id('store')}\n",
        "validation_definitions/.ge_store_backend_id": (
            f"store_backend_id = {stable_id('validation_definition_store')}\n"
        ),
    }
    for suite in suites:
        files[f"expectations/{suite.schema}/{suite.table}.json"] = dump(suite_json(suite))
        files[f"validation_definitions/{suite.name}.json"] = dump(validation_definition_json(suite))
        files[f"checkpoints/{suite.name}.json"] = dump(checkpoint_json(suite))
    return files


def stale_files(root: Path | None = None, suites: list[SuiteSpec] | None = None) -> list[str]:
    """Files under expectations/gx that differ from what the config generates (or are extra)."""
    root = root or gx_root()
    expected = render_project(suites or build_suites())
    problems = [
        path
        for path, text in expected.items()
        if not (root / path).exists() or (root / path).read_text() != text
    ]
    for folder in ("expectations", "validation_definitions", "checkpoints"):
        for path in sorted((root / folder).rglob("*.json")) if (root / folder).exists() else []:
            relative = str(path.relative_to(root))
            if relative not in expected:
                problems.append(relative)
    return problems


def write_project(root: Path | None = None, suites: list[SuiteSpec] | None = None) -> list[str]:
    """(Re)write the GX project from the config; removes suites the config no longer makes."""
    root = root or gx_root()
    expected = render_project(suites or build_suites())
    for folder in ("expectations", "validation_definitions", "checkpoints"):
        for path in (root / folder).rglob("*.json") if (root / folder).exists() else []:
            if str(path.relative_to(root)) not in expected:
                path.unlink()
    written = []
    for relative, text in expected.items():
        path = root / relative
        if path.exists() and path.read_text() == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(relative)
    return written
