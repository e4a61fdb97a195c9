"""The sandbox and the dev tools stay out of the product: no stage imports them, and the
whole `tieout` package (the dev tools aside) imports with the sandbox not installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .import_rules import imported_modules

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "include" / "tieout"


def product_modules() -> list[Path]:
    """tieout's modules but tieout/dev and tieout/cli.py (the entry point loads dev lazily)."""
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0] not in ("dev", "cli.py")
    ]


def test_no_stage_imports_the_sandbox_or_the_dev_tools() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in imported_modules(path)
            if name.startswith(("tieout_sandbox", "tieout.dev"))
        )
        for path in product_modules()
    }
    offenders = {path: names for path, names in offenders.items() if names}
    assert len(product_modules()) > 50
    assert offenders == {}


def test_the_sandbox_does_not_import_tieout() -> None:
    sandbox = ROOT / "sandbox" / "tieout_sandbox"
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported_modules(path) if name.split(".")[0] == "tieout"
        )
        for path in sorted(sandbox.rglob("*.py"))
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_tieout_imports_and_runs_without_the_sandbox_installed() -> None:
    """Every product module imports with `tieout_sandbox` made unimportable, and `tieout
    sandbox` then says which package is missing instead of a traceback."""
    modules = sorted(
        ".".join(path.relative_to(ROOT / "include").with_suffix("").parts).removesuffix(".__init__")
        for path in product_modules()
    )
    script = (
        "import importlib, sys\n"
        "class NotInstalled:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'tieout_sandbox':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NotInstalled())\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "from tieout.cli import main\n"
        "sys.argv = ['tieout', 'sandbox', 'status']\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "needs the tieout_sandbox package, which is not installed here" in result.stderr
