"""Benchmark of the webhook path: billing changes reach raw through `tieout webhooks serve`
(extract in-process, no Airflow), forged events sent meanwhile are refused, then a burst of
signed events measures how many the receiver verifies and records per second.

    bench/webhooks.py --changes 200 --events 3000

The receiver runs as its own process (`tieout webhooks serve --trigger in-process`) on a port
in 9190-9199; latency is from just before a change's POST to billing until a poll of
raw.billing__invoices (every 50 ms) first sees it. A scratch database on the warehouse server
and a sandbox in a temporary folder are used and removed. The last line is one JSON object.

Current figures and their history: bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil
import psycopg

from tieout import db
from tieout.db import migrate
from tieout.extract.run import extract_stream
from tieout.webhooks.verify import stripe_header
from tieout_sandbox import SYSTEMS, credentials, faults, generate, server


def receiver_port() -> int:
    for port in range(9190, 9200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 9190-9199")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def watch_raw(url: str, seen: dict[str, float], stop: threading.Event) -> None:
    """Note when each metadata.note first shows in raw.billing__invoices."""
    last = 0
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            rows = conn.execute(
                "select _seq, _record -> 'metadata' ->> 'note' from raw.billing__invoices"
                " where _seq > %s order by _seq",
                (last,),
            ).fetchall()
            now = time.time()
            for seq, note in rows:
                last = max(last, seq)
                if note and note not in seen:
                    seen[note] = now
            time.sleep(0.05)


def forge(receiver: str, count: int, answers: list[int], stop: threading.Event) -> None:
    """Events signed with a wrong secret, spread over the change phase."""
    with httpx.Client(timeout=10, trust_env=False) as client:
        for n in range(count):
            if stop.is_set():
                break
            body = json.dumps(
                {
                    "id": f"evt_forged_{n}",
                    "type": "invoice.paid",
                    "created": int(time.time()),
                    "data": {"object": {"id": "in_forged"}},
                }
            ).encode()
            header = stripe_header("whsec_" + uuid.uuid4().hex, body, int(time.time()))
            answer = client.post(
                f"{receiver}/webhooks/billing",
                content=body,
                headers={"Stripe-Signature": header, "Content-Type": "application/json"},
            )
            answers.append(answer.status_code)
            time.sleep(0.1)


async def blast(receiver: str, secret: str, events: int, concurrency: int) -> tuple[int, float]:
    """`events` validly signed events over `concurrency` keep-alive connections.

    Requests are encoded up front and written on plain asyncio streams: an HTTP client library
    costs the sending side several ms of CPU per request, which on a 2-core machine would
    measure the client instead of the receiver.
    """
    host, port = urlsplit(receiver).hostname or "127.0.0.1", urlsplit(receiver).port or 80
    now = int(time.time())
    requests = []
    for n in range(events):
        body = json.dumps(
            {
                "id": f"evt_bench_{uuid.uuid4().hex}",
                "type": "payment.created",
                "created": now,
                "data": {"object": {"id": f"py_bench_{n}"}},
            },
            separators=(",", ":"),
        ).encode()
        head = (
            f"POST /webhooks/billing HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Stripe-Signature: {stripe_header(secret, body, now)}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    pending = list(reversed(requests))
    accepted = 0

    async def worker() -> None:
        nonlocal accepted
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while pending:
                writer.write(pending.pop())
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                accepted += status == 200
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return accepted, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--change-interval", type=float, default=0.05, help="seconds between")
    parser.add_argument("--forged", type=int, default=50)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    base = db.warehouse_url()
    name = f"tieout_bench_hooks_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(base)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    maintenance = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    directory = Path(tempfile.mkdtemp(prefix="tieout-bench-hooks-"))
    os.environ["TIEOUT_DATABASE_URL"] = url
    receiver_process = None
    try:
        with psycopg.connect(url) as conn:
            migrate.migrate(conn)
        generate.seed(directory, scale=0.2, seed_value=9)
        faults.save_knobs(
            directory, "billing", faults.knobs_from_dict("billing", {"rate_limit_per_second": 0})
        )
        ports = dict(zip(SYSTEMS, server.free_ports(len(SYSTEMS)), strict=True))
        services = server.up(directory, ports=ports)
        for system, uri in credentials.sandbox_connections(directory).items():
            os.environ[f"AIRFLOW_CONN_TIEOUT_{system.upper()}"] = uri
        keys = credentials.load_credentials(directory)
        extract_stream("billing", "invoices", "bench-poll")  # the cursor a nightly run leaves

        port = receiver_port()
        receiver = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k != "AIRFLOW_CONN_TIEOUT_AIRFLOW_API"}
        receiver_process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tieout.cli",
                "webhooks",
                "serve",
                "--port",
                str(port),
                "--trigger",
                "in-process",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(directory / "receiver.log", "wb"),  # noqa: SIM115
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{receiver}/healthz", timeout=1, trust_env=False).is_success:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or receiver_process.poll() is not None:
                raise RuntimeError(f"the receiver did not start; see {directory}/receiver.log")
            time.sleep(0.2)
        server.set_webhook(f"{receiver}/webhooks/billing", directory)

        billing = httpx.Client(
            base_url=services["billing"]["url"],
            headers={"Authorization": f"Bearer {keys['billing_secret_key']}"},
            timeout=30,
            trust_env=False,
        )
        invoices: list[str] = []
        after = None
        while len(invoices) < args.changes:
            params: dict[str, str | int] = {"limit": 100}
            if after:
                params["starting_after"] = after
            page = billing.get("/v1/invoices", params=params).json()
            invoices += [record["id"] for record in page["data"]]
            if not page["has_more"]:
                break
            after = page["data"][-1]["id"]
        seen: dict[str, float] = {}
        stop = threading.Event()
        watcher = threading.Thread(target=watch_raw, args=(url, seen, stop), daemon=True)
        watcher.start()
        forged_answers: list[int] = []
        forger = threading.Thread(
            target=forge, args=(receiver, args.forged, forged_answers, stop), daemon=True
        )
        forger.start()
        changed: dict[str, float] = {}
        for n in range(args.changes):
            note = f"bench-{n}-{uuid.uuid4().hex[:6]}"
            changed[note] = time.time()
            answer = billing.post(
                f"/v1/invoices/{invoices[n % len(invoices)]}", data={"metadata[note]": note}
            )
            answer.raise_for_status()
            time.sleep(args.change_interval)
        deadline = time.monotonic() + 60
        while len(set(changed) & set(seen)) < len(changed) and time.monotonic() < deadline:
            time.sleep(0.1)
        forger.join(timeout=60)
        stop.set()
        watcher.join(timeout=5)
        server.set_webhook(None, directory)
        latencies = [seen[note] - at for note, at in changed.items() if note in seen]
        missing = len(changed) - len(latencies)

        receiver_cpu = psutil.Process(receiver_process.pid)
        cpu_before = sum(receiver_cpu.cpu_times()[:2])
        load_before = os.getloadavg()[0]
        accepted, elapsed = asyncio.run(
            blast(receiver, keys["billing_webhook_secret"], args.events, args.concurrency)
        )
        cpu_s = sum(receiver_cpu.cpu_times()[:2]) - cpu_before
        with psycopg.connect(url, autocommit=True) as conn:
            recorded = conn.execute(
                "select count(*) from ops.webhook_events where status = 'accepted'"
                " and event_id like 'evt_bench_%'"
            ).fetchone()[0]
            refused = dict(
                conn.execute(
                    "select reason, count(*) from ops.webhook_events where status = 'rejected'"
                    " group by reason"
                ).fetchall()
            )
        figures = {
            "changes": len(changed),
            "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
            "latency_p95_s": round(percentile(latencies, 0.95), 3) if latencies else None,
            "events_per_s": round(recorded / elapsed, 1),
            "forged_sent": len(forged_answers),
            "forged_accepted": sum(1 for status in forged_answers if status < 300),
        }
        print(
            f"{len(changed)} changes, {missing} not in raw after 60 s; latency p50 "
            f"{figures['latency_p50_s']} s, p95 {figures['latency_p95_s']} s, max "
            f"{max(latencies):.2f} s; {args.events} signed events: {accepted} accepted, "
            f"{recorded} recorded in {elapsed:.2f} s ({figures['events_per_s']}/s, "
            f"concurrency {args.concurrency}); receiver CPU {cpu_s:.2f} s "
            f"({1000 * cpu_s / max(recorded, 1):.2f} ms/event, "
            f"{recorded / max(cpu_s, 1e-9):.0f} events per CPU-second); load average "
            f"{load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
            f"refused by reason {refused}",
            file=sys.stderr,
        )
        print(json.dumps(figures))
    finally:
        if receiver_process is not None:
            receiver_process.send_signal(signal.SIGTERM)
            try:
                receiver_process.wait(15)
            except subprocess.TimeoutExpired:
                receiver_process.kill()
        server.down(directory)
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


if __name__ == "__main__":
    main()
