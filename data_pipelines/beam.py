"""`advsep-tf-prepare --runner ...`: the same preparation as `prepare.prepare`, as an Apache Beam
pipeline, for corpora too big for one machine.

    driver:  --dataset KIND=PATH ...  --(datasets, splits: `prepare.plan_preparation`)-->  jobs
    pipeline:
        Create(jobs) -> Reshuffle
        -> ParDo(patch a track)         `prepare.process_job`: decode, check, patch, serialize
             |-- stats: one small dict per job (track, examples, seconds, silent, error)
             `-- examples: (role, job index, k, serialized example)
        stats -> ToList -> layout        per role: each job's first position, total, shard count
        examples -> key by (role, shard) (position = the job's first position + k; side input:
        layout)
                 -> GroupByKey -> ParDo(write one shard, in position order, under a temporary name)
        shard infos -> ToList -> ParDo(finalize: move the shards into place, write manifest.json)

The decoding, checking, patching and serialization are `prepare.process_job`'s (the local path's
code, not a copy), and a role's examples get the positions the local path writes them at (roles
in `splits.role_order`, jobs in dataset order, each job's non-silent patches in order), cut every
`examples_per_shard`. So the shard set is byte-identical to the local one: the same shard files,
sha256 checksums and manifest (but for "created" and "seconds_elapsed"), whatever the runner, the
number of workers or the order in which they finish.

What is held in memory, per worker: one track's audio and patches (the ParDo), one shard's
serialized examples (`examples_per_shard` of them, sorted before writing), and the layout side
input: a few numbers per track (O(tracks), tens of bytes each). The finalize step holds one
entry per track and per shard. No step holds a role's examples. The job list itself travels in
the pipeline's graph (`beam.Create`: about 200 bytes a track, a few MB for 30,000 tracks); for
runners that limit the graph's size, Dataflow's `--experiments=upload_graph` lifts it.

Nothing half-written reads as complete: shards are written in a staging folder inside the output
folder (`.beam-staging-<id>/`, each file under a temporary name renamed when closed); only the
finalize step, after every shard is written, moves them to their final names next to where
`manifest.json` goes, and then writes the manifest atomically (a temporary name, then a rename).
Until then `ShardSet.open` refuses the folder. Every step can be retried by the runner: shard
files are rewritten whole, and the finalize step accepts shards already moved by an earlier
attempt when their checksums match. A run does not resume an interrupted one: the driver clears
the output folder's unfinished shards, journal and staging folders before it starts
(`prepare.clear_out_dir`, as the local path does), and the manifest is `prepare.build_manifest`'s.

Bad input is handled as in the local path. With `on_error="skip"` a track that fails to decode is
left out of its role and listed in the manifest's "skipped". With `on_error="fail"` the pipeline
still decodes every track, then the finalize step writes no manifest and fails with the first
error in job order; `prepare_beam` raises it as an `AdvsepError` (the message travels back in a
small note file, `prepare-beam-error.txt`, which the driver reads and removes).

Paths: the driver reads the datasets' folders (the adapters) and the workers decode the audio
files, so the corpus must be at the same path on the driver and every worker (a shared file
system on a Flink or Spark cluster; the image or a mount of the SDK container on Dataflow).
Output files go through `tf.io.gfile`, so SHARD_DIR may also be a `gs://` URL; `ShardSet.open`
reads local (or mounted) folders.

Runners: "DirectRunner" runs in this process on Beam's Python direct runner (its FnApiRunner:
`--direct_num_workers=N` and `--direct_running_mode=multi_processing` in the pipeline options run
N workers). Beam's own "DirectRunner" name would try Prism first, downloading its binary; ask for
"PrismRunner" for that. Other names ("DataflowRunner", "FlinkRunner", "SparkRunner",
"PrismRunner") go to Beam, with the pipeline options given (`--project=...`, `--region=...`,
`--temp_location=...`, `--flink_master=...`, `--setup_file=./setup.py` so that workers have
advsep-tf, ...).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Iterable, Optional, Sequence

from advsep_tf.config import Config
from advsep_tf.data_pipelines import shards
from advsep_tf.data_pipelines.prepare import (
    BEAM_ERROR_NOTE,
    BEAM_STAGING_PREFIX,
    ON_ERROR,
    Job,
    build_manifest,
    check_out_dir,
    clear_out_dir,
    manifest_header,
    plan_preparation,
    process_job,
    sharded_roles,
)
from advsep_tf.errors import AdvsepError
from advsep_tf.files import (
    atomic_file,
    is_url,
    load_json_or_yaml,
    remove,
    sha256_of,
    write_atomically,
)

_disabled = logging.root.manager.disable
logging.disable(
    logging.WARNING
)  # apache_beam warns at import that the optional GCP clients are absent
try:
    import apache_beam as beam
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise AdvsepError(
        f"--runner needs Apache Beam ({exc}): pip install 'advsep-tf[beam]'"
    ) from None
finally:
    logging.disable(_disabled)

STAGING_PREFIX = BEAM_STAGING_PREFIX
ERROR_NOTE = BEAM_ERROR_NOTE
_NAMESPACE = "advsep_tf.prepare"


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


# -- the pipeline's steps
# ---------------------------------------------------------------------------


class PatchTrack(beam.DoFn):
    """(role, job index, Job) -> stats (main output) and serialized examples ("examples" output)."""

    EXAMPLES = "examples"

    def __init__(self, config_data: dict):
        self.config_data = config_data
        self.config: Optional[Config] = None

    def setup(self):
        import advsep_tf  # noqa: F401 - TensorFlow's environment first

        self.config = Config.from_dict(self.config_data)
        self.tracks = beam.metrics.Metrics.counter(_NAMESPACE, "tracks")
        self.patches = beam.metrics.Metrics.counter(_NAMESPACE, "patches")
        self.failed = beam.metrics.Metrics.counter(_NAMESPACE, "failed_tracks")

    def process(self, element: tuple[str, int, Job]):
        role, index, job = element
        result = process_job(job, self.config)
        (self.failed if result.error is not None else self.tracks).inc()
        self.patches.inc(len(result.examples))
        yield {
            "role": role,
            "index": index,
            "track": job.track,
            "examples": len(result.examples),
            "seconds": result.seconds,
            "silent": result.silent,
            "error": result.error,
            "file": result.file,
        }
        for k, example in enumerate(result.examples):
            yield beam.pvalue.TaggedOutput(self.EXAMPLES, (role, index, k, example))


def compute_layout(stats: list[dict], roles: Sequence[str], examples_per_shard: int) -> dict:
    """Per role: the jobs' stats in job order, each job's first position, examples and shards."""
    result = {}
    for role in roles:
        jobs = sorted((s for s in stats if s["role"] == role), key=lambda s: s["index"])
        if [s["index"] for s in jobs] != list(range(len(jobs))):
            raise RuntimeError(f"{role}: job results are missing or repeated ({len(jobs)} results)")
        starts, total = [], 0
        for s in jobs:
            starts.append(total)
            total += s["examples"]
        result[role] = {
            "jobs": jobs,
            "starts": starts,
            "examples": total,
            "shards": -(-total // examples_per_shard),
        }
    return result


def key_by_shard(example: tuple[str, int, int, bytes], layout: dict, examples_per_shard: int):
    """(role, job index, k, bytes) -> ((role, shard), (position in the role, bytes))."""
    role, index, k, data = example
    position = layout[role]["starts"][index] + k
    return (role, position // examples_per_shard), (position, data)


class WriteShard(beam.DoFn):
    """((role, shard), [(position, bytes)]) -> the shard file in the staging folder, and its
    entry."""

    def __init__(self, staging: str, examples_per_shard: int):
        self.staging, self.examples_per_shard = staging, examples_per_shard

    def process(self, element, layout: dict):
        import tensorflow as tf

        (role, shard), items = element
        items = sorted(items, key=lambda item: item[0])
        total = layout[role]["examples"]
        first = shard * self.examples_per_shard
        expected = list(range(first, min(first + self.examples_per_shard, total)))
        if [position for position, _ in items] != expected:
            last = first + len(expected) - 1
            raise RuntimeError(
                f"{role} shard {shard}: expected the examples at positions {first}..{last}"
            )
        name = f"{shards.interim_shard_name(role, shard)}-of-{layout[role]['shards']:05d}"
        path = os.path.join(self.staging, name)
        with atomic_file(path) as tmp, tf.io.TFRecordWriter(tmp) as writer:
            for _, data in items:
                writer.write(data)
        yield {
            "role": role,
            "index": shard,
            "file": name,
            "examples": len(items),
            "sha256": sha256_of(path),
        }


class Finalize(beam.DoFn):
    """[shard entries] -> the shards moved to their final names and manifest.json, written last."""

    def __init__(
        self,
        out_dir: str,
        staging: str,
        roles: Sequence[str],
        config_data: dict,
        header: dict,
        skipped: list[dict],
        on_error: str,
        started: float,
    ):
        self.out_dir, self.staging, self.roles, self.config_data = (
            out_dir,
            staging,
            list(roles),
            config_data,
        )
        self.header, self.skipped, self.on_error, self.started = header, skipped, on_error, started

    def process(self, written: list[dict], layout: dict):
        gfile = _gfile()
        if self.on_error == "fail":
            for role in self.roles:
                for job in layout[role]["jobs"]:
                    if job["error"] is not None:
                        remove(self.staging)
                        write_atomically(os.path.join(self.out_dir, ERROR_NOTE), job["error"])
                        raise AdvsepError(job["error"])
        by_role = {
            r: sorted((w for w in written if w["role"] == r), key=lambda w: w["index"])
            for r in self.roles
        }
        for role in self.roles:
            if [w["index"] for w in by_role[role]] != list(range(layout[role]["shards"])):
                raise RuntimeError(
                    f"{role}: shards missing or repeated: {[w['index'] for w in by_role[role]]}"
                )
            for entry in by_role[role]:
                final = os.path.join(self.out_dir, entry["file"])
                staged = os.path.join(self.staging, entry["file"])
                if gfile.exists(staged):
                    gfile.rename(staged, final, overwrite=True)
                elif not (
                    gfile.exists(final) and sha256_of(final) == entry["sha256"]
                ):  # moved by an earlier attempt?
                    raise RuntimeError(f"{staged}: written shard is gone")

        done = {}
        for role in self.roles:
            jobs = layout[role]["jobs"]
            seconds, silent = 0.0, 0
            for j in jobs:  # in job order, as the local path adds them
                if j["error"] is None:
                    seconds += j["seconds"]
                    silent += j["silent"]
            done[role] = {
                "shards": [
                    {k: w[k] for k in ("file", "examples", "sha256")} for w in by_role[role]
                ],
                "tracks": [j["track"] for j in jobs],
                "skipped": [
                    {"file": j["file"], "track": j["track"], "role": role, "reason": j["error"]}
                    for j in jobs
                    if j["error"] is not None
                ],
                "seconds": seconds,
                "silent": silent,
            }
        manifest = build_manifest(
            Config.from_dict(self.config_data), self.header, done, self.skipped, 0, self.started
        )
        shards.write_manifest(self.out_dir, manifest)
        remove(self.staging)
        yield manifest


def build_pipeline(
    pipeline: "beam.Pipeline",
    config: Config,
    jobs: dict[str, list[Job]],
    out_dir: str,
    staging: str,
    header: dict,
    skipped: list[dict],
    examples_per_shard: int = shards.EXAMPLES_PER_SHARD,
    on_error: str = "fail",
    started: Optional[float] = None,
):
    """Add the preparation of `jobs` ({role: [Job]}, roles in role order) to `pipeline`; the
    PCollection of the one manifest it writes."""
    roles = list(jobs)
    elements = [(role, index, job) for role in roles for index, job in enumerate(jobs[role])]
    results = (
        pipeline
        | "Jobs" >> beam.Create(elements, reshuffle=False)
        | "Spread" >> beam.Reshuffle()
        | "Patch"
        >> beam.ParDo(PatchTrack(config.to_dict())).with_outputs(PatchTrack.EXAMPLES, main="stats")
    )
    positions = (
        results.stats
        | "CollectStats" >> beam.combiners.ToList()
        | "Layout" >> beam.Map(compute_layout, roles, examples_per_shard)
    )
    side = beam.pvalue.AsSingleton(positions)
    written = (
        results[PatchTrack.EXAMPLES]
        | "KeyByShard" >> beam.Map(key_by_shard, side, examples_per_shard)
        | "GroupShards" >> beam.GroupByKey()
        | "WriteShards" >> beam.ParDo(WriteShard(staging, examples_per_shard), side)
    )
    finalize = Finalize(
        out_dir,
        staging,
        roles,
        config.to_dict(),
        header,
        skipped,
        on_error,
        time.time() if started is None else started,
    )
    return (
        written
        | "CollectShards" >> beam.combiners.ToList()
        | "Finalize" >> beam.ParDo(finalize, side)
    )


# -- the driver ------------------------------------------------------------------------------------


def pipeline_runner(runner: str):
    """The Beam runner for `runner`: "DirectRunner" (in this process), or any name or runner object
    Beam takes."""
    if runner == "DirectRunner":
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        return FnApiRunner()
    return runner


def prepare_beam(
    config: Config,
    datasets: list[tuple[str, str]],
    out_dir: str,
    split_file: Optional[str] = None,
    overwrite: bool = False,
    examples_per_shard: int = shards.EXAMPLES_PER_SHARD,
    on_error: str = "fail",
    runner="DirectRunner",
    pipeline_args: Iterable[str] = (),
) -> dict:
    """Write the shard set for `datasets` ([(kind, path)]) in `out_dir` on a Beam runner; its
    manifest.

    The same arguments and result as `prepare.prepare` (which it equals, shard for shard), plus
    `runner` (see the module's docstring) and `pipeline_args`: Beam pipeline options as
    command-line flags (["--project=my-project", "--region=europe-west1", ...]). Blocks until the
    pipeline is done.
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    started = time.time()
    if examples_per_shard < 1:
        raise AdvsepError(f"examples per shard must be >= 1, got {examples_per_shard}")
    if on_error not in ON_ERROR:
        raise AdvsepError(f"--on-error {on_error}: expected one of {', '.join(ON_ERROR)}")
    # Workers see the files by the same absolute paths.
    datasets = [(kind, path if is_url(path) else os.path.abspath(path)) for kind, path in datasets]
    out_dir = out_dir if is_url(out_dir) else os.path.abspath(out_dir)
    if not is_url(out_dir):
        check_out_dir(out_dir, overwrite, datasets, split_file)
    plan = plan_preparation(config, datasets, split_file, on_error)
    roles = [r for r in sharded_roles(config) if plan.jobs.get(r)]
    if not roles:
        raise AdvsepError(f"{', '.join(p for _, p in datasets)}: no tracks to prepare")
    clear_out_dir(out_dir, overwrite, resume=False)
    staging = os.path.join(out_dir, f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}")
    _gfile().makedirs(staging)
    header = manifest_header(datasets, split_file, plan.test_tracks)
    options = PipelineOptions(list(pipeline_args))
    pipeline = beam.Pipeline(runner=pipeline_runner(runner), options=options)
    build_pipeline(
        pipeline,
        config,
        {r: plan.jobs[r] for r in roles},
        out_dir,
        staging,
        header,
        plan.skipped,
        examples_per_shard,
        on_error,
        started,
    )
    note = os.path.join(out_dir, ERROR_NOTE)
    quiet, beam_logger = _QuietAdvsepErrors(), logging.getLogger("apache_beam.runners.common")
    beam_logger.addFilter(
        quiet
    )  # bad input gets one line (below), not the in-process worker's traceback
    try:
        state = pipeline.run().wait_until_finish()
    except Exception as exc:
        remove(staging)  # the pipeline is over: what it staged will never be finalized
        message = _take_note(note)
        if message is not None:
            raise AdvsepError(message) from None
        first_line = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        raise AdvsepError(f"the Beam pipeline failed on {runner}: {first_line}") from exc
    finally:
        beam_logger.removeFilter(quiet)
    message = _take_note(note)
    if message is not None:
        raise AdvsepError(message)
    manifest_path = os.path.join(out_dir, shards.MANIFEST)
    if state not in (None, "DONE") or not _gfile().exists(manifest_path):
        raise AdvsepError(
            f"the Beam pipeline ended {state} on {runner} without writing {manifest_path}"
        )
    return load_json_or_yaml(manifest_path, "shard manifest")


class _QuietAdvsepErrors(logging.Filter):
    """Drops Beam's log record of a step that raised an AdvsepError (the driver reports it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], AdvsepError))


def _take_note(path: str) -> Optional[str]:
    gfile = _gfile()
    if not gfile.exists(path):
        return None
    with gfile.GFile(path) as f:
        message = f.read()
    gfile.remove(path)
    return message
