"""Audio decoding, resampling and writing: the one adapter every caller uses.

The shape follows Spleeter's `AudioAdapter` (`deezer/spleeter: spleeter/audio/adapter.py`):
an abstract `load`/`save` pair, `AudioAdapter.default()` for the shared built-in adapter and
`AudioAdapter.get("module.ClassName")` for a user-supplied one.

Waveforms are always `np.float32` arrays of shape `(nb_samples, nb_channels)`.
"""

from __future__ import annotations

import abc
import importlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Optional, Union

import numpy as np
import soundfile as sf
import soxr

from advsep_tf.errors import AdvsepError

PathLike = Union[str, os.PathLike]

# Containers libsndfile cannot read; they go straight to ffmpeg.
FFMPEG_EXTENSIONS = frozenset({".mp4", ".m4a", ".aac", ".wma", ".webm", ".mkv", ".mov"})

# codec -> (libsndfile format, subtype). WAV keeps full float precision so that stems written
# by one stage and read by the next are bit-identical; FLAC is integer-only, 24 bits is plenty.
SOUNDFILE_CODECS = {
    "wav": ("WAV", "FLOAT"),
    "flac": ("FLAC", "PCM_24"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
# codec -> (ffmpeg muxer, ffmpeg encoder), for formats libsndfile cannot write.
FFMPEG_CODECS = {
    "m4a": ("ipod", "aac"),
    "mp4": ("mp4", "aac"),
    "aac": ("adts", "aac"),
}
# A channel count above this is almost surely an array passed as (nb_channels, nb_samples).
MAX_CHANNELS = 64
# Compressed formats only estimate their length in the header, so a small shortfall is normal.
TRUNCATION_TOLERANCE = 0.01


class AudioAdapter(abc.ABC):
    """Reads and writes waveforms of shape `(nb_samples, nb_channels)`."""

    _default: Optional["AudioAdapter"] = None

    @abc.abstractmethod
    def load(
        self,
        path: PathLike,
        sample_rate: Optional[int] = None,
        mono: bool = False,
        stream: Optional[int] = None,
    ) -> tuple[np.ndarray, int]:
        """Decodes a file.

        Args:
            path: the audio file.
            sample_rate: resample to this rate; `None` keeps the file's rate.
            mono: average the channels into one.
            stream: the index of the audio stream to decode in a multistream container (a
                MUSDB18 `.stem.mp4` holds mixture, drums, bass, other, vocals as streams 0-4);
                `None` decodes the first.

        Returns:
            `(waveform, sample_rate)`: a C-contiguous float32 array of shape
            `(nb_samples, nb_channels)` (`nb_channels == 1` when `mono`) and its rate in Hz.

        Raises:
            AdvsepError: the file is missing, empty, undecodable, truncated or holds NaN/inf.
        """

    @abc.abstractmethod
    def save(
        self,
        path: PathLike,
        data: np.ndarray,
        sample_rate: int,
        codec: Optional[str] = None,
    ) -> None:
        """Writes a waveform atomically: a reader never sees a half-written file.

        Args:
            path: the destination; missing parent folders are created.
            data: shape `(nb_samples, nb_channels)` or `(nb_samples,)` for mono.
            sample_rate: in Hz.
            codec: "wav", "flac", "ogg", "mp3", "m4a", ...; `None` takes it from the extension.

        Raises:
            AdvsepError: the data is empty, holds NaN/inf, or the codec is unknown.
        """

    @classmethod
    def default(cls) -> "AudioAdapter":
        """The shared built-in adapter (a `SoundfileAudioAdapter`)."""
        if AudioAdapter._default is None:
            AudioAdapter._default = SoundfileAudioAdapter()
        return AudioAdapter._default

    @classmethod
    def get(cls, descriptor: Optional[str]) -> "AudioAdapter":
        """Instantiates the adapter class named `"package.module.ClassName"`.

        An empty descriptor gives `default()`.
        """
        if not descriptor:
            return cls.default()
        module_name, _, class_name = descriptor.rpartition(".")
        if not module_name:
            raise AdvsepError(
                f"audio adapter {descriptor!r}: expected a dotted name "
                "like 'package.module.ClassName'"
            )
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise AdvsepError(
                f"audio adapter {descriptor!r}: cannot import module {module_name!r} ({error})"
            ) from error
        adapter_class = getattr(module, class_name, None)
        if adapter_class is None:
            raise AdvsepError(
                f"audio adapter {descriptor!r}: module {module_name!r} has no {class_name!r}"
            )
        if not (isinstance(adapter_class, type) and issubclass(adapter_class, AudioAdapter)):
            raise AdvsepError(f"audio adapter {descriptor!r}: not an AudioAdapter subclass")
        return adapter_class()


class SoundfileAudioAdapter(AudioAdapter):
    """libsndfile for WAV/FLAC/OGG/MP3; ffmpeg (when on PATH) for MP4/M4A/AAC and the rest."""

    def load(
        self,
        path: PathLike,
        sample_rate: Optional[int] = None,
        mono: bool = False,
        stream: Optional[int] = None,
    ) -> tuple[np.ndarray, int]:
        path = Path(path)
        if sample_rate is not None and (int(sample_rate) != sample_rate or sample_rate <= 0):
            raise AdvsepError(f"{path}: cannot resample to {sample_rate!r} Hz")
        if stream is not None and (int(stream) != stream or stream < 0):
            raise AdvsepError(f"{path}: no audio stream {stream!r} (streams count from 0)")
        _check_readable(path)

        if path.suffix.lower() in FFMPEG_EXTENSIONS or stream:
            if not _have_ffmpeg():
                raise AdvsepError(
                    f"{path}: decoding {path.suffix} files needs ffmpeg and ffprobe on PATH"
                )
            data, file_rate = _decode_with_ffmpeg(path, int(stream or 0))
        else:
            try:
                data, file_rate = _decode_with_soundfile(path)
            except _DecodeError as soundfile_error:
                if not _have_ffmpeg():
                    raise AdvsepError(f"{path}: {soundfile_error}") from None
                try:
                    data, file_rate = _decode_with_ffmpeg(path)
                except AdvsepError as ffmpeg_error:
                    # Both decoders failing is the useful fact; libsndfile's reason comes first
                    # because it is usually the more precise one.
                    raise AdvsepError(
                        f"{path}: {soundfile_error}; ffmpeg also failed: "
                        f"{str(ffmpeg_error).removeprefix(f'{path}: ')}"
                    ) from None

        if data.shape[0] == 0:
            raise AdvsepError(f"{path}: holds no audio samples (0 frames)")
        nb_bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        if nb_bad:
            raise AdvsepError(f"{path}: {nb_bad} of {data.size} samples are NaN or infinite")

        if mono and data.shape[1] > 1:
            data = data.mean(axis=1, keepdims=True)
        if sample_rate is not None and sample_rate != file_rate:
            data = resample(data, file_rate, int(sample_rate))
            file_rate = int(sample_rate)
        return np.ascontiguousarray(data, dtype=np.float32), int(file_rate)

    def save(
        self,
        path: PathLike,
        data: np.ndarray,
        sample_rate: int,
        codec: Optional[str] = None,
    ) -> None:
        path = Path(path)
        data = _as_samples_by_channels(path, data)
        if int(sample_rate) != sample_rate or sample_rate <= 0:
            raise AdvsepError(f"{path}: cannot write at a sample rate of {sample_rate!r} Hz")
        sample_rate = int(sample_rate)
        codec = (codec or path.suffix.lstrip(".")).lower()
        if codec not in SOUNDFILE_CODECS and codec not in FFMPEG_CODECS:
            supported = ", ".join(sorted([*SOUNDFILE_CODECS, *FFMPEG_CODECS]))
            raise AdvsepError(f"{path}: unknown audio codec {codec!r} (supported: {supported})")
        if codec in FFMPEG_CODECS and not _have_ffmpeg():
            raise AdvsepError(f"{path}: writing {codec} needs ffmpeg on PATH")
        if codec != "wav":
            # Integer and lossy encoders wrap around or distort past full scale; float WAV
            # stores any value, so it is written as given.
            data = np.clip(data, -1.0, 1.0)

        from advsep_tf.export.atomic import atomic_file

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # The temporary name ends in .tmp so that nobody globbing *.wav picks it up half-written.
            with atomic_file(str(path)) as temporary:
                if codec in SOUNDFILE_CODECS:
                    file_format, subtype = SOUNDFILE_CODECS[codec]
                    sf.write(temporary, data, sample_rate, subtype=subtype, format=file_format)
                else:
                    _encode_with_ffmpeg(temporary, data, sample_rate, *FFMPEG_CODECS[codec])
        except (RuntimeError, OSError) as error:
            raise AdvsepError(f"{path}: cannot write audio ({error})") from error


def resample(data: np.ndarray, sample_rate: int, target_sample_rate: int) -> np.ndarray:
    """Resamples `(nb_samples, nb_channels)` along the sample axis; returns float32.

    This is `librosa.resample(..., res_type="soxr_hq", axis=0)`, bit for bit, without the
    second or more librosa spends loading itself on its first call.
    """
    resampled = soxr.resample(
        np.ascontiguousarray(data, dtype=np.float32),
        sample_rate,
        target_sample_rate,
        quality="HQ",
    )
    return np.ascontiguousarray(resampled, dtype=np.float32)


class _DecodeError(Exception):
    """libsndfile could not decode a file; the message says why, without the path."""


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise AdvsepError(f"{path}: file not found")
    if path.is_dir():
        raise AdvsepError(f"{path}: is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AdvsepError(f"{path}: file is empty (0 bytes)")


def _have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def _decode_with_soundfile(path: Path) -> tuple[np.ndarray, int]:
    try:
        with sf.SoundFile(str(path)) as audio_file:
            declared_frames = audio_file.frames
            log = audio_file.extra_info
            sample_rate = audio_file.samplerate
            data = audio_file.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise _DecodeError(
            f"cannot decode audio ({error}); the file is corrupt, truncated "
            "or not in a supported format"
        ) from None

    # libsndfile shortens a truncated file without complaint; its header log and the
    # declared frame count are the only traces of the missing audio. The error is raised
    # here, not left to the ffmpeg fallback, which would decode the same shortened audio.
    truncation = _truncation(log, declared_frames, data.shape[0])
    if truncation:
        raise AdvsepError(f"{path}: file is truncated ({truncation})")
    return data, sample_rate


_DATA_SIZE_MISMATCH = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# Streamed WAVs (ffmpeg writing to a pipe) leave these placeholders in the size field.
_UNKNOWN_DATA_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)


def _truncation(log: str, declared_frames: int, nb_frames_read: int) -> Optional[str]:
    """Says how a file decoded by libsndfile is incomplete, or `None` if it looks whole."""
    for declared, present in _DATA_SIZE_MISMATCH.findall(log):
        if int(present) < int(declared) and int(declared) not in _UNKNOWN_DATA_SIZES:
            return f"the header announces {declared} bytes of audio data, only {present} are there"
    if "ended unexpectedly" in log:
        return "the stream ends without its end-of-stream marker"
    nb_missing = declared_frames - nb_frames_read
    if declared_frames > 0 and nb_missing > TRUNCATION_TOLERANCE * declared_frames:
        return (
            f"the header announces {declared_frames} frames, "
            f"only {nb_frames_read} could be decoded"
        )
    return None


def _decode_with_ffmpeg(path: Path, stream: int = 0) -> tuple[np.ndarray, int]:
    probe = subprocess.run(
        [
            *f"ffprobe -v error -select_streams a:{stream} -of json".split(),
            *("-show_entries", "stream=channels,sample_rate", str(path)),
        ],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        raise AdvsepError(f"{path}: cannot decode audio ({_first_line(probe.stderr)})")
    try:
        streams = json.loads(probe.stdout).get("streams", [])
    except json.JSONDecodeError:
        streams = []
    if not streams:
        raise AdvsepError(f"{path}: holds no audio stream" + (f" {stream} (streams count from 0)" if stream else ""))
    nb_channels = int(streams[0].get("channels") or 0)
    sample_rate = int(streams[0].get("sample_rate") or 0)
    if nb_channels <= 0 or sample_rate <= 0:
        raise AdvsepError(f"{path}: cannot read the channel count and sample rate")

    # Naming -ac and -ar pins the output layout to what the reshape below assumes.
    decoded = subprocess.run(
        [
            *("ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", f"0:a:{stream}"),
            *("-f", "f32le", "-acodec", "pcm_f32le"),
            *("-ac", str(nb_channels), "-ar", str(sample_rate), "-"),
        ],
        capture_output=True,
    )
    stderr = decoded.stderr.decode("utf-8", "replace")
    if decoded.returncode != 0:
        raise AdvsepError(f"{path}: cannot decode audio ({_first_line(stderr)})")
    if stderr.strip():
        # ffmpeg decodes what it can of a damaged file and only logs the damage.
        raise AdvsepError(f"{path}: the file is truncated or damaged ({_first_line(stderr)})")
    data = np.frombuffer(decoded.stdout, dtype="<f4")
    nb_frames = data.size // nb_channels
    data = data[: nb_frames * nb_channels].reshape(nb_frames, nb_channels)
    return data.astype(np.float32), sample_rate


def _encode_with_ffmpeg(
    temporary: str,
    data: np.ndarray,
    sample_rate: int,
    muxer: str,
    encoder: str,
) -> None:
    encoded = subprocess.run(
        [
            *("ffmpeg", "-nostdin", "-v", "error", "-y"),
            *("-f", "f32le", "-ar", str(sample_rate), "-ac", str(data.shape[1]), "-i", "-"),
            *("-c:a", encoder, "-f", muxer, temporary),
        ],
        input=np.ascontiguousarray(data, dtype="<f4").tobytes(),
        capture_output=True,
    )
    if encoded.returncode != 0:
        stderr = encoded.stderr.decode("utf-8", "replace")
        raise RuntimeError(f"ffmpeg: {_first_line(stderr)}")


def _as_samples_by_channels(path: Path, data: np.ndarray) -> np.ndarray:
    data = np.asarray(data)
    if data.ndim == 1:
        data = data[:, np.newaxis]
    if data.ndim != 2:
        raise AdvsepError(
            f"{path}: expected audio of shape (nb_samples, nb_channels), got {data.shape}"
        )
    if data.shape[1] > MAX_CHANNELS:
        raise AdvsepError(
            f"{path}: audio of shape {data.shape} has {data.shape[1]} channels; "
            "pass (nb_samples, nb_channels), not (nb_channels, nb_samples)"
        )
    if data.shape[0] == 0:
        raise AdvsepError(f"{path}: refusing to write audio with no samples")
    if not np.issubdtype(data.dtype, np.floating):
        # Integer PCM has no agreed full scale here; converting it is the caller's decision.
        raise AdvsepError(f"{path}: audio must be floating point, got dtype {data.dtype}")
    data = data.astype(np.float32)
    nb_bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    if nb_bad:
        raise AdvsepError(f"{path}: refusing to write audio with {nb_bad} NaN or infinite samples")
    return data


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "no error message"
