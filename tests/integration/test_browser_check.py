"""The report's browser check can fail: a page wider than the window is seen as overflowing."""

from __future__ import annotations

import pytest

from insitu.testing.browser import page_width, screenshot

pytestmark = pytest.mark.slow  # needs Debian's chromium (scripts/services.sh installs it)


def test_a_page_wider_than_the_window_is_measured_as_overflowing(tmp_path):
    wide = tmp_path / "wide.html"
    wide.write_text('<html><body><div style="width:2000px">x</div></body></html>')
    narrow = tmp_path / "narrow.html"
    narrow.write_text("<html><body><p>fits</p></body></html>")
    assert page_width(wide, width=1400).content > 1400
    fits = page_width(narrow, width=1400)
    assert fits.content <= fits.window == 1400
    assert screenshot(narrow, tmp_path / "narrow.png", height=300).stat().st_size > 0
