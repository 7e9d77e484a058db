"""A report page as a person's browser shows it: Debian's headless chromium, driven by selenium
through chromium-driver, and the checks every report page must pass.

`.ci/run` installs chromium and chromium-driver; where they are missing the tests that need them
skip and say so.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # the tests run as root, where chromium's sandbox refuses to start
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)
PAGE_LOAD_SECONDS = 60
# The relative error allowed between an audio element's duration and its excerpt's length.
DURATION_TOLERANCE = 0.01

# Waits for every audio element to have its current frame decoded (readyState >= 2), or to fail.
_WAIT_FOR_AUDIO = """
var done = arguments[arguments.length - 1];
var audios = Array.prototype.slice.call(document.querySelectorAll('audio'));
Promise.all(audios.map(function (audio) {
  return new Promise(function (resolve) {
    if (audio.readyState >= 2) { resolve(); return; }
    audio.addEventListener('loadeddata', resolve, {once: true});
    audio.addEventListener('error', resolve, {once: true});
    audio.preload = 'auto';
    audio.load();
  });
})).then(function () {
  done(audios.map(function (audio) {
    return {src: audio.getAttribute('src'), readyState: audio.readyState, duration: audio.duration,
            error: audio.error ? audio.error.code : null};
  }));
});
"""


def chromium_paths_or_skip() -> tuple[str, str]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip(
            "headless chromium is not installed: apt-get install chromium chromium-driver "
            "(.ci/run does) to open the report in a real browser"
        )
    pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[test]'")
    return chromium, driver


@contextlib.contextmanager
def chromium():
    """A selenium driver on a fresh headless chromium profile; skips the test without chromium."""
    chromium_path, driver_path = chromium_paths_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Both paths given: selenium's own driver manager (which downloads) never runs.
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(PAGE_LOAD_SECONDS)
    driver.set_script_timeout(PAGE_LOAD_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(driver, path: Path) -> dict:
    """Loads a page from the file system and returns what it did: console messages, images,
    audio elements (after asking each to load) and the absolute URL of every src and href."""
    driver.get_log("browser")  # drop what an earlier page left
    driver.get(Path(path).resolve().as_uri())  # returns after the load event: images are done
    audios = driver.execute_async_script(_WAIT_FOR_AUDIO)
    images = driver.execute_script(
        "return Array.prototype.map.call(document.images, function (img) {"
        " return {src: img.getAttribute('src'), complete: img.complete,"
        " naturalWidth: img.naturalWidth}; });"
    )
    # Resource timing records no file:// fetch, so the URLs come from the elements, resolved.
    urls = driver.execute_script(
        "return Array.prototype.map.call(document.querySelectorAll('[src], [href]'),"
        " function (element) { return element.src || element.href; });"
    )
    return {
        "console": driver.get_log("browser"),
        "images": images,
        "audios": audios,
        "urls": urls,
    }


def check_report_page(driver, page_path: Path, excerpt_seconds: float) -> dict:
    """The checks every report must pass in a browser; returns what `open_page` saw."""
    page_path = Path(page_path).resolve()
    seen = open_page(driver, page_path)
    errors = [entry for entry in seen["console"] if entry["level"] == "SEVERE"]
    assert not errors, json.dumps(errors, indent=1)
    assert seen["images"], "the report shows no image"
    broken = [
        image for image in seen["images"] if not (image["complete"] and image["naturalWidth"] > 0)
    ]
    assert not broken, broken
    assert seen["audios"], "the report has no audio player"
    for audio in seen["audios"]:
        assert audio["error"] is None and audio["readyState"] >= 2, audio
        assert abs(audio["duration"] - excerpt_seconds) <= DURATION_TOLERANCE * excerpt_seconds, (
            audio
        )
    # Nothing from a server or the network: every URL is a file inside the output folder.
    folder = page_path.parent.as_uri() + "/"
    outside = [url for url in seen["urls"] if not url.startswith((folder, "data:"))]
    assert not outside, outside
    return seen


def summary_cells(driver) -> list[dict]:
    return driver.execute_script(
        "return Array.prototype.map.call(document.querySelectorAll('#summary td[data-metric]'), "
        "function (td) {"
        " return {model: td.dataset.model, source: td.dataset.source, metric: td.dataset.metric,"
        " stat: td.dataset.stat, value: td.dataset.value, text: td.textContent}; });"
    )


def per_track_order(driver) -> list[str]:
    return driver.execute_script(
        "return Array.prototype.map.call(document.querySelectorAll('#per-track tbody tr'),"
        " function (tr) { return tr.dataset.track; });"
    )


def click_per_track_header(driver, model: str, source: str, metric: str) -> str:
    """Clicks the header of one column of the per-track table; returns its aria-sort."""
    from selenium.webdriver.common.by import By

    header = driver.find_element(
        By.CSS_SELECTOR,
        f'#per-track th[data-model="{model}"][data-source="{source}"][data-metric="{metric}"]',
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", header)
    header.click()
    return header.get_attribute("aria-sort")


def assert_summary_matches(cells: list[dict], results_json: dict[str, Path]) -> None:
    """Every summary number is the one in its model's results.json, and every one is there."""
    expected = {}
    # The leakage is shown where the report has it (a column of every model then).
    shown_metrics = ("SDR", "SIR", "SAR") + (
        ("leakage",) if any(cell["metric"] == "leakage" for cell in cells) else ()
    )
    for model, path in results_json.items():
        aggregate = json.loads(Path(path).read_text())["aggregate"]
        for source, metrics in aggregate.items():
            for metric in shown_metrics:
                for stat in ("mean", "median"):
                    expected[(model, source, metric, stat)] = metrics[metric][stat]
    shown = {(c["model"], c["source"], c["metric"], c["stat"]): c for c in cells}
    assert len(shown) == len(cells), "a summary number is shown twice"
    assert set(shown) == set(expected)
    for key, value in expected.items():
        cell = shown[key]
        if value is None:
            assert (cell["value"], cell["text"]) == ("", "n/a"), (key, cell)
        elif value in ("inf", "-inf"):
            assert cell["value"] == ("Infinity" if value == "inf" else "-Infinity"), (key, cell)
            assert cell["text"] == ("\u221e" if value == "inf" else "-\u221e"), (key, cell)
        else:
            assert float(cell["value"]) == value, (key, cell, value)
            assert cell["text"] == f"{value:.2f}", (key, cell, value)


# The page's width, the per-track table's box and the bold cells, as laid out in the window.
_LAYOUT = """
var box = document.getElementById('per-track-box');
var table = document.getElementById('per-track');
var style = getComputedStyle(box);
var headers = table.querySelectorAll('thead th[data-column]');
var last = headers[headers.length - 1];
box.scrollLeft = box.scrollWidth;
var boxRect = box.getBoundingClientRect(), lastRect = last.getBoundingClientRect();
var reached = lastRect.right <= boxRect.right + 1 && lastRect.left >= boxRect.left - 1;
box.scrollLeft = 0;
return {innerWidth: window.innerWidth, documentWidth: document.documentElement.scrollWidth,
        bodyWidth: document.body.scrollWidth, boxRight: boxRect.right,
        boxClientWidth: box.clientWidth, boxScrollWidth: box.scrollWidth,
        tableWidth: table.getBoundingClientRect().width, overflowX: style.overflowX,
        lastColumnReachable: reached,
        boldCells: document.querySelectorAll('#summary td.best b').length,
        saysBold: document.getElementById('summary-section').textContent.indexOf('Bold') >= 0};
"""


def layout(driver, page_path: Path, width: int = 1366, height: int = 900) -> dict:
    """Opens a report in a window `width` px wide; returns the widths that matter (see _LAYOUT)."""
    driver.set_window_size(width, height)
    driver.get(Path(page_path).resolve().as_uri())
    return driver.execute_script(_LAYOUT)


def assert_fits_window(seen: dict) -> None:
    """The page is no wider than the window; the per-track table fits or scrolls in its box, whose
    last column can be scrolled into view; bold cells exist exactly where the text says so."""
    assert seen["documentWidth"] <= seen["innerWidth"], seen
    assert seen["boxRight"] <= seen["innerWidth"], seen
    if seen["boxScrollWidth"] > seen["boxClientWidth"]:
        assert seen["overflowX"] in ("auto", "scroll"), seen
    assert seen["lastColumnReachable"], seen
    assert seen["saysBold"] == (seen["boldCells"] > 0), seen


def screenshot(
    driver, page_path: Path, png_path: Path, width: int = 1366, height: int = 900
) -> Path:
    """A picture of the page's top in a window `width` px wide."""
    driver.set_window_size(width, height)
    driver.get(Path(page_path).resolve().as_uri())
    driver.save_screenshot(str(png_path))
    return Path(png_path)
