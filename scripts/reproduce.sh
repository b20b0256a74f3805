#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Run every recipe of a suite in turn, each as its own run.
#
# Usage: scripts/reproduce.sh dapo|aggregation|all [hydra overrides...] [--dry-run]
#   dapo:        <task>_dapo_{overlong_filter,soft_punish,plain,vlnorm}
#   aggregation: <task>_{grpo_norm,dapo_norm,drgrpo_norm,drgrpo,vlnorm}
#   Overrides apply to every recipe (e.g. model=qwen2.5-7b).
# Environment (defaults in brackets), plus those of scripts/_common.sh:
#   VLNORM_TASKS      comma-separated tasks [countdown,math]
#   VLNORM_LAUNCHER   local  = scripts/train.sh (a private Ray per run) [local]
#                     submit = scripts/ray_submit.sh (jobs on the Ray cluster at RAY_ADDRESS)
#                     attach = vlnorm-verl train against the running cluster at RAY_ADDRESS (SLURM batch file)
#   KEEP_GOING        1 = run the remaining recipes after a failure [0]
# Exit status: 0 when every recipe succeeded; the failed ones are listed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=_common.sh
source "$here/_common.sh"

[[ $# -ge 1 ]] || die "usage: $0 dapo|aggregation|all [hydra overrides...] [--dry-run]"
suite="$1"
shift
split_args "$@"

case "$suite" in
    dapo) methods=(dapo_overlong_filter dapo_soft_punish dapo_plain dapo_vlnorm) ;;
    aggregation) methods=(grpo_norm dapo_norm drgrpo_norm drgrpo vlnorm) ;;
    all) methods=(dapo_overlong_filter dapo_soft_punish dapo_plain dapo_vlnorm grpo_norm dapo_norm drgrpo_norm drgrpo vlnorm) ;;
    *) die "unknown suite '$suite' (dapo, aggregation or all)" ;;
esac
IFS=',' read -r -a tasks <<< "${VLNORM_TASKS:-countdown,math}"

launcher="${VLNORM_LAUNCHER:-local}"
case "$launcher" in
    local) launch=(bash "$here/train.sh") ;;
    submit) launch=(bash "$here/ray_submit.sh") ;;
    attach)
        [[ -n "${RAY_ADDRESS:-}" ]] || die "VLNORM_LAUNCHER=attach needs RAY_ADDRESS (the running cluster)"
        env_overrides
        launch=(vlnorm_cli train)
        ;;
    *) die "unknown VLNORM_LAUNCHER '$launcher' (local, submit or attach)" ;;
esac
extra=()
if [[ "$launcher" == "attach" ]]; then
    extra+=("${ENV_OVERRIDES[@]}")
fi
if [[ "$DRY_RUN" == "1" ]]; then
    dry=(--dry-run)
else
    dry=()
fi

failed=()
for task in "${tasks[@]}"; do
    for method in "${methods[@]}"; do
        recipe="${task}_${method}"
        echo "[reproduce] ${recipe}" >&2
        if ! "${launch[@]}" "$recipe" "${extra[@]}" "${PASS_ARGS[@]}" "${dry[@]}"; then
            failed+=("$recipe")
            [[ "${KEEP_GOING:-0}" == "1" ]] || break 2
        fi
    done
done
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "[reproduce] failed: ${failed[*]}" >&2
    exit 1
fi
echo "[reproduce] ${suite}: all recipes done" >&2
