"""Sandboxes for the tests: seeded into temporary folders, served on free ports, stopped after.

`company` is read-only (scale 1, compared with its ground truth); `scratch` takes writes and faults.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tieout_sandbox import SYSTEMS, credentials, faults, generate, server

from . import walkers


@dataclass
class Sandbox:
    directory: Path
    urls: dict[str, str]
    credentials: dict[str, str]

    def clients(self) -> dict[str, httpx.Client]:
        return walkers.clients(self.urls, self.credentials)


def start(directory: Path) -> Sandbox:
    ports = dict(zip(SYSTEMS, server.free_ports(len(SYSTEMS)), strict=True))
    services = server.up(directory, ports=ports)
    return Sandbox(
        directory, {s: services[s]["url"] for s in SYSTEMS}, credentials.load_credentials(directory)
    )


@pytest.fixture(scope="session")
def company(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    directory = tmp_path_factory.mktemp("company")
    generate.seed(directory, scale=1, seed_value=11)
    # Reading everything many times: billing's 100 requests/s limit is tested in test_faults.
    faults.save_knobs(
        directory, "billing", faults.knobs_from_dict("billing", {"rate_limit_per_second": 0})
    )
    sandbox = start(directory)
    try:
        yield sandbox
    finally:
        server.down(directory)


@pytest.fixture(scope="session")
def company_records(company: Sandbox) -> dict[str, list[dict[str, Any]]]:
    """Every record the company sandbox serves, read once over HTTP."""
    return walkers.read_everything(company.clients())


@pytest.fixture(scope="session")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    directory = tmp_path_factory.mktemp("scratch")
    generate.seed(directory, scale=0.05, seed_value=3)
    sandbox = start(directory)
    try:
        yield sandbox
    finally:
        server.down(directory)


@pytest.fixture
def faults_off(scratch: Sandbox) -> Iterator[Sandbox]:
    """The scratch sandbox, with every fault knob reset after the test."""
    for system in SYSTEMS:
        server.clear_faults(system, scratch.directory)
    try:
        yield scratch
    finally:
        for system in SYSTEMS:
            server.clear_faults(system, scratch.directory)
