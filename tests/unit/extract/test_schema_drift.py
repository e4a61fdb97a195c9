"""Added, missing and retyped fields are noticed; nulls and first sight are not changes."""

from __future__ import annotations

from tieout.extract.schema_drift import Observer, compare


def observed(*records: dict) -> dict:
    observer = Observer()
    for record in records:
        observer.observe(record)
    return observer.fields()


def test_fields_are_flattened_with_types() -> None:
    fields = observed({"id": 1, "a": {"b": "x", "c": None}}, {"id": 2, "a": {"b": "y", "c": 3}})
    assert fields == {
        "id": ({"number"}, 2),
        "a": ({"object"}, 2),
        "a.b": ({"string"}, 2),
        "a.c": ({"number"}, 2),
    }


def test_first_sight_is_no_change() -> None:
    assert compare({}, observed({"id": 1})) == []


def test_renamed_field_is_added_plus_missing() -> None:
    known = {"id": "number", "email": "string"}
    changes = compare(known, observed({"id": 1, "email_address": "x"}))
    assert [(c.field, c.change) for c in changes] == [
        ("email_address", "added"),
        ("email", "missing"),
    ]


def test_retyped_field_counts_records() -> None:
    known = {"id": "number", "amount": "string"}
    changes = compare(known, observed({"id": 1, "amount": "1.0"}, {"id": 2, "amount": 5}))
    assert [(c.field, c.change, c.old_type, c.new_type, c.records) for c in changes] == [
        ("amount", "retyped", "string", "number", 2)
    ]


def test_null_is_not_a_retype() -> None:
    known = {"id": "number", "phone": "string"}
    assert compare(known, observed({"id": 1, "phone": None})) == []


def test_missing_parent_reported_once() -> None:
    known = {"id": "number", "address": "object", "address.city": "string"}
    changes = compare(known, observed({"id": 1}))
    assert [(c.field, c.change) for c in changes] == [("address", "missing")]


def test_shape_describes_only_what_it_can_count() -> None:
    observer = Observer()
    observer.observe_page([{"id": 1, "a": {"b": 1}, "n": None}, {"id": 2, "a": {"b": 2}}])
    shape = observer.shape
    assert shape is not None and shape.fields == ("id", "a.b", "a")
    assert [name for name, _ in shape.optional] == ["n"]
    for records in (
        [{"id": 1, "a": {"b": 1}}, {"id": 2}],  # an object some records lack
        [{"id": 1, "a": {"b": 1}}, {"id": 2, "a": "text"}],  # an object or text
        [{"id": 1, "not-a-name": 2}],  # a key Python cannot name
    ):
        other = Observer()
        other.observe_page(records)
        assert other.shape is None
