"""The sandbox's image installs the sandbox and what sandbox/requirements.lock pins (by hash, at
the dev lock's versions), and the sandbox runs with nothing else importable."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ..import_rules import only_importable, pins

ROOT = Path(__file__).resolve().parents[3]


def installs() -> list[str]:
    text = (ROOT / "sandbox" / "Dockerfile").read_text().replace("\\\n", " ")
    return [line for line in text.splitlines() if "uv pip install" in line]


def test_image_installs_the_locked_dependencies_by_hash_then_the_sandbox_alone() -> None:
    dockerfile = (ROOT / "sandbox" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.MULTILINE)
    locked, package = installs()
    assert "--require-hashes -r /opt/tieout-sandbox/requirements.lock" in locked
    assert "--no-deps /opt/tieout-sandbox" in package
    uv = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert uv and f"uv=={uv.group(1)}" in dockerfile
    assert re.search(r"^USER sandbox$", dockerfile, re.MULTILINE)


def test_sandbox_lock_pins_what_the_dev_lock_pins_and_no_tieout() -> None:
    sandbox, dev = pins("sandbox/requirements.lock"), pins("requirements.lock")
    assert {"fastapi", "uvicorn", "httpx", "pydantic", "click", "psutil"} <= set(sandbox)
    assert {name: dev[name] for name in sandbox} == sandbox
    assert {"apache-airflow", "psycopg", "dbt-core", "tieout"} & set(sandbox) == set()


def test_the_sandbox_runs_on_its_locked_dependencies_alone(tmp_path: Path) -> None:
    """Seed a small company and build the four systems' apps with every installed distribution
    outside sandbox/requirements.lock made unimportable: a dependency the sandbox uses but does
    not declare (fastapi.Form needs python-multipart) fails here, not in the image."""
    allowed = sorted(pins("sandbox/requirements.lock")) + ["tieout-sandbox"]
    script = only_importable(allowed) + (
        "import pkgutil\n"
        "from pathlib import Path\n"
        "import tieout_sandbox\n"
        "for module in pkgutil.walk_packages(tieout_sandbox.__path__, 'tieout_sandbox.'):\n"
        "    importlib.import_module(module.name)\n"
        "from tieout_sandbox import SYSTEMS, generate\n"
        f"folder = Path({str(tmp_path)!r})\n"
        "generate.seed(folder, 0.05, 42, generate.DEFAULT_AS_OF)\n"
        "for system in SYSTEMS:\n"
        "    importlib.import_module('tieout_sandbox.' + system).create_app(folder).openapi()\n"
        "try:\n"
        "    import airflow\n"
        "except ModuleNotFoundError:\n"
        "    print('airflow blocked')\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["airflow", "blocked", "ok"]
