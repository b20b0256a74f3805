"""The recipe files state only what defines each run (issue 22), and resolve to exactly what they did before.

- Every packaged recipe is an experiment file of at most 12 non-comment lines on the one primary config
  (``configs/paper_run.yaml``): group overrides plus the values that make it that run.
- Nothing in a recipe restates a value its groups already set: each value the recipe's body sets differs
  from what the same defaults list gives without the body.
- Each recipe's config equals, key by key and before interpolation, the config of the same recipe as it was
  written before issue 22 (``before_issue22/``: the 18 long-form files, the full defaults list and every
  value restated), with the paper's defaults and with ``cluster=cpu model=tiny``. ``INTENDED`` lists the keys
  changed on purpose (none).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from vlnorm_verl.launch.compose import compose_config
from vlnorm_verl.launch.launcher import RECIPES_DIR, list_recipes

BEFORE = Path(__file__).resolve().parent / "before_issue22"
PRIMARY = RECIPES_DIR.parent / "paper_run.yaml"
MAX_LINES = 12
# recipe -> {flattened key: (value before, value now)} for differences made on purpose
INTENDED: dict[str, dict[str, tuple[object, object]]] = {}
OVERRIDE_SETS = {"paper": [], "cpu_tiny": ["cluster=cpu", "model=tiny"]}


def flatten(node: object, prefix: str = "") -> dict[str, object]:
    if isinstance(node, dict):
        out: dict[str, object] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def raw(name: str, overrides: list[str], config_dir: Path) -> dict[str, object]:
    """The composed config, interpolations left as written (so it does not depend on the environment)."""
    return flatten(OmegaConf.to_container(compose_config(name, overrides, config_dir=config_dir), resolve=False))


def content_lines(path: Path) -> list[str]:
    return [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_the_before_files_cover_every_recipe() -> None:
    assert sorted(p.stem for p in BEFORE.glob("*.yaml")) == list_recipes()


@pytest.mark.parametrize("recipe", list_recipes())
def test_recipe_is_a_short_experiment_file_on_the_primary_config(recipe: str) -> None:
    path = RECIPES_DIR / f"{recipe}.yaml"
    lines = content_lines(path)
    assert len(lines) <= MAX_LINES, f"{path.name}: {len(lines)} non-comment lines (at most {MAX_LINES})"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    defaults = spec["defaults"]
    assert defaults[0] == "paper_run" and defaults[-1] == "_self_"
    # every other entry overrides a group the primary config declares
    primary_groups = {
        next(iter(d)).removeprefix("optional ")
        for d in yaml.safe_load(PRIMARY.read_text())["defaults"]
        if isinstance(d, dict)
    }
    for entry in defaults[1:-1]:
        (key,) = entry
        assert key.startswith("override /") and key.removeprefix("override /") in primary_groups, entry
    assert spec["vlnorm"]["recipe"] == recipe


@pytest.mark.parametrize("recipe", list_recipes())
def test_recipe_restates_nothing_its_groups_set(recipe: str, tmp_path: Path) -> None:
    path = RECIPES_DIR / f"{recipe}.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    body = flatten({k: v for k, v in spec.items() if k not in ("hydra", "defaults")})
    bare = {k: spec[k] for k in ("hydra", "defaults")}
    (tmp_path / path.name).write_text(yaml.safe_dump(bare), encoding="utf-8")
    without_body = raw(recipe, [], tmp_path)
    restated = {key: value for key, value in body.items() if without_body.get(key) == value}
    assert not restated, f"{path.name} restates values its groups already set: {restated}"


@pytest.mark.parametrize("overrides", OVERRIDE_SETS.values(), ids=OVERRIDE_SETS.keys())
@pytest.mark.parametrize("recipe", list_recipes())
def test_recipe_resolves_as_it_did_before_issue_22(recipe: str, overrides: list[str]) -> None:
    before, now = raw(recipe, overrides, BEFORE), raw(recipe, overrides, RECIPES_DIR)
    diff = {
        key: (before.get(key), now.get(key)) for key in before.keys() | now.keys() if before.get(key) != now.get(key)
    }
    assert diff == INTENDED.get(recipe, {})
    assert len(now) > 400  # a whole verl trainer config was compared, not an empty one
