"""``vlnorm-verl compare``: compare runs against a baseline from wandb (offline or online) or verl JSONL logs.

Prints a Markdown table per metric (peak, peak step, final, AUC, steps to a threshold, speedup vs the
baseline) with the definitions of every figure, and optionally writes the figures as JSON
(``--json``), PNG plots (``--plot``) and a wandb report (``--publish-report``). Exit status: 0 on
success, 2 on bad input (the message names the run/metric/option and the fix).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from vlnorm_verl.compare.metrics import (
    MetricComparison,
    compare_metric,
    detect_metric,
    parse_threshold,
)
from vlnorm_verl.compare.output import markdown, to_document, write_json
from vlnorm_verl.compare.records import CompareError
from vlnorm_verl.compare.sources import Selection, load_runs

PROG = "vlnorm-verl compare"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Compare runs against a baseline (peak, final, AUC, steps to a threshold, speedup) from wandb offline "
        "run directories, the wandb API, or verl file-logger JSONL logs."
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "RUN_SOURCE: a verl file-logger *.jsonl, a wandb run directory (offline-run-*/ or run-*/) or its\n"
        "run-*.wandb file, a wandb/ directory (all runs in it), a directory of *.jsonl files, or\n"
        "wandb:ENTITY/PROJECT/RUN_ID (online). Logs with the same run name are merged (resumed run).\n"
        "Example: vlnorm-verl compare wandb/ --baseline dapo_cd --plot plots --json cmp.json"
    )
    parser.add_argument("sources", nargs="*", metavar="RUN_SOURCE", help="runs to compare (see below)")
    parser.add_argument("--baseline", required=True, metavar="NAME", help="name (or label) of the baseline run")
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="NAME=SRC",
        help="name the run(s) of source SRC (or the run named SRC) NAME; repeatable; one NAME for two sources "
        "merges them (resumed run)",
    )
    parser.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="M",
        help="metric to compare; repeatable (default: the runs' val-core/<data_source>/acc/mean@N)",
    )
    parser.add_argument(
        "--final-k", type=int, default=3, metavar="K", help="final = mean of the last K evaluations (default 3)"
    )
    parser.add_argument(
        "--threshold",
        default="peak",
        metavar="peak|VALUE|frac:F",
        help="level for steps-to-threshold: the baseline's peak (default), a fixed VALUE, or F x that peak",
    )
    parser.add_argument(
        "--smooth",
        type=int,
        default=1,
        metavar="W",
        help="trailing moving average over W evaluations before thresholding (default 1: none)",
    )
    parser.add_argument("--json", metavar="PATH", help="write every figure to this JSON file")
    parser.add_argument("--plot", metavar="DIR", help="write PNG plots into this directory")
    parser.add_argument("--wandb-project", metavar="[ENTITY/]PROJECT", help="also read the runs of this wandb project")
    parser.add_argument("--wandb-group", metavar="G", help="only runs of this wandb group (with --wandb-project)")
    parser.add_argument(
        "--wandb-tags",
        nargs="+",
        action="extend",
        default=[],
        metavar="T",
        help="only runs with any of these tags (with --wandb-project; give RUN_SOURCEs before this option)",
    )
    parser.add_argument(
        "--publish-report",
        action="store_true",
        help="save the comparison as a wandb report in --wandb-project (online; needs wandb-workspaces)",
    )
    parser.add_argument("--report-title", metavar="TITLE", help="title of the published report")


def _emit(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def _check_options(args: argparse.Namespace) -> None:
    if (args.wandb_group or args.wandb_tags) and not args.wandb_project:
        raise CompareError("--wandb-group/--wandb-tags filter the runs of --wandb-project; add --wandb-project P")
    if args.publish_report and not args.wandb_project:
        raise CompareError("--publish-report saves the report in a wandb project; add --wandb-project [ENTITY/]PROJECT")
    if args.final_k < 1:
        raise CompareError(f"--final-k {args.final_k}: K must be at least 1")
    if args.smooth < 1:
        raise CompareError(f"--smooth {args.smooth}: W must be at least 1 (1 = no smoothing)")


def compare(args: argparse.Namespace) -> int:
    _check_options(args)
    threshold = parse_threshold(args.threshold)
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = load_runs(
            Selection(
                sources=list(args.sources),
                labels=list(args.label),
                wandb_project=args.wandb_project,
                wandb_group=args.wandb_group,
                wandb_tags=list(args.wandb_tags),
            ),
            notes,
        )
    notes = [str(w.message) for w in caught] + notes
    names = [run.name for run in runs]
    if args.baseline not in names:
        raise CompareError(f"--baseline {args.baseline!r} is not one of the runs read: {', '.join(names)}")
    # Baseline first, the others in the order they were read.
    runs = sorted(runs, key=lambda run: run.name != args.baseline)

    metrics: Sequence[str] = list(dict.fromkeys(args.metric))
    if not metrics:
        metric, note = detect_metric(runs)
        metrics = [metric]
        if note:
            notes.append(note)
    comparisons: list[MetricComparison] = [
        compare_metric(runs, args.baseline, metric, threshold, final_k=args.final_k, smooth_window=args.smooth)
        for metric in metrics
    ]
    for run in runs:
        if run.overwritten:
            notes.append(f"run {run.name!r}: {run.overwritten} (step, metric) values were logged again; the later won")

    if args.plot:
        from vlnorm_verl.compare.plots import write_plots

        written, plot_notes = write_plots(
            runs, args.baseline, metrics, {c.metric: c.threshold for c in comparisons}, args.plot
        )
        notes.extend(plot_notes)

    text = markdown(comparisons, args.final_k, args.smooth, notes)
    if args.json:
        origins = {run.name: run.origins for run in runs}
        write_json(to_document(comparisons, args.final_k, args.smooth, args.threshold, notes, origins), args.json)
    sys.stdout.write(text)
    if args.publish_report:
        from vlnorm_verl.compare.publish import publish_report

        title = args.report_title or f"{', '.join(n for n in names if n != args.baseline)} vs {args.baseline}"
        url = publish_report(args.wandb_project, runs, metrics, text, title)
        _emit(f"report published: {url}")
    if args.plot:
        _emit(f"{len(written)} plots written to {args.plot}: {', '.join(p.name for p in written)}")
    if args.json:
        _emit(f"JSON written to {args.json}")
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return compare(args)
    except CompareError as exc:
        _emit(f"error: {exc}")
        return 2
    except OSError as exc:  # writing --json / --plot output
        _emit(f"error: {exc}; check the --json/--plot paths")
        return 2


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (the package's console script calls :func:`run` through ``vlnorm_verl.launch.cli``)."""
    parser = argparse.ArgumentParser(prog=PROG)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
