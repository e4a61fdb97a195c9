"""Reads the drift report's HTML the way a person reads it: cards, tables (header -> cells), and
the count each details heading announces, with the table under it."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any


class Page(HTMLParser):
    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.cards: list[dict[str, Any]] = []
        self.tables: dict[str, dict[str, Any]] = {}
        self.headings: list[dict[str, Any]] = []  # {count, table} for each <details> heading
        self._card: dict[str, Any] | None = None
        self._in_b = False
        self._table: dict[str, Any] | None = None
        self._row: list[dict[str, Any]] | None = None
        self._cell: dict[str, Any] | None = None
        self._in_head = False
        self._heading: dict[str, Any] | None = None
        self._count_span = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "data-card" in a:
            self._card = {"id": a["data-card"], "currency": a.get("data-currency"), "value": ""}
        if tag == "b" and self._card is not None:
            self._in_b = True
        if tag == "details":
            self._heading = {"count": None, "table": None}
            self.headings.append(self._heading)
        if "heading-count" in (a.get("class") or "") and self._heading is not None:
            self._heading["count"] = int(a["data-count"] or 0)
        if tag == "table" and a.get("id"):
            self._table = {"id": a["id"], "header": [], "rows": []}
            self.tables[a["id"]] = self._table
            if self._heading is not None and self._heading["table"] is None:
                self._heading["table"] = a["id"]
        if tag == "thead":
            self._in_head = True
        if tag == "tr" and self._table is not None and not self._in_head:
            self._row = []
        if tag in ("td", "th") and self._table is not None:
            self._cell = {"text": "", "v": a.get("data-v"), "class": a.get("class") or ""}

    def handle_endtag(self, tag: str) -> None:
        if tag == "b":
            self._in_b = False
        if tag in ("a", "div") and self._card is not None and self._card["value"]:
            self.cards.append(self._card)
            self._card = None
        if tag == "thead":
            self._in_head = False
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._cell["text"] = " ".join(self._cell["text"].split())
            if self._in_head:
                self._table["header"].append(self._cell["text"])
            elif self._row is not None:
                self._row.append(self._cell)
            self._cell = None
        if tag == "tr" and self._row is not None and self._table is not None:
            self._table["rows"].append(dict(zip(self._table["header"], self._row, strict=True)))
            self._row = None
        if tag == "table":
            self._table = None
        if tag == "details":
            self._heading = None

    def handle_data(self, data: str) -> None:
        if self._in_b and self._card is not None:
            self._card["value"] += data
        if self._cell is not None:
            self._cell["text"] += data

    def card(self, card_id: str, currency: str | None = None) -> str:
        found = [c for c in self.cards if c["id"] == card_id and c["currency"] == currency]
        assert len(found) == 1, (card_id, currency, self.cards)
        return found[0]["value"].strip()

    def money_cards(self) -> dict[str, float]:
        return {
            c["currency"]: float(c["value"].split()[0].replace(",", ""))
            for c in self.cards
            if c["id"] == "money"
        }

    def column_sum(self, table_id: str, column: str, where: dict[str, str] | None = None) -> float:
        rows = self.tables[table_id]["rows"]
        return sum(
            float(r[column]["v"] or 0)
            for r in rows
            if all(r[k]["text"] == v for k, v in (where or {}).items())
        )
