import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf

from advsep_tf.separate import Separator
from conftest import walked_segments


@pytest.fixture(scope="module")
def separator(tiny_run):
    return Separator.from_checkpoint(str(tiny_run))


def _song(seconds, rate, channels, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.3 * np.sin(2 * np.pi * 330 * t) * (
        1 + 0.5 * np.sin(2 * np.pi * 0.5 * t)
    ) + 0.02 * rng.standard_normal(t.size)
    return np.stack([mono * (1 - 0.3 * c) for c in range(channels)], axis=1).astype(np.float32)


@pytest.mark.parametrize("rate, channels", [(8192, 1), (44100, 2), (16000, 1)])
def test_stems_have_the_inputs_length_rate_and_channels(separator, tmp_path, rate, channels):
    song = _song(3.3, rate, channels)
    path = tmp_path / "song.wav"
    sf.write(path, song, rate, subtype="FLOAT")
    written = separator.separate_to_file(str(path), str(tmp_path / "out"))
    assert sorted(p.split("/")[-1] for p in written) == ["accompaniment.wav", "vocals.wav"]
    for p in written:
        stem, stem_rate = sf.read(p, dtype="float32", always_2d=True)
        assert stem_rate == rate and stem.shape == song.shape
        assert np.all(np.isfinite(stem))


@pytest.mark.parametrize("seconds", [5, 31, 95])
def test_segmented_separation_equals_the_whole_song_pass(separator, seconds):
    """30 s segments, each keeping only what saw all its context, against one graph over the
    whole song (the SavedModel's serving function): equal to float round-off."""
    import tensorflow as tf

    from advsep_tf.separate import separate_waveforms

    rate = separator.config.audio.sample_rate
    song = _song(seconds, rate, 2, seed=seconds)
    segmented = separator.separate(song, rate)
    assert (seconds > 30) == (len(song) > separator.segment_samples)
    whole = separate_waveforms(
        separator._estimate_patches, tf.constant(song.T), separator.config, 16
    ).numpy()
    for k, source in enumerate(separator.config.sources):
        np.testing.assert_allclose(
            segmented[source], whole[:, k].T, atol=1e-5, rtol=0, err_msg=source
        )


def test_band_masks_on_segments_equal_one_pass(separator):
    """The input-rate band masking, run on the segments of its frame layout, equals one pass."""
    import tensorflow as tf

    from advsep_tf import filtering
    from advsep_tf.streaming import SegmentWalk

    rate = 44100
    rng = np.random.default_rng(5)
    parts = (0.1 * rng.standard_normal((2, 1 + separator.config.nb_stems, 25 * rate))).astype(
        np.float32
    )
    assert separator.channel_masks == "shared"
    whole = filtering.band_masks(
        tf.constant(parts[:, 0]),
        tf.constant(parts[:, 1:]),
        separator.config,
        rate,
        shared_channels=True,
    ).numpy()
    layout = separator.band_layout(rate)
    assert len(walked_segments(parts.shape[-1], layout)) >= 3
    walk = SegmentWalk(separator.band_masks_function(rate), layout)
    pieces = [
        out
        for i in range(0, parts.shape[-1], 30000)
        for out in walk.push(parts[..., i : i + 30000])
    ]
    segmented = np.concatenate(pieces + walk.finish(), axis=-1)
    np.testing.assert_allclose(segmented, whole, atol=1e-5, rtol=0)


@pytest.mark.parametrize("rate", [44100, 8192])
def test_silence_gate_silences_a_pause_and_streams_like_one_pass(tiny_run, rate):
    """A song whose stem 0 falls silent for 3 s: with the gate its estimate there is silence
    (handed to the other stem, so the stems still sum to the mixture), elsewhere unchanged; the
    gated band masking on segments equals one pass; at the model's own rate the gate runs too."""
    import tensorflow as tf

    from advsep_tf import filtering
    from advsep_tf.streaming import SegmentWalk

    gated = Separator.from_checkpoint(str(tiny_run), silence_gate_db=-20.0)
    plain = Separator.from_checkpoint(str(tiny_run))
    assert gated.masks_at_input_rate(rate) and not plain.masks_at_input_rate(8192)
    # The gate's window reaches past a frame's own samples: wider segment margins.
    assert gated.band_layout(rate).left_margin > plain.band_layout(rate).left_margin
    rng = np.random.default_rng(9)
    parts = (0.1 * rng.standard_normal((2, 1 + gated.config.nb_stems, 12 * rate))).astype(
        np.float32
    )
    pause = slice(4 * rate, 7 * rate)
    parts[:, 1, pause] *= 1e-3  # stem 0 60 dB down: a pause
    parts[:, 0] = parts[:, 1:].sum(axis=1)
    whole = filtering.band_masks(
        tf.constant(parts[:, 0]),
        tf.constant(parts[:, 1:]),
        gated.config,
        rate,
        shared_channels=True,
        gate_db=-20.0,
    ).numpy()
    inside = slice(pause.start + rate // 2, pause.stop - rate // 2)
    assert np.max(np.abs(whole[:, 0, inside])) < 1e-6
    np.testing.assert_allclose(whole.sum(axis=1), parts[:, 0], atol=1e-4)
    ungated = filtering.band_masks(
        tf.constant(parts[:, 0]),
        tf.constant(parts[:, 1:]),
        gated.config,
        rate,
        shared_channels=True,
    ).numpy()
    np.testing.assert_allclose(whole[..., : 3 * rate], ungated[..., : 3 * rate], atol=1e-5)
    layout = gated.band_layout(rate)
    assert len(walked_segments(parts.shape[-1], layout)) >= 2
    walk = SegmentWalk(gated.band_masks_function(rate), layout)
    pieces = [
        out for i in range(0, parts.shape[-1], 7000) for out in walk.push(parts[..., i : i + 7000])
    ]
    np.testing.assert_allclose(np.concatenate(pieces + walk.finish(), axis=-1), whole, atol=1e-5)
    # The whole separator: the streamed song equals its one-pass separation.
    song = parts[:, 0].T.copy()
    stems = gated.separate(song, rate)
    streamed = list(gated.stream([song[i : i + 5000] for i in range(0, len(song), 5000)], rate))
    for source in stems:
        np.testing.assert_allclose(
            np.concatenate([p[source] for p in streamed]), stems[source], atol=1e-5
        )


def test_shared_channel_masks_mask_every_channel_alike(tiny_run):
    """A stereo song whose right channel is its left at half the level: with shared masks each stem
    keeps that relation exactly (one mask for both channels); with independent masks the model
    hears two different levels and masks them differently. A mono song is the same both ways."""
    rate = 44100
    left = _song(6.0, rate, 1, seed=3)
    stereo = np.concatenate([left, 0.5 * left], axis=1)
    shared_separator = Separator.from_checkpoint(str(tiny_run), channel_masks="shared")
    independent_separator = Separator.from_checkpoint(str(tiny_run), channel_masks="independent")
    shared = shared_separator.separate(stereo, rate)
    independent = independent_separator.separate(stereo, rate)
    for source in shared:
        np.testing.assert_allclose(
            shared[source][:, 1], 0.5 * shared[source][:, 0], atol=1e-6, rtol=0
        )
    deviation = max(
        np.abs(independent[s][:, 1] - 0.5 * independent[s][:, 0]).max() for s in independent
    )
    assert deviation > 1e-3
    mono_shared = shared_separator.separate(left, rate)
    mono_independent = independent_separator.separate(left, rate)
    for source in mono_shared:
        np.testing.assert_allclose(mono_shared[source], mono_independent[source], atol=1e-6, rtol=0)


def test_channel_masks_are_checked(tiny_run):
    from advsep_tf.errors import AdvsepError

    with pytest.raises(
        AdvsepError, match="channel_masks must be one of shared, independent, got 'both'"
    ):
        Separator.from_checkpoint(str(tiny_run), channel_masks="both")


@pytest.mark.parametrize(
    "rate, channels, reconstruction",
    [
        (8192, 1, "mask"),
        (44100, 2, "mask"),
        (44100, 2, "direct"),
        (16000, 1, "mask"),
        (6000, 2, "mask"),
    ],
)
def test_stream_equals_separate_after_its_latency(tiny_run, rate, channels, reconstruction):
    separator = Separator.from_checkpoint(
        str(tiny_run), segment_seconds=4.0, reconstruction=reconstruction
    )
    song = _song(23.0, rate, channels, seed=rate)
    song = song[:, 0] if channels == 1 else song
    expected = separator.separate(song, rate)
    latency = separator.latency(rate)
    rng = np.random.default_rng(channels)
    sizes = rng.integers(1, 3 * rate, size=200)
    bounds = np.minimum(np.concatenate([[0], np.cumsum(sizes)]), len(song))
    blocks = [song[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    received, emitted, parts = 0, 0, []
    stream = separator.stream(iter(blocks), rate)
    for block in blocks:
        received += len(block)
        # The generator yields at most once per block; drain what this block made due.
        while emitted < max(0, received - latency):
            out = next(stream)
            emitted += len(out[separator.config.sources[0]])
            parts.append(out)
        assert emitted == max(0, received - latency)
    parts += list(stream)
    for source in separator.config.sources:
        streamed = np.concatenate([p[source] for p in parts], axis=0)
        assert streamed.shape == song.shape
        np.testing.assert_allclose(streamed, expected[source], atol=1e-5, rtol=0, err_msg=source)


def test_chunk_size_does_not_change_the_result(tiny_run):
    song = _song(5.0, 8192, 1, seed=4)[:, 0]
    one = Separator.from_checkpoint(str(tiny_run), chunk_patches=1).separate(song, 8192)
    many = Separator.from_checkpoint(str(tiny_run), chunk_patches=64).separate(song, 8192)
    for source in one:
        np.testing.assert_allclose(one[source], many[source], atol=1e-5)


MEMORY_PROBE = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    from advsep_tf.separate import Separator

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    separator = Separator.from_checkpoint(sys.argv[1])
    rate = 8192
    rng = np.random.default_rng(0)
    short = (0.1 * rng.standard_normal(60 * rate)).astype(np.float32)
    stems = separator.separate(short, rate)
    del stems
    after_short = peak_mb()
    long = (0.1 * rng.standard_normal(600 * rate)).astype(np.float32)
    stems = separator.separate(long, rate)
    after_long = peak_mb()
    print(json.dumps({"growth_mb": after_long - after_short, "lengths": [len(s) for s in
    stems.values()],
                      "samples": len(long), "array_mb": long.nbytes / 2**20}))
    """
)


def test_ten_minute_song_separates_with_bounded_memory(tiny_run):
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(tiny_run)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["lengths"] == [report["samples"]] * 2
    # Beyond the input and its two stems (3 arrays of the song's size), memory stays within one
    # segment's working set; the whole-song graph needed several times the song's size.
    bound = 3 * report["array_mb"] + 200
    assert report["growth_mb"] < bound, report


FILE_MEMORY_PROBE = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np, soundfile as sf
    from advsep_tf.separate import Separator

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    run_dir, folder = sys.argv[1], sys.argv[2]
    rate, channels = 44100, 2
    separator = Separator.from_checkpoint(run_dir)
    rng = np.random.default_rng(0)
    report = {}
    for minutes in (1, 10):
        path = f"{folder}/song_{minutes}min.wav"
        with sf.SoundFile(path, "w", rate, channels, subtype="PCM_16") as f:
            # written 10 s at a time: the probe's own memory stays flat
            for _ in range(minutes * 6):
                f.write((0.1 * rng.standard_normal((10 * rate, channels))).astype(np.float32))
        before = peak_mb()
        written = separator.separate_to_file(path, f"{folder}/out")
        report[minutes] = {"peak_mb": peak_mb(), "before_mb": before,
                           "outputs": [[sf.info(p).frames, sf.info(p).samplerate,
                           sf.info(p).channels] for p in written]}
    print(json.dumps({"report": report, "samples": 10 * 60 * rate,
                      "input_mb": 10 * 60 * rate * channels * 4 / 2**20}))
    """
)


def test_ten_minute_stereo_file_keeps_length_rate_channels_and_bounded_memory(tiny_run, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", FILE_MEMORY_PROBE, str(tiny_run), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    ten = probe["report"]["10"]
    assert ten["outputs"] == [[probe["samples"], 44100, 2]] * 2
    # Files are read and stems written block by block: the peak does not grow with the song
    # (stated bound: 10 minutes within 1.2x the peak of 1 minute; the 10-minute input alone as
    # float32 would be about 200 MB).
    assert ten["peak_mb"] <= 1.2 * probe["report"]["1"]["peak_mb"], probe


def test_a_pipe_in_and_one_stem_out_equal_the_files(tiny_run, separator, tmp_path):
    """`advsep-tf-separate - --out - --stem vocals` in a shell pipe gives the stem that the file
    form writes; the summary and errors stay off standard output."""
    song = _song(7.0, 44100, 2, seed=9)
    path = tmp_path / "song.wav"
    sf.write(path, song, 44100, subtype="FLOAT")
    expected = separator.separate_to_file(str(path), str(tmp_path / "out"))
    command = [
        sys.executable,
        "-m",
        "advsep_tf.cli.separate",
        "-",
        "--model",
        str(tiny_run),
        "--out",
        "-",
        "--stem",
        "vocals",
    ]
    with open(path, "rb") as stdin:
        result = subprocess.run(command, stdin=stdin, capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    piped = tmp_path / "piped.wav"
    piped.write_bytes(result.stdout)
    stem, rate = sf.read(piped, dtype="float32", always_2d=True)
    reference, _ = sf.read(
        [p for p in expected if p.endswith("vocals.wav")][0], dtype="float32", always_2d=True
    )
    assert rate == 44100 and stem.shape == song.shape
    np.testing.assert_allclose(stem, reference, atol=1e-6)
    # A stem the model does not have: one line, nothing on standard output.
    with open(path, "rb") as stdin:
        bad = subprocess.run(
            command[:-1] + ["drums"], stdin=stdin, capture_output=True, timeout=600
        )
    assert bad.returncode == 2 and bad.stdout == b""
    assert "--stem drums: this model separates vocals, accompaniment" in bad.stderr.decode()


@pytest.mark.parametrize("codec", ["flac", "ogg", "mp3"])
def test_other_codecs_and_filename_formats(separator, tmp_path, codec):
    song = _song(2.0, 22050, 2)
    path = tmp_path / "song.wav"
    sf.write(path, song, 22050)
    written = separator.separate_to_file(
        str(path), str(tmp_path / "out"), filename_format="{source}-{track}.{codec}", codec=codec
    )
    assert sorted(os.path.basename(p) for p in written) == [
        f"accompaniment-song.{codec}",
        f"vocals-song.{codec}",
    ]
    for p in written:
        info = sf.info(p)
        assert info.samplerate == 22050 and info.channels == 2
        # Lossy codecs pad by up to a frame; lossless ones keep the exact length.
        assert info.frames == len(song) if codec == "flac" else abs(info.frames - len(song)) < 4096


def test_mask_reconstruction_keeps_the_high_band_and_sums_to_the_mixture(tiny_run):
    rate = 44100
    t = np.arange(2 * rate) / rate
    song = (0.2 * np.sin(2 * np.pi * 300 * t) + 0.2 * np.sin(2 * np.pi * 9000 * t)).astype(
        np.float32
    )
    masked = Separator.from_checkpoint(str(tiny_run), reconstruction="mask").separate(song, rate)
    direct = Separator.from_checkpoint(str(tiny_run), reconstruction="direct").separate(song, rate)

    def high_band_energy(x):
        spectrum = np.abs(np.fft.rfft(x))
        return np.sum(spectrum[np.fft.rfftfreq(len(x), 1 / rate) > 5000] ** 2)

    total_masked = sum(masked.values())
    assert high_band_energy(sum(direct.values())) < 0.01 * high_band_energy(song)
    assert high_band_energy(total_masked) > 0.9 * high_band_energy(song)
    inner = slice(rate // 10, -rate // 10)
    assert np.max(np.abs(total_masked[inner] - song[inner])) < 0.02


@pytest.mark.parametrize("bad", ["empty", "header_only", "corrupt", "too_short", "missing"])
def test_every_input_is_checked_before_any_is_separated(tiny_run, tmp_path, capsys, bad):
    """advsep-tf-separate X.mp3 bad.wav: exit 1 naming bad.wav, and no stem of X.mp3 written."""
    from advsep_tf.cli import common
    from advsep_tf.cli import separate as separate_cli

    song = tmp_path / "X.mp3"
    sf.write(song, _song(2.0, 16000, 1)[:, 0], 16000, format="MP3", subtype="MPEG_LAYER_III")
    path = tmp_path / f"{bad}.wav"
    if bad == "empty":
        path.write_bytes(b"")
    elif bad == "header_only":
        sf.write(path, np.zeros((0, 1), np.float32), 8192, subtype="PCM_16")
    elif bad == "corrupt":
        path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" + os.urandom(300))
    elif bad == "too_short":
        sf.write(path, np.zeros((3, 1), np.float32), 8192, subtype="PCM_16")
    out = tmp_path / "out"
    code = common.run(
        separate_cli.main,
        [str(song), str(path), "--model", str(tiny_run), "--out", str(out), "--no-progress"],
    )
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1, err
    assert str(path) in errors[0], errors[0]
    assert not (out / "X").exists() and not list(tmp_path.rglob("vocals.wav")), err


def test_start_up_is_shown_before_the_graph_is_prepared_and_counted_in_the_summary(
    tiny_run, tmp_path, capsys
):
    from advsep_tf.cli import common
    from advsep_tf.cli import separate as separate_cli

    song = tmp_path / "song.wav"
    sf.write(song, _song(2.0, 8192, 1), 8192)
    args = [str(song), "--model", str(tiny_run), "--out", str(tmp_path / "out")]
    assert common.run(separate_cli.main, args) == 0
    printed = capsys.readouterr()
    lines = printed.err.splitlines()
    loading = next(i for i, line in enumerate(lines) if line.startswith("loading the model"))
    graph = next(i for i, line in enumerate(lines) if line.startswith("preparing the separation"))
    bar = next(i for i, line in enumerate(lines) if "separate" in line and "%" in line)
    assert loading < graph < bar, printed.err
    # The real-time factor the user reads counts the wait from the start, loading included.
    assert "from the start, loading included" in printed.out
    # --no-progress keeps stderr quiet.
    args = [str(song), "--model", str(tiny_run), "--out", str(tmp_path / "out2"), "--no-progress"]
    assert common.run(separate_cli.main, args) == 0
    assert "loading the model" not in capsys.readouterr().err
