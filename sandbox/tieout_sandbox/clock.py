"""How each sandbox system writes time and money, and the sandbox's notion of now.

Formats only: nothing here decides which time a record gets.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
DAY_MS = 86_400_000


def now_ms() -> int:
    return int(time.time() * 1000)


def to_datetime(ms: int, zone: ZoneInfo | None = None) -> datetime:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.astimezone(zone) if zone else moment


def crm_time(ms: int) -> str:
    """HubSpot: UTC with milliseconds and Z, e.g. 2026-01-02T03:04:05.123Z."""
    return to_datetime(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def erp_time(ms: int) -> str:
    """ERP: Europe/Berlin wall-clock time without an offset, e.g. 2026-01-02 04:04:05."""
    return to_datetime(ms, BERLIN).strftime("%Y-%m-%d %H:%M:%S")


def erp_date(ms: int) -> str:
    """ERP dates are Berlin calendar dates."""
    return to_datetime(ms, BERLIN).strftime("%Y-%m-%d")


def shop_time(ms: int) -> str:
    """Shopify: America/New_York with its offset, e.g. 2026-01-01T22:04:05-05:00."""
    return to_datetime(ms, NEW_YORK).isoformat(timespec="seconds")


def billing_time(ms: int) -> int:
    """Stripe: integer epoch seconds."""
    return ms // 1000


def berlin_midnight_epoch(day: str) -> int:
    """Epoch seconds of 00:00 Europe/Berlin on `day` (how billing stores a due date)."""
    moment = datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=BERLIN)
    return int(moment.timestamp())


def add_days(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def parse_time(text: str, default_zone: ZoneInfo | None) -> int:
    """Epoch ms of an ISO-8601 time; without an offset it is read in `default_zone` (UTC if None).

    Raises ValueError on anything else.
    """
    cleaned = text.strip().replace(" ", "T", 1) if "T" not in text else text.strip()
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    moment = datetime.fromisoformat(cleaned)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=default_zone or UTC)
    return int(moment.timestamp() * 1000)


def money(cents: int) -> str:
    """Integer minor units as a decimal string with two places: 12340 → "123.40"."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"
