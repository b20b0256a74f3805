#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Train one recipe on this node. verl starts a private local Ray instance for the run (it never attaches
# to a Ray cluster already running here; use ray_submit.sh for that).
#
# Usage: scripts/train.sh RECIPE [hydra overrides...] [--dry-run]
#   RECIPE: a recipe name (vlnorm-verl train --list) or a recipe .yaml path.
#   Overrides pass through to Hydra, e.g. model=qwen2.5-7b algorithm.vl_norm.alpha=0.5 cluster=1x8
# Environment: see scripts/_common.sh (VLNORM_DATA_DIR, VLNORM_RUNS_DIR, VLNORM_MODEL_PATH, ...), plus
#   RAY_NUM_CPUS   CPUs the local Ray instance may use [Ray's default: all]
#   WANDB_API_KEY  wandb logs online when set, offline otherwise (WANDB_MODE overrides)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=_common.sh
source "$here/_common.sh"

[[ $# -ge 1 ]] || die "usage: $0 RECIPE [hydra overrides...] [--dry-run]"
recipe="$1"
shift
split_args "$@"
env_overrides

local_ray=("++ray_kwargs.ray_init.address=local")
if [[ -n "${RAY_NUM_CPUS:-}" ]]; then
    local_ray+=("ray_kwargs.ray_init.num_cpus=${RAY_NUM_CPUS}")
fi
unset RAY_ADDRESS

flags=()
if [[ "$DRY_RUN" == "1" ]]; then
    flags+=(--dry-run)
fi
exec "$PYTHON" -m vlnorm_verl.launch.cli train "$recipe" "${ENV_OVERRIDES[@]}" "${local_ray[@]}" "${PASS_ARGS[@]}" "${flags[@]}"
