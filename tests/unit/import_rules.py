"""What the boundary and image tests read the same way: which modules a file imports, what a
lock file pins, and a Python preamble that makes every installed distribution outside a lock
unimportable, so a subprocess sees only what an image would install."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", re.MULTILINE)


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def pins(lock: str) -> dict[str, str]:
    """{distribution: version} of a lock file (a path from the repository's root)."""
    return {name.lower(): version for name, version in PIN.findall((ROOT / lock).read_text())}


def only_importable(allowed: list[str]) -> str:
    """Python source that, run first in a fresh interpreter, makes every top-level module whose
    distributions are all outside `allowed` raise ModuleNotFoundError, as in an image that
    installs `allowed` only."""
    return (
        "import importlib, importlib.metadata as md, re, sys\n"
        f"allowed = set({sorted(allowed)!r})\n"
        "norm = lambda name: re.sub(r'[-_.]+', '-', name).lower()\n"
        "owners = {top: {norm(d) for d in dists}\n"
        "          for top, dists in md.packages_distributions().items()}\n"
        "class NotInTheImage:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        top = name.split('.')[0]\n"
        "        if top in owners and not owners[top] & allowed:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NotInTheImage())\n"
    )
