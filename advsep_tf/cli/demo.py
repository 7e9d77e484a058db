"""advsep-tf-demo: the main job on the built-in synthetic corpus, end to end: the supervised
baseline, the adversarial model and synthetic pairs, each trained for the same number of steps."""

from __future__ import annotations

import sys

from advsep_tf.cli import common, options


def main(argv=None) -> None:
    p = common.parser(
        "advsep-tf-demo",
        __doc__,
        "example: advsep-tf-demo --out demo_output   (about 10 minutes on 2 CPU cores; "
        "--quick: about 1 minute)",
    )
    options.add(
        p,
        "--out",
        required=False,
        default="demo_output",
        metavar="DIR",
        help="output folder (default: demo_output)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a much smaller run, to check the installation (about 1 minute)",
    )
    options.add(
        p,
        "--config",
        required=False,
        help="the preset or config file the models use (default: demo)",
    )
    options.add(p, "--no-progress")
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
