"""Data Docs work on a machine without internet: no page loads anything from a CDN, every
asset a page or stylesheet names is in the site, and the index links the suites and the
validation results of the run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from tieout.validate import data_docs
from tieout.validate.run import validate

from .conftest import load_raw


@pytest.fixture(scope="module")
def site(new_warehouse: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One validation run of the raw suites on the transform fixtures; its Data Docs folder."""
    state = tmp_path_factory.mktemp("state")
    with new_warehouse("tieout_docs") as url, pytest.MonkeyPatch.context() as mp:
        mp.setenv("TIEOUT_STATE_DIR", str(state))
        mp.setenv("TIEOUT_DATABASE_URL", url)
        load_raw(url)
        figures = validate("docs__run", suites=["raw"], url=url)
        yield Path(figures["data_docs"]).parent


class Links(HTMLParser):
    """Every URL a page loads (script src, link href, img src) and every anchor it links."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.anchors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "img") and values.get("src"):
            self.loads.append(str(values["src"]))
        elif tag == "link" and values.get("href"):
            self.loads.append(str(values["href"]))
        elif tag == "a" and values.get("href"):
            self.anchors.append(str(values["href"]))


def parsed(page: Path) -> Links:
    links = Links()
    links.feed(page.read_text(encoding="utf-8"))
    return links


def local_target(page: Path, url: str) -> Path:
    return (page.parent / unquote(urlsplit(url).path)).resolve()


def test_no_page_loads_anything_from_the_internet(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 2
    for page in pages:
        remote = [url for url in parsed(page).loads if re.match(r"(https?:)?//", url)]
        assert remote == [], f"{page.relative_to(site)} loads {remote}"


def test_every_asset_a_page_or_stylesheet_names_exists(site: Path) -> None:
    stylesheets = set()
    for page in sorted(site.rglob("*.html")):
        for url in parsed(page).loads:
            if url.startswith("data:"):
                continue
            target = local_target(page, url)
            assert target.is_file(), f"{page.relative_to(site)} names {url}, which is missing"
            if target.suffix == ".css":
                stylesheets.add(target)
    assert any(css.name == "bootstrap.min.css" for css in stylesheets)
    for css in stylesheets:
        for url in re.findall(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)", css.read_text()):
            if url.startswith(("data:", "#")):
                continue
            assert not re.match(r"(https?:)?//", url), f"{css.name} loads {url}"
            assert (css.parent / urlsplit(url).path).is_file(), f"{css.name} names {url}"


def test_index_links_the_suites_and_the_validation_results(site: Path) -> None:
    index = site / "index.html"
    text = index.read_text(encoding="utf-8")
    # the tables are bootstrap-table data: each row's page is its `_table_row_link_path`
    targets = parsed(index).anchors
    targets += re.findall(r"""['"]((?:validations|expectations)/[^'"]+\.html)['"]""", text)
    validations = [t for t in targets if t.startswith("validations/")]
    suites = [t for t in targets if t.startswith("expectations/")]
    assert validations, "the index links no validation result"
    assert suites, "the index links no expectation suite"
    for target in validations + suites:
        assert local_target(index, target).is_file(), target
    assert any("docs__run" in t for t in validations)


def test_an_unknown_cdn_asset_stops_the_build_naming_page_and_url() -> None:
    html = '<link rel="stylesheet" href="https://cdn.example.org/x.css"><a href="https://a.b/">'
    with pytest.raises(data_docs.UnknownAsset, match=r"index.html loads https://cdn.example"):
        data_docs.rewrite(html, ".", "index.html")


def test_cdn_assets_become_relative_paths_without_integrity() -> None:
    html = (
        '<script src="https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js"'
        ' integrity="sha384-x" crossorigin="anonymous"></script>'
        '<a href="https://docs.greatexpectations.io/">docs</a>'
    )
    assert data_docs.rewrite(html, "../..") == (
        '<script src="../../static/vendor/popper/popper.min.js"></script>'
        '<a href="https://docs.greatexpectations.io/">docs</a>'
    )
