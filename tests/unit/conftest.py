"""The small REST API of tests/unit/extract/fake_api.py, served on a free loopback port: the
extract tests page through it, the HTTP layer's tests (tests/unit/http) fail and throttle it."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest


def load_fake_api() -> ModuleType:
    path = Path(__file__).parent / "extract" / "fake_api.py"
    name = "tieout_tests_fake_api"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


fake_api = load_fake_api()


@pytest.fixture
def api() -> Iterator[fake_api.Server]:
    server = fake_api.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake() -> ModuleType:
    """The fake_api module (records, State) for tests that build their own data."""
    return fake_api
