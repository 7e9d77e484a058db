"""Band-limited vs full-band separation on the real paired clips in ../shared/data, at the input's
rate.

Trains two small supervised models on the synthetic corpus (same songs, same seed): one at the
paper's 8192 Hz (the `demo` preset) and one at 22050 Hz (`demo` sizes scaled to 22050 Hz). Then
separates the real clips (MUSDB18 excerpts and the iKala clip at 44.1 kHz, MIR-1K at 16 kHz) and
scores, at the clips' own rate:
  8k direct      band-limited stems resampled up (nothing above 4 kHz)
  8k mask        the same estimates as soft masks on the input-rate mixture (the default)
  22k direct     the full-band model's stems resampled up
  22k mask       the full-band model with masks (above 11 kHz)
and the ideal-ratio-mask oracle at both STFT settings, the ceiling of each representation, each
band-limited at the model's rate and full band at the clips' rate; and the mixture as estimate.

    python benchmarks/bench_fullband.py [--steps 1000] [--out /tmp/bench_fullband]
"""

import argparse
import sys
import time
from pathlib import Path

import advsep_tf  # noqa: F401 - before TensorFlow
import soundfile as sf

from advsep_tf.config import load_config
from advsep_tf.evaluate import MIXTURE, ORACLE, evaluate_all, format_table
from advsep_tf.separate import Separator
from benchmark_support import trained_supervised_run

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def real_clip_references(out: Path) -> Path:
    """<track>/{mixture,vocals,accompaniment}.wav from the real paired clips."""
    refs = out / "references"
    if refs.is_dir():
        return refs
    tracks = {}
    for track in sorted((DATA / "paired_4stem").iterdir()):
        read = {
            n: sf.read(track / f"{n}.wav", dtype="float32", always_2d=True)
            for n in ("vocals", "drums", "bass", "other")
        }
        rate = read["vocals"][1]
        tracks[track.name] = (
            read["vocals"][0],
            read["drums"][0] + read["bass"][0] + read["other"][0],
            rate,
        )
    for track in sorted((DATA / "paired_2stem").glob("mir1k_*")):
        vocals, rate = sf.read(track / "vocal.wav", dtype="float32", always_2d=True)
        music, _ = sf.read(track / "music.wav", dtype="float32", always_2d=True)
        tracks[track.name] = (vocals, music, rate)
    for clip in sorted((DATA / "paired_2stem").glob("ikala_*.wav")):
        audio, rate = sf.read(clip, dtype="float32", always_2d=True)
        tracks[clip.stem] = (audio[:, 1:2], audio[:, 0:1], rate)
    for name, (vocals, accompaniment, rate) in tracks.items():
        n = min(len(vocals), len(accompaniment))
        folder = refs / name
        folder.mkdir(parents=True)
        sf.write(folder / "vocals.wav", vocals[:n], rate, subtype="FLOAT")
        sf.write(folder / "accompaniment.wav", accompaniment[:n], rate, subtype="FLOAT")
        sf.write(folder / "mixture.wav", vocals[:n] + accompaniment[:n], rate, subtype="FLOAT")
    return refs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--out", default="/tmp/bench_fullband")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        sys.exit(f"{DATA}: the real clips are not there; nothing to measure")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    band_limited = load_config("demo").replace(training={"mode": "supervised"})
    full_band = band_limited.replace(
        name="demo-22k",
        audio={"sample_rate": 22050},
        spectrogram={"n_fft": 512, "n_hop": 256, "nb_bins": 256, "nb_frames": 32, "patch_hop": 16},
    )
    refs = real_clip_references(out)
    configs = {"8k": band_limited, "22k": full_band}
    runs = {
        "8k": trained_supervised_run(band_limited, out, args.steps, "run_8192"),
        "22k": trained_supervised_run(full_band, out, args.steps, "run_22050"),
    }
    print(f"trained both models in {time.time() - start:.0f} s", flush=True)

    results = {}
    sources = ["vocals", "accompaniment"]
    for model, run in runs.items():
        separators = {
            f"{model} {how}": Separator.from_checkpoint(str(run), reconstruction=how)
            for how in ("direct", "mask")
        }
        # The oracle at this model's STFT settings, at its rate (band-limited) and full band.
        for oracle_rate in ("model", "input"):
            scored = evaluate_all(
                refs,
                separators,
                oracle=configs[model],
                oracle_rate=oracle_rate,
                mixture=MIXTURE not in results,
                sources=sources,
                separated_dir=out / "estimates",
            )
            separators = {}
            results.update({name: r for name, r in scored.items() if name != ORACLE})
            results[f"oracle {model} ({oracle_rate} rate)"] = scored[ORACLE]
    print(
        f"\nReal clips ({len(list(refs.iterdir()))} tracks, scored at their own rate: 44.1 kHz "
        f"and 16 kHz), "
        f"models trained on the synthetic corpus for {args.steps} supervised steps:\n"
    )
    print(format_table(results))
    print(f"\nwall time {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
