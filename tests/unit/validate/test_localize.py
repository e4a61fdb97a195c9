"""Data Docs' pages are pointed at the vendored assets once: each build reads only the pages
written since the last one, and a page a stopped build left behind is caught by the next."""

from __future__ import annotations

import os
from pathlib import Path

from tieout.validate import data_docs

CDN = '<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>'


def page(site: Path, name: str, html: str = CDN, age_s: float = 0.0) -> Path:
    path = site / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    if age_s:
        when = path.stat().st_mtime - age_s
        os.utime(path, (when, when))
    return path


def test_first_build_localizes_every_page_and_leaves_its_marker(tmp_path: Path) -> None:
    index = page(tmp_path, "index.html")
    result = page(tmp_path, "validations/raw/a/run/time/batch.html")
    assert data_docs.localize(tmp_path) == 2
    assert "code.jquery.com" not in index.read_text()
    assert "../../../../../static/vendor/jquery/jquery.min.js" in result.read_text()
    assert (tmp_path / data_docs.MARKER).is_file()
    assert (tmp_path / data_docs.VENDOR_DIR / "jquery" / "jquery.min.js").is_file()


def test_a_later_build_reads_only_the_pages_written_since(tmp_path: Path) -> None:
    data_docs.localize(tmp_path)
    marker = (tmp_path / data_docs.MARKER).stat().st_mtime
    # a page of an earlier night (written before the marker): not read again
    old = page(tmp_path, "validations/raw/a/night-1/t/b.html")
    os.utime(old, (marker - 3600, marker - 3600))
    # tonight's page, and one a build that stopped before localizing left behind
    tonight = page(tmp_path, "validations/raw/a/night-2/t/b.html")
    stopped = page(tmp_path, "validations/raw/b/night-2/t/b.html")
    assert data_docs.localize(tmp_path) == 2
    assert "code.jquery.com" in old.read_text()
    assert "code.jquery.com" not in tonight.read_text()
    assert "code.jquery.com" not in stopped.read_text()


def test_a_changed_vendored_file_in_the_site_is_put_back(tmp_path: Path) -> None:
    data_docs.localize(tmp_path)
    copy = tmp_path / data_docs.VENDOR_DIR / "jquery" / "jquery.min.js"
    original = (data_docs.vendored() / "jquery" / "jquery.min.js").read_bytes()
    copy.write_bytes(b"tampered")
    data_docs.localize(tmp_path)
    assert copy.read_bytes() == original
