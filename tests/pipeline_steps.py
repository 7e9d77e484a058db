"""The package's steps as several test files run them on the `tiny` preset (prepare in process or
on the command line, evaluate's folder options) and the metrics adversarial training logs."""

import sys

from advsep_tf.data_pipelines.prepare import prepare

# What an adversarial run with both critics logs every epoch (Keras history, TensorBoard).
ADVERSARIAL_METRICS = (
    "loss",
    "supervised_loss",
    "adversarial_loss",
    "additive_loss",
    "wasserstein_vocals",
    "wasserstein_accompaniment",
    "gradient_penalty_vocals",
    "gradient_penalty_accompaniment",
)


def prepare_synthetic(config, corpus, out, **options) -> dict:
    """The shard set of the synthetic corpus `corpus` at `out`, prepared in this process."""
    return prepare(config, [("synthetic", str(corpus))], str(out), progress=False, **options)


def prepare_paired_only(config, corpus, out) -> dict:
    """A shard set at `out` of the synthetic corpus's paired tracks alone: no mixtures, no solo
    recordings."""
    return prepare(
        config, [("paired", str(corpus / "musdb18hq" / "train"))], str(out), progress=False
    )


def prepare_argv(corpus, out, *options) -> list[str]:
    """advsep-tf-prepare's arguments for the tiny preset on the synthetic corpus `corpus`."""
    return ["--config", "tiny", "--dataset", f"synthetic={corpus}", "--out", str(out), *options]


def prepare_command(corpus, out, *options) -> list[str]:
    """The same, as a command line for a fresh interpreter."""
    return [sys.executable, "-m", "advsep_tf.cli.prepare", *prepare_argv(corpus, out, *options)]


def evaluate_argv(estimates, references, out, *options) -> list[str]:
    """advsep-tf-evaluate's arguments for scoring the folder `estimates` against `references`."""
    return [
        "--estimates",
        str(estimates),
        "--references",
        str(references),
        "--out",
        str(out),
        *options,
    ]
