"""Copy trained runs' separators into the package as the `pretrained` model.

    python benchmarks/real/ship_pretrained.py RUN_DIR [RUN_DIR ...] [--out DIR] [--overwrite]

One run: its separator. Several runs of one config: an ensemble whose `separator.members` are
their separators (`runs.ensemble_of`; the estimates are averaged). Writes DIR/model.keras (the
separator's weights only: no optimizer state, no critics) and config.json, each atomically; DIR is
advsep_tf/pretrained unless --out names a folder for a candidate to score before it is shipped
(a model already there is replaced only with --overwrite).
The model card beside them (MODEL_CARD.md) is written by hand from
benchmarks/real/evaluate_pretrained.py's output.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, "..", "..", "advsep_tf", "pretrained")


def main(argv=None) -> None:
    import advsep_tf  # noqa: F401
    from advsep_tf.runs import (
        CONFIG_FILE,
        MODEL_FILE,
        ensemble_of,
        load_run_model,
        save_model_atomically,
    )

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default=TARGET)
    p.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    args = p.parse_args(argv)
    existing = os.path.join(args.out, MODEL_FILE)
    # The package's own model is replaced under version control; anything else only when asked.
    if (
        os.path.exists(existing)
        and not args.overwrite
        and os.path.realpath(args.out) != os.path.realpath(TARGET)
    ):
        p.error(
            f"{existing}: exists (a trained run's model?); give another --out, or --overwrite to "
            f"replace it"
        )

    shipped = ensemble_of([load_run_model(run) for run in args.runs], args.runs)
    os.makedirs(args.out, exist_ok=True)
    model_path = os.path.join(args.out, MODEL_FILE)
    save_model_atomically(shipped, model_path)
    shipped.separation_config.save(os.path.join(args.out, CONFIG_FILE))  # atomic itself
    print(
        f"{model_path}: {os.path.getsize(model_path) / 1e6:.2f} MB, "
        f"{shipped.separator.count_params():,} parameters"
    )


if __name__ == "__main__":
    sys.exit(main())
