#!/bin/bash
cd "$(dirname "$0")/../../../.."
exec .venv/bin/advsep-tf-experiment --config real-small --dataset mir1k=../shared/real/mir1k \
  --dataset musdb18=../shared/real/musdb18_7 --split benchmarks/real/split_paired3.yaml \
  --ceiling-split benchmarks/real/split_paired3_ceiling.yaml --test-rate 16000 --seeds 1,2,3 \
  --models baseline,synthetic,ceiling,teacher,synthetic+teacher,VA,VA-SN --steps 8000 \
  --warm-start-steps 500 --no-progress --out exp_unpaired
