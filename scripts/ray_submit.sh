#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Submit one recipe to a running Ray cluster as a Ray job, wait for it and report its final status.
#
# Usage: scripts/ray_submit.sh RECIPE [hydra overrides...] [--dry-run]
#   The run is composed and checked here first (vlnorm-verl train --print-runtime-env); the job's
#   entrypoint then runs `python -m vlnorm_verl.launch.cli train RECIPE overrides...` on the cluster, with a
#   runtime env carrying WANDB_RUN_GROUP / WANDB_TAGS / WANDB_MODE / WANDB_DIR, the data and runs
#   directories and, when set here, WANDB_API_KEY / WANDB_ENTITY / WANDB_BASE_URL / HF_* to every worker.
#   --dry-run submits a job that composes and checks the run on the cluster, prints the resolved config
#   and checks every node for the plugin and that environment (--probe-cluster); nothing trains.
# Environment (defaults in brackets), plus those of scripts/_common.sh:
#   RAY_ADDRESS               the cluster's dashboard / job server [http://127.0.0.1:8265]
#   VLNORM_REMOTE_PYTHON      Python on the cluster nodes, with vlnorm-verl installed [python3]
#   VLNORM_RAY_PIP            comma-separated pip requirements for the job's runtime env, for nodes whose
#                             Python lacks the plugin (e.g. a vlnorm-verl wheel path) [none]
#   RAY_ENTRYPOINT_RESOURCES  JSON custom resources the entrypoint needs, e.g. '{"head": 1}' [none]
#   RAY_ENTRYPOINT_NUM_CPUS   CPUs reserved for the entrypoint [1]
#   RAY_JOB_ID                submission id [vlnorm-<recipe>-<UTC time>]
#   RAY_NO_WAIT               1 = submit and return without waiting [0]
# The data and runs directories must be the same paths on the cluster (a shared file system).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=_common.sh
source "$here/_common.sh"

[[ $# -ge 1 ]] || die "usage: $0 RECIPE [hydra overrides...] [--dry-run]"
recipe="$1"
shift
split_args "$@"
env_overrides

address="${RAY_ADDRESS:-http://127.0.0.1:8265}"
remote_python="${VLNORM_REMOTE_PYTHON:-python3}"
job_id="${RAY_JOB_ID:-vlnorm-${recipe##*/}-$(date -u +%Y%m%dT%H%M%SZ)}"
job_id="${job_id%.yaml}"
overrides=("${ENV_OVERRIDES[@]}" "${PASS_ARGS[@]}")

runtime_env="$(mktemp "${TMPDIR:-/tmp}/vlnorm-runtime-env.XXXXXX")"
trap 'rm -f "$runtime_env"' EXIT
# composes and checks the run locally (exit 2 with the reason if it is invalid)
vlnorm_cli train "$recipe" "${overrides[@]}" --print-runtime-env > "$runtime_env"

entrypoint=("$remote_python" -m vlnorm_verl.launch.cli train "$recipe" "${overrides[@]}")
if [[ "$DRY_RUN" == "1" ]]; then
    entrypoint+=(--dry-run --probe-cluster)
fi
submit=("$PYTHON" -m ray.scripts.scripts job submit --address "$address" --submission-id "$job_id" --runtime-env "$runtime_env"
    --entrypoint-num-cpus "${RAY_ENTRYPOINT_NUM_CPUS:-1}")
if [[ -n "${RAY_ENTRYPOINT_RESOURCES:-}" ]]; then
    submit+=(--entrypoint-resources "$RAY_ENTRYPOINT_RESOURCES")
fi
if [[ "${RAY_NO_WAIT:-0}" == "1" ]]; then
    submit+=(--no-wait)
fi

echo "[ray_submit] job ${job_id} -> ${address}: ${entrypoint[*]}" >&2
# ray job submit exits 0 for a stopped job too; the job server's status below decides
submit_rc=0
"${submit[@]}" -- "${entrypoint[@]}" || submit_rc=$?

if [[ "${RAY_NO_WAIT:-0}" == "1" ]]; then
    echo "[ray_submit] submitted ${job_id}; follow it with: ray job logs --address ${address} -f ${job_id}" >&2
    exit 0
fi
if ! status="$("$PYTHON" - "$address" "$job_id" <<'PY'
import sys
import time

from ray.job_submission import JobStatus, JobSubmissionClient

client = JobSubmissionClient(sys.argv[1])
while True:
    status = client.get_job_status(sys.argv[2])
    if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
        break
    time.sleep(2)
print(status.value)
PY
)"; then
    echo "[ray_submit] cannot read the status of job ${job_id} (ray job submit exited ${submit_rc})" >&2
    exit 1
fi
echo "[ray_submit] job ${job_id} final status: ${status}" >&2
[[ "$status" == "SUCCEEDED" ]]
