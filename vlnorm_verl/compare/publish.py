"""Publish the comparison as a wandb report (online only; ``--publish-report``).

Thin on purpose (it needs the network, a wandb login and the ``wandb-workspaces`` package, so the
test suite cannot exercise it). The report, saved in ``--wandb-project``, holds the Markdown tables
and definitions, and one panel grid whose run set is the compared runs that live in that project
(filtered by run id) with a line plot per metric (x axis: step). Runs read from offline directories or
JSONL files are not in the project; they appear in the tables only, and the report says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from vlnorm_verl.compare.records import CompareError, Run


def publish_report(
    project: str,
    runs: Sequence[Run],
    metrics: Sequence[str],
    markdown_text: str,
    title: str,
) -> str:
    """Create and save the report; returns its URL."""
    try:
        import wandb_workspaces.reports.v2 as wr
    except ImportError as exc:
        raise CompareError(
            "--publish-report needs the wandb-workspaces package: pip install 'wandb[workspaces]'"
        ) from exc
    entity, _, name = project.rpartition("/")

    def in_project(run: Run) -> bool:
        return any(p == project or (not entity and p.rpartition("/")[2] == name) for p in run.projects)

    ids = sorted({run_id for run in runs if in_project(run) for run_id in run.run_ids})
    local = [run.name for run in runs if not in_project(run)]
    blocks = [wr.MarkdownBlock(text=markdown_text)]
    if local:
        blocks.append(wr.P(text=f"Not in this project (offline or JSONL logs; tables only): {', '.join(local)}"))
    if ids:
        runset_kwargs = {"project": name, "name": "compared runs", "filters": f"Metric('ID') in {ids!r}"}
        if entity:
            runset_kwargs["entity"] = entity
        blocks.append(
            wr.PanelGrid(
                runsets=[wr.Runset(**runset_kwargs)],
                panels=[wr.LinePlot(title=m, x="Step", y=[m]) for m in metrics],
            )
        )
    report_kwargs = {"project": name, "title": title[:128], "blocks": blocks}
    if entity:
        report_kwargs["entity"] = entity
    try:
        report = wr.Report(**report_kwargs)
        report.save()
    except Exception as exc:
        raise CompareError(f"publishing the wandb report to {project!r} failed: {exc}") from exc
    return str(report.url)
