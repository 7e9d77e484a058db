"""Validation L_s of trained separators on a shard set's validation batches, the ones training's
early stopping watches (`readers.validation_dataset`): how models are chosen before their test
scores are looked at.

    python benchmarks/real/validation_loss.py --shards shards_real_pretrained MODEL [MODEL ...]

MODEL: a run directory, a .keras file, a folder written by ship_pretrained.py, or `pretrained`.
"""

import argparse
import sys


def main(argv=None) -> None:
    import advsep_tf  # noqa: F401
    from advsep_tf.data_pipelines.readers import validation_dataset, validation_steps
    from advsep_tf.data_pipelines.shards import ShardSet
    from advsep_tf.runs import load_run_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shards", required=True)
    p.add_argument("models", nargs="+", metavar="MODEL")
    args = p.parse_args(argv)
    for name in args.models:
        model = load_run_model(name)
        config = model.separation_config
        shard_set = ShardSet.open(args.shards, expected=config)
        model.compile()
        steps = validation_steps(shard_set, config)
        logs = model.evaluate(
            validation_dataset(shard_set, config), steps=steps, verbose=0, return_dict=True
        )
        print(
            f"{name}: validation L_s {logs['supervised_loss']:.4f} ({steps} batches of "
            f"{config.training.batch_size})"
        )


if __name__ == "__main__":
    sys.exit(main())
