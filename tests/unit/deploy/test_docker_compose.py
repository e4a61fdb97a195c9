"""docker-compose.yml describes the documented topology with the versions in the lock."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def locked(package: str) -> str:
    text = (ROOT / "requirements.lock").read_text()
    match = re.search(rf"^{re.escape(package)}==([^\s\\]+)", text, re.MULTILINE)
    assert match, f"{package} is not pinned in requirements.lock"
    return match.group(1)


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_form_the_documented_topology() -> None:
    services = set(compose()["services"])
    assert {
        "postgres",
        "redis",
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker-1",
        "airflow-worker-2",
        "sandbox",
        "webhooks",
    } <= services


def test_webhook_receiver_serves_and_the_sandbox_sends_to_it() -> None:
    services = compose()["services"]
    receiver = services["webhooks"]
    assert receiver["command"][:3] == ["tieout", "webhooks", "serve"]
    assert receiver["ports"] == ["127.0.0.1:8190:8190"]
    assert receiver["environment"]["AIRFLOW_CONN_TIEOUT_BILLING"].startswith("${")
    sandbox_env = services["sandbox"]["environment"]
    assert sandbox_env["TIEOUT_SANDBOX_WEBHOOK_URL"] == "http://webhooks:8190/webhooks/billing"


def test_airflow_image_matches_the_lock() -> None:
    version = locked("apache-airflow")
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM apache/airflow:([^\s-]+)", dockerfile, re.MULTILINE)
    assert base and base.group(1) == version
    assert compose()["services"]["airflow-scheduler"]["image"] == f"tieout-airflow:{version}"


def test_uv_version_matches_the_makefile() -> None:
    makefile = (ROOT / "Makefile").read_text()
    uv = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert uv and f"uv=={uv.group(1)}" in (ROOT / "Dockerfile").read_text()


def test_workers_use_celery_and_no_secret_is_inline() -> None:
    services = compose()["services"]
    for name in ("airflow-worker-1", "airflow-worker-2"):
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    text = (ROOT / "docker-compose.yml").read_text()
    for match in re.finditer(r"://[^:/\s]+:([^@\s]+)@", text):
        assert match.group(1).startswith("${"), (
            f"inline password in docker-compose.yml: {match.group(0)}"
        )


def test_ports_bind_to_localhost_only() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on all interfaces"


def test_the_sandbox_runs_on_its_own_image_not_tieout_s() -> None:
    sandbox = compose()["services"]["sandbox"]
    assert sandbox["build"] == {"context": ".", "dockerfile": "sandbox/Dockerfile"}
    assert (ROOT / sandbox["build"]["dockerfile"]).is_file()
    assert not sandbox["image"].startswith("tieout-airflow")
    script = sandbox["command"][-1]
    assert "tieout-sandbox seed" in script and "tieout-sandbox up" in script
    assert "tieout sandbox" not in script
    assert not any(name.startswith(("AIRFLOW", "WAREHOUSE")) for name in sandbox["environment"])
    assert sandbox["volumes"] == [f"sandbox-data:{sandbox['environment']['TIEOUT_SANDBOX_DIR']}"]
