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
from advsep_tf.files import atomic_file, move_into_place, remove_stale_temporaries, temporary_path

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
# ffprobe's durations count the encoder delay and padding that decoding drops (MP3: about 1,100 to
# 2,300 samples), so a shortfall of this much is no sign of truncation either.
TRUNCATION_SLACK_SECONDS = 0.05
# Samples per block when a file is read or written in blocks.
BLOCK_SAMPLES = 65536
# The path that names standard input (read_blocks) or standard output (open_writer).
STDIO = "-"
# codec -> (ffmpeg muxer, ffmpeg encoder) on standard output. WAV keeps float32, as in files.
STDOUT_CODECS = {
    "wav": ("wav", "pcm_f32le"),
    "flac": ("flac", "flac"),
    "ogg": ("ogg", "libvorbis"),
    "mp3": ("mp3", "libmp3lame"),
}


class AudioAdapter(abc.ABC):
    """Reads and writes waveforms of shape `(nb_samples, nb_channels)`."""

    _default: Optional["AudioAdapter"] = None

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

        path = Path(path)
        if sample_rate is not None and (int(sample_rate) != sample_rate or sample_rate <= 0):
            raise AdvsepError(f"{path}: cannot resample to {sample_rate!r} Hz")
        if stream is not None and (int(stream) != stream or stream < 0):
            raise AdvsepError(f"{path}: no audio stream {stream!r} (streams count from 0)")
        _check_readable(path)
        data, file_rate = self.decode(path, stream)
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

    @abc.abstractmethod
    def decode(self, path: Path, stream: Optional[int]) -> tuple[np.ndarray, int]:
        """The samples of a readable file, `(nb_samples, nb_channels)` float32 at the file's own
        rate, and that rate: what `load` checks, mixes down and resamples. An adapter implements
        this (and `encode`); `load` and `save` give every adapter the same argument checks.

        Raises:
            AdvsepError: naming the file, when it cannot be decoded (`TruncatedAudioError` when
                decoding stopped early).
        """

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

        path = Path(path)
        data = _as_samples_by_channels(path, data)
        if int(sample_rate) != sample_rate or sample_rate <= 0:
            raise AdvsepError(f"{path}: cannot write at a sample rate of {sample_rate!r} Hz")
        self.encode(path, data, int(sample_rate), (codec or path.suffix.lstrip(".")).lower())

    @abc.abstractmethod
    def encode(self, path: Path, data: np.ndarray, sample_rate: int, codec: str) -> None:
        """Write checked `(nb_samples, nb_channels)` samples to `path` in `codec` (lower case),
        atomically; what `save` calls.

        Raises:
            AdvsepError: naming the file, for an unknown codec or a failed write.
        """

    def read_blocks(
        self, path: PathLike, block_samples: int = BLOCK_SAMPLES, allow_truncated: bool = False
    ) -> "AudioBlocks":
        """Decodes a file block by block: memory does not grow with its length.

        `path` "-" is standard input (any format ffmpeg reads). The returned `AudioBlocks` knows
        the rate and channel count before the first block; iterating it yields float32 arrays of
        shape `(<= block_samples, nb_channels)`, exactly the samples the decoder produced, and
        raises `AdvsepError` where `load` would (a damaged or truncated file is found when its end
        is reached: `TruncatedAudioError`, naming the sample where decoding stopped). With
        `allow_truncated`, a truncated file's blocks end where decoding stopped and
        `AudioBlocks.truncated` says so. This default loads the whole file with `load`; adapters
        that can do better override it.
        """
        # `load` keeps nothing of a truncated file, so here it is an error even when allowed.
        waveform, sample_rate = self.load(path)
        blocks = (waveform[i : i + block_samples] for i in range(0, len(waveform), block_samples))
        return AudioBlocks(str(path), sample_rate, waveform.shape[1], blocks)

    def open_writer(
        self, path: PathLike, sample_rate: int, nb_channels: int, codec: Optional[str] = None
    ) -> "AudioWriter":
        """A context manager that writes a file block by block (`writer.write(block)`, each block
        `(nb_samples, nb_channels)`), atomically: the file appears complete when the `with` block
        ends without an error, and not at all otherwise. `path` "-" is standard output. This
        default gathers the blocks and calls `save`."""
        return _GatheringWriter(self, path, sample_rate, nb_channels, codec)

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

    def decode(self, path: Path, stream: Optional[int]) -> tuple[np.ndarray, int]:
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
                    message = (
                        f"{path}: {soundfile_error}; ffmpeg also failed: "
                        f"{str(ffmpeg_error).removeprefix(f'{path}: ')}"
                    )
                    if isinstance(ffmpeg_error, TruncatedAudioError):
                        raise TruncatedAudioError(message, ffmpeg_error.nb_decoded) from None
                    raise AdvsepError(message) from None
        return data, file_rate

    def encode(self, path: Path, data: np.ndarray, sample_rate: int, codec: str) -> None:
        if codec not in SOUNDFILE_CODECS and codec not in FFMPEG_CODECS:
            supported = ", ".join(sorted([*SOUNDFILE_CODECS, *FFMPEG_CODECS]))
            raise AdvsepError(f"{path}: unknown audio codec {codec!r} (supported: {supported})")
        if codec in FFMPEG_CODECS and not _have_ffmpeg():
            raise AdvsepError(f"{path}: writing {codec} needs ffmpeg on PATH")
        if codec != "wav":
            # Integer and lossy encoders wrap around or distort past full scale; float WAV
            # stores any value, so it is written as given.
            data = np.clip(data, -1.0, 1.0)

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # The temporary name ends in .tmp so that nobody globbing *.wav picks it up
            # half-written.
            with atomic_file(str(path)) as temporary:
                if codec in SOUNDFILE_CODECS:
                    file_format, subtype = SOUNDFILE_CODECS[codec]
                    sf.write(temporary, data, sample_rate, subtype=subtype, format=file_format)
                else:
                    _encode_with_ffmpeg(temporary, data, sample_rate, *FFMPEG_CODECS[codec])
        except (RuntimeError, OSError) as error:
            raise AdvsepError(f"{path}: cannot write audio ({error})") from error

    def read_blocks(
        self, path: PathLike, block_samples: int = BLOCK_SAMPLES, allow_truncated: bool = False
    ) -> "AudioBlocks":
        if str(path) == STDIO:
            if not _have_ffmpeg():
                raise AdvsepError("standard input: reading audio from a pipe needs ffmpeg on PATH")
            return _ffmpeg_blocks(STDIO, None, block_samples, allow_truncated)
        path = Path(path)
        _check_readable(path)
        if path.suffix.lower() not in FFMPEG_EXTENSIONS:
            try:
                return _soundfile_blocks(path, block_samples, allow_truncated)
            except _DecodeError as soundfile_error:
                if not _have_ffmpeg():
                    raise AdvsepError(f"{path}: {soundfile_error}") from None
        elif not _have_ffmpeg():
            raise AdvsepError(
                f"{path}: decoding {path.suffix} files needs ffmpeg and ffprobe on PATH"
            )
        return _ffmpeg_blocks(path, _probe_with_ffmpeg(path, 0), block_samples, allow_truncated)

    def open_writer(
        self, path: PathLike, sample_rate: int, nb_channels: int, codec: Optional[str] = None
    ) -> "AudioWriter":
        return _StreamingWriter(path, sample_rate, nb_channels, codec)


def probe(path: PathLike) -> tuple[int, int, Optional[int]]:
    """(nb_channels, sample_rate, nb_samples or None where the container does not say) of an
    audio file, checked before any work: it exists, is a readable non-empty file, its header
    parses and its first samples decode (libsndfile, or ffprobe and ffmpeg for what libsndfile
    cannot read). Raises AdvsepError naming the file otherwise."""
    path = Path(path)
    _check_readable(path)
    if not os.access(path, os.R_OK):
        raise AdvsepError(f"{path}: not a readable file (permission denied)")
    error = None
    if path.suffix.lower() not in FFMPEG_EXTENSIONS:
        try:
            with sf.SoundFile(str(path)) as audio_file:
                audio_file.read(min(BLOCK_SAMPLES, 4096), dtype="float32", always_2d=True)
                return audio_file.channels, audio_file.samplerate, audio_file.frames
        except (sf.LibsndfileError, RuntimeError) as soundfile_error:
            error = soundfile_error
    if not _have_ffmpeg():
        if error is not None:
            raise AdvsepError(
                f"{path}: cannot decode audio ({error}); the file is corrupt, truncated or not "
                "in a supported format"
            ) from None
        raise AdvsepError(f"{path}: decoding {path.suffix} files needs ffmpeg and ffprobe on PATH")
    nb_channels, sample_rate, declared = _probe_with_ffmpeg(path, 0)
    first = subprocess.run(_ffmpeg_f32le_command(path, 0, "-t", "0.5"), capture_output=True)
    if first.returncode != 0:
        stderr = first.stderr.decode("utf-8", "replace")
        raise AdvsepError(f"{path}: cannot decode audio ({_first_line(stderr)})")
    if not first.stdout:
        raise AdvsepError(f"{path}: holds no audio samples (0 frames)")
    return nb_channels, sample_rate, declared


class TruncatedAudioError(AdvsepError):
    """A file's audio ends before its header says, or decoding stopped at damage:
    `nb_decoded` samples could be decoded."""

    def __init__(self, message: str, nb_decoded: int):
        super().__init__(message)
        self.nb_decoded = nb_decoded


def _truncated(name, nb_decoded: int, reason: str) -> TruncatedAudioError:
    return TruncatedAudioError(
        f"{name}: file is truncated or damaged: decoding stopped at sample {nb_decoded} ({reason})",
        nb_decoded,
    )


class AudioBlocks:
    """A file's audio, block by block: `name`, `sample_rate`, `nb_channels` and, iterated once,
    float32 blocks of shape `(nb_samples, nb_channels)`.

    With `allow_truncated`, a truncated file ends where decoding stopped, without an error, and
    `truncated` is then the message the error would have had (None otherwise)."""

    def __init__(
        self, name: str, sample_rate: int, nb_channels: int, blocks, allow_truncated: bool = False
    ):
        self.name, self.sample_rate, self.nb_channels = name, sample_rate, nb_channels
        self._blocks = blocks
        self.allow_truncated = allow_truncated
        self.truncated: Optional[str] = None

    def __iter__(self):
        nb_samples = 0
        try:
            for block in self._blocks:
                nb_bad = int(block.size - np.count_nonzero(np.isfinite(block)))
                if nb_bad:
                    raise AdvsepError(
                        f"{self.name}: {nb_bad} samples are NaN or infinite "
                        f"(in the block after sample {nb_samples})"
                    )
                nb_samples += len(block)
                yield np.ascontiguousarray(block, dtype=np.float32)
        except TruncatedAudioError as error:
            if not self.allow_truncated or nb_samples == 0:
                raise
            self.truncated = str(error)
        if nb_samples == 0:
            raise AdvsepError(f"{self.name}: holds no audio samples (0 frames)")


def _soundfile_blocks(path: Path, block_samples: int, allow_truncated: bool = False) -> AudioBlocks:
    try:
        audio_file = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError) as error:
        raise _DecodeError(
            f"cannot decode audio ({error}); the file is corrupt, truncated or not in a supported "
            f"format"
        ) from None

    def blocks():
        # Not SoundFile.blocks: it yields its whole buffer even when a read came back short, so a
        # truncated MP3 (whose header announces its full length) went on repeating stale samples.
        with audio_file:
            nb_read = 0
            while True:
                try:
                    block = audio_file.read(block_samples, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as error:
                    if nb_read == 0:  # nothing decodes: ffmpeg may do better
                        raise _DecodeError(f"cannot decode audio ({error})") from None
                    raise _truncated(path, nb_read, str(error)) from None
                if not len(block):
                    break
                nb_read += len(block)
                yield block
            truncation = _truncation(audio_file.extra_info, audio_file.frames, nb_read)
            if truncation:
                raise _truncated(path, nb_read, truncation)

    return AudioBlocks(
        str(path), audio_file.samplerate, audio_file.channels, blocks(), allow_truncated
    )


def _ffmpeg_blocks(
    path,
    probed: Optional[tuple[int, int, Optional[int]]],
    block_samples: int,
    allow_truncated: bool = False,
) -> AudioBlocks:
    """ffmpeg decodes to float32 on a pipe. From a file, ffprobe has told the layout (`probed`:
    channels, rate, declared length) and ffmpeg writes raw samples; from standard input nothing
    can be probed first, so ffmpeg writes a WAV stream whose header says it."""
    name = "standard input" if path == STDIO else str(path)
    declared = None
    if probed:
        nb_channels, sample_rate, declared = probed
        command = _ffmpeg_f32le_command(path, 0, layout=(nb_channels, sample_rate))
    else:
        command = [
            *("ffmpeg", "-hide_banner", "-v", "error", "-i", "pipe:0"),
            *("-f", "wav", "-acodec", "pcm_f32le", "-"),
        ]
    process = subprocess.Popen(
        command,
        stdin=None if path == STDIO else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    if not probed:
        try:
            nb_channels, sample_rate = _read_wav_stream_header(process.stdout)
        except AdvsepError as error:
            process.kill()
            stderr = process.communicate()[1].decode("utf-8", "replace")
            raise AdvsepError(
                f"{name}: cannot decode audio ({_first_line(stderr) if stderr.strip() else error})"
            ) from None

    def blocks():
        frame_bytes = 4 * nb_channels
        nb_read = 0
        try:
            while True:
                data = process.stdout.read(block_samples * frame_bytes)
                if not data:
                    break
                usable = len(data) // frame_bytes * frame_bytes
                if usable < len(data):  # a partial frame: read the rest of it
                    data += process.stdout.read(frame_bytes - (len(data) - usable))
                    usable = len(data) // frame_bytes * frame_bytes
                block = np.frombuffer(data[:usable], dtype="<f4").reshape(-1, nb_channels)
                nb_read += len(block)
                yield block
            stderr = process.stderr.read()  # to the end before waiting: a full pipe would block
            _check_ffmpeg_decoding(name, process.wait(), stderr, nb_read, declared, sample_rate)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    return AudioBlocks(name, sample_rate, nb_channels, blocks(), allow_truncated)


def _read_wav_stream_header(stream) -> tuple[int, int]:
    """(nb_channels, sample_rate) from the header of a WAV stream that ffmpeg writes to a pipe,
    leaving `stream` at the first sample (the sizes there are placeholders: it was not seekable)."""
    import struct

    riff = stream.read(12)
    if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        raise AdvsepError("no audio in the input")
    layout = None
    while True:
        header = stream.read(8)
        if len(header) < 8:
            raise AdvsepError("no audio data in the input")
        chunk, size = header[:4], struct.unpack("<I", header[4:])[0]
        if chunk == b"data":
            if layout is None:
                raise AdvsepError("a WAV stream without a format chunk")
            return layout
        body = stream.read(size + (size & 1))
        if chunk == b"fmt ":
            layout = struct.unpack("<H", body[2:4])[0], struct.unpack("<I", body[4:8])[0]


class AudioWriter(abc.ABC):
    """Writes `(nb_samples, nb_channels)` blocks to one file; see `AudioAdapter.open_writer`."""

    @abc.abstractmethod
    def write(self, block: np.ndarray) -> None:
        """Appends a block."""

    @abc.abstractmethod
    def _commit(self) -> None:
        """The last block was written: make the file complete."""

    @abc.abstractmethod
    def _abort(self) -> None:
        """Leave nothing behind."""

    def __enter__(self) -> "AudioWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self._commit()
        else:
            self._abort()


class _GatheringWriter(AudioWriter):
    def __init__(
        self, adapter: AudioAdapter, path: PathLike, sample_rate: int, nb_channels: int, codec
    ):
        self.adapter, self.path, self.sample_rate, self.codec = adapter, path, sample_rate, codec
        self.blocks = []

    def write(self, block: np.ndarray) -> None:
        self.blocks.append(np.array(block, dtype=np.float32))

    def _commit(self) -> None:
        self.adapter.save(
            self.path, np.concatenate(self.blocks), self.sample_rate, codec=self.codec
        )

    def _abort(self) -> None:
        self.blocks = []


class _StreamingWriter(AudioWriter):
    """libsndfile (WAV, FLAC, OGG, MP3) or an ffmpeg encoder on a pipe (M4A, AAC, standard
    output), into a temporary file renamed into place at the end."""

    def __init__(self, path: PathLike, sample_rate: int, nb_channels: int, codec: Optional[str]):
        self.stdout = str(path) == STDIO
        self.path = Path(path)
        if int(sample_rate) != sample_rate or sample_rate <= 0:
            raise AdvsepError(f"{path}: cannot write at a sample rate of {sample_rate!r} Hz")
        if not 0 < nb_channels <= MAX_CHANNELS:
            raise AdvsepError(f"{path}: cannot write {nb_channels} channels")
        self.codec = (codec or self.path.suffix.lstrip(".") or "wav").lower()
        self.nb_channels, self.nb_samples = nb_channels, 0
        known = STDOUT_CODECS if self.stdout else {**SOUNDFILE_CODECS, **FFMPEG_CODECS}
        if self.codec not in known:
            raise AdvsepError(
                f"{path}: unknown audio codec {self.codec!r} (supported: "
                f"{', '.join(sorted(known))})"
            )
        self.clip = self.codec != "wav"  # see SoundfileAudioAdapter.save
        self.file = self.process = self.temporary = None
        if not self.stdout:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise AdvsepError(f"{path}: cannot write audio ({error})") from error
            remove_stale_temporaries(str(self.path.parent), self.path.name)
            self.temporary = temporary_path(str(self.path))
        if self.stdout or self.codec in FFMPEG_CODECS:
            if not _have_ffmpeg():
                raise AdvsepError(
                    f"{path}: writing {self.codec} "
                    f"{'to standard output ' if self.stdout else ''}needs ffmpeg on PATH"
                )
            muxer, encoder = STDOUT_CODECS[self.codec] if self.stdout else FFMPEG_CODECS[self.codec]
            target = "pipe:1" if self.stdout else self.temporary
            self.process = subprocess.Popen(
                [
                    "ffmpeg",
                    "-nostdin" if not self.stdout else "-hide_banner",
                    "-v",
                    "error",
                    "-y",
                    "-f",
                    "f32le",
                    "-ar",
                    str(int(sample_rate)),
                    "-ac",
                    str(nb_channels),
                    "-i",
                    "pipe:0",
                    "-c:a",
                    encoder,
                    "-f",
                    muxer,
                    target,
                ],
                stdin=subprocess.PIPE,
                stdout=None if self.stdout else subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        else:
            file_format, subtype = SOUNDFILE_CODECS[self.codec]
            try:
                self.file = sf.SoundFile(
                    self.temporary, "w", int(sample_rate), nb_channels, subtype, format=file_format
                )
            except (RuntimeError, OSError) as error:
                raise AdvsepError(f"{path}: cannot write audio ({error})") from error

    def write(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float32).reshape(len(block), -1)
        if block.shape[1] != self.nb_channels:
            raise AdvsepError(
                f"{self.path}: a block of {block.shape[1]} channels for a "
                f"{self.nb_channels}-channel file"
            )
        if self.clip:
            block = np.clip(block, -1.0, 1.0)
        self.nb_samples += len(block)
        try:
            if self.file is not None:
                self.file.write(block)
            else:
                self.process.stdin.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
        except (RuntimeError, OSError) as error:
            raise AdvsepError(f"{self.path}: cannot write audio ({error})") from error

    def _commit(self) -> None:
        if self.nb_samples == 0:
            self._abort()
            raise AdvsepError(f"{self.path}: refusing to write audio with no samples")
        if self.file is not None:
            self.file.close()
        else:
            self.process.stdin.close()
            stderr = self.process.stderr.read().decode("utf-8", "replace")
            if self.process.wait() != 0:
                self._abort()
                raise AdvsepError(
                    f"{self.path}: cannot write audio (ffmpeg: {_first_line(stderr)})"
                )
        if self.temporary is not None:
            move_into_place(self.temporary, str(self.path))

    def _abort(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.temporary is not None and os.path.exists(self.temporary):
            os.remove(self.temporary)


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
    # Block by block, as read_blocks: a read failing midway (a cut FLAC) keeps the count of the
    # samples before it for the error. libsndfile shortens a truncated file without complaint;
    # its header log and the declared frame count are the only traces of the missing audio, and
    # the error is raised here, not left to the ffmpeg fallback, which would decode the same
    # shortened audio.
    audio = _soundfile_blocks(path, BLOCK_SAMPLES)
    blocks = list(audio._blocks)  # the decoder's own blocks: load checks NaN itself
    if not blocks:
        return np.zeros((0, audio.nb_channels), np.float32), audio.sample_rate
    return np.concatenate(blocks), audio.sample_rate


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
    if "Junk after the last page" in log:  # an Ogg file cut inside a page
        return "the last Ogg page is incomplete"
    nb_missing = declared_frames - nb_frames_read
    if declared_frames > 0 and nb_missing > TRUNCATION_TOLERANCE * declared_frames:
        return (
            f"the header announces {declared_frames} frames, only {nb_frames_read} could be decoded"
        )
    return None


def _shortfall(declared: Optional[int], nb_decoded: int, sample_rate: int) -> Optional[str]:
    """Says how far `nb_decoded` falls short of the `declared` length (ffprobe's), or None."""
    if not declared:
        return None
    slack = max(TRUNCATION_TOLERANCE * declared, TRUNCATION_SLACK_SECONDS * sample_rate)
    if declared - nb_decoded <= slack:
        return None
    return f"the file announces {declared} samples, only {nb_decoded} could be decoded"


def _probe_with_ffmpeg(path: Path, stream: int = 0) -> tuple[int, int, Optional[int]]:
    """(nb_channels, sample_rate, declared nb_samples or None) of audio stream `stream`, by
    ffprobe."""
    probe = subprocess.run(
        [
            *f"ffprobe -v error -select_streams a:{stream} -of json".split(),
            *("-show_entries", "stream=channels,sample_rate,duration", str(path)),
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
        raise AdvsepError(
            f"{path}: holds no audio stream"
            + (f" {stream} (streams count from 0)" if stream else "")
        )
    nb_channels = int(streams[0].get("channels") or 0)
    sample_rate = int(streams[0].get("sample_rate") or 0)
    if nb_channels <= 0 or sample_rate <= 0:
        raise AdvsepError(f"{path}: cannot read the channel count and sample rate")
    try:
        declared = round(float(streams[0]["duration"]) * sample_rate)
    except (KeyError, TypeError, ValueError):
        declared = None  # not every container states it
    return nb_channels, sample_rate, declared


def _decode_with_ffmpeg(path: Path, stream: int = 0) -> tuple[np.ndarray, int]:
    nb_channels, sample_rate, declared = _probe_with_ffmpeg(path, stream)

    decoded = subprocess.run(
        _ffmpeg_f32le_command(path, stream, layout=(nb_channels, sample_rate)),
        capture_output=True,
    )
    nb_frames = len(decoded.stdout) // (4 * nb_channels)
    _check_ffmpeg_decoding(
        path, decoded.returncode, decoded.stderr, nb_frames, declared, sample_rate
    )
    data = np.frombuffer(decoded.stdout, dtype="<f4")
    data = data[: nb_frames * nb_channels].reshape(nb_frames, nb_channels)
    return data.astype(np.float32), sample_rate


def _ffmpeg_f32le_command(
    path: Path, stream: int, *options: str, layout: Optional[tuple[int, int]] = None
) -> list[str]:
    """ffmpeg decoding audio stream `stream` of `path` to raw float32 on standard output, with
    `options` (say, a duration) before the output's. A `layout` (nb_channels, sample_rate) pins
    the output to what a reshape of it assumes."""
    pinned = ("-ac", str(layout[0]), "-ar", str(layout[1])) if layout else ()
    return [
        *("ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", f"0:a:{stream}"),
        *options,
        *("-f", "f32le", "-acodec", "pcm_f32le", *pinned, "-"),
    ]


def _check_ffmpeg_decoding(
    name,
    returncode: int,
    stderr: bytes,
    nb_decoded: int,
    declared: Optional[int],
    sample_rate: int,
) -> None:
    """Raises if ffmpeg, having decoded `nb_decoded` samples of `name` and exited with
    `returncode`, failed or stopped short of the `declared` length (ffprobe's)."""
    stderr = stderr.decode("utf-8", "replace")
    if returncode != 0:
        if nb_decoded:
            raise _truncated(name, nb_decoded, _first_line(stderr))
        raise AdvsepError(f"{name}: cannot decode audio ({_first_line(stderr)})")
    if stderr.strip():
        # ffmpeg decodes what it can of a damaged file and only logs the damage.
        raise _truncated(name, nb_decoded, _first_line(stderr))
    # A truncated MP3 decodes without a word from ffmpeg: only its announced length tells.
    shortfall = _shortfall(declared, nb_decoded, sample_rate)
    if shortfall:
        raise _truncated(name, nb_decoded, shortfall)


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
    # ffmpeg's "[aac @ 0x55a8c2ad8b00] " names a memory address, of no use to a reader.
    return re.sub(r"^\[(\w+) @ 0x[0-9a-f]+\] ", r"\1: ", lines[0]) if lines else "no error message"
