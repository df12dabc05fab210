#!/usr/bin/env bash
# Convert every model under a prefix (or folder) with a Slurm job array:
#   sbatch --array=0-7 deploy/slurm/convert-array.sh s3://BUCKET/models/ s3://BUCKET/converted/ gguf
# Each array task takes its share with `--shard auto` (SLURM_ARRAY_TASK_ID
# from SLURM_ARRAY_TASK_MIN, of SLURM_ARRAY_TASK_COUNT), skips outputs that
# are complete, and writes reports/shard-ID.jsonl; afterwards:
#   tensorcast report merge reports/shard-*.jsonl
# Resubmitting the array converts only what is missing.
#SBATCH --job-name=tensorcast
#SBATCH --cpus-per-task=2
#SBATCH --mem=1G
#SBATCH --output=tensorcast-%A_%a.log
set -euo pipefail
src="${1:?usage: convert-array.sh SRC OUT_DIR FORMAT}"
out="${2:?usage: convert-array.sh SRC OUT_DIR FORMAT}"
format="${3:?usage: convert-array.sh SRC OUT_DIR FORMAT}"
reports="${TENSORCAST_REPORTS:-reports}"
case "$reports" in *://*) ;; *) mkdir -p "$reports" ;; esac
exec "${TENSORCAST:-tensorcast}" convert --batch "$src" --out-dir "$out" --to "$format" \
  --shard auto --report "$reports/shard-${SLURM_ARRAY_TASK_ID}.jsonl" --quiet
