#!/bin/bash
# The experiment behind this folder's report; it runs in the repository root, with the real
# recordings in ../shared/real beside the repository. config.json: the real-small preset's STFT
# and data with the real preset's U-Net (base_filters 16, depth 4).
cd "$(dirname "$0")/../../../.."
export TF_ENABLE_ONEDNN_OPTS=1
exec .venv/bin/advsep-tf-experiment --config benchmarks/real/results/experiment_unpaired_unet/config.json \
  --dataset mir1k=../shared/real/mir1k --dataset musdb18=../shared/real/musdb18_7 \
  --split benchmarks/real/split_paired3.yaml --ceiling-split benchmarks/real/split_paired3_ceiling.yaml \
  --test-rate 16000 --seeds 1,2,3 --models baseline,synthetic,ceiling,VA --steps 8000 --warm-start-steps 500 \
  --no-progress --out experiment_unpaired_unet
