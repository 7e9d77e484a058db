"""Every option more than one command takes, or whose choices or default come from the library,
defined once (spleeter's options.py): its name, metavar, choices, default and help. A command
picks one with `add(parser, "--name")`, overriding only what differs between commands (whether it
is required, what its folder is called, what --overwrite may replace).

Choices and defaults are the library's constants, so that the help cannot disagree with the code.
Nothing here imports TensorFlow: a command parses its arguments (and answers --help) before
TensorFlow's start-up lines are silenced (`common.quiet_tensorflow`).
"""

from __future__ import annotations

import argparse
import math

from advsep_tf.config import MODES, PRECISIONS, PRETRAINED, STRATEGIES, preset_names
from advsep_tf.data_pipelines.audio import SOUNDFILE_CODECS
from advsep_tf.data_pipelines.prepare import ON_ERROR
from advsep_tf.data_pipelines.shards import EXAMPLES_PER_SHARD
from advsep_tf.export.litert import DEFAULT_SEGMENT_HOPS, QUANTIZATIONS
from advsep_tf.stem_files import FILENAME_FORMAT

# advsep_tf.separate imports TensorFlow, so its RECONSTRUCTIONS, CHANNEL_MASKS and
# DEFAULT_CHUNK_PATCHES are repeated here; tests/test_cli.py fails when the two differ.
RECONSTRUCTIONS = ("mask", "direct")
CHANNEL_MASKS = ("shared", "independent")
DEFAULT_CHUNK_PATCHES = 16
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
    "--shards": dict(metavar="SHARD_DIR", help="a shard set written by advsep-tf-prepare"),
    "--examples-per-shard": dict(
        type=number(int, 1),
        default=EXAMPLES_PER_SHARD,
        metavar="N",
        help=f"patches per TFRecord file (default: {EXAMPLES_PER_SHARD})",
    ),
    "--on-error": dict(
        choices=ON_ERROR,
        default=ON_ERROR[0],
        help="bad input: stop with exit code 1 (fail, the default), or leave that track out and "
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
    "--precision": dict(choices=PRECISIONS, help="overrides training.precision"),
    "--strategy": dict(
        default=STRATEGIES[0],
        choices=STRATEGIES,
        help="tf.distribute: mirrored = all local GPUs; multi_worker = the cluster in TF_CONFIG",
    ),
    # separation
    "--model": dict(
        default=PRETRAINED,
        metavar="RUN_DIR_OR_SAVEDMODEL",
        help=f"a run directory, a .keras file, a SavedModel, or '{PRETRAINED}' (default: the "
        f"vocals/accompaniment "
        "separator shipped with the package)",
    ),
    "--filename-format": dict(default=FILENAME_FORMAT, help=f"default: {FILENAME_FORMAT}"),
    "--codec": dict(
        default=CODECS[0],
        choices=CODECS,
        help="wav (float32) or flac (24 bit) keep the stems exact; ogg and mp3 are lossy",
    ),
    "--reconstruction": dict(
        default=RECONSTRUCTIONS[0],
        choices=RECONSTRUCTIONS,
        help="for input above the model's rate: 'mask' (default) applies the estimates as soft "
        "masks to the "
        "input-rate mixture and keeps the high band; 'direct' resamples the band-limited stems",
    ),
    "--mask-power": dict(
        type=number(float, 0, MAX_MASK_POWER, low_open=True),
        default=1.0,
        help=f"the power p of the masks |S_k|^p / sum_j |S_j|^p, in (0, {MAX_MASK_POWER:g}]: "
        "1 magnitude ratio masks (default), 2 Wiener-style",
    ),
    "--channel-masks": dict(
        default=CHANNEL_MASKS[0],
        choices=CHANNEL_MASKS,
        help="with 'mask': 'shared' (default) masks every channel alike, from the estimates of "
        "all channels; "
        "'independent' masks each channel on its own (for a voice panned hard to one side)",
    ),
    "--chunk-patches": dict(
        type=number(int, 1),
        default=DEFAULT_CHUNK_PATCHES,
        help="patches per separator call (memory bound)",
    ),
    # export
    "--format": dict(
        default=EXPORT_FORMATS[0],
        choices=EXPORT_FORMATS,
        help="saved_model (a folder for TF Serving, the default) or litert (a .tflite file for "
        "devices)",
    ),
    "--quantize": dict(
        default=QUANTIZATIONS[0],
        choices=QUANTIZATIONS,
        help="litert only: float16 weights, or dynamic-range int8 (default: none, float32)",
    ),
    "--segment-seconds": dict(
        type=number(float, 0, low_open=True),
        default=None,
        metavar="S",
        help="litert only: the model's fixed segment length, rounded up to half-patch hops "
        f"(default: {DEFAULT_SEGMENT_HOPS} half-patch hops, e.g. 4 s for the demo preset)",
    ),
}


def add(parser: argparse.ArgumentParser, name: str, **overrides) -> argparse.Action:
    """Add the option `name` as defined in OPTIONS, with `overrides` of its argparse keywords."""
    return parser.add_argument(name, **{**OPTIONS[name], **overrides})
