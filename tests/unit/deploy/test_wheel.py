"""The tieout wheel, built for real from a copy of the sources with the sandbox beside them,
holds tieout and every file it reads at run time, and nothing of the sandbox."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "include" / "tieout"
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")


def uv() -> str:
    """The uv `make install` puts beside the interpreter, else one on PATH."""
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    assert found, "uv is not installed (make install puts it in .venv/bin)"
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """Build with the venv's setuptools and no network, as a release would but offline."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for folder in ("include", "sandbox"):
        shutil.copytree(ROOT / folder, source / folder, ignore=IGNORED)
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [uv(), "build", "--wheel", "--no-build-isolation", "--offline", "--python",
         sys.executable, "--out-dir", str(out), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (built,) = out.glob("tieout-*.whl")
    return zipfile.ZipFile(built)


def runtime_files() -> list[str]:
    """Every file under include/tieout but the Python sources, as the wheel must name it."""
    return sorted(
        path.relative_to(PACKAGE.parent).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    )


def test_the_wheel_holds_no_sandbox(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    assert "tieout/cli.py" in names
    assert [name for name in names if name.startswith(("tieout_sandbox", "sandbox/"))] == []
    assert {name.split("/")[0] for name in names} == {"tieout", "tieout-0.1.0.dist-info"}
    top_level = wheel.read("tieout-0.1.0.dist-info/top_level.txt").decode().split()
    assert top_level == ["tieout"]


def test_the_wheel_requires_no_sandbox_and_says_its_entry_point(wheel: zipfile.ZipFile) -> None:
    metadata = email.message_from_bytes(wheel.read("tieout-0.1.0.dist-info/METADATA"))
    requires = metadata.get_all("Requires-Dist") or []
    assert any(spec.startswith("apache-airflow==") for spec in requires)
    assert [spec for spec in requires if "sandbox" in spec] == []
    entry_points = wheel.read("tieout-0.1.0.dist-info/entry_points.txt").decode()
    assert "tieout = tieout.cli:main" in entry_points
    assert "tieout-sandbox" not in entry_points


def test_the_wheel_holds_every_file_tieout_reads_at_run_time(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    needed = runtime_files()
    assert "tieout/db/grants.sql" in needed
    assert "tieout/report/templates/drift_report.html.j2" in needed
    assert sum(name.startswith("tieout/db/migrations/") for name in needed) >= 10
    assert [name for name in needed if name not in names] == []
    for suffix in (".sql", ".j2", ".css", ".js"):
        assert any(name.endswith(suffix) for name in names), suffix
    sql_templates = PACKAGE / "reconcile" / "sql"
    if sql_templates.is_dir():
        assert {f"tieout/reconcile/sql/{path.name}" for path in sql_templates.glob("*.sql.j2")} <= (
            names
        )
