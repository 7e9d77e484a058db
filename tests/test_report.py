"""report.html of advsep-tf-evaluate (and --compare): written beside the results, and checked in a
real headless chromium: no console error, every image decodes, every player can play its excerpt,
the per-track table sorts, and the summary shows results.json's numbers."""

import contextlib
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import browser
from pipeline_steps import evaluate_argv
from advsep_tf.cli import common
from advsep_tf.cli import evaluate as evaluate_cli
from advsep_tf.report import ASSETS_DIR, MIXTURE_LABEL, _loudest_excerpt

SAMPLE_RATE = 8192
TRACK_SECONDS = 4.0
EXCERPT_SECONDS = 3.0
TRACKS = ("song one", "song_two", "song-three")
SOURCES = ("accompaniment", "vocals")


def _stems(seed):
    """Vocals that sing, pause and sing again; accompaniment of filtered noise and a bass tone."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(TRACK_SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 196.0 * (1 + 0.15 * seed) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    sung = (np.sin(2 * np.pi * 0.4 * t + seed) > -0.4).astype(float)
    vocals = sung * sum(np.sin(k * phase) / k for k in (1, 2, 3))
    accompaniment = np.convolve(rng.standard_normal(len(t)), np.ones(8) / 8, "same") + 0.5 * np.sin(
        2 * np.pi * 55 * t
    )
    return {"vocals": 0.3 * vocals[:, None], "accompaniment": 0.25 * accompaniment[:, None]}


def _write(folder, stems):
    folder.mkdir(parents=True, exist_ok=True)
    for name, audio in stems.items():
        sf.write(folder / f"{name}.wav", audio.astype(np.float32), SAMPLE_RATE, subtype="FLOAT")


def _run_cli(argv):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        code = common.run(evaluate_cli.main, argv)
    assert code == 0, printed.getvalue()
    return printed.getvalue()


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """model_a scored with the oracle, model_b without, and both compared with the oracle."""
    root = tmp_path_factory.mktemp("report")
    for index, track in enumerate(TRACKS):
        stems = _stems(index)
        mixture = stems["vocals"] + stems["accompaniment"]
        # One track without mixture.wav: the report and the mixture scores then sum the stems.
        _write(root / "references" / track, stems if index == 2 else dict(stems, mixture=mixture))
        noise = np.random.default_rng(10 + index).standard_normal(mixture.shape)
        _write(
            root / "model_a" / track, {name: audio + 0.02 * noise for name, audio in stems.items()}
        )
        _write(
            root / "model_b" / track,
            {name: 0.7 * audio + 0.3 * mixture for name, audio in stems.items()},
        )
    references = root / "references"
    printed = _run_cli(
        evaluate_argv(
            root / "model_a",
            references,
            root / "out_a",
            "--oracle",
            "tiny",
            "--excerpt-seconds",
            str(EXCERPT_SECONDS),
            "--no-progress",
        )
    )
    _run_cli(evaluate_argv(root / "model_b", references, root / "out_b", "--no-progress"))
    compare_printed = _run_cli(
        [
            "--compare",
            str(root / "out_a"),
            str(root / "out_b"),
            str(root / "out_a" / "oracle"),
            "--out",
            str(root / "compared"),
            "--no-progress",
        ]
    )
    return {"root": root, "printed": printed, "compare_printed": compare_printed}


class _Page(HTMLParser):
    """The URLs a page refers to, and its summary cells with their data attributes and text."""

    def __init__(self):
        super().__init__()
        self.urls, self.summary, self._cell = [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.urls.extend(attrs[key] for key in ("src", "href") if key in attrs)
        if tag == "td" and "data-metric" in attrs:
            self._cell = {key[5:]: value for key, value in attrs.items() if key.startswith("data-")}
            self._cell["text"] = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.summary.append(self._cell)
            self._cell = None


def _parse(page):
    parser = _Page()
    parser.feed(page.read_text())
    return parser


def test_evaluate_writes_report_beside_results_and_prints_its_size(reports):
    out = reports["root"] / "out_a"
    page = out / "report.html"
    files = [page] + [path for path in (out / ASSETS_DIR).rglob("*") if path.is_file()]
    total = sum(path.stat().st_size for path in files)
    line = re.search(
        r"Report: (\S+) \((\S+) (kB|MB) with report_files/, (\d+) files\)", reports["printed"]
    )
    assert line, reports["printed"]
    assert Path(line.group(1)) == page.resolve()
    assert int(line.group(4)) == len(files)
    printed_bytes = float(line.group(2)) * (1000 if line.group(3) == "kB" else 1000**2)
    assert abs(printed_bytes - total) <= 0.06 * total
    assert reports["printed"].rstrip().endswith("files)"), "the report's line is the last one"
    # Per track: the mixture, and per source the reference, model_a and the oracle.
    assert len(list((out / ASSETS_DIR).rglob("*.mp3"))) == len(TRACKS) * (1 + len(SOURCES) * 3)
    assert (out / "mixture" / "results.json").is_file()


def test_spectrograms_of_a_track_share_one_scale(reports):
    from PIL import Image

    for folder in (reports["root"] / "out_a" / ASSETS_DIR).iterdir():
        if folder.is_dir():
            sizes = {Image.open(path).size for path in folder.glob("*.jpg")}
            assert len(sizes) == 1, (folder, sizes)


def test_report_refers_only_to_files_beside_it(reports):
    for page in (
        reports["root"] / "out_a" / "report.html",
        reports["root"] / "compared" / "report.html",
    ):
        urls = _parse(page).urls
        assert urls
        for url in urls:
            assert "://" not in url and not url.startswith("//"), url
            if not url.startswith(("#", "data:")):
                assert (page.parent / url.replace("%20", " ")).is_file(), url


def test_summary_numbers_in_the_html_are_results_json_numbers(reports):
    # The browser test checks the same on the rendered page; this one runs without chromium too.
    out = reports["root"] / "out_a"
    cells = _parse(out / "report.html").summary
    expected = {
        "model_a": out / "results.json",
        "oracle": out / "oracle" / "results.json",
        MIXTURE_LABEL: out / "mixture" / "results.json",
    }
    browser.assert_summary_matches(cells, expected)
    off_by_a_hundredth = [dict(cells[0], text=f"{float(cells[0]['value']) + 0.01:.2f}")] + cells[1:]
    with pytest.raises(AssertionError):
        browser.assert_summary_matches(off_by_a_hundredth, expected)


def test_evaluate_report_in_chromium(reports):
    out = reports["root"] / "out_a"
    with browser.chromium() as driver:
        browser.check_report_page(driver, out / "report.html", EXCERPT_SECONDS)
        browser.assert_summary_matches(
            browser.summary_cells(driver),
            {
                "model_a": out / "results.json",
                "oracle": out / "oracle" / "results.json",
                MIXTURE_LABEL: out / "mixture" / "results.json",
            },
        )
        assert browser.per_track_order(driver) == sorted(TRACKS)

        per_track = json.loads((out / "results.json").read_text())["tracks"]
        vocals_sdr = {track: per_track[track]["vocals"]["SDR"] for track in TRACKS}
        ascending = sorted(TRACKS, key=vocals_sdr.get)
        assert ascending != ascending[::-1]
        assert browser.click_per_track_header(driver, "model_a", "vocals", "SDR") == "ascending"
        assert browser.per_track_order(driver) == ascending
        assert browser.click_per_track_header(driver, "model_a", "vocals", "SDR") == "descending"
        assert browser.per_track_order(driver) == ascending[::-1]


def test_compare_report_in_chromium(reports):
    root = reports["root"]
    compared = root / "compared"
    assert "Report: " in reports["compare_printed"]
    with browser.chromium() as driver:
        # Without --excerpt-seconds the excerpts are 10 s: here the whole 4 s tracks.
        browser.check_report_page(driver, compared / "report.html", TRACK_SECONDS)
        browser.assert_summary_matches(
            browser.summary_cells(driver),
            {
                "out_a": root / "out_a" / "results.json",
                "out_b": root / "out_b" / "results.json",
                "oracle": root / "out_a" / "oracle" / "results.json",
                MIXTURE_LABEL: compared / "mixture" / "results.json",
            },
        )
        assert sorted(browser.per_track_order(driver)) == sorted(TRACKS)
        per_track = json.loads((root / "out_b" / "results.json").read_text())["tracks"]
        accompaniment_sar = {track: per_track[track]["accompaniment"]["SAR"] for track in TRACKS}
        assert (
            browser.click_per_track_header(driver, "out_b", "accompaniment", "SAR") == "ascending"
        )
        assert browser.per_track_order(driver) == sorted(TRACKS, key=accompaniment_sar.get)


def test_browser_checks_catch_a_broken_page(tmp_path):
    """The checks above can fail: a missing image, an unplayable player and a script error."""
    sf.write(
        tmp_path / "one_second.mp3",
        np.zeros(8000, np.float32),
        8000,
        format="MP3",
        subtype="MPEG_LAYER_III",
    )
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
        '<img src="missing.png"><audio src="missing.mp3" preload="auto"></audio>'
        '<audio src="one_second.mp3" '
        'preload="auto"></audio><script>undefinedFunction();</script></body></html>'
    )
    with browser.chromium() as driver:
        seen = browser.open_page(driver, page)
        with pytest.raises(AssertionError):
            browser.check_report_page(driver, page, 1.0)
    assert any("undefinedFunction" in entry["message"] for entry in seen["console"])
    assert [image["naturalWidth"] for image in seen["images"]] == [0]
    by_src = {audio["src"]: audio for audio in seen["audios"]}
    assert by_src["missing.mp3"]["readyState"] < 2 and by_src["missing.mp3"]["error"] is not None
    assert by_src["one_second.mp3"]["readyState"] >= 2
    assert abs(by_src["one_second.mp3"]["duration"] - 1.0) < 0.01


def test_loudest_excerpt():
    rate = 100
    quiet_then_loud = np.concatenate([np.full(500, 0.01), np.full(300, 1.0), np.full(200, 0.01)])
    start, length = _loudest_excerpt(quiet_then_loud, rate, 3.0)
    assert length == 3.0 and 4.5 <= start <= 5.0
    assert _loudest_excerpt(quiet_then_loud, rate, 20.0) == (0.0, 10.0)


def test_non_positive_excerpt_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        evaluate_cli.main(
            evaluate_argv(tmp_path, tmp_path, tmp_path / "out", "--excerpt-seconds", "0")
        )
    err = capsys.readouterr().err
    assert caught.value.code == 2 and "--excerpt-seconds" in err and "> 0" in err, err
    assert not (tmp_path / "out").exists()


def test_evaluate_prints_one_table_with_the_bounds(reports):
    printed = reports["printed"]
    tables = [block for block in printed.split("\n\n") if block.lstrip().startswith(("|", "###"))]
    assert sum(line.startswith("| source |") for line in printed.splitlines()) == 1, printed
    rows = [line for line in printed.splitlines() if line.startswith("| ") and "---" not in line]
    names = {row.split("|")[2].strip() for row in rows[1:]}
    assert names == {"model_a", "oracle", "mixture as estimate"}, printed
    assert tables
    # leakage is a column, and the mixture's degenerate SAR is shown as such, with its note.
    assert "leakage" in rows[0]
    mixture_rows = [row for row in rows if "mixture as estimate" in row]
    assert all(row.split("|")[5].strip() == "∞ / ∞" for row in mixture_rows), mixture_rows
    assert "SAR ∞" in printed and "168" not in printed
    # The oracle's audio went once the report had its excerpts; its size was said.
    out = reports["root"] / "out_a"
    assert not (out / "oracle_estimates").exists()
    assert re.search(r"Oracle audio: [\d.]+ (B|kB|MB), removed", printed), printed
    oracle = json.loads((out / "oracle" / "results.json").read_text())
    assert oracle["settings"]["estimates_dir"] == ""
    assert (
        json.loads((out / "mixture" / "results.json").read_text())["tracks"]["song_two"]["vocals"][
            "SAR"
        ]
        == "inf"
    )


def test_the_oracle_is_full_band_at_the_input_rate(tmp_path, reports):
    """At a rate above the config's, the default oracle keeps the band above the model's half
    rate (the `tiny` preset runs at 8192 Hz); --oracle-rate model is band-limited to it."""
    from advsep_tf.config import load_config
    from advsep_tf.evaluate import write_oracle_estimates

    rate = 22050
    t = np.arange(rate * 2) / rate
    refs = tmp_path / "refs" / "song"
    refs.mkdir(parents=True)
    high = 0.2 * np.sin(2 * np.pi * 7000 * t)[:, None]  # above 4096 Hz
    low = 0.2 * np.sin(2 * np.pi * 300 * t)[:, None]
    sf.write(refs / "vocals.wav", high.astype(np.float32), rate, subtype="FLOAT")
    sf.write(refs / "accompaniment.wav", low.astype(np.float32), rate, subtype="FLOAT")
    config = load_config("tiny")
    energy = {}
    for mode in ("input", "model"):
        out = write_oracle_estimates(tmp_path / "refs", tmp_path / mode, config, None, mode)
        vocals, vocals_rate = sf.read(out / "song" / "vocals.wav")
        assert vocals_rate == rate
        energy[mode] = float(np.sum(vocals**2) / np.sum(high**2))
    assert energy["input"] > 0.9, energy
    assert energy["model"] < 0.01, energy


def test_keep_oracle_audio_keeps_it_and_says_its_size(tmp_path, reports):
    root = reports["root"]
    printed = _run_cli(
        evaluate_argv(
            root / "model_b",
            root / "references",
            tmp_path / "out",
            "--oracle",
            "tiny",
            "--keep-oracle-audio",
            "--excerpt-seconds",
            "1",
            "--no-progress",
        )
    )
    kept = tmp_path / "out" / "oracle_estimates"
    assert sorted(p.name for p in kept.iterdir()) == sorted(TRACKS)
    assert f"Oracle audio: {kept} (" in printed


def test_progress_bars_are_labelled_by_what_they_score(tmp_path, reports):
    root = reports["root"]
    argv = evaluate_argv(
        root / "model_b",
        root / "references",
        tmp_path / "out",
        "--oracle",
        "tiny",
        "--excerpt-seconds",
        "1",
    )
    errors = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(errors):
        code = common.run(evaluate_cli.main, argv)
    assert code == 0
    bars = errors.getvalue()
    for label in (
        "score model_b",
        "oracle estimates",
        "score oracle",
        "score mixture as estimate",
        "report",
    ):
        assert f"{label}: 100%" in bars, (label, bars[-2000:])
    assert "evaluate:" not in bars


def test_reports_fit_a_1366_px_window_in_chromium(tmp_path, reports):
    """No report is wider than the window: the per-track table scrolls inside its own box (its
    last column reachable there), and bold marks the best where the text says it does."""
    from advsep_tf.evaluate import load_result
    from advsep_tf.report import write_report

    root = reports["root"]
    # Eight models: a per-track table far wider than the window.
    base = {
        "a": load_result(root / "out_a" / "results.json"),
        "b": load_result(root / "out_b" / "results.json"),
    }
    many = {f"model {i} {key}": result for i in range(4) for key, result in base.items()}
    many["oracle"] = load_result(root / "out_a" / "oracle" / "results.json")
    wide = tmp_path / "wide"
    with contextlib.redirect_stdout(io.StringIO()):
        mixture = load_result(root / "compared" / "mixture" / "results.json")
        write_report(wide, many, mixture=mixture, excerpt_seconds=1.0, progress=False)
    pages = {
        "evaluate": root / "out_a" / "report.html",
        "compare": root / "compared" / "report.html",
        "wide": wide / "report.html",
    }
    with browser.chromium() as driver:
        seen = {}
        for name, page in pages.items():
            seen[name] = browser.layout(driver, page)
            browser.assert_fits_window(seen[name])
        browser.screenshot(driver, pages["compare"], tmp_path / "compare_1366.png")
    assert seen["wide"]["boxScrollWidth"] > seen["wide"]["boxClientWidth"], seen["wide"]
    # One model and the bounds: nothing to call best; two models: the best are bold.
    assert seen["evaluate"]["boldCells"] == 0 and not seen["evaluate"]["saysBold"]
    assert seen["compare"]["boldCells"] > 0 and seen["compare"]["saysBold"]
    assert seen["wide"]["boldCells"] > 0
