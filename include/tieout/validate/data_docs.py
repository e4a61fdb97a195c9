"""Data Docs that work offline: GX 1.x pages load their CSS and JavaScript from public CDNs.

GX's custom views can only add templates, not replace the ones that name the CDNs, so after
GX writes the site this copies the vendored files (`data_docs_static/`, licences listed in its
LICENSES.md) beside it and points every page at them. It never fetches anything; an asset URL
it does not know stops the build, naming the page and the URL.
"""

from __future__ import annotations

import os
import re
import shutil
from html import unescape as html_unescape
from importlib import resources
from pathlib import Path

# CDN URL as the GX 1.x templates write it -> the vendored file serving it
ASSETS = {
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega/vega-embed.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "fontawesome/css/all.min.css"
    ),
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "popper/popper.min.js"
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap/bootstrap.min.js"
    ),
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap/bootstrap.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table/bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table/bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js": (
        "bootstrap-table/extensions/filter-control/bootstrap-table-filter-control.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css": (
        "bootstrap-table/extensions/filter-control/bootstrap-table-filter-control.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css": (
        "bootstrap-table/extensions/filter-control/bootstrap-table-filter-control.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/"
    "bootstrap-datepicker.min.js": "bootstrap-datepicker/js/bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/"
    "bootstrap-datepicker.min.css": "bootstrap-datepicker/css/bootstrap-datepicker.min.css",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/"
    "bootstrap-prefers-dark.css": "bootstrap-dark/bootstrap-prefers-dark.min.css",
}

# where the copies go inside the site
VENDOR_DIR = Path("static") / "vendor"

# URL (before its query string) -> a file GX itself copies into the site's static folder
SITE_FILES = {
    "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png": (
        "static/images/logo-long.png"
    ),
}

# GX's own static files, named with a fixed number of `../` that is one short when a suite
# name has a dot (`raw.crm__contacts` is one folder deeper): re-anchored at the site root
GX_STATIC = re.compile(r"^(?:\./|(?:\.\./)+)static/(.+)$")

# an element loading something: <script src>, <link href>, <img src>, <source src>
ASSET_TAG = re.compile(r"<(script|link|img|source)\b[^>]*>", re.IGNORECASE)
ASSET_URL = re.compile(r"""\b(src|href)\s*=\s*(["'])(.*?)\2""", re.IGNORECASE)
# subresource integrity and CORS mode belong to the CDN copy; a local file needs neither
CDN_ONLY = re.compile(r"""\s+(integrity|crossorigin)\s*=\s*(["']).*?\2""", re.IGNORECASE)


class UnknownAsset(RuntimeError):
    """A page loads something from the internet that no vendored file serves."""


def vendored() -> Path:
    return Path(str(resources.files("tieout.validate") / "data_docs_static"))


def asset_urls(html: str) -> list[str]:
    """Every URL the page loads (scripts, stylesheets, images), in order."""
    urls = []
    for tag in ASSET_TAG.finditer(html):
        element = tag.group(1).lower()
        for attribute in ASSET_URL.finditer(tag.group(0)):
            if element == "link" or attribute.group(1).lower() == "src":
                urls.append(attribute.group(3))
    return urls


def local_path(url: str, root: str) -> str | None:
    """Where a known remote asset is inside the site, relative to a page `root` away from it."""
    if url in ASSETS:
        return f"{root}/{VENDOR_DIR.as_posix()}/{ASSETS[url]}"
    if (site_file := SITE_FILES.get(url.split("?", 1)[0])) is not None:
        return f"{root}/{site_file}"
    if (static := GX_STATIC.match(url)) is not None:
        return f"{root}/static/{static.group(1)}"
    return None


def rewrite(html: str, root: str, page: str = "page") -> str:
    """The page with every known remote asset pointed at its copy; `root` leads to the site."""

    def local(tag: re.Match[str]) -> str:
        text = tag.group(0)
        changed = False

        def swap(attribute: re.Match[str]) -> str:
            nonlocal changed
            path = local_path(html_unescape(attribute.group(3)), root)
            if path is None:
                return attribute.group(0)
            changed = True
            quote = attribute.group(2)
            return f"{attribute.group(1)}={quote}{path}{quote}"

        text = ASSET_URL.sub(swap, text)
        return CDN_ONLY.sub("", text) if changed else text

    result = ASSET_TAG.sub(local, html)
    remote = [url for url in asset_urls(result) if re.match(r"(https?:)?//", url)]
    if remote:
        raise UnknownAsset(
            f"{page} loads {', '.join(sorted(set(remote)))} from the internet and no vendored "
            f"file serves it; add it to tieout/validate/data_docs_static and ASSETS"
        )
    return result


# written at the end of each localize: pages older than it were localized then
MARKER = VENDOR_DIR / ".localized"
# file times are coarser than the clock: a page written just before the marker may look older
MARKER_SLACK_S = 2.0


def localize(site: Path) -> int:
    """Copy the vendored assets into the site and point its pages at them; pages changed.

    Only pages written since the last localize are read (GX rewrites the run's pages and the
    index; the pages of earlier runs were localized when they were built), so the cost follows
    the night, not the site's history. A build that stopped before this step leaves its pages
    newer than the marker, so the next one localizes them."""
    marker = site / MARKER
    since = marker.stat().st_mtime - MARKER_SLACK_S if marker.exists() else None
    shutil.copytree(vendored(), site / VENDOR_DIR, dirs_exist_ok=True, copy_function=copy_changed)
    changed = 0
    for page in sorted(site.rglob("*.html")):
        if since is not None and page.stat().st_mtime < since:
            continue
        html = page.read_text(encoding="utf-8")
        root = Path(os.path.relpath(site, page.parent)).as_posix()
        local = rewrite(html, root, str(page.relative_to(site)))
        if local != html:
            page.write_text(local, encoding="utf-8")
            changed += 1
    marker.touch()
    return changed


def copy_changed(source: str, target: str) -> str:
    """Copy a vendored file unless the site holds it with the same size and modification time
    (copy2 keeps the time), as rsync decides."""
    mine = Path(source).stat()
    try:
        there = Path(target).stat()
    except FileNotFoundError:
        there = None
    if there is None or (there.st_size, int(there.st_mtime)) != (mine.st_size, int(mine.st_mtime)):
        shutil.copy2(source, target)
    return target
