"""Notice when a stream's records change shape: fields added, missing or served with a new type.

It only observes and reports; it must never reject, rewrite or drop a record.
"""

from __future__ import annotations

import keyword
import operator
from dataclasses import dataclass
from typing import Any, Union

import msgspec
import psycopg

JSON_TYPES: dict[type, str] = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
    type(None): "null",
}
MAX_DEPTH = 2


@dataclass(frozen=True)
class Shape:
    """Every field the observer has seen so far, each on every record and each with only the
    types seen, as a msgspec type (`record`). A page whose records decode into it (in C, with
    unknown fields forbidden) brings no new field, no new type and misses no field, so the
    observer only needs to count it: `fields` are the paths each such record has."""

    record: Any
    fields: tuple[str, ...]
    optional: tuple[tuple[str, Any], ...] = ()  # (path, attrgetter) of fields some records lack


class Observer:
    """Field paths, their JSON types and how many records had them, counted a page at a time:
    records with the same keys are read column by column (C-level maps), so the cost is a
    few set insertions per field, not a Python loop over every value.

    After each page it offers the `shape` of what it has seen (None when the records so far
    vary too much to describe); pages decoded into that shape are counted, not inspected.
    """

    def __init__(self) -> None:
        self._types: dict[str, set[type]] = {}
        self._counts: dict[str, int] = {}
        self._records = 0
        self.shape: Shape | None = None  # replaced whole, so other threads may read it

    def observe(self, record: dict[str, Any]) -> None:
        self.observe_page([record])

    def observe_page(self, records: list[dict[str, Any]]) -> None:
        """Observe records that are JSON objects (the caller has set the others aside)."""
        self._records += len(records)
        self._columns(records, "", 0)
        self.shape = self._shape()

    def observe_shaped(self, shape: Shape, records: list[Any]) -> None:
        """Count records that decoded into `shape` (one of this observer's own)."""
        self._records += len(records)
        counts = self._counts
        for name in shape.fields:
            counts[name] += len(records)
        for name, get in shape.optional:
            counts[name] += len(records) - list(map(get, records)).count(msgspec.UNSET)

    def _shape(self) -> Shape | None:
        fields: list[str] = []
        optional: list[str] = []
        try:
            record = self._struct("", 0, fields, optional)
        except TypeError:  # a union msgspec cannot decode unambiguously
            return None
        if record is None:
            return None
        getters = tuple((name, operator.attrgetter(name)) for name in optional)
        return Shape(record, tuple(fields), getters)

    def _struct(self, prefix: str, depth: int, fields: list[str], optional: list[str]) -> Any:
        """A Struct type for the fields under `prefix`, or None if a field has no name Python
        allows, or is an object sometimes missing or sometimes something else."""
        names = [n for n in self._types if n.startswith(prefix) and "." not in n[len(prefix) :]]
        expected = self._records if not prefix else self._counts[prefix[:-1]]
        members: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        for name in names:
            key = name[len(prefix) :]
            kinds = self._types[name]
            always = self._counts[name] == expected
            if not _attribute_name(key):
                return None
            if dict in kinds and depth < MAX_DEPTH:
                if kinds != {dict} or not always:
                    return None
                nested = self._struct(name + ".", depth + 1, fields, optional)
                if nested is None:
                    return None
                annotation: Any = nested
            else:
                parts = tuple(sorted(kinds, key=lambda kind: kind.__name__))
                annotation = Union[parts] if len(parts) > 1 else parts[0]  # noqa: UP007
            if always:
                members.append((key, annotation))
                fields.append(name)
            else:
                members.append((key, annotation, msgspec.UNSET))
                optional.append(name)
        if not members:
            return None
        return msgspec.defstruct("Record", members, forbid_unknown_fields=True, kw_only=True)

    def _columns(self, records: list[dict[str, Any]], prefix: str, depth: int) -> None:
        shapes = list(map(tuple, records))
        if len(set(shapes)) == 1:
            groups: dict[tuple[str, ...], list[dict[str, Any]]] = {shapes[0]: records}
        else:
            groups = {}
            for shape, record in zip(shapes, records, strict=True):
                groups.setdefault(shape, []).append(record)
        types, counts = self._types, self._counts
        for keys, rows in groups.items():
            columns = zip(*map(dict.values, rows), strict=True) if keys else ()
            for key, column in zip(keys, columns, strict=True):
                name = prefix + key
                kinds = set(map(type, column))
                known = types.get(name)
                if known is None:
                    types[name] = kinds
                    counts[name] = len(rows)
                else:
                    known |= kinds
                    counts[name] += len(rows)
                if dict in kinds and depth < MAX_DEPTH:
                    nested = [value for value in column if type(value) is dict]
                    self._columns(nested, name + ".", depth + 1)

    def fields(self) -> dict[str, tuple[set[str], int]]:
        """field path -> (non-null JSON types seen, records that had the field)."""
        seen: dict[str, tuple[set[str], int]] = {}
        for name, kinds in self._types.items():
            names = {JSON_TYPES.get(kind, "string") for kind in kinds} - {"null"}
            seen[name] = (names, self._counts[name])
        return seen

    def records(self) -> int:
        return self._records


def _attribute_name(key: str) -> bool:
    return key.isidentifier() and not keyword.iskeyword(key) and not key.startswith("_")


@dataclass(frozen=True)
class Change:
    field: str
    change: str  # added | missing | retyped
    old_type: str | None
    new_type: str | None
    records: int


def compare(known: dict[str, str], observed: dict[str, tuple[set[str], int]]) -> list[Change]:
    """Changes of `observed` against the `known` field types (empty `known` = first sight)."""
    if not known:
        return []
    changes: list[Change] = []
    for name, (types, count) in sorted(observed.items()):
        if name not in known:
            changes.append(Change(name, "added", None, "|".join(sorted(types)) or "null", count))
            continue
        old = known[name]
        new_types = types - {old} if old != "null" else set()
        if new_types:
            changes.append(Change(name, "retyped", old, "|".join(sorted(new_types)), count))
    for name in sorted(set(known) - set(observed)):
        parent = name.rpartition(".")[0]
        if parent and parent not in observed:
            continue  # the parent's disappearance is the change to report
        changes.append(Change(name, "missing", known[name], None, 0))
    return changes


def record_changes(
    conn: psycopg.Connection[Any],
    source: str,
    stream: str,
    run_id: str,
    observer: Observer,
    complete_pass: bool,
) -> list[Change]:
    """Compare with ops.stream_fields, log changes in ops.schema_changes, remember new fields.

    Missing fields are only judged after a pass that saw the whole stream.
    """
    if observer.records() == 0:
        return []
    observed = observer.fields()
    known = dict(
        conn.execute(
            "select field, json_type from ops.stream_fields where source = %s and stream = %s",
            (source, stream),
        ).fetchall()
    )
    changes = [c for c in compare(known, observed) if c.change != "missing" or complete_pass]
    with conn.cursor() as cur:
        cur.executemany(
            """insert into ops.schema_changes
                   (source, stream, run_id, field, change, old_type, new_type, records)
               values (%s, %s, %s, %s, %s, %s, %s, %s)""",
            [
                (source, stream, run_id, c.field, c.change, c.old_type, c.new_type, c.records)
                for c in changes
            ],
        )
        rows = []
        for name, (types, _count) in observed.items():
            kind = known.get(name)
            if kind is None or kind == "null" or (types and kind not in types):
                kind = sorted(types)[0] if types else "null"
            rows.append((source, stream, name, kind))
        cur.executemany(
            """insert into ops.stream_fields (source, stream, field, json_type)
               values (%s, %s, %s, %s)
               on conflict (source, stream, field) do update
               set json_type = excluded.json_type, last_seen = now()""",
            rows,
        )
        gone = [(source, stream, c.field) for c in changes if c.change == "missing"]
        cur.executemany(
            "delete from ops.stream_fields where source = %s and stream = %s and field = %s",
            gone,
        )
    return changes
