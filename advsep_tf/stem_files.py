"""Stem files: where a separation's stems go, checked before any work, and many files separated
into them.

`plan_separation` checks every input and output before anything is separated: inputs that are
missing, folders, unreadable or shorter than one STFT frame, an --out that is a file or not
writable, stems of two inputs that would land on the same path, and stems that would replace an
existing file (only with `overwrite`, and never an input or the model) are refused in one line
naming the path. Stems go to FILENAME_FORMAT under --out; the separation record in --out lists
the stems separations wrote there, the only files --overwrite replaces. `separate_files` runs a
`Separator` over many files with a progress bar.
"""

from __future__ import annotations

import json
import math
import os
import time

from advsep_tf.config import Config
from advsep_tf.errors import AdvsepError
from advsep_tf.files import check_output_files, check_writable, write_atomically

# Where each stem goes under --out: {track} (`track_name`), {source}, {codec} (the extension).
FILENAME_FORMAT = "{track}/{source}.{codec}"


def too_short(config: Config, nb_samples: int, sample_rate: int) -> str | None:
    """Why `nb_samples` at `sample_rate` cannot be separated (shorter than one STFT frame of the
    model, whose estimates would be edge padding only), or None."""
    needed = math.ceil(config.spectrogram.n_fft * sample_rate / config.audio.sample_rate)
    if nb_samples >= needed:
        return None
    return (
        f"too short to separate: {nb_samples} sample(s) at {sample_rate} Hz; the model needs at "
        f"least one frame ({needed} samples, {needed / sample_rate * 1000:.1f} ms)"
    )


def check_paths(inputs: list[str], out_dir: str) -> dict[str, tuple[int, int, int | None]]:
    """Every input is a readable file whose header parses and whose first samples decode, and
    `out_dir` can be a folder: checked before the model loads, so that a bad input among many
    stops the command before any is separated. Returns {input: (nb_channels, sample_rate,
    nb_samples or None)} (`data_pipelines.audio.probe`); standard input is not probed."""
    from advsep_tf.data_pipelines.audio import STDIO, probe

    for path in inputs:
        if path == STDIO:  # standard input: read when separating
            continue
        if os.path.isdir(path):
            example = os.path.join(path, "*.wav")
            raise AdvsepError(f"{path}: is a folder; give the audio files in it (e.g. {example})")
        if not os.path.exists(path):
            raise AdvsepError(f"{path}: input file not found")
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise AdvsepError(f"{path}: not a readable file")
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise AdvsepError(f"{out_dir}: exists and is a file; --out must be a folder")
    check_writable(out_dir)
    return {path: probe(path) for path in dict.fromkeys(inputs) if path != STDIO}


def plan_separation(
    inputs: list[str],
    out_dir: str,
    config: Config,
    filename_format: str = FILENAME_FORMAT,
    codec: str = "wav",
    overwrite: bool = False,
    protected: dict[str, str] | None = None,
    stdin_name: str = "stdin",
) -> dict[str, list[str]]:
    """{input: its stems' paths, in `config.sources` order}, after refusing, before any work, what
    would fail or destroy something: see `check_paths`; two stems on one path (inputs of the same
    track name, or a --filename-format without {source}); an existing file where a stem goes
    (replaced only with `overwrite` and only when `out_dir`'s separation record lists it as a
    stem written there, never an input or a `protected` path); an input shorter than one model
    frame (measured from its header, or ffprobe's)."""
    from advsep_tf.data_pipelines.audio import STDIO

    probed = check_paths(inputs, out_dir)
    outputs, writer = {}, {}
    for path in inputs:
        outputs[path] = []
        for source in config.sources:
            try:
                relative = filename_format.format(
                    track=track_name(path, stdin_name), source=source, codec=codec
                )
            except (KeyError, IndexError, ValueError) as exc:
                raise AdvsepError(
                    f"--filename-format {filename_format!r}: {exc.__class__.__name__}: {exc} "
                    "(placeholders: {track}, {source}, {codec})"
                ) from None
            stem_path = os.path.normpath(os.path.join(out_dir, relative))
            key = os.path.realpath(stem_path)
            if key in writer:
                other, other_source = writer[key]
                if other != path:
                    raise AdvsepError(
                        f"{other} and {path}: both would be written to {stem_path}; "
                        "separate them into different --out folders, or rename one"
                    )
                if other_source == source:
                    raise AdvsepError(f"{path}: given twice")
                raise AdvsepError(
                    f"--filename-format {filename_format!r}: every stem of {path} "
                    f"would be written to {stem_path}; include {{source}}"
                )
            writer[key] = (path, source)
            outputs[path].append(stem_path)
    stems = [p for paths in outputs.values() for p in paths]
    check_output_files(
        stems,
        overwrite,
        "the stems of an earlier separation",
        {**{path: "an input" for path in inputs if path != STDIO}, **(protected or {})},
    )
    earlier = separated_stems(out_dir)
    for stem in stems:
        if os.path.lexists(stem) and os.path.realpath(stem) not in earlier:
            raise AdvsepError(
                f"{stem}: exists and is not a stem an earlier separation wrote (not listed in "
                f"{os.path.join(out_dir, SEPARATION_RECORD)}); not replaced, even with "
                "--overwrite: choose another --out"
            )
    for path, (_, sample_rate, nb_samples) in probed.items():
        # nb_samples None: the container does not say; measured as it decodes.
        problem = nb_samples is not None and too_short(config, nb_samples, sample_rate)
        if problem:
            raise AdvsepError(f"{path}: {problem}")
    return outputs


def track_name(input_path: str, stdin_name: str = "stdin") -> str:
    """The file's name without extension; for MUSDB-style <track>/mixture.wav, the folder's name;
    `stdin_name` for standard input ("-")."""
    if input_path == "-":
        return stdin_name
    name = os.path.splitext(os.path.basename(input_path))[0]
    if name == "mixture":
        return os.path.basename(os.path.dirname(os.path.abspath(input_path))) or name
    return name


def separate_files(
    separator, inputs: list[str], out_dir: str, progress: bool = True, **kwargs
) -> dict:
    """Many files, with a progress bar in seconds of audio; returns a summary (files, seconds of
    audio, x real time).

    `separator`: an `advsep_tf.separate.Separator`. Every input and output is checked
    (`plan_separation`) before the first file is separated; `kwargs` are `separate_to_file`'s.
    """
    import soundfile as sf
    from tqdm.auto import tqdm

    plan_separation(
        inputs,
        out_dir,
        separator.config,
        kwargs.get("filename_format", FILENAME_FORMAT),
        kwargs.get("codec", "wav"),
        kwargs.get("overwrite", False),
        kwargs.get("protected"),
        stdin_name=kwargs.get("stdin_name", "stdin"),
    )
    truncated = kwargs.setdefault("truncated", [])
    durations = {}
    for path in inputs:
        if path == "-":  # libsndfile reads "-" as standard input, and closes it
            durations[path] = None
            continue
        try:
            durations[path] = sf.info(path).duration
        except Exception:  # noqa: BLE001 - what soundfile cannot read: length learnt as it goes
            durations[path] = None
    # A bar with a total only when every length is known up front (a pipe's is not).
    total = sum(durations.values()) if all(durations.values()) else None
    start, audio_seconds, outputs = time.time(), 0.0, {}
    bar_format = (
        "{l_bar}{bar}| {n_fmt}/{total_fmt} s of audio [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
    )
    with tqdm(
        total=total,
        desc="separate",
        unit="s",
        unit_scale=True,
        disable=not progress,
        dynamic_ncols=True,
        bar_format=bar_format,
    ) as bar:
        for i, path in enumerate(inputs):
            bar.set_postfix_str(f"file {i + 1}/{len(inputs)}")
            seconds = []

            def advance(step, seconds=seconds):
                seconds.append(step)
                # No float overshoot past the total.
                bar.update(step if bar.total is None else min(step, bar.total - bar.n))

            outputs[path] = separator.separate_to_file(path, out_dir, progress=advance, **kwargs)
            audio_seconds += sum(seconds)
    elapsed = time.time() - start
    return {
        "files": len(inputs),
        "audio_seconds": round(audio_seconds, 2),
        "seconds": round(elapsed, 2),
        "x_real_time": round(audio_seconds / elapsed, 2) if elapsed > 0 else None,
        "outputs": outputs,
        "truncated": truncated,
    }


# Beside the stems, in --out: the stems separations wrote there, the only files --overwrite
# replaces (a user's own file at a stem's path is not one of them).
SEPARATION_RECORD = ".advsep-tf-separate.json"


def separated_stems(out_dir: str) -> set[str]:
    """Real paths of the stems that separations into `out_dir` wrote (its SEPARATION_RECORD)."""
    try:
        with open(os.path.join(out_dir, SEPARATION_RECORD), encoding="utf-8") as f:
            stems = json.load(f).get("stems", [])
    except (OSError, ValueError, AttributeError):
        return set()
    return {
        os.path.realpath(os.path.join(out_dir, stem)) for stem in stems if isinstance(stem, str)
    }


def record_separation(out_dir: str, stems: list[str]) -> None:
    """Add `stems` to `out_dir`'s SEPARATION_RECORD."""
    root = os.path.realpath(out_dir)
    paths = separated_stems(out_dir) | {os.path.realpath(p) for p in stems}
    known = sorted(os.path.relpath(p, root) for p in paths)
    os.makedirs(out_dir, exist_ok=True)
    record = json.dumps({"stems": known}, indent=1) + "\n"
    write_atomically(os.path.join(out_dir, SEPARATION_RECORD), record)
