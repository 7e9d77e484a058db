#!/bin/bash
# The unpaired-audio experiment at the `real` U-Net size (the shipped model's member recipe, with the
# adaptation's random remix phases and solo pitch shift): is there a gap between the converged
# baseline and the ceiling for unpaired data to close? Resumable: run it again after an interruption.
cd "$(dirname "$0")/../../../.."
export TF_ENABLE_ONEDNN_OPTS=1
exec .venv/bin/advsep-tf-experiment --config benchmarks/real/results/experiment_unpaired_real/config.json \
  --dataset mir1k=../shared/real/mir1k --dataset musdb18=../shared/real/musdb18_7 \
  --split benchmarks/real/split_paired3.yaml --ceiling-split benchmarks/real/split_paired3_ceiling.yaml \
  --test-rate 16000 --seeds ${SEEDS:-1,2,3} --models baseline,ceiling,synthetic --no-progress \
  --out ${OUT:-experiment_unpaired_real}
