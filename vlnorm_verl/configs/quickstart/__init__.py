"""Hydra config of the CPU quickstart loop (``cpu.yaml``); see the README, section "Quickstart"."""
