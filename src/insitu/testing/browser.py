"""Headless Chromium for checking HTML pages as a person sees them: width and a screenshot.

``scripts/services.sh`` installs Debian's ``chromium``. Each call starts a fresh headless
browser with an empty profile and no background networking (the machine's network is closed to
it), loads a local file and exits.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PageWidth", "chromium", "page_width", "screenshot"]

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)

# Appended to a copy of the page: the laid-out widths end up in the title, which --dump-dom shows.
_MEASURE = (
    "<script>window.addEventListener('load', () => {"
    "document.title = 'widths ' + document.documentElement.scrollWidth + ' ' + "
    "window.innerWidth; });</script>"
)


def chromium() -> str:
    """Path of the Chromium executable.

    Raises
    ------
    FileNotFoundError
        If none is installed (``scripts/services.sh start`` installs Debian's).
    """
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError("no chromium on PATH: run scripts/services.sh start (it installs it)")


def _run(arguments: list[str], width: int, height: int, timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="insitu-chromium-") as profile:
        done = subprocess.run(
            [chromium(), *_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
             *arguments],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited with {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


@dataclass(frozen=True)
class PageWidth:
    """How wide a page lays out in a window: ``content > window`` means horizontal overflow."""

    content: int
    window: int


def page_width(page: str | Path, *, width: int = 1400, timeout: float = 60.0) -> PageWidth:
    """Lay ``page`` (an HTML file) out in a ``width``-pixel window and measure it."""
    page = Path(page)
    with tempfile.TemporaryDirectory(prefix="insitu-page-") as directory:
        copy = Path(directory) / page.name
        copy.write_text(page.read_text().replace("</body>", _MEASURE + "</body>"))
        dom = _run(["--virtual-time-budget=5000", "--dump-dom", copy.as_uri()], width, 900, timeout)
    found = re.search(r"<title>widths (\d+) (\d+)</title>", dom)
    if found is None:
        raise RuntimeError(f"chromium did not lay the page out: {dom[:500]!r}")
    return PageWidth(content=int(found.group(1)), window=int(found.group(2)))


def screenshot(
    page: str | Path, path: str | Path, *, width: int = 1400, height: int = 2400, timeout=60.0
) -> Path:
    """Save a PNG of ``page`` rendered in a ``width`` x ``height`` window; return its path."""
    path = Path(path)
    _run([f"--screenshot={path}", Path(page).absolute().as_uri()], width, height, timeout)
    if not path.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {path}")
    return path
