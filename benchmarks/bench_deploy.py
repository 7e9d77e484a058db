"""Deployment benchmark: the Python separator vs the SavedModel vs LiteRT float32 / float16 / int8.

One run, one input, fresh subprocesses per variant, so that each one's peak memory is its own
(imports, model, separation). It is read as VmHWM, the peak resident set size: ru_maxrss inherits
the parent's high-water mark across fork + exec on Linux. Only the Python variant imports
advsep_tf; the SavedModel variant imports TensorFlow alone (with oneDNN turned on, as
`import advsep_tf` does); the LiteRT variants import numpy and ai-edge-litert alone
(export/litert_runner.py, loaded by path).

    python benchmarks/bench_deploy.py [--steps 300] [--seconds 120] [--repeats 5] [--rounds 3]
    [--threads 1,2] [--out /tmp/bench_deploy]

The model: the `demo` preset trained supervised for --steps on the synthetic corpus (cached in
--out). The input: the four MIR-1K clips of ../shared/data (vocal + music, resampled to the
model's 8192 Hz) joined and repeated to --seconds (a synthetic test song when the folder is
absent). Every variant separates the whole input (the Python separator with one segment, which
is what the exports compute); x real time is input seconds / separation seconds, the best of
--repeats runs (after a warm-up call on the first 5 s) in each of --rounds subprocesses per
variant, the variants interleaved; load time (imports and model) is reported apart. On a shared
machine wall time is noisy; x real time by CPU time (audio seconds per CPU second the process
got, single-threaded) is not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from benchmark_support import benchmark_input, trained_supervised_run

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "export" / "litert_runner.py"

# Each variant: a script run as `python -c SCRIPT MODEL INPUT.npy OUTPUT.npz THREADS REPEATS
# RUNNER`;
# it prints one JSON line.
COMMON = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np
    model, input_path, output_path, threads, repeats = sys.argv[1], sys.argv[2], sys.argv[3],
    int(sys.argv[4]), int(sys.argv[5])
    mixture = np.load(input_path)
    RATE = 8192
    def peak_mb():
        # VmHWM: this process's own peak RSS. ru_maxrss would not do: on Linux it inherits the
        # parent's high-water mark across fork + exec.
        try:
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
        except (OSError, StopIteration):
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    def report(load_seconds, run, **extra):
        run(mixture[: 5 * RATE])  # warm-up: tracing, allocation
        times, cpu_times = [], []
        for _ in range(repeats):  # the best of `repeats`: the machine may be shared
            start, cpu_start = time.perf_counter(), time.process_time()
            stems = run(mixture)
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        seconds, cpu_seconds = min(times), min(cpu_times)
        np.savez(output_path, **stems)
        print(json.dumps(dict(load_seconds=load_seconds, seconds=seconds, cpu_seconds=cpu_seconds,
                              peak_mb=peak_mb(),
                              modules=sorted(m for m in ("tensorflow", "advsep_tf",
                              "ai_edge_litert") if m in sys.modules),
                              **extra)))
    """
)
VARIANTS = {
    "python": COMMON
    + textwrap.dedent(
        """
        start = time.perf_counter()
        import advsep_tf
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        from advsep_tf.separate import Separator
        separator = Separator.from_checkpoint(model, segment_seconds=len(mixture) / RATE + 1)
        report(time.perf_counter() - start, lambda x: separator.separate(x, RATE))
        """
    ),
    "saved_model": COMMON
    + textwrap.dedent(
        """
        start = time.perf_counter()
        import os
        # as `import advsep_tf` does (1.7x on this CPU)
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        serve = tf.saved_model.load(model).signatures["serving_default"]
        def run(x):
            out = serve(waveform=tf.constant(x[None, :, None]))
            return {k: v.numpy()[0, :, 0] for k, v in out.items()}
        report(time.perf_counter() - start, run)
        """
    ),
    "litert": COMMON
    + textwrap.dedent(
        """
        start = time.perf_counter()
        import importlib.util
        spec = importlib.util.spec_from_file_location("litert_runner", sys.argv[6])
        runner = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(runner)
        separator = runner.LiteRTSeparator(model, num_threads=threads)
        report(time.perf_counter() - start, separator.separate,
        segment_seconds=separator.segment_samples / RATE)
        """
    ),
}


def sdr(reference, estimate) -> float:
    reference, estimate = np.asarray(reference, np.float64), np.asarray(estimate, np.float64)
    return float(
        10 * np.log10(np.sum(reference**2) / max(np.sum((reference - estimate) ** 2), 1e-30))
    )


def trained_run(out: Path, steps: int) -> Path:
    from advsep_tf.config import load_config

    return trained_supervised_run(load_config("demo"), out, steps, f"run_{steps}")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        with open("/proc/meminfo") as f:
            memory = f"{int(f.readline().split()[1]) / 1024**2:.0f} GB RAM"
    except OSError:
        memory = "? RAM"
    from importlib.metadata import version

    packages = ", ".join(
        f"{p} {version(p)}" for p in ("tensorflow", "keras", "ai-edge-litert", "numpy")
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    python = platform.python_version()
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory}, load average {load}; Python {python}; {packages}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps", type=int, default=300, help="supervised training steps of the demo model"
    )
    parser.add_argument(
        "--seconds", type=float, default=120.0, help="length of the benchmark input"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed runs per subprocess; the best counts"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="subprocesses per variant, interleaved; the best counts",
    )
    parser.add_argument(
        "--threads",
        default="1,2",
        help="comma-separated thread counts to measure every variant with",
    )
    parser.add_argument("--out", default="/tmp/bench_deploy")
    args = parser.parse_args(argv)

    import advsep_tf  # noqa: F401 - before TensorFlow

    from advsep_tf.cli.export import main as export  # the command, which prints its verification
    from advsep_tf.config import load_config

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    run = trained_run(out, args.steps)
    print(
        f"model: demo preset, {args.steps} supervised steps ({time.time() - start:.0f} s incl. "
        f"cache)",
        flush=True,
    )
    rate = load_config("demo").audio.sample_rate
    artifacts = {"python": (run, None)}
    # --overwrite: this benchmark's own earlier exports.
    summary = export(
        [
            "--model",
            str(run),
            "--format",
            "saved_model",
            "--out",
            str(out / "saved_model"),
            "--overwrite",
        ]
    )
    artifacts["saved_model"] = (out / "saved_model", summary)
    for quantize in ("none", "float16", "int8"):
        name = "litert_" + ("float32" if quantize == "none" else quantize)
        path = out / f"{name}.tflite"
        summary = export(
            [
                "--model",
                str(run),
                "--format",
                "litert",
                "--quantize",
                quantize,
                "--out",
                str(path),
                "--overwrite",
            ]
        )
        artifacts[name] = (path, summary)
    keras_bytes = os.path.getsize(run / "model.keras")

    mixture, truth, description = benchmark_input(args.seconds, rate)
    np.save(out / "input.npy", mixture)
    threads = [int(t) for t in args.threads.split(",")]
    results = {}  # (name, threads) -> the fastest subprocess's report
    all_results = {}  # (name, threads, round) -> report
    for round_ in range(args.rounds):  # variants interleaved, so that a busy spell hits them alike
        for count in threads:
            for name, (path, _) in artifacts.items():
                kind = "litert" if name.startswith("litert") else name
                command = [
                    sys.executable,
                    "-c",
                    VARIANTS[kind],
                    str(path),
                    str(out / "input.npy"),
                    str(out / f"{name}.npz"),
                    str(count),
                    str(args.repeats),
                    str(RUNNER),
                ]
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode != 0:
                    sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"round {round_ + 1}, {count} thread(s), {name}: {result}", flush=True)
                all_results[(name, count, round_)] = result
                key = (name, count)
                if key not in results or result["seconds"] < results[key]["seconds"]:
                    results[key] = result

    cpu_best = {
        name: min(
            r["cpu_seconds"]
            for (n, c, _), r in all_results.items()
            if n == name and c == threads[0]
        )
        for name in artifacts
    }
    python_stems = dict(np.load(out / "python.npz"))
    seconds = len(mixture) / rate
    speed_rows, fidelity_rows = [], []
    for name in artifacts:
        first = results[(name, threads[0])]
        size = keras_bytes if name == "python" else artifacts[name][1]["bytes"]
        speeds = []
        for count in threads:
            xrt = seconds / results[(name, count)]["seconds"]
            speeds.append(
                f"{xrt:.0f} ({xrt / (seconds / results[('python', count)]['seconds']):.2f})"
            )
        # CPU time: what the process got, whoever else shares the machine (1 thread: per core).
        cpu = seconds / cpu_best[name]
        speeds.append(f"{cpu:.0f} ({cpu / (seconds / cpu_best['python']):.2f})")
        peak = first["peak_mb"]
        speed_rows.append(
            f"| {name} | {size / 1e6:.2f} | {first['load_seconds']:.2f} | {' | '.join(speeds)} | "
            f"{peak:.0f} ({peak / results[('python', threads[0])]['peak_mb']:.2f}) | "
            f"{', '.join(first['modules'])} |"
        )
        stems = dict(np.load(out / f"{name}.npz"))
        vs_python = min(sdr(python_stems[s], stems[s]) for s in truth)
        max_abs = max(float(np.max(np.abs(python_stems[s] - stems[s]))) for s in truth)
        quality = {s: sdr(truth[s], stems[s]) for s in truth}
        drop = max(sdr(truth[s], python_stems[s]) - quality[s] for s in truth)
        fidelity_rows.append(
            f"| {name} | {max_abs:.1e} | {'exact' if vs_python > 150 else f'{vs_python:.1f}'} | "
            f"{' / '.join(f'{quality[s]:.2f}' for s in truth)} | {drop:+.3f} |"
        )
    print(f"\nInput: {description} to {seconds:.0f} s at {rate} Hz, mono. Machine: {machine()}\n")
    thread_columns = " | ".join(
        f"x real time, {c} thread{'s' if c > 1 else ''} (vs Python)" for c in threads
    )
    plural = "s" if threads[0] > 1 else ""
    thread_columns += f" | x real time by CPU time, {threads[0]} thread{plural} (vs Python)"
    print(f"| variant | size MB | load s | {thread_columns} | peak MB (vs Python) | imports |")
    print("|---|---|---|" + "---|" * (len(threads) + 1) + "---|---|")
    print("\n".join(speed_rows))
    print(
        f"\n| variant | max abs vs Python | SDR vs Python dB | SDR {' / '.join(truth)} dB | SDR "
        f"drop dB |"
    )
    print("|---|---|---|---|---|")
    print("\n".join(fidelity_rows))
    print(f"\nwall time {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
