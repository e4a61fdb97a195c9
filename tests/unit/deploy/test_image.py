"""The production image installs tieout's runtime dependencies only, each pinned by hash, and
none of the sandbox; the compose stack gives every stage role its own login."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tieout import db

from ..import_rules import PIN, only_importable, pins

ROOT = Path(__file__).resolve().parents[3]


def dev_extras() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower()
        for spec in project["optional-dependencies"]["dev"]
    }


def dockerfile_installs() -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line for line in text.splitlines() if "pip install" in line]


def test_image_installs_the_runtime_lock_with_hashes_required() -> None:
    installs = " ".join(dockerfile_installs())
    assert "-r /opt/tieout/requirements-runtime.lock" in installs
    assert "--require-hashes" in installs
    assert "requirements.lock" not in installs
    assert "[dev]" not in installs and "--extra" not in installs


def test_runtime_lock_has_no_dev_extras() -> None:
    runtime = pins("requirements-runtime.lock")
    assert {"pytest", "selenium"} <= dev_extras()
    assert dev_extras() & set(runtime) == set()
    assert {"apache-airflow", "dbt-core", "psycopg"} <= set(runtime)


def test_runtime_lock_pins_what_the_dev_lock_pins() -> None:
    runtime, dev = pins("requirements-runtime.lock"), pins("requirements.lock")
    assert set(runtime) <= set(dev)
    assert {name: dev[name] for name in runtime} == runtime


@pytest.mark.parametrize(
    "lock", ["requirements.lock", "requirements-runtime.lock", "sandbox/requirements.lock"]
)
def test_every_locked_package_carries_a_hash(lock: str) -> None:
    blocks = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text())
    entries = [block for block in blocks if PIN.match(block)]
    assert entries
    unhashed = [block.split()[0] for block in entries if "--hash=sha256:" not in block]
    assert unhashed == []


def dockerfile_copies(dockerfile: str) -> list[str]:
    """The build-context paths a Dockerfile's COPY lines take (the last word is the target)."""
    sources: list[str] = []
    for line in (ROOT / dockerfile).read_text().splitlines():
        words = line.split()
        if words and words[0] == "COPY":
            sources += [word for word in words[1:-1] if not word.startswith("--")]
    return sources


def test_image_copies_tieout_and_nothing_of_the_sandbox() -> None:
    copies = dockerfile_copies("Dockerfile")
    assert set(copies) == {"requirements-runtime.lock", "pyproject.toml", "README.md", "include"}
    assert not (ROOT / "include" / "tieout_sandbox").exists()
    assert [line for line in dockerfile_installs() if "sandbox" in line] == []


def test_runtime_lock_holds_nothing_only_the_sandbox_needs() -> None:
    """requirements-runtime.lock is resolved from tieout's pyproject alone: no package is in it
    because the sandbox asks for it."""
    runtime = (ROOT / "requirements-runtime.lock").read_text()
    dev = (ROOT / "requirements.lock").read_text()
    assert "tieout-sandbox (sandbox/pyproject.toml)" in dev
    assert "sandbox/pyproject.toml" not in runtime


def test_the_build_context_leaves_out_state_and_secrets_but_not_what_images_copy() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".venv", ".tieout", ".git"} <= ignored
    for source in dockerfile_copies("Dockerfile") + dockerfile_copies("sandbox/Dockerfile"):
        assert (ROOT / source).exists(), source
        assert not any(source == pattern or source.startswith(pattern + "/") for pattern in ignored)


def test_every_stage_role_has_its_connection_and_password() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    airflow_env = compose["x-airflow"]["environment"]
    postgres_env = compose["services"]["postgres"]["environment"]
    init = (ROOT / "docker" / "postgres-init.sh").read_text()
    for role, name in db.ROLES.items():
        if role == "analyst":  # people, given a password by an administrator
            continue
        variable = f"WAREHOUSE_{role.upper()}_PASSWORD"
        conn = airflow_env["AIRFLOW_CONN_" + db.role_connection_id(role).upper()]
        assert conn == f"postgresql://{name}:${{{variable}:?set {variable}}}@postgres:5432/tieout"
        assert postgres_env[variable] == f"${{{variable}}}"
        assert f'{role}_password="${{{variable}:?set {variable}}}"' in init
        assert f"('{name}', :'{role}_password')" in init


def test_tieout_imports_with_the_runtime_lock_alone() -> None:
    """Every tieout module but the dev tools imports with each installed distribution outside
    requirements-runtime.lock made unimportable: tieout's code needs no dev tool and nothing
    the sandbox alone brings."""
    package = ROOT / "include" / "tieout"
    modules = sorted(
        ".".join(path.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__")
        for path in package.rglob("*.py")
        if path.relative_to(package).parts[0] != "dev"
    )
    allowed = sorted(pins("requirements-runtime.lock")) + ["tieout"]
    script = only_importable(allowed) + (
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "for name in ('pytest', 'selenium', 'tieout_sandbox'):\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError:\n"
        "        print(name, 'blocked')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "pytest blocked",
        "selenium blocked",
        "tieout_sandbox blocked",
    ]
