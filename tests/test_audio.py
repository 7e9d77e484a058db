"""The audio adapter on real files: round trips, resampling, ffmpeg formats, clear errors."""

import csv
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from advsep_tf.data_pipelines import audio
from advsep_tf.data_pipelines.audio import AudioAdapter, SoundfileAudioAdapter
from advsep_tf.errors import AdvsepError

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HAVE_FFMPEG = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None

needs_ffmpeg = pytest.mark.skipif(not HAVE_FFMPEG, reason="ffmpeg and ffprobe are not on PATH")
needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"no real recordings at {SHARED_DATA}"
)


@pytest.fixture
def adapter():
    return AudioAdapter.default()


def sine(frequency, sample_rate, seconds, amplitude=0.5):
    """Shape (nb_samples,)."""
    time = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


def peak_frequency(waveform, sample_rate):
    """The strongest frequency of a (nb_samples, nb_channels) waveform's first channel."""
    spectrum = np.abs(np.fft.rfft(waveform[:, 0] * np.hanning(len(waveform))))
    return np.fft.rfftfreq(len(waveform), 1.0 / sample_rate)[np.argmax(spectrum)]


def ffmpeg_sine(path, sample_rate=22050, seconds=1.0, extra_args=()):
    subprocess.run(
        [
            *("ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi"),
            *("-i", f"sine=frequency=440:sample_rate={sample_rate}:duration={seconds}"),
            *("-ac", "2", *extra_args, str(path)),
        ],
        check=True,
    )


def load_error(adapter, path, **kwargs):
    with pytest.raises(AdvsepError) as error:
        adapter.load(path, **kwargs)
    message = str(error.value)
    assert message.startswith(str(path)), message
    return message


@pytest.mark.parametrize("extension, tolerance", [("wav", 0.0), ("flac", 2e-7)])
def test_round_trip(tmp_path, adapter, extension, tolerance):
    waveform = np.random.default_rng(0).uniform(-0.9, 0.9, (4000, 2)).astype(np.float32)
    path = tmp_path / f"noise.{extension}"
    adapter.save(path, waveform, 8000)

    loaded, sample_rate = adapter.load(path)

    assert sample_rate == 8000
    assert loaded.shape == (4000, 2)
    assert loaded.dtype == np.float32 and loaded.flags.c_contiguous
    np.testing.assert_allclose(loaded, waveform, atol=tolerance)


def test_save_makes_folders_and_leaves_no_temporary_file(tmp_path, adapter):
    path = tmp_path / "a" / "b" / "mono.wav"
    adapter.save(path, sine(440, 8000, 0.1), 8000)

    assert sorted(p.name for p in path.parent.iterdir()) == ["mono.wav"]
    assert adapter.load(path)[0].shape == (800, 1)


def test_float_wav_keeps_values_past_full_scale_and_flac_clips(tmp_path, adapter):
    loud = np.full((100, 1), 1.5, dtype=np.float32)
    adapter.save(tmp_path / "loud.wav", loud, 8000)
    adapter.save(tmp_path / "loud.flac", loud, 8000)

    assert adapter.load(tmp_path / "loud.wav")[0].max() == 1.5
    assert adapter.load(tmp_path / "loud.flac")[0].max() == pytest.approx(1.0, abs=1e-6)


def test_resampling_scales_length_and_keeps_frequency(tmp_path, adapter):
    path = tmp_path / "sine.wav"
    adapter.save(path, sine(440, 16000, 1.0), 16000)

    loaded, sample_rate = adapter.load(path, sample_rate=8192)

    assert sample_rate == 8192
    assert abs(loaded.shape[0] - 8192) <= 1
    assert peak_frequency(loaded, 8192) == pytest.approx(440, abs=2)


def test_mono_averages_channels(tmp_path, adapter):
    left, right = sine(440, 8000, 0.5), sine(660, 8000, 0.5, amplitude=0.25)
    path = tmp_path / "stereo.wav"
    adapter.save(path, np.stack([left, right], axis=1), 8000)

    stereo, _ = adapter.load(path)
    mono, _ = adapter.load(path, mono=True)

    assert stereo.shape == (4000, 2)
    assert mono.shape == (4000, 1)
    np.testing.assert_allclose(mono[:, 0], (left + right) / 2, atol=1e-7)


@needs_ffmpeg
@pytest.mark.parametrize("extension", ["mp3", "ogg"])
def test_decodes_lossy_files_made_by_ffmpeg(tmp_path, adapter, extension):
    path = tmp_path / f"sine.{extension}"
    ffmpeg_sine(path)

    loaded, sample_rate = adapter.load(path)

    assert sample_rate == 22050
    assert loaded.shape[1] == 2
    assert abs(loaded.shape[0] - 22050) < 0.1 * 22050
    assert np.isfinite(loaded).all()
    assert peak_frequency(loaded, sample_rate) == pytest.approx(440, abs=3)


@needs_ffmpeg
def test_decodes_m4a_through_ffmpeg(tmp_path, adapter, monkeypatch):
    path = tmp_path / "sine.m4a"
    ffmpeg_sine(path, extra_args=("-c:a", "aac"))

    def refuse(path):
        raise AssertionError("an .m4a must not reach libsndfile")

    monkeypatch.setattr(audio, "_decode_with_soundfile", refuse)
    loaded, sample_rate = adapter.load(path, sample_rate=8192, mono=True)

    assert sample_rate == 8192
    assert loaded.shape[1] == 1
    assert abs(loaded.shape[0] - 8192) < 0.1 * 8192
    assert peak_frequency(loaded, sample_rate) == pytest.approx(440, abs=3)


@needs_ffmpeg
def test_m4a_round_trip(tmp_path, adapter):
    path = tmp_path / "sine.m4a"
    adapter.save(path, sine(440, 22050, 1.0), 22050)

    loaded, sample_rate = adapter.load(path)

    assert sample_rate == 22050
    assert abs(loaded.shape[0] - 22050) < 0.1 * 22050
    assert peak_frequency(loaded, sample_rate) == pytest.approx(440, abs=3)


def test_m4a_without_ffmpeg_says_so(tmp_path, adapter, monkeypatch):
    path = tmp_path / "song.m4a"
    path.write_bytes(b"\0" * 64)
    monkeypatch.setattr(audio, "_have_ffmpeg", lambda: False)

    assert "needs ffmpeg" in load_error(adapter, path)


def test_missing_file(tmp_path, adapter):
    assert "not found" in load_error(adapter, tmp_path / "missing.wav")


def test_empty_file(tmp_path, adapter):
    path = tmp_path / "empty.wav"
    path.touch()

    assert "empty (0 bytes)" in load_error(adapter, path)


def test_corrupt_file(tmp_path, adapter):
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(1).bytes(5000))

    assert "cannot decode audio" in load_error(adapter, path)


@pytest.mark.parametrize("extension", ["wav", "flac", "ogg"])
def test_truncated_file(tmp_path, adapter, extension):
    whole = tmp_path / f"whole.{extension}"
    adapter.save(whole, np.random.default_rng(2).uniform(-0.5, 0.5, (8000, 2)), 8000)
    truncated = tmp_path / f"truncated.{extension}"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])

    assert "truncated" in load_error(adapter, truncated)


def test_wav_without_samples(tmp_path, adapter):
    path = tmp_path / "silent.wav"
    sf.write(path, np.zeros((0, 1), dtype=np.float32), 8000, subtype="FLOAT")

    assert "no audio samples" in load_error(adapter, path)


def test_nan_samples(tmp_path, adapter):
    waveform = sine(440, 8000, 0.1)[:, None]
    waveform[3] = np.nan
    waveform[5] = np.inf
    path = tmp_path / "nan.wav"
    sf.write(path, waveform, 8000, subtype="FLOAT")

    assert "2 of 800 samples are NaN or infinite" in load_error(adapter, path)


def test_save_refuses_nan_and_writes_nothing(tmp_path, adapter):
    waveform = sine(440, 8000, 0.1)
    waveform[7] = np.nan
    path = tmp_path / "nan.wav"

    with pytest.raises(AdvsepError, match="NaN") as error:
        adapter.save(path, waveform, 8000)

    assert str(error.value).startswith(str(path))
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_channels_first(tmp_path, adapter):
    with pytest.raises(AdvsepError, match="not \\(nb_channels, nb_samples\\)"):
        adapter.save(tmp_path / "x.wav", np.zeros((2, 8000), dtype=np.float32), 8000)


class _ConstantAdapter(AudioAdapter):
    """A plug-in adapter that implements only decoding and encoding."""

    def __init__(self, samples):
        self.samples, self.written = samples, None

    def decode(self, path, stream):
        return self.samples, 8000

    def encode(self, path, data, sample_rate, codec):
        self.written = (data.shape, sample_rate, codec)


def test_a_plug_in_adapter_gets_the_checks_and_conversions_of_load_and_save(tmp_path):
    audio = tmp_path / "song.raw"
    audio.write_bytes(b"x")
    stereo = np.stack([np.ones(800), np.zeros(800)], axis=1).astype(np.float32)
    waveform, rate = _ConstantAdapter(stereo).load(audio, sample_rate=16000, mono=True)
    assert rate == 16000 and waveform.shape == (1600, 1)
    assert abs(float(waveform[400:1200].mean()) - 0.5) < 0.01
    with pytest.raises(AdvsepError, match="song.raw: 1 of 1600 samples are NaN"):
        _ConstantAdapter(
            np.full((800, 2), 0.0, np.float32) + np.r_[np.nan, np.zeros(1599)].reshape(800, 2)
        ).load(audio)
    with pytest.raises(AdvsepError, match="missing.raw"):
        _ConstantAdapter(stereo).load(tmp_path / "missing.raw")
    adapter = _ConstantAdapter(stereo)
    adapter.save(tmp_path / "out.FLAC", np.zeros(100, np.float32), 8000.0)
    assert adapter.written == ((100, 1), 8000, "flac")
    with pytest.raises(AdvsepError, match="sample rate"):
        adapter.save(tmp_path / "out.wav", np.zeros(100, np.float32), 0)


def test_get_by_dotted_name():
    adapter = AudioAdapter.get("advsep_tf.data_pipelines.audio.SoundfileAudioAdapter")

    assert isinstance(adapter, SoundfileAudioAdapter)
    assert AudioAdapter.get(None) is AudioAdapter.default()


@pytest.mark.parametrize(
    "descriptor",
    [
        "NoModule",
        "advsep_tf.no_such_module.Adapter",
        "advsep_tf.data_pipelines.audio.NoSuchAdapter",
        "advsep_tf.errors.AdvsepError",
    ],
)
def test_get_bad_name(descriptor):
    with pytest.raises(AdvsepError, match="audio adapter"):
        AudioAdapter.get(descriptor)


def manifest_entry(relative_path):
    with open(SHARED_DATA / "MANIFEST.csv", newline="") as stream:
        for row in csv.DictReader(stream):
            if row["path"] == relative_path:
                return row
    pytest.skip(f"{relative_path} is not in {SHARED_DATA / 'MANIFEST.csv'}")


@needs_shared_data
@pytest.mark.parametrize(
    "relative_path",
    [
        "mixtures/librosa/admiralbob77_-_Choice_-_Drum-bass.hq.ogg",
        "mixtures/spleeter_audio_example.mp3",
    ],
)
def test_real_compressed_mixtures(adapter, relative_path):
    entry = manifest_entry(relative_path)
    if not (SHARED_DATA / relative_path).is_file():
        pytest.skip(f"{relative_path} is absent from {SHARED_DATA}")

    loaded, sample_rate = adapter.load(SHARED_DATA / relative_path)

    assert sample_rate == int(entry["sr"])
    assert loaded.shape[1] == int(entry["ch"])
    expected_frames = float(entry["dur_s"]) * sample_rate
    assert loaded.shape[0] == pytest.approx(expected_frames, abs=0.01 * sample_rate)
    assert np.isfinite(loaded).all()
    # Lossy decoders overshoot full scale a little on loud masters.
    assert 0 < np.abs(loaded).max() < 1.2


@needs_shared_data
def test_real_vocal_resampled_to_model_rate(adapter):
    clips = sorted(SHARED_DATA.glob("paired_2stem/mir1k_*/vocal.wav"))
    if not clips:
        pytest.skip(f"no MIR-1K clips under {SHARED_DATA}")
    native, native_rate = adapter.load(clips[0])

    loaded, sample_rate = adapter.load(clips[0], sample_rate=8192, mono=True)

    assert native_rate == 16000
    assert sample_rate == 8192
    assert loaded.shape[1] == 1
    assert abs(loaded.shape[0] - native.shape[0] * 8192 / 16000) <= 1
    assert np.isfinite(loaded).all()
