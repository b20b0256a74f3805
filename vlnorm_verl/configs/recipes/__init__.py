"""The paper's runs as Hydra primary configs (one YAML per recipe); see the README, section "Recipes"."""
