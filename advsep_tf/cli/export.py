"""advsep-tf-export: write the trained separator as a SavedModel for TF Serving."""

from __future__ import annotations

import sys

from advsep_tf.cli import common


def main(argv=None) -> None:
    p = common.parser("advsep-tf-export", __doc__.splitlines()[0])
    p.epilog = "example: advsep-tf-export --model runs/va --format saved_model --out serving/advsep/1"
    p.add_argument("--model", required=True, metavar="RUN_DIR")
    p.add_argument("--format", default="saved_model", choices=["saved_model", "litert"])
    p.add_argument("--out", required=True, metavar="PATH")
    common.add_config_option(p, required=False)
    args = p.parse_args(argv)
    common.quiet_tensorflow(args.verbose)

    from advsep_tf.config import load_config
    from advsep_tf.errors import AdvsepError
    from advsep_tf.train import load_run_model

    if args.format == "litert":
        raise AdvsepError("--format litert: LiteRT export is not implemented yet (see the deployment issue); use saved_model")
    from advsep_tf.export.saved_model import export_saved_model

    expected = load_config(args.config) if args.config else None
    model = load_run_model(args.model, expected)
    summary = export_saved_model(model, args.out)
    print(
        f"Exported SavedModel to {summary['path']} ({summary['bytes'] / 1e6:.1f} MB); verified against the Python "
        f"separator: max abs error {summary['max_abs_error']:.2e}"
    )


def cli() -> int:
    return common.run(main)


if __name__ == "__main__":
    sys.exit(cli())
