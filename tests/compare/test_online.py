"""The online-API adapter's conversion and filters, with an in-memory stand-in for ``wandb.Api()``.

The real API needs the network; these tests pin down only what the thin adapter does with what the
API returns (``Run.name/id/entity/project/created_at`` and ``Run.scan_history()`` rows with ``_step``),
and that online runs flow through the same naming, merging and figures as offline logs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from vlnorm_verl.compare import wandb_online
from vlnorm_verl.compare.sources import Selection, load_runs

ACC = "val-core/countdown/acc/mean@8"


@dataclass
class FakeRun:
    id: str
    name: str
    created_at: str
    history: list[dict]
    entity: str = "team"
    project: str = "vlnorm"

    def scan_history(self):
        return iter(self.history)


@dataclass
class FakeApi:
    runs_by_path: dict[str, list[FakeRun]]
    calls: list[tuple] = field(default_factory=list)

    def runs(self, path, filters=None, order="+created_at"):
        self.calls.append((path, filters, order))
        return list(self.runs_by_path[path])

    def run(self, path):
        return next(r for runs in self.runs_by_path.values() for r in runs if path.endswith(r.id))


def test_run_to_log_converts_history_rows():
    run = FakeRun(
        "abc",
        "dapo",
        "2025-01-02T03:04:05Z",
        [
            {"_step": 0, "_runtime": 1.0, ACC: 0.1, "actor/entropy": None},
            {"_step": 1, "actor/entropy": 1.5, "actor/grad_norm": "NaN", "note": "text"},
            {"_runtime": 3.0},  # no step: not a history row
        ],
    )
    log = wandb_online.run_to_log(run)
    assert (log.name, log.run_id, log.project, log.origin) == ("dapo", "abc", "team/vlnorm", "wandb:team/vlnorm/abc")
    assert log.start_time == pytest.approx(1735787045.0)
    assert log.rows[0] == (0, {ACC: 0.1})  # absent (None) and internal keys dropped
    assert log.rows[1][1]["actor/entropy"] == 1.5 and math.isnan(log.rows[1][1]["actor/grad_norm"])
    assert len(log.rows) == 2


def test_project_runs_filters_and_resume_merge(monkeypatch):
    api = FakeApi(
        {
            "team/vlnorm": [
                FakeRun("r1", "dapo", "2025-01-01T00:00:00Z", [{"_step": s, ACC: v} for s, v in ((0, 0.1), (10, 0.6))]),
                FakeRun("r2", "vl", "2025-01-01T00:00:00Z", [{"_step": s, ACC: v} for s, v in ((0, 0.1), (10, 0.3))]),
                # verl resumed `vl` as a new wandb run with the same name
                FakeRun("r3", "vl", "2025-01-02T00:00:00Z", [{"_step": s, ACC: v} for s, v in ((10, 0.7), (20, 0.8))]),
            ]
        }
    )
    monkeypatch.setattr(wandb_online, "_api", lambda: api)
    notes: list[str] = []
    runs = load_runs(
        Selection(wandb_project="team/vlnorm", wandb_group="cd", wandb_tags=["a", "b"], labels=["VL=vl"]), notes
    )
    assert api.calls == [("team/vlnorm", {"group": "cd", "tags": {"$in": ["a", "b"]}}, "+created_at")]
    assert [r.name for r in runs] == ["dapo", "VL"]
    assert runs[1].series(ACC)[1].tolist() == [0.1, 0.7, 0.8]
    assert runs[1].run_ids == ["r2", "r3"] and runs[1].projects == ["team/vlnorm"]
    assert any("merges 2 logs" in n for n in notes)
