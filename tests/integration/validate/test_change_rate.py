"""Every field reverse ETL writes is guarded by a change rate against the last validation that
passed: a city changed on 15% of customers after a clean validation fails critically and blocks
the customer entity, again on a second validation, and the validation is bound to its build."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from tieout.transform.builds import record_build
from tieout.validate import blocked_entities
from tieout.validate.run import validate

CHECK = "city changed on at most 2% of rows since the last validated build"


def test_written_field_change_rate(chain_url: str, restore: Callable[[str], None]) -> None:
    with psycopg.connect(chain_url) as conn:  # the conftest's `tieout transform` recorded one
        cli = conn.execute("select path from ops.builds where run_id = 'validate__build'")
        assert cli.fetchall() == [("cli",)]
    build = record_build("change-rate", "cli", None, chain_url)
    clean = validate("rate__clean", ["canonical.customers"], url=chain_url, build_docs=False)
    assert clean["build_id"] == build and "customer" not in clean["blocked"]
    try:
        with psycopg.connect(chain_url, autocommit=True) as conn:
            total = conn.execute("select count(*) from canonical.customers").fetchone()[0]  # type: ignore[index]
            changed = conn.execute(
                """update canonical.customers set city = 'X' where customer_id in (
                       select customer_id from canonical.customers order by customer_id
                       limit greatest(1, round(0.15 * %s)::int))""",
                (total,),
            ).rowcount
        for run in ("rate__bad", "rate__bad_again"):
            validate(run, ["canonical.customers"], url=chain_url, build_docs=False)
            assert f"canonical.customers: {CHECK}" in blocked_entities(run, chain_url)["customer"]
        with psycopg.connect(chain_url) as conn:
            observed = conn.execute(
                """select failing_keys from ops.validation_results
                   where run_id = 'rate__bad' and expectation = %s""",
                (CHECK,),
            ).fetchone()
            bound = conn.execute(
                "select build_id from ops.validations where run_id = 'rate__bad'"
            ).fetchone()
        assert observed and observed[0][0]["changed"] == changed
        assert observed[0][0]["rows_compared"] == total
        assert bound == (build,)
    finally:
        restore(chain_url)
    after = validate("rate__restored", ["canonical.customers"], url=chain_url, build_docs=False)
    assert "customer" not in after["blocked"]
