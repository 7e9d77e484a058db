import json
import math
import os

import pytest

import browser
from advsep_tf.cli import common
from advsep_tf.cli import experiment as experiment_cli
from advsep_tf.config import load_config
from advsep_tf.experiment import CorpusScale, run_experiment
from advsep_tf.report import MIXTURE_LABEL

SCALE = CorpusScale(nb_train=2, nb_valid=1, nb_test=2, nb_unpaired=3, duration=4.0)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("experiment") / "experiment"
    result = run_experiment(str(out), load_config("tiny"), steps=4, scale=SCALE, progress=False)
    return out, result


def test_paper_experiment_trains_and_evaluates_baseline_v_and_va(experiment):
    out, result = experiment
    assert set(result["results"]) == {"baseline", "V", "VA", "oracle"}
    assert result["training"]["baseline"]["critic_steps"] == 0
    n_critic = load_config("tiny").loss.n_critic
    assert (
        result["training"]["V"]["critic_steps"]
        == result["training"]["VA"]["critic_steps"]
        == 4 * n_critic
    )
    for evaluation in result["results"].values():
        assert len(evaluation.tracks) == 2 and sorted(evaluation.sources) == [
            "accompaniment",
            "vocals",
        ]
    # The oracle mask is an upper bound: it must beat a model trained for four steps.
    oracle = result["results"]["oracle"].aggregate["vocals"]["SDR"]["mean"]
    baseline = result["results"]["baseline"].aggregate["vocals"]["SDR"]["mean"]
    assert math.isfinite(oracle) and oracle > baseline
    for figure in ("boxplot_sdr.png", "training_curves.png", "critic_gradients.png"):
        assert (out / figure).stat().st_size > 5000, figure
    report = (out / "comparison.md").read_text()
    for column in ("baseline SDR", "V SDR", "VA SDR", "oracle SDR"):
        assert column in report
    assert "seed 1234" in report and "Wall time" in report


def test_experiment_report_in_chromium(experiment):
    out, result = experiment
    assert (out / "report.html").is_file() and (
        out / "results" / "mixture" / "results.json"
    ).is_file()
    with browser.chromium() as driver:
        # The test songs last 4 s, less than the default 10 s excerpt: each player holds a whole
        # song.
        seen = browser.check_report_page(driver, out / "report.html", SCALE.duration)
        shown = {os.path.basename(image["src"]) for image in seen["images"]}
        assert {"boxplot_sdr.png", "training_curves.png", "critic_gradients.png"} <= shown
        browser.assert_summary_matches(
            browser.summary_cells(driver),
            {
                name: out / "results" / folder / "results.json"
                for name, folder in [
                    ("baseline", "baseline"),
                    ("V", "V"),
                    ("VA", "VA"),
                    ("oracle", "oracle"),
                    (MIXTURE_LABEL, "mixture"),
                ]
            },
        )
        tracks = result["results"]["oracle"].tracks
        assert browser.per_track_order(driver) == sorted(tracks)
        per_track = json.loads((out / "results" / "oracle" / "results.json").read_text())["tracks"]
        ascending = sorted(tracks, key=lambda track: per_track[track]["vocals"]["SDR"])
        browser.click_per_track_header(driver, "oracle", "vocals", "SDR")
        assert browser.per_track_order(driver) == ascending
        browser.click_per_track_header(driver, "oracle", "vocals", "SDR")
        assert browser.per_track_order(driver) == ascending[::-1]
        config = json.loads(driver.find_element("id", "config").text)
        assert config["runs"]["V"] == {"mode": "adversarial", "critics": ["vocals"]}
        assert config["config"]["name"] == "tiny"
        assert driver.find_element("id", "command").text.strip()


def test_experiment_cli_rejects_unknown_models(tmp_path, capsys):
    for argv, message in (
        (["--out", str(tmp_path), "--models", "baseline,XYZ"], "unknown model(s) XYZ"),
        (["--out", str(tmp_path), "--shards", str(tmp_path)], "--test-dir"),
    ):
        with pytest.raises(SystemExit) as exit_info:  # bad usage: argparse's exit code 2
            common.run(experiment_cli.main, argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_test_references_are_reused_only_for_the_same_tracks(tmp_path):
    """A reference folder written for other tracks (a split or singer list changed since) must
    not be scored as if it held these: it is refused, naming the folder."""
    from types import SimpleNamespace

    from advsep_tf.errors import AdvsepError
    from advsep_tf.experiment import write_test_references

    config = load_config("tiny")
    records = [SimpleNamespace(key="mir1k:abjones_1_01"), SimpleNamespace(key="mir1k:annar_1_01")]
    folder = tmp_path / "refs"
    folder.mkdir()
    (folder / ".complete").write_text("mir1k:abjones_1_01\nmir1k:annar_1_01\n")
    # Reused as it is: nothing is read, so these stand-in records need no audio.
    assert write_test_references(records[::-1], str(folder), config, 16000) == str(folder)
    with pytest.raises(AdvsepError, match="refs: holds the references of other tracks"):
        write_test_references(records[:1], str(folder), config, 16000)
    (folder / ".complete").write_text("2 tracks\n")  # a marker of an earlier version
    assert write_test_references(records, str(folder), config, 16000) == str(folder)
