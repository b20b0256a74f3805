#!/usr/bin/env bash
# README command 1: the main job on a fresh machine.
#   1. creates a virtual environment and installs the project (torch first, then `pip install -e .[dev]`);
#   2. prepares a small offline CountDown set (`vlnorm-verl prepare-data countdown`, generator, no network);
#   3. without a GPU: warm-starts a tiny Qwen2 on the generator's reference solutions, each after a search trace
#      of 0-6 rejected tries so that response lengths vary (verl's SFT trainer on CPU, cached), then trains the
#      paper's headline pair through verl's trainer as a user launches it - `vlnorm-verl train
#      countdown_dapo_vlnorm` and its DAPO baseline `countdown_dapo_plain` side by side, `cluster=cpu
#      model=tiny`, one CPU rank each, same seed and data order - printing one line per step
#      (`vlnorm-verl quickstart`);
#      with a GPU (`nvidia-smi` works): runs `vlnorm-verl train countdown_dapo_vlnorm` and its DAPO baseline
#      `countdown_dapo_plain` for a few steps with the model MODEL_PATH;
#   4. compares the two runs with `vlnorm-verl compare` on the launcher's own log directories (Markdown table,
#      JSON, PNG plots); on CPU, probes the VL Norm arm's final checkpoint with `vlnorm-verl probe` (how gradient
#      variance grows with length, the recommended alpha, VL Norm's variance relative to DAPO's); prints where
#      everything went.
#
# Environment (defaults in brackets):
#   VENV [.venv]  PYTHON [python3]  SKIP_INSTALL [0: install; 1: use VENV as is]
#   TORCH_SPEC [torch==2.13.0]       CPU only; on a GPU node `.[gpu,dev]` is installed and verl[vllm] picks torch
#   QS_OUT [outputs/quickstart]      everything this script writes (data, logs, wandb, comparison, cache)
#   VLNORM_DATA_DIR [$QS_OUT/data]   the prepared parquet files (<dir>/countdown/{train,test}.parquet)
#   QS_TRAIN_SIZE [32]  QS_TEST_SIZE [16]   CountDown rows to generate (3-number instances; the training rows
#                                    are the warm-start's and RL's prompt pool)
#   QS_CACHE [$QS_OUT/cache]         the tiny model and the warm-started checkpoint (reruns skip the warm-start)
#   QS_STEPS [20]  QS_WARMSTART_STEPS [160]   RL steps per arm, SFT steps of the warm-start (CPU)
#   QS_PROBE_PROMPTS [16]  QS_PROBE_N [8]     the probe's prompts and responses per prompt (CPU; 0 prompts: skip)
#   QS_PROBE_ARGS []                 extra `vlnorm-verl probe` arguments (e.g. "--advantage one --bootstrap 200")
#   QS_OVERRIDES []                  extra Hydra overrides for both CPU runs (e.g. data.train_batch_size=4)
#   QS_DEVICE [auto]                 auto | cpu | gpu
#   MODEL_PATH [Qwen/Qwen2.5-0.5B]   GPU: the model (HF id or local directory)
#   GPU_STEPS [5]  GPU_COUNT [all visible]  GPU_OVERRIDES []   GPU: steps, GPUs, extra overrides per run
#   GPU_DRY_RUN [0]                  1: check and print the two GPU runs' configs (`train --dry-run`), no training
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_help.sh
source scripts/_help.sh
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then   # this header, then exit
    print_help "$0"
    exit 0
fi

VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
SKIP_INSTALL="${SKIP_INSTALL:-0}"
QS_OUT="$(mkdir -p "${QS_OUT:-outputs/quickstart}" && cd "${QS_OUT:-outputs/quickstart}" && pwd)"
export QS_OUT
export VLNORM_DATA_DIR="${VLNORM_DATA_DIR:-$QS_OUT/data}"
export QS_CACHE="${QS_CACHE:-$QS_OUT/cache}"
export VLNORM_RUNS_DIR="${VLNORM_RUNS_DIR:-$QS_OUT/runs}"
QS_TRAIN_SIZE="${QS_TRAIN_SIZE:-32}"
QS_TEST_SIZE="${QS_TEST_SIZE:-16}"
QS_STEPS="${QS_STEPS:-20}"
QS_WARMSTART_STEPS="${QS_WARMSTART_STEPS:-160}"
QS_PROBE_PROMPTS="${QS_PROBE_PROMPTS:-16}"
QS_PROBE_N="${QS_PROBE_N:-8}"
QS_DEVICE="${QS_DEVICE:-auto}"
MODEL_PATH="${MODEL_PATH:-Qwen/Qwen2.5-0.5B}"
GPU_STEPS="${GPU_STEPS:-5}"
GPU_DRY_RUN="${GPU_DRY_RUN:-0}"
export WANDB_MODE="${WANDB_MODE:-offline}"
read -r -a QS_EXTRA <<< "${QS_OVERRIDES:-}"
read -r -a GPU_EXTRA <<< "${GPU_OVERRIDES:-}"
read -r -a PROBE_EXTRA <<< "${QS_PROBE_ARGS:-}"

started=$(date +%s)
say() { printf '\n== %s\n' "$*"; }
# SIGINT, SIGTERM or SIGHUP to this script (Ctrl-C, `timeout`, a CI runner, a closed terminal) stops the step
# that is running: the Python step gets SIGTERM and stops everything it started (the warm-start's SFT trainer,
# the runs and their Ray clusters) before the script exits with 128 + the signal's number. `run` starts each
# long step in the background so that the trap runs at once instead of after the step.
CHILD=""
stop_child() {
    if [[ -n "$CHILD" ]]; then
        kill -TERM "$CHILD" 2> /dev/null || true
        wait "$CHILD" 2> /dev/null || true
    fi
    exit "$1"
}
trap 'stop_child 130' INT
trap 'stop_child 143' TERM
trap 'stop_child 129' HUP
run() {
    "$@" &
    CHILD=$!
    local rc=0
    wait "$CHILD" || rc=$?
    CHILD=""
    return "$rc"
}
ON_GPU=0
if [[ "$QS_DEVICE" == "gpu" ]] || { [[ "$QS_DEVICE" == "auto" ]] && nvidia-smi -L >/dev/null 2>&1; }; then
    ON_GPU=1
fi

if [[ "$SKIP_INSTALL" != "1" ]]; then
    say "installing into $VENV"
    if [[ ! -x "$VENV/bin/python" ]]; then
        "$PYTHON" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip
    if [[ "$ON_GPU" == "1" ]]; then
        "$VENV/bin/python" -m pip install -q -e ".[gpu,dev]"   # verl[vllm] picks its own torch
    else
        "$VENV/bin/python" -m pip install -q "$TORCH_SPEC"
        "$VENV/bin/python" -m pip install -q -e ".[dev]"
    fi
fi
PY="$VENV/bin/python"
installed=$(date +%s)

say "preparing a small offline CountDown set in $VLNORM_DATA_DIR/countdown"
run "$PY" -m vlnorm_verl.launch.cli prepare-data countdown --out "$VLNORM_DATA_DIR/countdown" \
    --train-size "$QS_TRAIN_SIZE" --test-size "$QS_TEST_SIZE" --four-fraction 0 --no-progress

if [[ "$ON_GPU" == "1" ]]; then
    GPU_COUNT="${GPU_COUNT:-$(nvidia-smi -L 2>/dev/null | wc -l)}"
    DRY=()
    if [[ "$GPU_DRY_RUN" == "1" ]]; then
        DRY=(--dry-run)
    fi
    for recipe in countdown_dapo_vlnorm countdown_dapo_plain; do
        say "GPU: vlnorm-verl train $recipe ($GPU_STEPS steps, $MODEL_PATH, $GPU_COUNT GPU(s))"
        run "$PY" -m vlnorm_verl.launch.cli train "$recipe" \
            "actor_rollout_ref.model.path=$MODEL_PATH" \
            "trainer.n_gpus_per_node=$GPU_COUNT" "trainer.nnodes=1" \
            "trainer.total_training_steps=$GPU_STEPS" "trainer.test_freq=$GPU_STEPS" "trainer.val_before_train=true" \
            "trainer.save_freq=-1" "trainer.experiment_name=$recipe" \
            "data.train_batch_size=16" "actor_rollout_ref.actor.ppo_mini_batch_size=16" \
            "data.max_response_length=1024" "data.val_max_samples=64" \
            ${GPU_EXTRA[@]+"${GPU_EXTRA[@]}"} ${DRY[@]+"${DRY[@]}"}
    done
    if [[ "$GPU_DRY_RUN" == "1" ]]; then
        say "GPU dry run: both configs check out; nothing trained"
        exit 0
    fi
    RUNS=("$VLNORM_RUNS_DIR/wandb")
    BASELINE=countdown_dapo_plain
    METRICS=(--metric "critic/score/mean")
else
    say "CPU: warm-start, then vlnorm-verl train countdown_dapo_vlnorm and countdown_dapo_plain side by side, $QS_STEPS steps each"
    run "$PY" -m vlnorm_verl.launch.cli quickstart --out "$QS_OUT" --runs-dir "$VLNORM_RUNS_DIR" --data-dir "$VLNORM_DATA_DIR" --cache "$QS_CACHE" \
        --steps "$QS_STEPS" --warmstart-steps "$QS_WARMSTART_STEPS" ${QS_EXTRA[@]+"${QS_EXTRA[@]}"}
    RUNS=("$VLNORM_RUNS_DIR/logs/countdown_dapo_vlnorm" "$VLNORM_RUNS_DIR/logs/countdown_dapo_plain")
    BASELINE=countdown_dapo_plain
    METRICS=(--metric "critic/score/mean" --smooth 5)
fi

say "vlnorm-verl compare (baseline: $BASELINE)"
CMP="$QS_OUT/compare"
mkdir -p "$CMP"
"$PY" -m vlnorm_verl.launch.cli compare "${RUNS[@]}" --baseline "$BASELINE" "${METRICS[@]}" --final-k 5 \
    --json "$CMP/compare.json" --plot "$CMP/plots" | tee "$CMP/table.md"

if [[ "$ON_GPU" != "1" && "$QS_PROBE_PROMPTS" -gt 0 ]]; then
    read -r CKPT CAP < <("$PY" -m vlnorm_verl.quickstart.report probe-inputs "$QS_OUT/summary.json")
    say "vlnorm-verl probe on the VL Norm arm's final checkpoint ($QS_PROBE_PROMPTS prompts x $QS_PROBE_N responses)"
    mkdir -p "$QS_OUT/probe"
    run "$PY" -m vlnorm_verl.launch.cli probe --model "$CKPT" --data "$VLNORM_DATA_DIR/countdown/train.parquet" \
        --prompts "$QS_PROBE_PROMPTS" --n "$QS_PROBE_N" --max-response-length "$CAP" --alpha 1 --quiet \
        --json "$QS_OUT/probe/probe.json" --plot "$QS_OUT/probe/probe.png" ${PROBE_EXTRA[@]+"${PROBE_EXTRA[@]}"} \
        > "$QS_OUT/probe/report.md"
    "$PY" -m vlnorm_verl.quickstart.report probe "$QS_OUT/probe/probe.json"
fi

finished=$(date +%s)
say "done: install $((installed - started)) s, run $((finished - installed)) s"
echo "  data:        $VLNORM_DATA_DIR/countdown/{train,test}.parquet"
echo "  runs:        $VLNORM_RUNS_DIR (logs/<recipe>/<attempt>/, wandb/, checkpoints/)"
if [[ "$ON_GPU" != "1" ]]; then
    echo "  consoles:    $QS_OUT/logs/<recipe>.log (verl's full output of each run)"
    echo "  rollouts:    $VLNORM_RUNS_DIR/rollouts/<recipe>/<step>.jsonl (verl's dump of every response)"
    echo "  warm-start:  $QS_CACHE/warmstart-*"
    echo "  probe:       $QS_OUT/probe/{report.md,probe.json,probe.png}"
    echo "  summary:     $QS_OUT/summary.json"
fi
echo "  table:       $CMP/table.md"
echo "  json:        $CMP/compare.json"
echo "  plots:       $CMP/plots/"
