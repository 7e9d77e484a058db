"""advsep-tf-demo: the main job on the built-in synthetic corpus, end to end: the supervised
baseline, the adversarial model and synthetic pairs, each trained for the same number of steps."""

from __future__ import annotations

import sys

from advsep_tf.cli import common, options

EPILOG = (
    "example: advsep-tf-demo --out demo_output   (about 10 minutes on 2 CPU cores; "
    "--quick: about 1 minute)"
)


def main(argv=None) -> None:
    p = common.parser("advsep-tf-demo", __doc__, EPILOG)
    options.add(p, "--out", "--quick", "--config", "--no-progress")
    args = p.parse_args(argv)
    common.quiet_tensorflow(args.verbose)

    from advsep_tf.config import load_config
    from advsep_tf.demo import run_demo

    run_demo(
        args.out,
        quick=args.quick,
        config=load_config(args.config or "demo"),
        progress=not args.no_progress,
    )


cli = common.console_script(main)


if __name__ == "__main__":
    sys.exit(cli())
