"""Start a wider-band model from a trained one: the second edition's warm start.

    python benchmarks/real/widen_band.py MODEL --config WIDE_CONFIG --out START.keras [--member N]

The U-Net is convolutional all through, so its weights fit any number of frequency bins. When the
wider config keeps the bin spacing (sample_rate / n_fft) and the hop's duration, its lower bins
show the trained model what it has always seen, and the convolutions carry over; the new upper
bins start from the same filters. The shipped model (8192 Hz, n_fft 512: 0-4 kHz at 16 Hz a bin)
becomes the start of a 16 kHz model (n_fft 1024: 0-8 kHz at the same spacing) that
`advsep-tf-train --init START.keras` fine-tunes. An ensemble gives one member (`--member`).
Magnitudes are not normalised by the window, so the wider STFT's are about twice as large; the
fine-tuning absorbs that offset of log1p values within its first few hundred steps.
"""

import argparse
import os
import sys

TOLERANCE = 0.05  # relative: 8192/512 Hz and 16000/1024 Hz differ by 2.3%


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a run directory, a .keras file or 'pretrained'")
    p.add_argument("--config", required=True, help="the wider model's config (preset or file)")
    p.add_argument("--out", required=True, help="the .keras file to write (not replaced)")
    p.add_argument("--member", type=int, default=0, help="which member of an ensemble to take")
    args = p.parse_args(argv)
    if os.path.exists(args.out):
        p.error(f"{args.out}: exists; give another --out")

    import advsep_tf  # noqa: F401
    from advsep_tf.config import load_config
    from advsep_tf.model import AdversarialSeparator
    from advsep_tf.runs import load_run_model, save_model_atomically

    source = load_run_model(args.model)
    old, wide = source.separation_config, load_config(args.config)
    for what, measure in (
        ("bin spacing (Hz)", lambda c: c.audio.sample_rate / c.spectrogram.n_fft),
        ("hop (s)", lambda c: c.spectrogram.n_hop / c.audio.sample_rate),
    ):
        a, b = measure(old), measure(wide)
        if abs(a - b) > TOLERANCE * a:
            p.error(f"{args.config}: {what} {b:.4g} differs from {args.model}'s {a:.4g}")
    if (
        old.sources != wide.sources
        or old.separator.base_filters != wide.separator.base_filters
        or (old.separator.depth != wide.separator.depth)
    ):
        p.error(f"{args.config}: sources or U-Net size differ from {args.model}'s")
    unet = source.separator
    if old.separator.members > 1:
        if not 0 <= args.member < old.separator.members:
            p.error(f"--member {args.member}: {args.model} has {old.separator.members} members")
        unet = unet.get_layer(f"member{args.member}")
    start = AdversarialSeparator(wide.replace(separator={"members": 1}))
    start.separator.set_weights(unet.get_weights())
    save_model_atomically(start, args.out)
    print(
        f"{args.out}: {wide.audio.sample_rate} Hz, {wide.spectrogram.nb_bins} bins, weights of "
        f"{args.model}" + (f" member {args.member}" if old.separator.members > 1 else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
