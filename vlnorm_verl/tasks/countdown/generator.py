"""Offline generator of solvable CountDown instances (the paper dataset's shape).

An instance is ``k`` numbers drawn uniformly from ``[min_number, max_number]`` (``k = 4`` with probability
``four_fraction``, else ``3``) and an integer target in ``[min_target, max_target]`` that some expression using
every number exactly once reaches *exactly* (so it also passes the reward's ``< 1e-5`` test).

Sampling: ``k`` is drawn first; then ``(numbers, target)`` are drawn uniformly and kept when solvable
(rejection sampling), so given ``k`` every solvable pair is equally likely. Only ~4% (k = 3) and ~14% (k = 4) of
uniform pairs are solvable, so the solvability test is the hot path: a subset dynamic programme over the
numbers with float values keeps one witness per value, and the top split is searched with inverse operations
(``b = t - a``, ``a - t``, ``t + a``, ``t / a``, ``t * a``, ``a / t``) and a sorted-array lookup instead of
enumerating every result. The candidate witness is rebuilt as a string and re-checked with the reward's own
exact rules (:func:`vlnorm_verl.tasks.countdown.reward.judge_expression`), so every row's reference solution
scores 1 and no float artefact can make an unsolvable instance pass.

Determinism: work is split into fixed-size chunks, chunk ``c`` uses its own ``random.Random`` seeded from
``(seed, c)``; chunks are concatenated in order and duplicates (same sorted numbers and target) are dropped,
keeping the first. The result therefore depends only on the seed and the sizes, never on the worker count.
"""

from __future__ import annotations

import bisect
import concurrent.futures as cf
import multiprocessing as mp
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction

from vlnorm_verl.tasks.countdown.reward import judge_expression

CHUNK_SIZE = 256
MAX_DRAWS = 100_000  # per instance; the default spec needs ~7-28 draws on average
_EPS = 1e-9


@dataclass(frozen=True)
class GeneratorSpec:
    """The instance distribution: number count, number range and target range."""

    min_number: int = 1
    max_number: int = 99
    min_target: int = 10
    max_target: int = 100
    four_fraction: float = 0.5

    def validate(self) -> None:
        if not 1 <= self.min_number <= self.max_number:
            raise ValueError(f"need 1 <= min_number <= max_number, got {self.min_number}..{self.max_number}")
        if not self.min_target <= self.max_target:
            raise ValueError(f"need min_target <= max_target, got {self.min_target}..{self.max_target}")
        if not 0.0 <= self.four_fraction <= 1.0:
            raise ValueError(f"four_fraction must be in [0, 1], got {self.four_fraction}")


@dataclass(frozen=True)
class Instance:
    """One CountDown instance with a reference solution that uses every number once."""

    numbers: tuple[int, ...]
    target: int
    solution: str

    @property
    def key(self) -> tuple[tuple[int, ...], int]:
        """Identity used for de-duplication: the sorted numbers and the target."""
        return tuple(sorted(self.numbers)), self.target


# A witness is (op, left_value, left_mask, right_value, right_mask), or None for a single number.
Witness = tuple[str, float, int, float, int] | None


def _combine_into(out: dict, left: dict, lmask: int, right: dict, rmask: int) -> None:
    """Add every ``a op b`` (both orders for ``-`` and ``/``) to ``out`` with its witness."""
    for a in left:
        for b in right:
            out.setdefault(a + b, ("+", a, lmask, b, rmask))
            out.setdefault(a * b, ("*", a, lmask, b, rmask))
            out.setdefault(a - b, ("-", a, lmask, b, rmask))
            out.setdefault(b - a, ("-", b, rmask, a, lmask))
            if b != 0.0:
                out.setdefault(a / b, ("/", a, lmask, b, rmask))
            if a != 0.0:
                out.setdefault(b / a, ("/", b, rmask, a, lmask))


def _near(sorted_keys: list[float], x: float) -> list[float]:
    """The stored values within a relative ``_EPS`` of ``x`` (usually zero or one)."""
    tol = _EPS * max(1.0, abs(x))
    i = bisect.bisect_left(sorted_keys, x - tol)
    j = bisect.bisect_right(sorted_keys, x + tol, lo=i)
    return sorted_keys[i:j]


def _split_witnesses(t: float, left: dict, lmask: int, right_keys: list[float], rmask: int) -> Iterator[Witness]:
    """Candidate witnesses of ``t = a op b`` with ``a`` in ``left``, ``b`` in ``right_keys`` (inverse ops)."""
    for a in left:
        # t = a + b | t = a - b | t = b - a | t = a * b | t = b / a | t = a / b
        for b in _near(right_keys, t - a):
            yield ("+", a, lmask, b, rmask)
        for b in _near(right_keys, a - t):
            yield ("-", a, lmask, b, rmask)
        for b in _near(right_keys, t + a):
            yield ("-", b, rmask, a, lmask)
        if a != 0.0:
            for b in _near(right_keys, t / a):
                yield ("*", a, lmask, b, rmask)
            for b in _near(right_keys, t * a):
                yield ("/", b, rmask, a, lmask)
        if t != 0.0:
            for b in _near(right_keys, a / t):
                if b != 0.0:
                    yield ("/", a, lmask, b, rmask)


def _expr(numbers: tuple[int, ...], tables: dict[int, dict], mask: int, value: float) -> str:
    witness = tables[mask][value]
    if witness is None:
        return str(numbers[mask.bit_length() - 1])
    op, a, amask, b, bmask = witness
    return f"({_expr(numbers, tables, amask, a)} {op} {_expr(numbers, tables, bmask, b)})"


def _table(numbers: tuple[int, ...], tables: dict[int, dict], mask: int) -> dict:
    """Values reachable using exactly the numbers in ``mask`` (memoised in ``tables``)."""
    table = tables.get(mask)
    if table is None:
        if mask & (mask - 1) == 0:
            table = {float(numbers[mask.bit_length() - 1]): None}
        else:
            table = {}
            sub = (mask - 1) & mask
            while sub:
                other = mask ^ sub
                if sub < other:
                    _combine_into(table, _table(numbers, tables, sub), sub, _table(numbers, tables, other), other)
                sub = (sub - 1) & mask
        tables[mask] = table
    return table


def find_solution(numbers: tuple[int, ...], target: int) -> str | None:
    """An expression using every number once whose value is exactly ``target``, or ``None``.

    Float search with inverse-operation lookups at the top split (cheap splits first, early exit), then the
    candidate is re-checked exactly with the reward's own rules, so a returned solution always scores 1.
    """
    n = len(numbers)
    if n == 0:
        return None
    if n == 1:
        return str(numbers[0]) if numbers[0] == target else None
    full = (1 << n) - 1
    tables: dict[int, dict] = {}
    splits = []
    sub = (full - 1) & full
    while sub:
        other = full ^ sub
        if sub < other:
            splits.append((sub, other))
        sub = (sub - 1) & full
    # balanced splits first: they need the smallest tables
    splits.sort(key=lambda so: max(bin(so[0]).count("1"), bin(so[1]).count("1")))
    t = float(target)
    for lmask, rmask in splits:
        left, right = _table(numbers, tables, lmask), _table(numbers, tables, rmask)
        if len(left) > len(right):
            left, right, lmask, rmask = right, left, rmask, lmask
        for op, a, amask, b, bmask in _split_witnesses(t, left, lmask, sorted(right), rmask):
            solution = f"{_expr(numbers, tables, amask, a)} {op} {_expr(numbers, tables, bmask, b)}"
            if judge_expression(solution, Fraction(target), numbers):
                return solution
    return None


def sample_instance(rng: random.Random, spec: GeneratorSpec) -> Instance:
    """Draw one solvable instance: ``k`` first, then uniform ``(numbers, target)`` until solvable."""
    k = 4 if rng.random() < spec.four_fraction else 3
    for _ in range(MAX_DRAWS):
        numbers = tuple(rng.randint(spec.min_number, spec.max_number) for _ in range(k))
        target = rng.randint(spec.min_target, spec.max_target)
        solution = find_solution(numbers, target)
        if solution is not None:
            return Instance(numbers=numbers, target=target, solution=solution)
    raise ValueError(f"no solvable {k}-number instance in {MAX_DRAWS} draws: widen the number or target range ({spec})")


def generate_chunk(seed: int, chunk: int, size: int, spec: GeneratorSpec) -> list[Instance]:
    """``size`` instances from the chunk's own RNG (seeded from ``seed`` and ``chunk`` only)."""
    rng = random.Random(f"vlnorm-verl/countdown/{seed}/{chunk}")
    return [sample_instance(rng, spec) for _ in range(size)]


def _chunk_worker(args: tuple[int, int, int, GeneratorSpec]) -> list[Instance]:
    return generate_chunk(*args)


def generate_instances(
    total: int,
    seed: int = 0,
    spec: GeneratorSpec | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Instance]:
    """``total`` distinct solvable instances, deterministic in ``seed`` (independent of ``workers``).

    ``progress(n)`` is called with the number of newly accepted rows as chunks finish.
    """
    spec = spec or GeneratorSpec()
    spec.validate()
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    workers = max(1, workers if workers is not None else min(os.cpu_count() or 1, 8))
    result: list[Instance] = []
    seen: set = set()
    next_chunk = 0
    executor: cf.Executor | None = None
    try:
        while len(result) < total:
            missing = total - len(result)
            n_chunks = max(1, -(-int(missing * 1.02) // CHUNK_SIZE))
            jobs = [(seed, next_chunk + i, CHUNK_SIZE, spec) for i in range(n_chunks)]
            next_chunk += n_chunks
            if workers > 1 and n_chunks > 1 and executor is None:
                executor = cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
            chunks = executor.map(_chunk_worker, jobs) if executor is not None else map(_chunk_worker, jobs)
            for chunk in chunks:
                before = len(result)
                for inst in chunk:
                    if len(result) >= total:
                        break
                    if inst.key not in seen:
                        seen.add(inst.key)
                        result.append(inst)
                if progress is not None:
                    progress(len(result) - before)
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    return result
