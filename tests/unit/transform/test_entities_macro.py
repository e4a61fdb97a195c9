"""The canonical SQL follows include/config/entities.yml: the committed macro is exactly what the
config renders to, and a changed source of truth changes what dbt sees."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tieout.config import ConfigError
from tieout.paths import config_dir
from tieout.transform.entities import entities_macro_text, jinja_literal, macro_path


def test_committed_macro_matches_the_config() -> None:
    assert macro_path().read_text() == entities_macro_text(), (
        "dbt_project/macros/_generated/entities_config.sql is stale: run `tieout transform "
        "--parse-only` and commit it"
    )


def test_a_changed_source_of_truth_reaches_the_macro(tmp_path: Path) -> None:
    data = yaml.safe_load((config_dir() / "entities.yml").read_text())
    data["entities"]["customer"]["fields"]["email"]["source_of_truth"] = "erp"
    changed = tmp_path / "entities.yml"
    changed.write_text(yaml.safe_dump(data))
    before, after = entities_macro_text(), entities_macro_text(changed)
    assert before != after
    email = after.split('"email": {', 1)[1].split("}", 1)[0]
    assert '"source_of_truth": "erp"' in email


def test_an_invalid_config_is_refused_with_the_key_path(tmp_path: Path) -> None:
    data = yaml.safe_load((config_dir() / "entities.yml").read_text())
    data["entities"]["customer"]["fields"]["email"]["source_of_truth"] = "ledger"
    bad = tmp_path / "entities.yml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="source_of_truth: 'ledger' is not one of"):
        entities_macro_text(bad)


def test_jinja_literal_writes_plain_data() -> None:
    assert jinja_literal({"a": [1, True, None], "b": "x"}) == (
        '{\n    "a": [1, true, none],\n    "b": "x"\n}'
    )
