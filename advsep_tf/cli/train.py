"""advsep-tf-train: train the separator (supervised baseline or adversarial) on a shard set."""

from __future__ import annotations

import math
import sys

from advsep_tf.cli import common, options


def main(argv=None) -> None:
    p = common.parser(
        "advsep-tf-train",
        __doc__,
        "example: advsep-tf-train --config demo --shards shards/ --out runs/va --mode adversarial "
        "--steps 600",
    )
    options.add(p, "--config")
    options.add(p, "--shards", required=True)
    options.add(
        p,
        "--out",
        metavar="RUN_DIR",
        help="the run directory: checkpoints, history.csv, logs/ for TensorBoard",
    )
    options.add(p, "--mode")
    p.add_argument(
        "--critics", metavar="SOURCE,...", help="sources that get a critic (default: all)"
    )
    options.add(p, "--steps")
    p.add_argument(
        "--resume", action="store_true", help="continue the run in RUN_DIR from its last checkpoint"
    )
    p.add_argument(
        "--init",
        metavar="RUN_DIR_OR_MODEL",
        help="start from a trained separator (and its critics): a run directory, a .keras file or "
        "'pretrained'; its config must match in sources, audio, spectrogram and separator",
    )
    p.add_argument(
        "--remix-probability",
        type=options.number(float, 0, 1),
        metavar="P",
        help="remix this fraction of paired examples from stems of different tracks "
        "(training.remix_probability)",
    )
    p.add_argument(
        "--random-offsets",
        action="store_true",
        help="cut excerpts at random frame offsets (training.random_offsets)",
    )
    p.add_argument(
        "--seed",
        type=options.number(int, 0, 2**32 - 1),
        metavar="N",
        help="overrides training.seed",
    )
    p.add_argument(
        "--teacher",
        action="store_true",
        help="no paired data: L_s compares the estimates on unlabelled mixtures with those of the "
        "--init model (training.teacher_targets); adapts a trained model to new music",
    )
    p.add_argument(
        "--synthetic-pairs",
        type=float,
        metavar="SHARE",
        help="replace this share of paired examples by mixtures of solo excerpts from the "
        "solo/<source> pools (training.synthetic_pairs; 0.5 measured best)",
    )
    p.add_argument(
        "--pseudo-labels",
        type=float,
        metavar="WEIGHT",
        help="teacher-student: add L_s on unlabelled mixtures labelled by the --teacher-model, "
        "with this weight (training.pseudo_label_weight)",
    )
    p.add_argument(
        "--teacher-model",
        metavar="RUN_DIR_OR_MODEL",
        help="the frozen teacher of --pseudo-labels: a run directory, a .keras file or "
        "'pretrained' (default: the --init model)",
    )
    p.add_argument(
        "--critic-normalization",
        choices=["gradient_penalty", "spectral"],
        help="keep critics 1-Lipschitz by the paper's gradient penalty or by spectral "
        "normalisation, which needs no second derivative (critic.normalization)",
    )
    options.add(p, "--strategy")
    p.add_argument(
        "--jit-compile",
        action="store_true",
        help="compile train_step with XLA (training.jit_compile)",
    )
    options.add(p, "--precision")
    args = p.parse_args(argv)
    common.quiet_tensorflow(args.verbose)
    if args.steps is not None and args.steps < 1:
        p.error("--steps must be >= 1")

    from advsep_tf.config import load_config
    from advsep_tf.train import train

    config = load_config(args.config)
    training = {}
    if args.mode:
        training["mode"] = args.mode
    if args.critics is not None:
        critics = [s.strip() for s in args.critics.split(",") if s.strip()]
        unknown = [s for s in critics if s not in config.sources]
        if unknown or not critics:
            problem = f"names unknown source(s) {', '.join(unknown)}" if unknown else "empty"
            p.error(
                f"--critics {args.critics!r}: {problem} "
                f"(sources of config '{config.name}': {', '.join(config.sources)})"
            )
        training["critics"] = critics
    if args.jit_compile:
        training["jit_compile"] = True
    if args.precision:
        training["precision"] = args.precision
    if args.remix_probability is not None:
        if not 0 <= args.remix_probability <= 1:
            p.error("--remix-probability must be in [0, 1]")
        training["remix_probability"] = args.remix_probability
    if args.random_offsets:
        training["random_offsets"] = True
    if args.seed is not None:
        training["seed"] = args.seed
    if args.teacher:
        if not args.init:
            p.error("--teacher learns from the model given with --init")
        training["teacher_targets"] = True
    if args.synthetic_pairs is not None:
        if not 0 <= args.synthetic_pairs <= 1:
            p.error("--synthetic-pairs must be in [0, 1]")
        training["synthetic_pairs"] = args.synthetic_pairs
    if args.pseudo_labels is not None:
        if not args.pseudo_labels >= 0:
            p.error("--pseudo-labels must be >= 0")
        if not (args.teacher_model or args.init):
            p.error("--pseudo-labels needs a teacher: --teacher-model (or --init)")
        training["pseudo_label_weight"] = args.pseudo_labels
    if training:
        config = config.replace(training=training)
    if args.critic_normalization:
        config = config.replace(critic={"normalization": args.critic_normalization})
    summary = train(
        config,
        args.shards,
        args.out,
        steps=args.steps,
        resume=args.resume,
        strategy=args.strategy,
        init=args.init,
        teacher=args.teacher_model,
    )
    best = summary["best_val_supervised_loss"]
    kept = (
        "no validation data, the last step's model kept"
        if math.isnan(best)
        else f"best validation L_s {best:.4f}"
    )
    print(
        f"Trained {summary['mode']} model ({', '.join(summary['critics']) or 'no'} critics): "
        f"{summary['separator_steps']} separator steps, {summary['critic_steps']} critic steps in "
        f"{summary['seconds']:.0f} s; {kept}; model in {summary['run_dir']}/model.keras"
    )


cli = common.console_script(main)


if __name__ == "__main__":
    sys.exit(cli())
