"""The quickstart's closing figures: response-length percentiles of a run, and the probe's headline.

- :func:`length_percentiles`: the 10th/50th/90th percentiles of the response lengths a run trained on, from its
  rollout dump (verl's ``trainer.rollout_data_dir``: one ``<step>.jsonl`` per step, the decoded responses),
  counted by re-encoding each response with the run's tokenizer plus one token for the EOS the decode dropped
  (responses at the cap ``max_len`` have none). VL Norm reweights responses by L_i^-alpha: when p90/p10 is
  near 1 there is nothing for it to do.
- :func:`probe_lines`: beta-hat with its 90% interval, the recommended alpha, and the measured variance of
  VL Norm's gradient (alpha = 1) relative to DAPO Norm's at matched step size, from ``vlnorm-verl probe --json``.

- :func:`probe_inputs`: what the probe needs from a run, from the quickstart's ``summary.json``: the VL Norm
  run's final checkpoint and the response cap it trained with.

``python -m vlnorm_verl.quickstart.report probe PROBE.json`` prints the probe lines;
``python -m vlnorm_verl.quickstart.report probe-inputs SUMMARY.json`` prints ``CHECKPOINT MAX_RESPONSE_LENGTH``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

#: the run the quickstart probes
PROBED_RUN = "countdown_dapo_vlnorm"


def response_lengths(dump_dir: Path, tokenizer: Any, max_len: int) -> list[int]:
    lengths = []
    for path in sorted(Path(dump_dir).glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                n = len(tokenizer(json.loads(line)["output"], add_special_tokens=False)["input_ids"])
                lengths.append(min(n + 1, max_len))
    return lengths


def length_percentiles(dump_dir: Path, tokenizer: Any, max_len: int) -> dict[str, float]:
    lengths = response_lengths(dump_dir, tokenizer, max_len)
    if not lengths:
        return {"n": 0}
    p10, p50, p90 = (float(v) for v in np.percentile(lengths, [10, 50, 90]))
    return {"n": len(lengths), "p10": p10, "p50": p50, "p90": p90, "ratio": p90 / p10}


def probe_lines(probe: dict[str, Any]) -> list[str]:
    lo, hi = probe["beta_ci"]
    vl = [a for a in probe["aggregators"] if a["name"] == "vl_norm" and a.get("alpha") == 1.0]
    lines = [
        f"beta-hat {probe['beta']:.2f} [90% interval {lo:.2f}, {hi:.2f}]: per-response gradient variance grows "
        f"as L^beta over {probe['n_responses']} responses of lengths {probe['length_range'][0]:.0f}-"
        f"{probe['length_range'][1]:.0f}",
        f"recommended alpha {probe['recommended_alpha']:.2f} (the alpha whose VL Norm gradient had the least "
        "measured variance)",
    ]
    if vl:
        lines.append(
            f"VL Norm (alpha 1) gradient variance / DAPO Norm's at matched step size: {vl[0]['measured_rel_dapo']:.2f}"
        )
    return lines


def probe_inputs(summary: dict[str, Any], recipe: str = PROBED_RUN) -> tuple[str, int]:
    run = summary[recipe]
    return run["checkpoint"], int(run["max_response_length"])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in ("probe", "probe-inputs"):
        print("usage: python -m vlnorm_verl.quickstart.report {probe PROBE.json | probe-inputs SUMMARY.json}",
              file=sys.stderr)  # fmt: skip
        return 2
    doc = json.loads(Path(args[1]).read_text())
    if args[0] == "probe-inputs":
        print(*probe_inputs(doc))
        return 0
    for line in probe_lines(doc):
        print(f"[probe] {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
