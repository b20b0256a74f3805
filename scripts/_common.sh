# shellcheck shell=bash source-path=SCRIPTDIR
# Shared settings for the scripts in this folder (sourced, not run).
#
# Environment (defaults in brackets):
#   VLNORM_PYTHON        Python with vlnorm-verl installed [python3]
#   VLNORM_DATA_DIR      prepared parquet files, <dir>/<task>/*.parquet [./data]
#   VLNORM_RUNS_DIR      logs, checkpoints, wandb offline runs [./runs]
#   VLNORM_MODEL_PATH    base model (HF id or local dir) [the recipe's: Qwen/Qwen2.5-3B]
#   VLNORM_NNODES        trainer.nnodes [the recipe's: 1]
#   VLNORM_GPUS_PER_NODE trainer.n_gpus_per_node [the recipe's: 4]
#   DRY_RUN              1 = check and print the resolved config, do not train [0]; same as --dry-run
#
# Every script that sources this file answers -h / --help (among its arguments) with its header comment.

PYTHON="${VLNORM_PYTHON:-python3}"
export VLNORM_DATA_DIR="${VLNORM_DATA_DIR:-$PWD/data}"
export VLNORM_RUNS_DIR="${VLNORM_RUNS_DIR:-$PWD/runs}"
DRY_RUN="${DRY_RUN:-0}"

# vlnorm_cli ARGS... : the project's CLI in $PYTHON's environment (works from a checkout and from a wheel)
vlnorm_cli() {
    "$PYTHON" -m vlnorm_verl.launch.cli "$@"
}

# split_args ARGS... : sets DRY_RUN=1 if --dry-run is among ARGS and puts the rest into PASS_ARGS
split_args() {
    PASS_ARGS=()
    local arg
    for arg in "$@"; do
        if [[ "$arg" == "--dry-run" ]]; then
            DRY_RUN=1
        else
            PASS_ARGS+=("$arg")
        fi
    done
}

# env_overrides : Hydra overrides from the VLNORM_* size/model variables that are set, into ENV_OVERRIDES
env_overrides() {
    ENV_OVERRIDES=()
    if [[ -n "${VLNORM_MODEL_PATH:-}" ]]; then
        ENV_OVERRIDES+=("actor_rollout_ref.model.path=${VLNORM_MODEL_PATH}")
    fi
    if [[ -n "${VLNORM_NNODES:-}" ]]; then
        ENV_OVERRIDES+=("trainer.nnodes=${VLNORM_NNODES}")
    fi
    if [[ -n "${VLNORM_GPUS_PER_NODE:-}" ]]; then
        ENV_OVERRIDES+=("trainer.n_gpus_per_node=${VLNORM_GPUS_PER_NODE}")
    fi
}

die() {
    echo "$(basename "$0"): $*" >&2
    exit 2
}

# shellcheck source=_help.sh
source "$(dirname "${BASH_SOURCE[0]}")/_help.sh"

for _arg in "$@"; do
    if [[ "$_arg" == "-h" || "$_arg" == "--help" ]]; then
        print_help "$0"
        exit 0
    fi
done
unset _arg
