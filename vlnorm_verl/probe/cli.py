"""``vlnorm-verl probe``: gradient variance against response length, and the alpha it recommends.

Inputs (one of):

- ``--model M --data FILE.parquet``: sample ``--n`` responses for each of ``--prompts`` prompts at one
  ``--temperature`` and one ``--max-response-length`` cap, score them with the project's rewards, GRPO advantages
  per prompt, then per-response gradients (exact for small models, a CountSketch projection otherwise);
- ``--model M --rollouts DIR``: the responses of one step of a verl rollout dump (``trainer.rollout_data_dir``);
- ``--gradients FILE.npz``: ``lengths`` (N,) and ``grads`` (N, D) (advantages folded in), optionally
  ``advantages`` (N,) and ``sample_weight`` (N,); no model.

``M``: a Hugging Face model directory or hub id, or a verl checkpoint (``global_step_N[/actor]``, merged with
verl's model merger). Output: a Markdown report on stdout, ``--json PATH``, ``--plot PATH``. Bad input: a message
naming the problem on stderr and exit status 2. Statistics: :mod:`vlnorm_verl.probe.stats`.
"""

from __future__ import annotations

import argparse
import sys

from vlnorm_verl.probe.errors import ProbeError

PROG = "vlnorm-verl probe"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("input (one of --gradients, --model with --data or --rollouts)")
    src.add_argument("--gradients", metavar="FILE.npz", help="lengths (N,) and grads (N, D): statistics only")
    src.add_argument("--model", metavar="M", help="HF model directory / hub id, or a verl checkpoint directory")
    src.add_argument("--data", metavar="FILE.parquet", help="prompts in verl's RLHF schema (prepare-data output)")
    src.add_argument("--rollouts", metavar="DIR", help="a verl rollout dump (trainer.rollout_data_dir) or one .jsonl")
    src.add_argument("--step", type=int, help="which step of the dump (default: the last)")
    src.add_argument("--tokenizer", metavar="PATH", help="tokenizer to use (default: the model's own)")
    samp = parser.add_argument_group("sampling (the run's settings: one temperature, one cap)")
    samp.add_argument("--prompts", type=int, default=32, help="number of prompts (first rows of --data; default 32)")
    samp.add_argument("--n", type=int, default=8, help="responses per prompt (default 8)")
    samp.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    samp.add_argument(
        "--max-response-length", type=int, default=256, help="the length cap, data.max_response_length (default 256)"
    )
    samp.add_argument("--chat-template", action="store_true", help="wrap prompts in the tokenizer's chat template")
    samp.add_argument("--gen-batch-size", type=int, default=256, help="sequences per generate call (default 256)")
    samp.add_argument("--seed", type=int, default=0)
    grad = parser.add_argument_group("gradients")
    grad.add_argument(
        "--advantage", choices=("grpo", "one"), default="grpo", help="grpo (default) or one: A_i = 1 (sanity check)"
    )
    grad.add_argument(
        "--max-gradients", type=int, help="gradient budget: keep a length-stratified subset of this many responses"
    )
    grad.add_argument("--strata", type=int, default=8, help="length strata for --max-gradients (default 8)")
    grad.add_argument("--projection", choices=("auto", "exact", "sketch"), default="auto")
    grad.add_argument("--sketch-dim", type=int, default=2048, help="projection dimension per block (default 2048)")
    grad.add_argument("--device", default="auto", help="auto (GPU when there is one), cpu, cuda, cuda:1, ...")
    grad.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    grad.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (default: torch's; 1 is fastest on a busy machine)"
    )
    st = parser.add_argument_group("statistics")
    st.add_argument("--batch-size", type=int, help="responses per resampled batch (default: all, the run's size)")
    st.add_argument("--batches", type=int, default=400, help="Monte Carlo batches for the table (default 400)")
    st.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates for beta (default 1000)")
    st.add_argument("--bins", type=int, default=12, help="most length bins for the fit (default 12)")
    st.add_argument("--min-per-bin", type=int, default=5, help="fewest responses per length bin (default 5)")
    st.add_argument(
        "--alpha", type=float, action="append", default=[], help="also list VL Norm at this alpha (repeatable)"
    )
    out = parser.add_argument_group("output")
    out.add_argument("--json", metavar="PATH", help="write the statistics as JSON")
    out.add_argument("--plot", metavar="PATH", help="write the log-log plot (PNG)")
    out.add_argument("--quiet", action="store_true", help="no progress messages on stderr")


def _emit(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def probe(args: argparse.Namespace):
    from vlnorm_verl.probe import stats
    from vlnorm_verl.probe.api import probe_model, probe_npz
    from vlnorm_verl.probe.sampling import SamplingSettings

    settings = stats.Settings(
        batch_size=args.batch_size,
        n_batches=args.batches,
        n_boot_beta=args.bootstrap,
        max_bins=args.bins,
        min_per_bin=args.min_per_bin,
        seed=args.seed,
    )
    if args.threads < 0:
        raise ProbeError(f"--threads {args.threads} must be >= 0")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    for a in args.alpha:
        if not (a >= 0):
            raise ProbeError(f"--alpha {a}: VL Norm's alpha must be >= 0")
    if args.gradients:
        if args.model or args.data or args.rollouts:
            raise ProbeError("--gradients takes no model: drop --model/--data/--rollouts")
        return probe_npz(args.gradients, settings, args.alpha)
    if not args.model:
        raise ProbeError("give --gradients FILE.npz, or --model M with --data FILE.parquet or --rollouts DIR")
    if bool(args.data) == bool(args.rollouts):
        raise ProbeError("--model needs exactly one of --data FILE.parquet (sample) or --rollouts DIR (a dump)")
    sampling = SamplingSettings(
        n=args.n,
        num_prompts=args.prompts,
        temperature=args.temperature,
        max_response_length=args.max_response_length,
        seed=args.seed,
        batch_size=args.gen_batch_size,
        chat_template=args.chat_template,
    )
    return probe_model(
        args.model,
        data=args.data,
        rollouts=args.rollouts,
        sampling=sampling,
        step=args.step,
        tokenizer=args.tokenizer,
        advantage=args.advantage,
        max_gradients=args.max_gradients,
        strata=args.strata,
        projection=args.projection,
        sketch_dim=args.sketch_dim,
        device=args.device,
        dtype=args.dtype,
        settings=settings,
        alphas=args.alpha,
        log=None if args.quiet else _emit,
    )


def run(args: argparse.Namespace) -> int:
    from vlnorm_verl.probe import report

    try:
        result = probe(args)
        text = report.markdown(result)
        if args.json:
            report.write_json(result, args.json)
        if args.plot:
            report.write_plot(result, args.plot)
    except ProbeError as exc:
        _emit(f"error: {exc}")
        return 2
    except OSError as exc:  # writing --json / --plot
        _emit(f"error: {exc}; check the --json/--plot paths")
        return 2
    sys.stdout.write(text + "\n")
    if args.json:
        _emit(f"JSON written to {args.json}")
    if args.plot:
        _emit(f"plot written to {args.plot}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (the console script calls :func:`run` through ``vlnorm_verl.launch.cli``)."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
