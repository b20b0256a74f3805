"""A real single-node SLURM (Debian's slurm-wlm 22.05 with munge, configured for this host by the test, inside a
private loopback-only network namespace): scripts/slurm/train.sbatch in dry-run mode starts a Ray head in the
allocation, checks the recipe and every Ray node, and stops Ray again; the test reads the job's output."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from recipe_testlib import SCRIPTS, NetNS, make_script_env, wait_until

pytestmark = pytest.mark.slow

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo")

SLURM_CONF = """\
ClusterName=vlnormtest
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge.sock
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture(scope="module")
def slurm(netns: NetNS) -> Iterator[dict]:
    missing = [tool for tool in DAEMONS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"SLURM is not installed ({missing}); .ci/run installs slurm-wlm and munge from Debian")
    root = Path(tempfile.mkdtemp(prefix="vs", dir="/tmp"))
    for sub in ("state", "spool", "jobs"):
        (root / sub).mkdir()
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    root.chmod(0o711)
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(SLURM_CONF.format(host=host, root=root, cpus=os.cpu_count() or 1))
    env = {**make_script_env(root), "SLURM_CONF": str(conf)}
    log = open(root / "daemons.log", "w")  # noqa: SIM115
    munged = netns.popen(
        ["munged", "-F", "-f", f"--socket={root}/munge.sock", f"--key-file={key}", f"--log-file={root}/munged.log",
         f"--pid-file={root}/munged.pid", f"--seed-file={root}/munged.seed"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_until(lambda: (root / "munge.sock").exists(), 30, "munged", interval_s=0.3)
    ctld = netns.popen(["slurmctld", "-D", "-f", str(conf)], env=env, stdout=log, stderr=subprocess.STDOUT)
    slurmd = netns.popen(["slurmd", "-D", "-f", str(conf)], env=env, stdout=log, stderr=subprocess.STDOUT)

    def idle() -> bool:
        proc = netns.run(["sinfo", "-h", "-o", "%t"], env=env, timeout=30)
        return proc.returncode == 0 and proc.stdout.strip() == "idle"

    try:
        wait_until(idle, 60, "an idle SLURM node", interval_s=1)
        yield {"env": env, "root": root}
    finally:
        netns.stop(slurmd, ctld, munged)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def test_sbatch_dry_run_starts_ray_checks_the_recipe_and_cleans_up(netns: NetNS, slurm: dict) -> None:
    root = slurm["root"]
    ray_tmp = root / "ray"
    env = {
        **slurm["env"],
        "VLNORM_SCRIPTS_DIR": str(SCRIPTS),
        "RAY_HEAD_IP": "127.0.0.2",
        "RAY_PORT": "46390",
        "RAY_DASHBOARD_PORT": "48290",
        "RAY_TEMP_DIR": str(ray_tmp),
        "RAY_START_ARGS": "--object-store-memory=100000000 --num-cpus=1",
    }
    out = root / "jobs" / "job-%j.out"
    proc = netns.run(
        ["sbatch", "--wait", f"--output={out}", str(SCRIPTS / "slurm" / "train.sbatch"), "math_dapo_vlnorm",
         "trainer.total_epochs=3", "--dry-run"],
        env=env, cwd=root / "jobs", timeout=600,
    )  # fmt: skip
    outputs = sorted((root / "jobs").glob("job-*.out"))
    text = outputs[-1].read_text() if outputs else ""
    assert proc.returncode == 0, proc.stdout + proc.stderr + text[-5000:]

    assert "[train.sbatch] Ray head on" in text and "[train.sbatch] Ray cluster up: 1 node(s)" in text
    # the recipe, with the allocation's node count, composed and checked in the job
    assert "experiment_name: math_dapo_vlnorm-qwen2.5-3b" in text
    assert "total_epochs: 3" in text and "nnodes: 1" in text
    assert "metric: reward" in text and "alpha: 0.75" in text
    # every Ray node of the allocation: plugin registered, run environment present
    node_lines = [line for line in text.splitlines() if line.startswith("[vlnorm-verl] node ")]
    assert len(node_lines) == 1
    assert "plugin=registered" in node_lines[0]
    assert "WANDB_RUN_GROUP=dapo-math-qwen2.5-3b" in node_lines[0]
    assert "WANDB_TAGS=dapo_vlnorm,math,alpha=0.75,qwen2.5-3b,dapo" in node_lines[0]
    assert "[vlnorm-verl] cluster: 1 alive node(s)" in text
    # the job stopped its Ray processes (none of them still runs from the job's temp dir)
    wait_until(lambda: not _processes_mentioning(str(ray_tmp)), 60, "the job's Ray processes to exit")


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(proc.name))
    return found
