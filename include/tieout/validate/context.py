"""Opens the GX project in expectations/gx for one validation run, pointed at this warehouse.

Results and Data Docs go to the state folder, the URL reaches GX only through an environment
variable for the duration of the run; it never writes to expectations/ or persists a URL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tieout import db
from tieout.paths import state_dir
from tieout.validate.suites import URL_VARIABLE, gx_root


def data_docs_dir() -> Path:
    """Where Data Docs are built: `<state dir>/data_docs` (index.html inside)."""
    return state_dir() / "data_docs"


def results_dir() -> Path:
    return state_dir() / "gx" / "validations"


def quiet_gx() -> None:
    """GX logs every metric at INFO and warns about its own internals; keep the CLI readable."""
    for name in ("great_expectations", "great_expectations.core", "py.warnings"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"great_expectations(\..*)?")
    warnings.filterwarnings("ignore", category=UserWarning, message=r".*great_expectations.*")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def project_config(root: Path, docs: Path, results: Path) -> dict[str, Any]:
    """The committed great_expectations.yml with its output folders moved to the state folder."""
    config: dict[str, Any] = yaml.safe_load((root / "great_expectations.yml").read_text())
    config["stores"]["validation_results_store"]["store_backend"]["base_directory"] = str(results)
    site = config["data_docs_sites"]["local_site"]
    site["store_backend"]["base_directory"] = str(docs)
    return config


@contextlib.contextmanager
def warehouse_variable(url: str | None) -> Iterator[None]:
    """Expose the SQLAlchemy URL to GX's `${...}` substitution for the run, then remove it."""
    previous = os.environ.get(URL_VARIABLE)
    os.environ[URL_VARIABLE] = db.sqlalchemy_url(url)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(URL_VARIABLE, None)
        else:
            os.environ[URL_VARIABLE] = previous


def open_context(root: Path | None = None) -> Any:
    """A FileDataContext on expectations/gx whose results and docs live in the state folder."""
    quiet_gx()
    import great_expectations as gx

    root = root or gx_root()
    docs, results = data_docs_dir(), results_dir()
    docs.mkdir(parents=True, exist_ok=True)
    results.mkdir(parents=True, exist_ok=True)
    return gx.get_context(
        project_config=project_config(root, docs, results), context_root_dir=str(root)
    )
