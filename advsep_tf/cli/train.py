"""advsep-tf-train: train the separator (supervised baseline or adversarial) on a shard set."""

from __future__ import annotations

import math
import sys

from advsep_tf.cli import common, options

EPILOG = (
    "example: advsep-tf-train --config demo --shards shards/ --out runs/va --mode adversarial "
    "--steps 600"
)


def main(argv=None) -> None:
    p = common.parser("advsep-tf-train", __doc__, EPILOG)
    options.add(p, "--config", "--shards", "--out")
    options.add(p, "--mode", "--critics", "--steps", "--resume", "--init")
    options.add(p, "--remix-probability", "--remix-phases", "--random-offsets", "--seed")
    options.add(p, "--teacher")
    options.add(p, "--synthetic-pairs", "--solo-pitch-shift", "--pseudo-labels", "--teacher-model")
    options.add(p, "--origin-weights", "--ema-decay")
    options.add(p, "--critic-normalization", "--strategy", "--jit-compile", "--precision")
    args = p.parse_args(argv)
    common.quiet_tensorflow(args.verbose)

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
    if args.remix_probability is not None:  # its type keeps it in [0, 1]
        training["remix_probability"] = args.remix_probability
    if args.remix_phases:
        training["remix_phases"] = args.remix_phases
    if args.random_offsets:
        training["random_offsets"] = True
    if args.seed is not None:
        training["seed"] = args.seed
    if args.teacher:
        if not args.init:
            p.error("--teacher learns from the model given with --init")
        training["teacher_targets"] = True
    if args.synthetic_pairs is not None:
        training["synthetic_pairs"] = args.synthetic_pairs
    if args.pseudo_labels is not None:
        if not (args.teacher_model or args.init):
            p.error("--pseudo-labels needs a teacher: --teacher-model (or --init)")
        training["pseudo_label_weight"] = args.pseudo_labels
    if args.solo_pitch_shift is not None:
        training["solo_pitch_shift"] = args.solo_pitch_shift
    if args.ema_decay is not None:
        training["ema_decay"] = args.ema_decay
    if args.origin_weights is not None:
        training["origin_weights"] = args.origin_weights
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
    if config.training.ema_decay > 0:
        kept += f" (weights averaged, decay {config.training.ema_decay:g})"
    print(
        f"Trained {summary['mode']} model ({', '.join(summary['critics']) or 'no'} critics): "
        f"{summary['separator_steps']} separator steps, {summary['critic_steps']} critic steps in "
        f"{summary['seconds']:.0f} s; {kept}; model in {summary['run_dir']}/model.keras"
    )


cli = common.console_script(main)


if __name__ == "__main__":
    sys.exit(cli())
