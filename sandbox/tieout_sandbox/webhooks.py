"""Billing's outgoing webhooks, like Stripe's: every applied write becomes a signed event sent
to the configured URL from a background thread, so sending never slows a request.

The webhook fault knobs lose, duplicate, delay or mis-sign events; they never change stored data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tieout_sandbox import datadir, faults

log = logging.getLogger(__name__)

URL_ENV = "TIEOUT_SANDBOX_WEBHOOK_URL"
ATTEMPTS = 3


def config_path(directory: Path) -> Path:
    return directory / "webhook.json"


def load_url(directory: Path) -> str | None:
    """webhook.json's url (set by `tieout sandbox webhook`), else TIEOUT_SANDBOX_WEBHOOK_URL."""
    path = config_path(directory)
    if path.exists():
        url = datadir.read_json(path).get("url")
        return str(url) if url else None
    return os.environ.get(URL_ENV) or None


def save_url(directory: Path, url: str | None) -> None:
    datadir.write_json(config_path(directory), {"url": url})


def sign(secret: str, body: bytes, timestamp: int) -> str:
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={signature.hexdigest()}"


def event_body(event_type: str, record: dict[str, Any]) -> bytes:
    event = {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "data": {"object": record},
    }
    return json.dumps(event, separators=(",", ":")).encode()


class Sender:
    """A queue and one thread; `emit` returns at once. Counts what it did for the admin API."""

    def __init__(self, directory: Path, secret: str, fault_state: faults.FaultState) -> None:
        self.directory = directory
        self.secret = secret
        self.faults = fault_state
        self.url = load_url(directory)
        self.queue: queue.Queue[bytes | None] = queue.Queue()
        self.counts = {
            "emitted": 0,
            "sent": 0,
            "lost": 0,
            "duplicated": 0,
            "delayed": 0,
            "bad_signature": 0,
            "failed": 0,
        }
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name="billing-webhooks", daemon=True)
        self.thread.start()

    def set_url(self, url: str | None) -> None:
        self.url = url
        save_url(self.directory, url)

    def emit(self, event_type: str, record: dict[str, Any]) -> None:
        if not self.url:
            return
        self._count("emitted")
        knobs = self.faults.knobs
        if self.faults.hit(knobs.webhook_loss):
            self._count("lost")
            return
        body = event_body(event_type, record)
        copies = 2 if self.faults.hit(knobs.webhook_duplicate) else 1
        if copies == 2:
            self._count("duplicated")
        if self.faults.hit(knobs.webhook_delay_rate):
            self._count("delayed")
            for _ in range(copies):
                timer = threading.Timer(knobs.webhook_delay_ms / 1000, self.queue.put, (body,))
                timer.daemon = True
                timer.start()
            return
        for _ in range(copies):
            self.queue.put(body)

    def close(self) -> None:
        self.queue.put(None)

    def _count(self, name: str) -> None:
        with self.lock:
            self.counts[name] += 1

    def _loop(self) -> None:
        with httpx.Client(timeout=5, trust_env=False) as client:
            while True:
                body = self.queue.get()
                if body is None:
                    return
                self._send(client, body)

    def _send(self, client: httpx.Client, body: bytes) -> None:
        url = self.url
        if not url:
            return
        secret = self.secret
        if self.faults.hit(self.faults.knobs.webhook_bad_signature):
            self._count("bad_signature")
            secret = "whsec_" + secrets.token_hex(16)
        for attempt in range(ATTEMPTS):
            headers = {
                "Content-Type": "application/json",
                "Stripe-Signature": sign(secret, body, int(time.time())),
            }
            try:
                answer = client.post(url, content=body, headers=headers)
            except httpx.HTTPError:
                answer = None
            if answer is not None and answer.status_code < 500:
                # 4xx is the receiver's verdict (refused, replayed): like Stripe, no retry
                self._count("sent")
                return
            time.sleep(0.2 * 2**attempt)
        self._count("failed")
        log.warning("billing webhook not delivered after %d attempts", ATTEMPTS)
