"""Evaluation on the real MUSDB18 excerpts in ../shared/data: the oracle beats a poor estimate."""

import json

import numpy as np
import soundfile as sf

from advsep_tf.cli import common
from advsep_tf.cli import evaluate as evaluate_cli
from advsep_tf.evaluate import load_result
from conftest import shared_data_or_skip
from pipeline_steps import evaluate_argv

SECONDS = 4.0


def _two_stem_tree(root, data):
    """references/<track>/{mixture,vocals,accompaniment}.wav and estimates = the mixture for
    each."""
    references, estimates = root / "references", root / "mixture_as_estimate"
    tracks = sorted(p for p in (data / "paired_4stem").iterdir() if p.is_dir())
    for track in tracks:
        stems = {}
        for name in ("mixture", "vocals", "drums", "bass", "other"):
            audio, rate = sf.read(track / f"{name}.wav", dtype="float32", always_2d=True)
            stems[name] = audio[: int(SECONDS * rate)]
        accompaniment = stems["drums"] + stems["bass"] + stems["other"]
        for folder, content in (
            (
                references,
                {
                    "mixture": stems["mixture"],
                    "vocals": stems["vocals"],
                    "accompaniment": accompaniment,
                },
            ),
            (estimates, {"vocals": stems["mixture"], "accompaniment": stems["mixture"]}),
        ):
            (folder / track.name).mkdir(parents=True)
            for name, audio in content.items():
                sf.write(folder / track.name / f"{name}.wav", audio, rate, subtype="FLOAT")
    return references, estimates, [t.name for t in tracks]


def test_evaluate_real_clips_with_oracle(tmp_path, capsys):
    data = shared_data_or_skip()
    references, estimates, tracks = _two_stem_tree(tmp_path, data)
    out = tmp_path / "results"
    code = common.run(
        evaluate_cli.main,
        evaluate_argv(estimates, references, out, "--oracle", "paper", "--no-progress"),
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    table_rows = [
        line
        for line in printed.out.splitlines()
        if line.startswith("| vocals") or line.startswith("| accompaniment")
    ]
    # One table: a row per source and model (the estimates, the oracle, the mixture as estimate).
    assert len(table_rows) == 6
    for source in ("vocals", "accompaniment"):
        models = {
            line.split("|")[2].strip() for line in table_rows if line.startswith(f"| {source} ")
        }
        assert models == {estimates.name, "oracle", "mixture as estimate"}, models
    header = next(
        line for line in printed.out.splitlines() if line.startswith("| source | model |")
    )
    assert "SDR" in header and "ISR" in header and "leakage" in header

    poor, oracle = load_result(out / "results.json"), load_result(out / "oracle" / "results.json")
    assert sorted(poor.tracks) == sorted(tracks) and sorted(poor.sources) == [
        "accompaniment",
        "vocals",
    ]
    for source in ("vocals", "accompaniment"):
        assert (
            oracle.aggregate[source]["SDR"]["mean"] > poor.aggregate[source]["SDR"]["mean"] + 3.0
        ), source
    # The JSON round-trips exactly.
    again = json.loads((out / "results.json").read_text())
    assert load_result(out / "results.json").to_dict() == poor.to_dict()
    assert again["settings"]["sources"] == poor.sources
    assert (out / "boxplot_sdr.png").stat().st_size > 5000
    assert (out / "comparison.md").read_text().count("|") > 20

    compared = tmp_path / "compared"
    code = common.run(
        evaluate_cli.main, ["--compare", str(out), str(out / "oracle"), "--out", str(compared)]
    )
    assert code == 0 and (compared / "boxplot_sdr.png").is_file()
    assert "### Comparison of results, oracle" in capsys.readouterr().out


def test_oracle_matches_the_references_when_sources_do_not_overlap(tmp_path):
    """Two sources in disjoint frequency bands: the ideal ratio mask separates them almost
    perfectly."""
    from advsep_tf.config import load_config
    from advsep_tf.evaluate import evaluate_folders, write_oracle_estimates

    rate = 8192
    t = np.arange(3 * rate) / rate
    low = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)[:, None]
    high = (0.3 * np.sin(2 * np.pi * 2500 * t)).astype(np.float32)[:, None]
    track = tmp_path / "refs" / "t"
    track.mkdir(parents=True)
    sf.write(track / "vocals.wav", high, rate, subtype="FLOAT")
    sf.write(track / "accompaniment.wav", low, rate, subtype="FLOAT")
    write_oracle_estimates(tmp_path / "refs", tmp_path / "oracle", load_config("paper"))
    result = evaluate_folders(tmp_path / "oracle", tmp_path / "refs")
    assert result.aggregate["vocals"]["SDR"]["mean"] > 25
