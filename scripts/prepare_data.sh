#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Write the tasks' parquet files where the recipes look for them: $VLNORM_DATA_DIR/<task>/.
#
# Usage: scripts/prepare_data.sh [countdown|math|all] [--dry-run]     (default: all)
#   --dry-run prints the commands without running them.
# Environment (defaults in brackets), plus VLNORM_PYTHON / VLNORM_DATA_DIR of scripts/_common.sh:
#   COUNTDOWN_SOURCE      generate (offline, solvable instances) | hub | path to a local copy [generate]
#   COUNTDOWN_TRAIN_SIZE  training rows [32768]
#   COUNTDOWN_TEST_SIZE   test rows [1024]
#   COUNTDOWN_SEED        generator seed [0]
#   COUNTDOWN_WORKERS     generator processes [CPUs, at most 8]
#   MATH_TRAIN_SOURCE     orz_math_57k_collected.json path or URL, or 'orz' for its upstream URL
#                         [unset: only the evaluation sets are written]
#   MATH_EVAL_DIR         directory of <set>.jsonl evaluation files [$VLNORM_MATH_EVAL_DIR, read by the CLI]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=_common.sh
source "$here/_common.sh"

split_args "$@"
what="${PASS_ARGS[0]:-all}"
case "$what" in
    countdown | math | all) ;;
    *) die "unknown task '$what' (countdown, math or all)" ;;
esac

run() {
    echo "+ $*" >&2
    if [[ "$DRY_RUN" != "1" ]]; then
        "$@"
    fi
}

if [[ "$what" == "countdown" || "$what" == "all" ]]; then
    args=(prepare-data countdown --out "$VLNORM_DATA_DIR/countdown"
        --source "${COUNTDOWN_SOURCE:-generate}"
        --train-size "${COUNTDOWN_TRAIN_SIZE:-32768}"
        --test-size "${COUNTDOWN_TEST_SIZE:-1024}"
        --seed "${COUNTDOWN_SEED:-0}")
    if [[ -n "${COUNTDOWN_WORKERS:-}" ]]; then
        args+=(--workers "$COUNTDOWN_WORKERS")
    fi
    run "$PYTHON" -m vlnorm_verl.launch.cli "${args[@]}"
fi
if [[ "$what" == "math" || "$what" == "all" ]]; then
    args=(prepare-data math --out "$VLNORM_DATA_DIR/math")
    if [[ -n "${MATH_TRAIN_SOURCE:-}" ]]; then
        args+=(--source "$MATH_TRAIN_SOURCE")
    fi
    if [[ -n "${MATH_EVAL_DIR:-}" ]]; then
        args+=(--eval-dir "$MATH_EVAL_DIR")
    fi
    run "$PYTHON" -m vlnorm_verl.launch.cli "${args[@]}"
fi
