"""A real two-node Ray cluster on loopback (a head and a second node process, in a private network namespace):
scripts/ray_submit.sh submits a dry-run job whose entrypoint must run on the second node, and the job shows the
plugin registered and the run's WANDB_* settings there."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from recipe_testlib import PYTHON, SCRIPTS, NetNS, make_script_env, wait_until

pytestmark = pytest.mark.slow

HEAD_IP, NODE2_IP = "127.0.0.2", "127.0.0.3"  # loopback addresses inside the namespace
GCS_PORT, DASHBOARD_PORT = 46379, 48265
RAY = [PYTHON, "-m", "ray.scripts.scripts"]
COMMON = ["--num-cpus=1", "--object-store-memory=100000000", "--disable-usage-stats", "--block"]


@pytest.fixture(scope="module")
def ray_cluster(netns: NetNS) -> Iterator[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="vr", dir="/tmp"))  # short: Ray's AF_UNIX socket paths must stay < 108 bytes
    env = make_script_env(tmp)
    logs = {name: open(tmp / f"{name}.log", "w") for name in ("head", "node2")}  # noqa: SIM115
    try:
        head = netns.popen(
            [*RAY, "start", "--head", f"--node-ip-address={HEAD_IP}", f"--port={GCS_PORT}",
             f"--dashboard-host={HEAD_IP}", f"--dashboard-port={DASHBOARD_PORT}", f"--temp-dir={tmp}", *COMMON],
            env=env, stdout=logs["head"], stderr=subprocess.STDOUT,
        )  # fmt: skip

        def status() -> str:
            proc = netns.run([*RAY, "status", f"--address={HEAD_IP}:{GCS_PORT}"], env=env, timeout=60)
            return proc.stdout if proc.returncode == 0 else ""

        wait_until(lambda: head.poll() is None and "Active:" in status(), 120, "the Ray head", interval_s=2)
        node2 = netns.popen(
            [*RAY, "start", f"--address={HEAD_IP}:{GCS_PORT}", f"--node-ip-address={NODE2_IP}",
             "--resources", json.dumps({"node2": 1}), "--dashboard-agent-listen-port=52366", f"--temp-dir={tmp}",
             *COMMON],
            env=env, stdout=logs["node2"], stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_until(lambda: node2.poll() is None and "node2" in status(), 120, "the second Ray node", interval_s=2)
        yield {"env": env, "tmp": tmp, "netns": netns}
        netns.stop(node2, head)
    finally:
        for f in logs.values():
            f.close()
        shutil.rmtree(tmp, ignore_errors=True)


JOB_INFO = """
import json, sys
import ray
from ray.job_submission import JobSubmissionClient

client = JobSubmissionClient(sys.argv[1])
info = client.get_job_info(sys.argv[2])
ray.init(address=sys.argv[3], logging_level="ERROR")
node2 = [n["NodeID"] for n in ray.nodes() if n["Alive"] and "node2" in n["Resources"]]
print(json.dumps({"status": info.status.value, "driver_node_id": info.driver_node_id, "node2": node2,
                  "logs": client.get_job_logs(sys.argv[2])}))
"""


def test_ray_submit_dry_run_runs_on_the_second_node_with_plugin_and_tracking_env(ray_cluster: dict) -> None:
    netns, tmp = ray_cluster["netns"], ray_cluster["tmp"]
    job_id = "vlnorm-cluster-test"
    env = {
        **ray_cluster["env"],
        "RAY_ADDRESS": f"http://{HEAD_IP}:{DASHBOARD_PORT}",
        "RAY_ENTRYPOINT_RESOURCES": json.dumps({"node2": 1}),
        "RAY_JOB_ID": job_id,
        "WANDB_ENTITY": "vlnorm-test-entity",
    }
    proc = netns.run(
        ["bash", str(SCRIPTS / "ray_submit.sh"), "countdown_dapo_vlnorm", "--dry-run"], env=env, cwd=tmp, timeout=600
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    assert f"job {job_id} final status: SUCCEEDED" in proc.stderr

    info = netns.run(
        [PYTHON, "-c", JOB_INFO, env["RAY_ADDRESS"], job_id, f"{HEAD_IP}:{GCS_PORT}"],
        env=ray_cluster["env"],
        timeout=120,
    )
    assert info.returncode == 0, info.stderr[-3000:]
    job = json.loads(info.stdout.strip().splitlines()[-1])
    assert job["status"] == "SUCCEEDED"
    (node2_id,) = job["node2"]
    assert job["driver_node_id"] == node2_id  # the entrypoint ran on the second node

    logs = job["logs"]
    group, tags = "dapo-countdown-qwen2.5-3b", "dapo_vlnorm,countdown,alpha=1.0,qwen2.5-3b,dapo"
    launcher = next(line for line in logs.splitlines() if line.startswith("[vlnorm-verl] launcher:"))
    # the entrypoint's own environment (the job's runtime env): the submitter's WANDB_* settings arrived
    assert "plugin=vlnorm_verl registered" in launcher
    for item in (f"WANDB_RUN_GROUP={group}", f"WANDB_TAGS={tags}", "WANDB_MODE=offline", "WANDB_ENTITY=vlnorm-test"):
        assert item in launcher
    # a worker on the second node, as verl's workers would start: plugin loaded by `import verl`, env present
    node_line = next(line for line in logs.splitlines() if line.startswith(f"[vlnorm-verl] node {node2_id}"))
    assert "resources=[node2]" in node_line and "plugin=registered" in node_line
    assert f"WANDB_RUN_GROUP={group}" in node_line and f"WANDB_TAGS={tags}" in node_line
    assert "WANDB_MODE=offline" in node_line and f"VERL_FILE_LOGGER_ROOT={tmp}/runs/logs/" in node_line
    assert "[vlnorm-verl] cluster: 2 alive node(s)" in logs
    assert "experiment_name: countdown_dapo_vlnorm-qwen2.5-3b" in logs  # the resolved config, printed there
