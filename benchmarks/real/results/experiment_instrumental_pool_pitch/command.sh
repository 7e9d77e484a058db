#!/bin/bash
# The experiment behind this folder's report; it runs in the repository root, with the real
# recordings in ../shared/real beside the repository and the instrumental corpus of
# data_pipelines/instrumental_corpus.py in INSTRUMENTAL (default /work/runs/instrumental).
# config.json: as experiment_instrumental_pool, plus training.solo_pitch_shift 2 (the
# adaptation's recipe: solo excerpts moved by up to 2 semitones). The baselines were those of
# experiment_instrumental_pool (the same config but for the pitch shift, which a baseline never
# uses; split and seeds alike), hard-linked into the output folder; this command retrains them
# when run alone.
cd "$(dirname "$0")/../../../.."
export TF_ENABLE_ONEDNN_OPTS=1
INSTRUMENTAL=${INSTRUMENTAL:-/work/runs/instrumental}
exec .venv/bin/advsep-tf-experiment --config benchmarks/real/results/experiment_instrumental_pool_pitch/config.json \
  --dataset mir1k=../shared/real/mir1k --dataset musdb18=../shared/real/musdb18_7 \
  --dataset solo/accompaniment="$INSTRUMENTAL/accompaniment" \
  --split benchmarks/real/split_paired3.yaml --test-rate 16000 --seeds 1,2,3 \
  --models baseline,synthetic --steps 8000 --no-progress --out experiment_instrumental_pool_pitch
