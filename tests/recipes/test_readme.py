"""The README stays short, cites only documents the repository holds, and every command in it runs as written.

Every `vlnorm-verl …` and `scripts/…` line of the README's ``bash`` blocks (continuation lines joined,
leading ``VAR=value`` assignments passed as the environment) runs from the repository root in a cheap mode:

- as written when it already says ``--dry-run``, ``--list`` or ``--help``;
- with ``--dry-run`` added for what trains (``vlnorm-verl train``, ``scripts/train.sh``, ``scripts/reproduce.sh``)
  and for ``scripts/prepare_data.sh`` (prints its commands);
- with a tiny size for ``vlnorm-verl prepare-data countdown`` (it writes real parquet files);
- with ``--help`` otherwise (a Ray job, a SLURM batch file — run with ``bash`` — compare, probe, the two set-up
  scripts).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from recipe_testlib import REPO, make_script_env

README = REPO / "README.md"
DOCS = REPO / "docs"
MAX_BYTES = 12 * 1024
DRY_RUN = ("vlnorm-verl train", "scripts/train.sh", "scripts/reproduce.sh", "scripts/prepare_data.sh")
TINY = {"vlnorm-verl prepare-data countdown": ["--train-size", "16", "--test-size", "4", "--workers", "1"]}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)


def readme_commands(text: str) -> list[str]:
    """The `vlnorm-verl …` / `scripts/…` lines of the bash blocks, continuation lines joined."""
    commands = []
    for block in bash_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            words = [w for w in shlex.split(line, comments=True) if not ASSIGNMENT.match(w)]
            if words and (words[0] == "vlnorm-verl" or any(w.startswith("scripts/") for w in words)):
                commands.append(line.strip())
    return commands


def cheap(command: str) -> tuple[dict[str, str], list[str]]:
    """(environment, argv) of the command's cheap mode (module docstring)."""
    words = shlex.split(command, comments=True)
    env = {}
    while ASSIGNMENT.match(words[0]):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    if words[0] == "sbatch":  # the batch file itself, with its arguments
        words = words[next(i for i, w in enumerate(words) if w.startswith("scripts/")) :]
    if words[0].startswith("scripts/"):
        words = ["bash", *words]
    text = " ".join(words)
    tiny = next((size for prefix, size in TINY.items() if text.startswith(prefix)), None)
    if {"--dry-run", "--list", "--help"} & set(words):
        extra: list[str] = []
    elif tiny:
        extra = tiny
    elif any(prefix in text for prefix in DRY_RUN):
        extra = ["--dry-run"]
    else:
        extra = ["--help"]
    return env, [*words, *extra]


def test_readme_is_short() -> None:
    size = len(README.read_bytes())
    assert size <= MAX_BYTES, f"README.md is {size} bytes; at most {MAX_BYTES}: move detail into docs/"


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_every_document_a_page_links_to_exists(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert "SPEC" not in text.replace("TORCH_SPEC", ""), f"{page.name} cites SPEC, which the repository does not hold"
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def test_the_readme_commands_are_found_and_mapped() -> None:
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert any(c.startswith("bash scripts/quickstart.sh") for c in commands)
    assert any(c.startswith("bash scripts/test.sh") for c in commands)
    assert any(c.startswith("vlnorm-verl train") for c in commands)
    # the mapping: a planted line of each kind
    assert cheap("vlnorm-verl train x a=1") == ({}, ["vlnorm-verl", "train", "x", "a=1", "--dry-run"])
    assert cheap("A=1 scripts/ray_submit.sh x") == ({"A": "1"}, ["bash", "scripts/ray_submit.sh", "x", "--help"])
    assert cheap("sbatch --nodes=2 scripts/slurm/train.sbatch r") == (
        {},
        ["bash", "scripts/slurm/train.sbatch", "r", "--help"],
    )
    assert cheap("vlnorm-verl train --list") == ({}, ["vlnorm-verl", "train", "--list"])


@pytest.mark.slow
def test_every_readme_command_runs(tmp_path: Path) -> None:
    commands = readme_commands(README.read_text(encoding="utf-8"))
    base_env = make_script_env(tmp_path)

    def run(command: str) -> tuple[list[str], subprocess.CompletedProcess]:
        env, argv = cheap(command)
        return argv, subprocess.run(
            argv, cwd=REPO, env={**base_env, **env}, capture_output=True, text=True, timeout=600
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, commands))
    failed = [f"{argv}: exit {p.returncode}\n{p.stderr[-1500:]}" for argv, p in results if p.returncode != 0]
    assert not failed, "\n\n".join(failed)
    for argv, proc in results:
        assert (proc.stdout + proc.stderr).strip(), argv  # each printed something (help, config, table)
    data = Path(base_env["VLNORM_DATA_DIR"]) / "countdown"
    assert sorted(p.name for p in data.glob("*.parquet")) == ["test.parquet", "train.parquet"]
