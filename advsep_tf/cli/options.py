"""Every option of every command, defined once (spleeter's options.py): its name, metavar,
choices, default and help in OPTIONS, and in COMMAND_OPTIONS what one command changes (whether it
is required, what its folder is called, what --overwrite may replace). A command picks its options
with `add(parser, "--name", ...)`.

Choices and defaults are the library's constants, so that the help cannot disagree with the code.
Nothing here imports TensorFlow: a command parses its arguments (and answers --help) before
TensorFlow's start-up lines are silenced (`common.quiet_tensorflow`).
"""

from __future__ import annotations

import argparse
import math

from advsep_tf.config import (
    CRITIC_NORMALIZATIONS,
    MODES,
    PRECISIONS,
    PRETRAINED,
    REMIX_PHASES,
    STRATEGIES,
    preset_names,
)
from advsep_tf.data_pipelines.audio import SOUNDFILE_CODECS
from advsep_tf.data_pipelines.prepare import ON_ERROR
from advsep_tf.data_pipelines.shards import EXAMPLES_PER_SHARD
from advsep_tf.export.litert import DEFAULT_SEGMENT_HOPS, QUANTIZATIONS
from advsep_tf.stem_files import FILENAME_FORMAT

# advsep_tf.separate and advsep_tf.filtering import TensorFlow, so their RECONSTRUCTIONS,
# CHANNEL_MASKS, BAND_EXTENSIONS, DEFAULT_CHUNK_PATCHES and DEFAULT_SILENCE_GATE_DB are repeated
# here; tests/test_cli.py fails when they differ.
RECONSTRUCTIONS = ("mask", "direct")
CHANNEL_MASKS = ("shared", "independent")
BAND_EXTENSIONS = ("mean", "tilt")
DEFAULT_CHUNK_PATCHES = 16
DEFAULT_SILENCE_GATE_DB = None
CODECS = tuple(SOUNDFILE_CODECS)  # those libsndfile writes: no ffmpeg needed
EXPORT_FORMATS = ("saved_model", "litert")
# Beam runs on any runner it knows; these are the ones README.md documents.
BEAM_RUNNERS = ("DirectRunner", "PrismRunner", "DataflowRunner", "FlinkRunner", "SparkRunner")

# The largest --mask-power: |S|^p of float32 magnitudes overflows not far above it.
MAX_MASK_POWER = 10.0


def number(kind: type, low: float | None = None, high: float | None = None, low_open: bool = False):
    """An argparse `type`: a finite `kind` (int or float) in [low, high] (low excluded with
    `low_open`); anything else is refused by argparse (exit 2), naming the option and the range."""
    expected = "an integer" if kind is int else "a finite number"
    if low is not None and high is not None:
        expected += f" in {'(' if low_open else '['}{low:g}, {high:g}]"
    elif low is not None:
        expected += f" {'>' if low_open else '>='} {low:g}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        below = low is not None and (value <= low if low_open else value < low)
        if not math.isfinite(value) or below or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = expected  # what argparse would print for an error this function did not word
    return parse


def weights_by_name(text: str) -> dict[str, float]:
    """An argparse `type`: "name=weight,name=weight" -> {name: weight}, weights finite and >= 0."""
    weights = {}
    for item in text.split(","):
        name, equals, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = math.nan
        if not (equals and name.strip() and math.isfinite(weight) and weight >= 0):
            raise argparse.ArgumentTypeError(
                f"expected NAME=WEIGHT,NAME=WEIGHT with weights >= 0, got {text!r}"
            )
        weights[name.strip()] = weight
    return weights


weights_by_name.__name__ = "NAME=WEIGHT,..."


def decibels_or_off(low: float, high: float):
    """An argparse `type`: 'off' (None) or a number of dB in [low, high]."""
    in_range = number(float, low, high)

    def parse(text: str):
        return None if text == "off" else in_range(text)

    parse.__name__ = f"'off' or {in_range.__name__}"
    return parse


def one_of(choices: tuple, help: str) -> dict:
    """An option that takes one of `choices`, the first by default."""
    return dict(default=choices[0], choices=choices, help=help)


OPTIONS: dict[str, dict] = {
    # every command
    "--verbose": dict(action="store_true", help="show tracebacks and TensorFlow's own logging"),
    "--config": dict(
        required=True,
        metavar="PRESET_OR_FILE",
        help=f"a preset ({', '.join(preset_names())}) or a JSON/YAML config file",
    ),
    "--out": dict(required=True, help="the output folder"),
    "--overwrite": dict(
        action="store_true",
        help="replace what an earlier run of this command wrote at --out (never other files)",
    ),
    "--no-progress": dict(action="store_true", help="no progress bars (for log files)"),
    # data
    "--dataset": dict(
        action="append",
        metavar="KIND=PATH",
        help="a corpus in its own layout (kinds: advsep-tf-prepare --help), repeatable",
    ),
    "--split": dict(
        metavar="SPLIT_FILE",
        help="a YAML/JSON split spec: which tracks train, validate, test or fill the "
        "unpaired pools",
    ),
    "--write-split": dict(
        metavar="FILE",
        help="write the split spec (the defaults, or --split made explicit) to FILE and stop",
    ),
    "--shards": dict(metavar="SHARD_DIR", help="a shard set written by advsep-tf-prepare"),
    "--examples-per-shard": dict(
        type=number(int, 1),
        default=EXAMPLES_PER_SHARD,
        metavar="N",
        help=f"patches per TFRecord file (default: {EXAMPLES_PER_SHARD})",
    ),
    "--on-error": one_of(
        ON_ERROR,
        "bad input: stop with exit code 1 (fail, the default), or leave that track out and "
        "list it in the "
        "summary and the manifest (skip)",
    ),
    "--workers": dict(
        type=number(int, 0),
        default=1,
        metavar="N",
        help="processes decoding and patching tracks (0: one per CPU core); the shards do not "
        "depend on it",
    ),
    "--runner": dict(
        choices=BEAM_RUNNERS,
        help="prepare as an Apache Beam pipeline on this runner (default: in this process, "
        "without Beam); "
        "DirectRunner runs Beam in this process",
    ),
    "--beam-option": dict(
        action="append",
        default=[],
        metavar="OPTION",
        help="a Beam pipeline option for --runner, repeatable, written with '=': "
        "--beam-option=--project=my-project",
    ),
    # training
    "--steps": dict(
        type=number(int, 1), metavar="N", help="separator steps (default: training.max_steps)"
    ),
    "--mode": dict(choices=MODES, help="overrides training.mode"),
    "--critics": dict(metavar="SOURCE,...", help="sources that get a critic (default: all)"),
    "--resume": dict(
        action="store_true", help="continue the run in RUN_DIR from its last checkpoint"
    ),
    "--init": dict(
        metavar="RUN_DIR_OR_MODEL",
        help="start from a trained separator (and its critics): a run directory, a .keras file or "
        "'pretrained'; its config must match in sources, audio, spectrogram and separator",
    ),
    "--remix-probability": dict(
        type=number(float, 0, 1),
        metavar="P",
        help="remix this fraction of paired examples from stems of different tracks "
        "(training.remix_probability)",
    ),
    "--remix-phases": dict(
        choices=REMIX_PHASES,
        help="how remixes sum stems known only as magnitudes: 'aligned' adds the magnitudes, "
        "'random' gives each stem's bins a random phase so that powers add "
        "(training.remix_phases)",
    ),
    "--random-offsets": dict(
        action="store_true",
        help="cut excerpts at random frame offsets (training.random_offsets)",
    ),
    "--seed": dict(type=number(int, 0, 2**32 - 1), metavar="N", help="overrides training.seed"),
    "--teacher": dict(
        action="store_true",
        help="no paired data: L_s compares the estimates on unlabelled mixtures with those of the "
        "--init model (training.teacher_targets); adapts a trained model to new music",
    ),
    "--synthetic-pairs": dict(
        type=number(float, 0, 1),
        metavar="SHARE",
        help="replace this share of paired examples by mixtures of solo excerpts from the "
        "solo/<source> pools (training.synthetic_pairs; measured best: 0.5 beside paired data, 1 "
        "when adapting with --teacher)",
    ),
    "--pseudo-labels": dict(
        type=number(float, 0),
        metavar="WEIGHT",
        help="teacher-student: add L_s on unlabelled mixtures labelled by the --teacher-model, "
        "with this weight (training.pseudo_label_weight)",
    ),
    "--solo-pitch-shift": dict(
        type=number(float, 0, 12),
        metavar="SEMITONES",
        help="shift each solo excerpt of the synthetic pairs by up to this many semitones, up or "
        "down (training.solo_pitch_shift)",
    ),
    "--origin-weights": dict(
        type=weights_by_name,
        metavar="ORIGIN=W,...",
        help="draw paired training examples from each origin (the --dataset kinds given to "
        "advsep-tf-prepare; a kind given twice is kind#2) with these relative weights instead of "
        "in proportion to their patches, e.g. musdb18=1,mir1k=1; not with --teacher, which "
        "reads no paired tracks (training.origin_weights)",
    ),
    "--ema-decay": dict(
        type=number(float, 0, 0.9999),
        metavar="DECAY",
        help="validate and save an exponential moving average of the separator's weights with "
        "this decay (training.ema_decay; 0: off)",
    ),
    "--teacher-model": dict(
        metavar="RUN_DIR_OR_MODEL",
        help="the frozen teacher of --pseudo-labels: a run directory, a .keras file or "
        "'pretrained' (default: the --init model)",
    ),
    "--critic-normalization": dict(
        choices=CRITIC_NORMALIZATIONS,
        help="keep critics 1-Lipschitz by the paper's gradient penalty or by spectral "
        "normalisation, which needs no second derivative (critic.normalization)",
    ),
    "--strategy": one_of(
        STRATEGIES,
        "tf.distribute: mirrored = all local GPUs; multi_worker = the cluster in TF_CONFIG",
    ),
    "--jit-compile": dict(
        action="store_true", help="compile train_step with XLA (training.jit_compile)"
    ),
    "--precision": dict(choices=PRECISIONS, help="overrides training.precision"),
    # experiment and demo
    "--test-dir": dict(
        metavar="DIR", help="held-out tracks as <track>/<source>.wav (with --shards)"
    ),
    "--test-rate": dict(
        type=number(int, 1),
        default=44100,
        metavar="HZ",
        help="rate of the test references written from the split (default 44100: museval's)",
    ),
    "--seeds": dict(
        metavar="N,N,...", help="train every model once per seed (default: the config's seed)"
    ),
    "--warm-start-steps": dict(
        type=number(int, 1),
        metavar="N",
        help="adversarial models start from the same seed's trained baseline and train N more "
        "steps; "
        "a 'baseline+' control trains the baseline N more steps supervised",
    ),
    "--models": dict(
        default="baseline,V,VA",
        metavar="NAME,...",
        help="models to compare, in training order (default: baseline,V,VA): baseline, V, VA "
        "(the paper's), VA-SN (spectrally normalised critics), synthetic (synthetic pairs "
        "from the solo pools), teacher (pseudo labels from the baseline), synthetic+teacher, "
        "ceiling (the pools with their true stems; needs --ceiling-split)",
    ),
    "--ceiling-split": dict(
        metavar="FILE",
        help="split spec for the ceiling model: the --split with the unpaired pools moved to train",
    ),
    "--quick": dict(
        action="store_true",
        help="a much smaller run, to check the installation (about 1 minute)",
    ),
    # separation
    "--model": dict(
        default=PRETRAINED,
        metavar="RUN_DIR_OR_SAVEDMODEL",
        help=f"a run directory, a .keras file, a SavedModel, or '{PRETRAINED}' (default: the "
        f"vocals/accompaniment "
        "separator shipped with the package)",
    ),
    "--stem": dict(metavar="SOURCE", help="with --out -: the source to write"),
    "--filename-format": dict(default=FILENAME_FORMAT, help=f"default: {FILENAME_FORMAT}"),
    "--codec": one_of(
        CODECS, "wav (float32) or flac (24 bit) keep the stems exact; ogg and mp3 are lossy"
    ),
    "--reconstruction": one_of(
        RECONSTRUCTIONS,
        "for input above the model's rate: 'mask' (default) applies the estimates as soft "
        "masks to the "
        "input-rate mixture and keeps the high band; 'direct' resamples the band-limited stems",
    ),
    "--mask-power": dict(
        type=number(float, 0, MAX_MASK_POWER, low_open=True),
        default=1.0,
        help=f"the power p of the masks |S_k|^p / sum_j |S_j|^p, in (0, {MAX_MASK_POWER:g}]: "
        "1 magnitude ratio masks (default), 2 Wiener-style",
    ),
    "--channel-masks": one_of(
        CHANNEL_MASKS,
        "with 'mask': 'shared' (default) masks every channel alike, from the estimates of "
        "all channels; "
        "'independent' masks each channel on its own (for a voice panned hard to one side)",
    ),
    "--band-extension": one_of(
        BAND_EXTENSIONS,
        "with 'mask', above the model's band: 'mean' (default) gives every bin its frame's mean "
        "mask; 'tilt' continues each source's spectral slope bin by bin",
    ),
    "--silence-gate": dict(
        type=decibels_or_off(-100, 0),
        default=DEFAULT_SILENCE_GATE_DB,
        metavar="DB",
        help="with 'mask': silence a source where its estimate holds less than DB dB of the "
        "mixture's energy over 0.25 s (leakage, not the source: a singer's pause), handing it to "
        "the other sources; 'off' keeps every estimate as the model made it (default: "
        f"{DEFAULT_SILENCE_GATE_DB if DEFAULT_SILENCE_GATE_DB is not None else 'off'})",
    ),
    "--chunk-patches": dict(
        type=number(int, 1),
        default=DEFAULT_CHUNK_PATCHES,
        help="patches per separator call (memory bound)",
    ),
    "--name": dict(
        metavar="TRACK",
        help="with INPUT '-': the track name of standard input's stems (default: stdin)",
    ),
    "--allow-truncated": dict(
        action="store_true",
        help="separate the decodable part of a truncated or damaged input (and say so) "
        "instead of stopping with exit code 1",
    ),
    "--quiet-terms": dict(
        action="store_true",
        help="do not print the default model's terms of use on stderr",
    ),
    # evaluation
    "--estimates": dict(
        metavar="EST_DIR",
        help="the separated stems to score, <track>/<source>.wav (as advsep-tf-separate "
        "writes them)",
    ),
    "--references": dict(
        metavar="REF_DIR",
        help="the true stems, <track>/<source>.wav (a MUSDB18-HQ folder works as is; "
        "its mixture.wav is the mixture as estimate)",
    ),
    "--sources": dict(metavar="SOURCE,...", help="sources to score (default: all in both folders)"),
    "--oracle": dict(
        metavar="PRESET_OR_FILE",
        help="also score the ideal ratio mask at this config's STFT window (the upper "
        "bound of a mask-based separator)",
    ),
    "--oracle-rate": one_of(
        ("input", "model"),
        "the oracle at each track's own rate over the full band (input, the "
        "default, as advsep-tf-separate's mask reconstruction) or at the config's "
        "rate, band-limited to half of it (model)",
    ),
    "--keep-oracle-audio": dict(
        action="store_true",
        help="keep the oracle's stems in RESULTS_DIR/oracle_estimates (default: they "
        "are removed once scored and excerpted for the report; their size is "
        "printed either way)",
    ),
    "--compare": dict(
        nargs="+", metavar="RESULTS_DIR", help="compare finished results folders instead"
    ),
    "--excerpt-seconds": dict(
        type=number(float, 0, low_open=True),
        metavar="S",
        help="length of the audio excerpts in report.html (default: 10)",
    ),
    # export
    "--format": one_of(
        EXPORT_FORMATS,
        "saved_model (a folder for TF Serving, the default) or litert (a .tflite file for devices)",
    ),
    "--quantize": one_of(
        QUANTIZATIONS,
        "litert only: float16 weights, or dynamic-range int8 (default: none, float32)",
    ),
    "--segment-seconds": dict(
        type=number(float, 0, low_open=True),
        default=None,
        metavar="S",
        help="litert only: the model's fixed segment length, rounded up to half-patch hops "
        f"(default: {DEFAULT_SEGMENT_HOPS} half-patch hops, e.g. 4 s for the demo preset)",
    ),
}


# What a shared option is to one command, where that differs from OPTIONS: whether it is required,
# what its folder is called and holds, what --overwrite may replace.
COMMAND_OPTIONS: dict[str, dict[str, dict]] = {
    "advsep-tf-prepare": {
        "--dataset": dict(required=True, help="a dataset to read"),
        "--split": dict(
            help="YAML/JSON split spec {train, valid, test, mixtures, solo: {source: [...]}, "
            "unused} of track ids",
        ),
        "--out": dict(
            required=False,
            metavar="SHARD_DIR",
            help="the shard set's folder (required unless --write-split)",
        ),
        "--overwrite": dict(
            help="replace a shard set (or an unfinished run) in SHARD_DIR, or the split spec "
            "--write-split wrote; never anything else",
        ),
    },
    "advsep-tf-train": {
        "--shards": dict(required=True),
        "--out": dict(
            metavar="RUN_DIR",
            help="the run directory: checkpoints, history.csv, logs/ for TensorBoard",
        ),
    },
    "advsep-tf-separate": {
        "--out": dict(
            metavar="OUT_DIR",
            help="folder for the stems; '-' writes the one --stem to standard output (as --codec)",
        ),
        "--overwrite": dict(
            help="replace stems an earlier separation wrote in OUT_DIR; never another file, "
            "an input or the model",
        ),
    },
    "advsep-tf-evaluate": {
        "--out": dict(
            metavar="RESULTS_DIR",
            help="folder for results.json, results.csv, report.html and the box plot",
        ),
        "--overwrite": dict(
            help="replace the results files an earlier evaluation wrote in RESULTS_DIR",
        ),
    },
    "advsep-tf-export": {
        "--model": dict(
            default=None,
            required=True,
            metavar="RUN_DIR_OR_MODEL",
            help="a training run directory, a .keras file, or 'pretrained' (the "
            "vocals/accompaniment separator shipped with the package)",
        ),
        "--out": dict(metavar="PATH", help="SavedModel directory, or the .tflite file"),
        "--overwrite": dict(
            help="replace an earlier export at --out (never a folder or file that is not one, "
            "the current directory, or one holding the model)",
        ),
        "--config": dict(required=False),
    },
    "advsep-tf-experiment": {
        "--config": dict(required=False),
        "--out": dict(
            metavar="DIR",
            help="the experiment's folder: runs, stems, results, comparison.md, report.html",
        ),
        "--shards": dict(help="a prepared shard set (default: generate a synthetic corpus)"),
        "--steps": dict(help="separator steps per model (default: training.max_steps)"),
        "--dataset": dict(
            default=[],
            help="a corpus in its own layout, as advsep-tf-prepare's --dataset (repeatable)",
        ),
        "--split": dict(help="split spec for --dataset; its test tracks are the test set"),
    },
    "advsep-tf-demo": {
        "--out": dict(
            required=False,
            default="demo_output",
            metavar="DIR",
            help="output folder (default: demo_output)",
        ),
        "--config": dict(
            required=False, help="the preset or config file the models use (default: demo)"
        ),
    },
}


def add(parser: argparse.ArgumentParser, *names: str) -> None:
    """Add the options `names` to a command's `parser`, in that order: as OPTIONS defines them,
    but for what COMMAND_OPTIONS says differs for that command (the parser's prog)."""
    differences = COMMAND_OPTIONS.get(parser.prog, {})
    for name in names:
        parser.add_argument(name, **{**OPTIONS[name], **differences.get(name, {})})
