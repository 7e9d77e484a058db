"""Start-up benchmark: `advsep-tf-separate` of one 30 s stereo song, end to end, against a bare
`python -c "import tensorflow"` on the same machine, the two interleaved in fresh processes.

    python benchmarks/bench_startup.py [--rounds 5] [--seconds 30] [--out /tmp/bench_startup]

The song: `benchmark_support.benchmark_input` (the MIR-1K clips of ../shared/data joined and
repeated to --seconds, or a synthetic song when the folder is absent) at 44.1 kHz, in stereo.
The command separates it with the shipped model into a fresh folder each round. Reported: the
median wall time of each and their ratio, and the same for CPU time (user + system of the
child), which a machine shared with other jobs disturbs less than wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmark_support import benchmark_input

RATE = 44100


def write_stereo_song(path: Path, seconds: float) -> Path:
    """`benchmark_input`'s song at 44.1 kHz as stereo, the voice a little left of centre."""
    _, stems, _ = benchmark_input(seconds, RATE)
    music, vocals = stems["accompaniment"], stems["vocals"]
    stereo = np.stack([music + vocals, music + 0.7 * vocals], axis=1)
    sf.write(path, stereo.astype(np.float32), RATE, subtype="FLOAT")
    return path


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one child process that must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--seconds", type=float, default=30.0, help="song length (default 30)")
    parser.add_argument("--out", default="/tmp/bench_startup", help="work folder")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    song = write_stereo_song(out / "song.wav", args.seconds)
    separate = shutil.which("advsep-tf-separate", path=os.path.dirname(sys.executable))
    commands = {
        "import tensorflow": [sys.executable, "-c", "import tensorflow"],
        "advsep-tf-separate": [separate, str(song), "--quiet-terms", "--overwrite", "--out"],
    }
    times = {name: [] for name in commands}
    for round_ in range(1, args.rounds + 1):
        for name, command in commands.items():
            if name == "advsep-tf-separate":
                command = [*command, str(out / f"stems{round_}")]
            times[name].append(timed(command))
        print(
            f"round {round_}/{args.rounds}: "
            + ", ".join(
                f"{n} {t[-1][0]:.1f} s wall / {t[-1][1]:.1f} s CPU" for n, t in times.items()
            ),
            flush=True,
        )
    medians = {
        name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
        for name, t in times.items()
    }
    bare, ours = medians["import tensorflow"], medians["advsep-tf-separate"]
    print(f"\n{args.seconds:g} s stereo song, {os.cpu_count()} CPU(s), median of {args.rounds}:")
    print("| process | wall s | CPU s |\n|---|---|---|")
    for name, (wall, cpu) in medians.items():
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |")
    print(f"| ratio | {ours[0] / bare[0]:.2f}x | {ours[1] / bare[1]:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
