"""BSS Eval of estimate folders against reference folders, with real WAV files and real museval."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from advsep_tf.errors import AdvsepError
from advsep_tf.evaluate import (
    METRICS,
    EvaluationResult,
    evaluate_folders,
    evaluate_mixture_as_estimate,
    format_comparison,
    format_table,
    load_result,
)

SAMPLE_RATE = 8192
NB_SAMPLES = 3 * SAMPLE_RATE
SOURCES = ("accompaniment", "vocals")
TRACKS = ("track_a", "track_b")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _write_tree(root, stems_per_track, sample_rate=SAMPLE_RATE):
    for track, stems in stems_per_track.items():
        (root / track).mkdir(parents=True, exist_ok=True)
        for source, audio in stems.items():
            sf.write(root / track / f"{source}.wav", audio, sample_rate, subtype="FLOAT")
    return root


def _synthetic_stems(seed):
    """Stereo vocals (a vibrato tone with harmonics) and accompaniment (low-passed noise + bass)."""
    rng = np.random.default_rng(seed)
    t = np.arange(NB_SAMPLES) / SAMPLE_RATE
    f0 = 220.0 * (1 + seed * 0.1) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    vocals = sum(np.sin(k * phase) / k for k in (1, 2, 3))
    noise = np.convolve(rng.standard_normal(NB_SAMPLES), np.ones(8) / 8, mode="same")
    accompaniment = noise + 0.5 * np.sin(2 * np.pi * 55 * t)
    as_stereo = lambda mono, gain: np.stack([mono, gain * mono], axis=1)  # noqa: E731
    return {
        "vocals": (0.3 * as_stereo(vocals, 0.8)).astype(np.float32),
        "accompaniment": (0.3 * as_stereo(accompaniment, 1.1)).astype(np.float32),
    }


def _plus_noise(stems, relative_level, seed):
    rng = np.random.default_rng(seed)
    return {
        source: (audio + relative_level * audio.std() * rng.standard_normal(audio.shape)).astype(
            np.float32
        )
        for source, audio in stems.items()
    }


def _mixture_for_every_source(stems):
    mixture = sum(stems.values())
    return {source: mixture for source in stems}


@pytest.fixture(scope="module")
def references():
    return {track: _synthetic_stems(seed) for seed, track in enumerate(TRACKS)}


@pytest.fixture(scope="module")
def scored(tmp_path_factory, references):
    """Evaluations shared by the tests: near-perfect estimates (written to out_dir) and mixtures."""
    root = tmp_path_factory.mktemp("scored")
    references_dir = _write_tree(root / "references", references)
    near_perfect = {t: _plus_noise(s, 1e-3, seed=i) for i, (t, s) in enumerate(references.items())}
    good_dir = _write_tree(root / "good", near_perfect)
    mixture_dir = _write_tree(
        root / "mixture", {t: _mixture_for_every_source(s) for t, s in references.items()}
    )
    progress_calls = []
    good = evaluate_folders(
        good_dir,
        references_dir,
        out_dir=root / "out",
        progress=lambda done, total: progress_calls.append((done, total)),
    )
    mixture = evaluate_folders(mixture_dir, references_dir)
    return {
        "good": good,
        "mixture": mixture,
        "out_dir": root / "out",
        "progress": progress_calls,
        "references_dir": references_dir,
    }


def test_near_perfect_estimates_score_high(scored):
    good = scored["good"]
    assert good.sources == list(SOURCES)
    assert good.tracks == list(TRACKS)
    for source in SOURCES:
        assert good.aggregate[source]["SDR"]["mean"] > 20
        assert good.aggregate[source]["SDR"]["median"] > 20
    for row in good.rows:
        assert set(row.scores) == set(METRICS)
        assert all(
            row.scores[m] is not None and np.isfinite(row.scores[m])
            for m in ("SDR", "SIR", "SAR", "ISR")
        )
        # The fixtures' sources never fall silent: there is no pause to measure leakage in.
        assert row.scores["leakage"] is None or np.isfinite(row.scores["leakage"])


def test_mixture_as_estimate_scores_much_lower(scored):
    for source in SOURCES:
        good_sdr = scored["good"].aggregate[source]["SDR"]["mean"]
        mixture_sdr = scored["mixture"].aggregate[source]["SDR"]["mean"]
        assert mixture_sdr < 10
        assert mixture_sdr < good_sdr - 20
        # The other source leaks in fully: interference, not artifacts, is what drops.
        assert scored["mixture"].aggregate[source]["SIR"]["mean"] < 10


def test_mixture_as_estimate_scores_the_sum_of_the_stems(scored, tmp_path):
    mixture = evaluate_mixture_as_estimate(scored["references_dir"], out_dir=tmp_path)
    # The same scores as the mixture written out as every source's estimate file.
    assert mixture.rows == scored["mixture"].rows
    assert mixture.estimates_dir == ""
    assert load_result(tmp_path / "results.json") == mixture


def test_mixture_as_estimate_reads_mixture_wav(tmp_path, references):
    quiet_vocals = {
        t: dict(s, mixture=0.5 * s["vocals"] + s["accompaniment"]) for t, s in references.items()
    }
    references_dir = _write_tree(tmp_path / "references", quiet_vocals)
    from_file = evaluate_mixture_as_estimate(references_dir)
    summed = evaluate_mixture_as_estimate(_write_tree(tmp_path / "no_mixture", references))
    # Less vocals in the mixture: a worse vocals estimate, a better accompaniment one.
    assert (
        from_file.aggregate["vocals"]["SDR"]["mean"] < summed.aggregate["vocals"]["SDR"]["mean"] - 1
    )
    assert (
        from_file.aggregate["accompaniment"]["SDR"]["mean"]
        > summed.aggregate["accompaniment"]["SDR"]["mean"] + 1
    )

    short = quiet_vocals["track_b"]["mixture"][:-10]
    sf.write(references_dir / "track_b" / "mixture.wav", short, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AdvsepError, match="mixture.wav") as caught:
        evaluate_mixture_as_estimate(references_dir)
    assert str(references_dir / "track_b" / "mixture.wav") in str(caught.value)


def test_progress_reports_each_track(scored):
    assert scored["progress"] == [(1, 2), (2, 2)]


def test_results_json_round_trips(scored):
    loaded = load_result(scored["out_dir"] / "results.json")
    assert loaded == scored["good"]
    assert loaded.aggregate == scored["good"].aggregate
    data = json.loads((scored["out_dir"] / "results.json").read_text())
    assert set(data) >= {"settings", "tracks", "aggregate"}
    assert data["settings"]["win_seconds"] == 1.0
    assert data["aggregate"]["vocals"]["nb_tracks"] == 2
    assert EvaluationResult.from_dict(scored["good"].to_dict()) == scored["good"]


def test_round_trip_keeps_undefined_and_infinite_scores(tmp_path):
    from advsep_tf.evaluate import SourceScores, save_result

    scores = {
        "SDR": float("inf"),
        "SIR": None,
        "SAR": 12.345678901234567,
        "ISR": -3.5,
        "leakage": -31.25,
    }
    result = EvaluationResult(
        rows=[SourceScores("t", "vocals", dict(scores)), SourceScores("t", "drums", dict(scores))],
        sources=["vocals", "drums"],
    )
    loaded = load_result(save_result(result, tmp_path))
    assert loaded == result
    assert loaded.aggregate["vocals"]["SIR"] == {"mean": None, "median": None}
    json.loads((tmp_path / "results.json").read_text(), parse_constant=pytest.fail)


def test_results_csv_has_a_row_per_track_and_source(scored):
    with open(scored["out_dir"] / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(TRACKS) * len(SOURCES)
    assert {(row["track"], row["source"]) for row in rows} == {
        (t, s) for t in TRACKS for s in SOURCES
    }
    assert list(rows[0]) == ["track", "source", *METRICS]
    assert not list(scored["out_dir"].glob("*.tmp"))


def test_format_table_has_a_row_per_source(scored):
    table = format_table(scored["good"], title="baseline")
    lines = table.splitlines()
    assert lines[0] == "### baseline"
    rows = [line for line in lines if line.startswith("| ")]
    assert rows[0] == "| source | SDR | SIR | SAR | ISR | leakage | tracks |"
    body = rows[1:]
    assert [row.split("|")[1].strip() for row in body] == list(SOURCES)
    vocals = scored["good"].aggregate["vocals"]["SDR"]
    expected_cell = f"{vocals['mean']:.2f} / {vocals['median']:.2f}"
    assert expected_cell in body[1]
    assert body[1].rstrip(" |").endswith("2")


def test_format_comparison_puts_models_side_by_side(scored):
    results = {"baseline": scored["mixture"], "adversarial": scored["good"]}
    table = format_comparison(results)
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert header == ["source"] + [f"{m} {x}" for m in results for x in ("SDR", "SIR", "SAR")]
    assert [row.split("|")[1].strip() for row in rows[1:]] == list(SOURCES)
    adversarial_sdr = scored["good"].aggregate["vocals"]["SDR"]["mean"]
    assert f"{adversarial_sdr:.2f}" in rows[2]
    assert "Not comparable" not in table
    with pytest.raises(AdvsepError, match="metric_list"):
        format_comparison(results, metric_list=("PESQ",))


def _error_case_tree(tmp_path, references, breakage):
    """A references tree and a near-perfect estimates tree, with one estimate file broken."""
    references_dir = _write_tree(tmp_path / "references", references)
    estimates = {t: _plus_noise(s, 1e-3, seed=1) for t, s in references.items()}
    estimates_dir = _write_tree(tmp_path / "estimates", estimates)
    broken = estimates_dir / "track_b" / "vocals.wav"
    audio = estimates["track_b"]["vocals"]
    if breakage == "missing":
        broken.unlink()
    elif breakage == "length":
        sf.write(broken, audio[:-100], SAMPLE_RATE, subtype="FLOAT")
    elif breakage == "sample_rate":
        sf.write(broken, audio, 2 * SAMPLE_RATE, subtype="FLOAT")
    elif breakage == "nan":
        audio = audio.copy()
        audio[1000, 0] = np.nan
        sf.write(broken, audio, SAMPLE_RATE, subtype="FLOAT")
    elif breakage == "channels":
        sf.write(broken, audio[:, 0], SAMPLE_RATE, subtype="FLOAT")
    elif breakage == "empty":
        sf.write(broken, audio[:0], SAMPLE_RATE, subtype="FLOAT")
    return estimates_dir, references_dir, broken


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("missing", "missing estimate"),
        ("length", f"{NB_SAMPLES - 100} samples.*has {NB_SAMPLES}"),
        ("sample_rate", f"{2 * SAMPLE_RATE} Hz.*{SAMPLE_RATE} Hz"),
        ("nan", "NaN"),
        ("channels", "1 channel"),
        ("empty", "empty"),
    ],
)
def test_broken_estimate_is_an_error_naming_the_file(tmp_path, references, breakage, message):
    estimates_dir, references_dir, broken = _error_case_tree(tmp_path, references, breakage)
    with pytest.raises(AdvsepError, match=message) as caught:
        evaluate_folders(estimates_dir, references_dir)
    assert str(broken) in str(caught.value)


def test_nan_in_a_reference_is_an_error_naming_it(tmp_path, references):
    stems = {t: dict(s) for t, s in references.items()}
    stems["track_a"]["accompaniment"] = stems["track_a"]["accompaniment"].copy()
    stems["track_a"]["accompaniment"][5, 1] = np.inf
    references_dir = _write_tree(tmp_path / "references", stems)
    estimates_dir = _write_tree(tmp_path / "estimates", references)
    with pytest.raises(AdvsepError, match="NaN or inf") as caught:
        evaluate_folders(estimates_dir, references_dir)
    assert str(references_dir / "track_a" / "accompaniment.wav") in str(caught.value)


def test_track_sets_must_match(tmp_path, references):
    references_dir = _write_tree(tmp_path / "references", references)
    extra = _write_tree(tmp_path / "extra", dict(references, track_c=references["track_a"]))
    with pytest.raises(AdvsepError, match="track_c"):
        evaluate_folders(extra, references_dir)
    fewer = _write_tree(tmp_path / "fewer", {"track_a": references["track_a"]})
    with pytest.raises(AdvsepError, match="no estimates: track_b"):
        evaluate_folders(fewer, references_dir)


def test_sources_selection(tmp_path, references):
    stems = {t: dict(s, mixture=sum(s.values())) for t, s in references.items()}
    references_dir = _write_tree(tmp_path / "references", stems)
    # A separator that returns only vocals cannot be scored: SIR needs the other source.
    vocals_only = _write_tree(
        tmp_path / "vocals_only", {t: {"vocals": s["vocals"]} for t, s in references.items()}
    )
    with pytest.raises(AdvsepError, match="at least two sources"):
        evaluate_folders(vocals_only, references_dir)
    with pytest.raises(AdvsepError, match="drums.wav: no such reference"):
        evaluate_folders(vocals_only, references_dir, sources=["vocals", "drums"])
    with pytest.raises(AdvsepError) as caught:
        evaluate_folders(vocals_only, references_dir, sources=["vocals", "accompaniment"])
    assert str(vocals_only / "track_a" / "accompaniment.wav") in str(caught.value)


@pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"real MUSDB excerpts not found in {SHARED_DATA}"
)
def test_real_musdb_excerpts(tmp_path):
    track_dirs = sorted((SHARED_DATA / "paired_4stem").iterdir())
    assert len(track_dirs) == 2
    sample_rate = sf.info(track_dirs[0] / "mixture.wav").samplerate
    stems_per_track = {
        track_dir.name: {
            wav.stem: sf.read(wav, dtype="float32", frames=3 * sample_rate, always_2d=True)[0]
            for wav in track_dir.glob("*.wav")
        }
        for track_dir in track_dirs
    }
    # The reference tree keeps mixture.wav, as MUSDB18-HQ does; it must not count as a source.
    references_dir = _write_tree(tmp_path / "references", stems_per_track, sample_rate)
    near = {
        track: _plus_noise({k: v for k, v in stems.items() if k != "mixture"}, 1e-3, seed=3)
        for track, stems in stems_per_track.items()
    }
    near_dir = _write_tree(tmp_path / "near", near, sample_rate)
    mixtures = {
        track: {source: stems["mixture"] for source in near[track]}
        for track, stems in stems_per_track.items()
    }
    mixture_dir = _write_tree(tmp_path / "mixture", mixtures, sample_rate)

    near_result = evaluate_folders(near_dir, references_dir)
    mixture_result = evaluate_folders(mixture_dir, references_dir)

    assert near_result.sources == ["bass", "drums", "other", "vocals"]
    for source in near_result.sources:
        near_sdr = near_result.aggregate[source]["SDR"]["mean"]
        mixture_sdr = mixture_result.aggregate[source]["SDR"]["mean"]
        assert near_sdr > 20, source
        assert mixture_sdr < near_sdr - 10, source
    table = format_comparison({"mixture": mixture_result, "near": near_result})
    assert len([line for line in table.splitlines() if line.startswith("| ")]) == 1 + 4


def test_a_silent_estimate_is_scored_low_not_dropped(tmp_path, references):
    estimates = {t: dict(s) for t, s in references.items()}
    estimates["track_a"]["vocals"] = np.zeros_like(estimates["track_a"]["vocals"])
    result = evaluate_folders(
        _write_tree(tmp_path / "estimates", estimates), _write_tree(tmp_path / "refs", references)
    )
    scores = {(r.track, r.source): r.scores["SDR"] for r in result.rows}
    # Outputting nothing scores about 0 dB (the target and the error are the reference itself).
    assert scores[("track_a", "vocals")] is not None and abs(scores[("track_a", "vocals")]) < 0.5
    assert scores[("track_b", "vocals")] > 30  # the untouched track is perfect
    # A silent reference is still refused: there is nothing to score against.
    silent = {t: dict(s) for t, s in references.items()}
    silent["track_a"]["vocals"] = np.zeros_like(silent["track_a"]["vocals"])
    with pytest.raises(AdvsepError, match="all samples are zero"):
        evaluate_folders(
            _write_tree(tmp_path / "e2", references), _write_tree(tmp_path / "r2", silent)
        )


def test_leakage_is_the_estimates_energy_over_the_mixtures_where_the_reference_is_silent():
    from advsep_tf.evaluate import leakage_db

    rate = 1000
    rng = np.random.default_rng(0)
    voice = rng.standard_normal((4 * rate, 1))
    voice[2 * rate :] = 0.0  # a two-second vocal pause
    music = rng.standard_normal((4 * rate, 1))
    mixture = voice + music
    # An estimate that keeps 1% of the music's amplitude in the pause: -40 dB of the mixture there.
    estimate = voice + 0.01 * music
    assert leakage_db(estimate, voice, mixture, rate) == pytest.approx(-40.0, abs=0.01)
    assert leakage_db(mixture, voice, mixture, rate) == pytest.approx(0.0, abs=1e-9)
    # A source that never pauses has no leakage to measure.
    assert leakage_db(music, music, mixture, rate) is None
    # A silenced pause scores the floor, not -200 dB: one gated track cannot carry the mean.
    assert leakage_db(voice, voice, mixture, rate) == -60.0
    assert leakage_db(voice + 1e-4 * music, voice, mixture, rate) == -60.0
    assert leakage_db(voice + 1e-2 * music, voice, mixture, rate) > -60.0


def test_results_hold_the_leakage_and_old_results_without_it_still_load(tmp_path):
    from advsep_tf.evaluate import EvaluationResult, SourceScores

    result = EvaluationResult(
        rows=[
            SourceScores(
                "t", "vocals", {"SDR": 1.0, "SIR": 2.0, "SAR": 3.0, "ISR": 4.0, "leakage": -30.0}
            )
        ],
        sources=["vocals"],
    )
    data = result.to_dict()
    assert EvaluationResult.from_dict(data).aggregate["vocals"]["leakage"]["mean"] == -30.0
    del data["tracks"]["t"]["vocals"]["leakage"]
    assert EvaluationResult.from_dict(data).aggregate["vocals"]["leakage"]["mean"] is None


def test_the_mixture_as_estimate_has_a_degenerate_sar(scored):
    # BSS Eval's artefact term is zero for the sum of the references: SAR is +inf, not ~169 dB.
    for result in (scored["mixture"], evaluate_mixture_as_estimate(scored["references_dir"])):
        assert all(row.scores["SAR"] == float("inf") for row in result.rows)
    assert all(row.scores["SAR"] < 100 for row in scored["good"].rows)


def test_evaluate_all_scores_models_oracle_and_mixture(scored, tmp_path):
    from advsep_tf.evaluate import MIXTURE, ORACLE, evaluate_all

    labels, seen = [], {}

    def progress(label):
        labels.append(label)
        return lambda done, total: None

    good_dir = Path(scored["good"].estimates_dir)

    def score_good_with_the_oracle(**options):
        return evaluate_all(
            scored["references_dir"],
            {"good": good_dir},
            tmp_path / "out",
            oracle="tiny",
            progress=progress,
            **options,
        )

    results = score_good_with_the_oracle(
        with_audio=lambda r: seen.update(
            {
                name: Path(result.estimates_dir).is_dir()
                for name, result in r.items()
                if result.estimates_dir
            }
        ),
    )
    assert list(results) == ["good", ORACLE, MIXTURE]
    assert labels == ["score good", "oracle estimates", "score oracle", "score mixture as estimate"]
    assert results["good"].rows == scored["good"].rows
    assert results[MIXTURE].rows == evaluate_mixture_as_estimate(scored["references_dir"]).rows
    for name in results:
        assert (tmp_path / "out" / name / "results.json").is_file()
        assert all("leakage" in row.scores for row in results[name].rows)
    # The oracle's audio was there for `with_audio`, then removed; its results say so.
    assert seen == {"good": True, ORACLE: True}
    assert results[ORACLE].estimates_dir == ""
    assert load_result(tmp_path / "out" / ORACLE / "results.json").estimates_dir == ""
    for source in SOURCES:
        oracle_sdr = results[ORACLE].aggregate[source]["SDR"]["mean"]
        assert oracle_sdr > results[MIXTURE].aggregate[source]["SDR"]["mean"]

    # reuse: what is saved is loaded, nothing is scored again.
    labels.clear()
    again = score_good_with_the_oracle(reuse=True)
    assert labels == [] and again == results

    table = format_table(results, title="all")
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows[0] == "| source | model | SDR | SIR | SAR | ISR | leakage | tracks |"
    assert [row.split("|")[2].strip() for row in rows[1:4]] == [
        "good",
        "oracle",
        "mixture as estimate",
    ]
    assert "∞ / ∞" in rows[3] and "SAR ∞" in table
    with pytest.raises(AdvsepError, match="oracle"):
        evaluate_all(scored["references_dir"], {"oracle": good_dir})
