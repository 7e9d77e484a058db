"""Corpus layouts built in a temporary folder from the real recordings in ../shared/data, and an
independent count of the patches a prepared shard set should hold.

The recordings are linked (or, where a layout needs new audio, written) under the test's tmp_path;
nothing is copied into the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

from conftest import shared_data_or_skip

MUSDB_EXCERPTS = {
    "Music Delta - 80s Rock": "paired_4stem/musdb18_Music_Delta_-_80s_Rock",
    "The Easton Ellises - Falcon 69": "paired_4stem/musdb18_The_Easton_Ellises_-_Falcon_69",
}
MIR1K_CLIPS = ("Kenshin_4_10", "abjones_4_08", "amy_16_04", "amy_6_11")
STEMS = ("vocals", "drums", "bass", "other")
# One of MUSDB18's 14 official validation tracks: a folder of that name validates by default.
MUSDB_VALIDATION_NAME = "Actions - One Minute Smile"


def data() -> Path:
    return shared_data_or_skip()


def link(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(source, target)
    return target


def musdb_excerpt(name: str) -> Path:
    return data() / MUSDB_EXCERPTS[name]


def build_musdb18hq(root: Path) -> dict[str, list[str]]:
    """train/: 80s Rock, and the Falcon 69 audio under an official validation name; test/: Falcon
    69."""
    placement = {
        ("train", "Music Delta - 80s Rock"): "Music Delta - 80s Rock",
        ("train", MUSDB_VALIDATION_NAME): "The Easton Ellises - Falcon 69",
        ("test", "The Easton Ellises - Falcon 69"): "The Easton Ellises - Falcon 69",
    }
    for (subset, track), excerpt in placement.items():
        for name in ("mixture", *STEMS):
            link(musdb_excerpt(excerpt) / f"{name}.wav", root / subset / track / f"{name}.wav")
    return {
        "train": ["Music Delta - 80s Rock"],
        "valid": [MUSDB_VALIDATION_NAME],
        "test": ["The Easton Ellises - Falcon 69"],
    }


def build_dsd100(root: Path) -> dict[str, list[str]]:
    """Dev: both excerpts (the last in name order validates by default); Test: 80s Rock again."""
    placement = {
        ("Dev", "001 - Music Delta - 80s Rock"): "Music Delta - 80s Rock",
        ("Dev", "002 - The Easton Ellises - Falcon 69"): "The Easton Ellises - Falcon 69",
        ("Test", "003 - Music Delta - 80s Rock"): "Music Delta - 80s Rock",
    }
    for (subset, track), excerpt in placement.items():
        link(
            musdb_excerpt(excerpt) / "mixture.wav",
            root / "Mixtures" / subset / track / "mixture.wav",
        )
        for stem in STEMS:
            link(
                musdb_excerpt(excerpt) / f"{stem}.wav",
                root / "Sources" / subset / track / f"{stem}.wav",
            )
    return {
        "train": ["001 - Music Delta - 80s Rock"],
        "valid": ["002 - The Easton Ellises - Falcon 69"],
        "test": ["003 - Music Delta - 80s Rock"],
    }


def encode_stem_mp4(folder: Path, target: Path, bitrate: str = "128k") -> Path:
    """A MUSDB18-style .stem.mp4: AAC streams mixture, drums, bass, other, vocals (with ffmpeg),
    each at `bitrate`."""
    if shutil.which("ffmpeg") is None:
        import pytest

        pytest.skip("ffmpeg is not installed")
    target.parent.mkdir(parents=True, exist_ok=True)
    inputs, maps = [], []
    for index, name in enumerate(("mixture", "drums", "bass", "other", "vocals")):
        inputs += ["-i", str(folder / f"{name}.wav")]
        maps += ["-map", f"{index}:a"]
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            *inputs,
            *maps,
            "-c:a",
            "aac",
            "-b:a",
            bitrate,
            str(target),
        ],
        check=True,
        capture_output=True,
    )
    return target


def build_musdb18(root: Path) -> dict[str, list[str]]:
    encode_stem_mp4(
        musdb_excerpt("Music Delta - 80s Rock"), root / "train" / "Music Delta - 80s Rock.stem.mp4"
    )
    encode_stem_mp4(
        musdb_excerpt("The Easton Ellises - Falcon 69"),
        root / "test" / "The Easton Ellises - Falcon 69.stem.mp4",
    )
    return {"train": ["Music Delta - 80s Rock"], "test": ["The Easton Ellises - Falcon 69"]}


def padded(source: Path, target: Path, nb_samples: int) -> Path:
    """`source` zero-padded (or cut) to nb_samples, written as a float WAV."""
    audio, rate = sf.read(source, dtype="float32", always_2d=True)
    out = np.zeros((nb_samples, audio.shape[1]), np.float32)
    out[: min(nb_samples, len(audio))] = audio[:nb_samples]
    target.parent.mkdir(parents=True, exist_ok=True)
    sf.write(target, out, rate, subtype="FLOAT")
    return target


def build_medleydb(root: Path) -> dict[str, list[str]]:
    """Two MedleyDB tracks from the MUSDB excerpts. MusicDelta_80sRock has two vocal stems (the
    MUSDB vocals and a real MedleyDB vocal stem, padded to the track's length); raw files exist
    but are not read."""
    tracks = {}
    for track, excerpt in (
        ("MusicDelta_80sRock", "Music Delta - 80s Rock"),
        ("TheEastonEllises_Falcon69", "The Easton Ellises - Falcon 69"),
    ):
        folder = root / "Audio" / track
        stem_dir = folder / f"{track}_STEMS"
        raw_dir = folder / f"{track}_RAW"
        link(musdb_excerpt(excerpt) / "mixture.wav", folder / f"{track}_MIX.wav")
        labels = {
            "drums": "drum set",
            "bass": "electric bass",
            "other": "distorted electric guitar",
            "vocals": "male singer",
        }
        stems = {}
        for index, stem in enumerate(STEMS, start=1):
            filename = f"{track}_STEM_{index:02d}.wav"
            link(musdb_excerpt(excerpt) / f"{stem}.wav", stem_dir / filename)
            raw = f"{track}_RAW_{index:02d}_01.wav"
            link(musdb_excerpt(excerpt) / f"{stem}.wav", raw_dir / raw)
            stems[f"S{index:02d}"] = {
                "component": "",
                "filename": filename,
                "instrument": labels[stem],
                "raw": {"R01": {"filename": raw, "instrument": labels[stem]}},
            }
        if track == "MusicDelta_80sRock":
            nb_samples = sf.info(str(musdb_excerpt(excerpt) / "vocals.wav")).frames
            filename = f"{track}_STEM_05.wav"
            padded(
                data()
                / "solo_vocals"
                / "medleydb_AClassicEducation_NightOwl_STEM_08_male_singer.wav",
                stem_dir / filename,
                nb_samples,
            )
            stems["S05"] = {
                "component": "melody",
                "filename": filename,
                "instrument": "female singer",
                "raw": {},
            }
        metadata = {
            "artist": track.split("_")[0],
            "title": track.split("_")[1],
            "has_bleed": "no",
            "instrumental": "no",
            "mix_filename": f"{track}_MIX.wav",
            "raw_dir": f"{track}_RAW",
            "stem_dir": f"{track}_STEMS",
            "stems": stems,
        }
        (folder / f"{track}_METADATA.yaml").write_text(yaml.safe_dump(metadata, sort_keys=False))
        tracks[track] = metadata
    return tracks


def build_ccmixter(root: Path) -> list[str]:
    """MIR-1K clips as CCMixter tracks: source-01 (music), source-02 (vocal), mix = their sum."""
    names = []
    for clip in MIR1K_CLIPS:
        folder = data() / "paired_2stem" / f"mir1k_{clip}"
        link(folder / "music.wav", root / clip / "source-01.wav")
        link(folder / "vocal.wav", root / clip / "source-02.wav")
        music, rate = sf.read(folder / "music.wav", dtype="float32")
        vocal, _ = sf.read(folder / "vocal.wav", dtype="float32")
        sf.write(root / clip / "mix.wav", music + vocal, rate, subtype="FLOAT")
        names.append(clip)
    return names


def build_ikala(root: Path) -> list[str]:
    link(
        data() / "paired_2stem" / "ikala_10161_chorus_Lacc_Rvoc.wav",
        root / "Wavfile" / "10161_chorus.wav",
    )
    return ["10161_chorus"]


def build_paired_aliases(root: Path) -> list[str]:
    """MIR-1K clips as paired folders with their own names: vocal.wav, music.wav (no mixture)."""
    for clip in MIR1K_CLIPS:
        folder = data() / "paired_2stem" / f"mir1k_{clip}"
        link(folder / "vocal.wav", root / clip / "vocal.wav")
        link(folder / "music.wav", root / clip / "music.wav")
    return list(MIR1K_CLIPS)


def build_paired_4stem(root: Path) -> list[str]:
    for name in MUSDB_EXCERPTS:
        for stem in ("mixture", *STEMS):
            link(musdb_excerpt(name) / f"{stem}.wav", root / name / f"{stem}.wav")
    return list(MUSDB_EXCERPTS)


def build_mixtures(root: Path) -> list[Path]:
    files = [
        link(
            data() / "mixtures" / "spleeter_audio_example.mp3", root / "spleeter_audio_example.mp3"
        ),
        link(
            data() / "mixtures" / "librosa" / "admiralbob77_-_Choice_-_Drum-bass.hq.ogg",
            root / "librosa" / "admiralbob77_-_Choice_-_Drum-bass.hq.ogg",
        ),
    ]
    return files


def build_solo(root: Path, source: str) -> list[Path]:
    chosen = {
        "vocals": [
            "solo_vocals/vocadito_1.wav",
            "solo_vocals/jingju_lseh-Tan_Yang_jia-Hong_yang_dong-qm.wav",
            "solo_vocals/emvd_Singer9_BlackShriek_Mid_i.wav",
            "solo_vocals/dagstuhl/DCS_LI_QuartetB_Take04_A2_DYN.wav",
        ],
        "drums": [
            "solo_drums/sonic-pi/loop_amen_full.flac",
            "solo_drums/sonic-pi/loop_compus.flac",
            "solo_drums/sonic-pi/drum_heavy_kick.flac",
        ],
        "bass": [
            "solo_bass/tinysol_Cb-ord-A2-mf-2c-N.wav",
            "solo_bass/sonic-pi/bass_voxy_c.flac",
            "solo_bass/phenicx_beethoven_doublebass.wav",
        ],
    }[source]
    return [link(data() / rel, root / rel.split("/", 1)[1]) for rel in chosen]


# -- the independent count ----------------------------------------------------------------------


def decode(path, rate: int, channel=None, stream=None) -> np.ndarray:
    """Mono float32 at `rate`: soundfile (or the ffmpeg CLI for a stream of an MP4), mean downmix,
    soxr."""
    import librosa

    path = str(path)
    if stream is not None:
        probe = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-select_streams",
                f"a:{stream}",
                "-show_entries",
                "stream=channels,sample_rate",
                "-of",
                "csv=p=0",
                path,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        channels, native = (int(v) for v in probe.stdout.strip().split(","))
        channels, native = sorted((channels, native))
        raw = subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-i",
                path,
                "-map",
                f"0:a:{stream}",
                "-f",
                "f32le",
                "-acodec",
                "pcm_f32le",
                "-",
            ],
            capture_output=True,
            check=True,
        ).stdout
        audio = np.frombuffer(raw, "<f4").reshape(-1, channels)
    else:
        audio, native = sf.read(path, dtype="float32", always_2d=True)
    wave = audio[:, channel] if channel is not None else audio.mean(axis=1)
    wave = np.ascontiguousarray(wave, np.float32)
    if native != rate:
        wave = librosa.resample(wave, orig_sr=native, target_sr=rate, res_type="soxr_hq")
    return wave.astype(np.float32)


def expected_patches(wave: np.ndarray, config) -> int:
    """Patches of a waveform whose RMS reaches the silence threshold (the config's spectrogram)."""
    spec = config.spectrogram
    pad = spec.n_fft - spec.n_hop
    frames = max(1, -(-(len(wave) + 2 * pad - spec.n_fft) // spec.n_hop) + 1)
    nb_patches = -(-max(0, frames - spec.nb_frames) // spec.patch_hop) + 1
    padded_wave = np.pad(
        wave.astype(np.float64), (pad, pad + spec.nb_frames * spec.n_hop + spec.n_fft)
    )
    span = (spec.nb_frames - 1) * spec.n_hop + spec.n_fft
    count = 0
    for p in range(nb_patches):
        start = p * spec.patch_hop * spec.n_hop
        level = 10 * np.log10(np.mean(np.square(padded_wave[start : start + span])) + 1e-20)
        count += level >= spec.silence_threshold_db
    return count
