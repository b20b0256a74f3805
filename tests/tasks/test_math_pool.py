"""The math-verify worker pool: wall-clock limit, crash recovery, thread safety, hostile answers."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from vlnorm_verl.tasks.math.pool import MathVerifyPool, MathWorkerError
from vlnorm_verl.tasks.math.reward import score_math

pytest.importorskip("math_verify")

SLOW = "9^{9^{9^{9}}}"  # sympy would compute a 10^(3.7e8)-digit integer power


@pytest.fixture(scope="module")
def shared_pool():
    p = MathVerifyPool(size=2, timeout_s=1.0)
    yield p
    p.close()


@pytest.fixture
def pool(shared_pool):
    """The module's pool with all workers started and its counters reset."""
    shared_pool.warm()
    for key in shared_pool.stats:
        shared_pool.stats[key] = 0
    return shared_pool


def test_timeout_scores_zero_and_pool_recovers(pool):
    start = time.perf_counter()
    assert score_math(f"\\boxed{{{SLOW}}}", "5", pool=pool, timeout_s=1.0)["score"] == 0.0
    assert time.perf_counter() - start < 1.0 + 2.0  # the limit plus kill/reap slack (restart is lazy)
    assert pool.stats["timeouts"] == 1
    assert score_math("\\boxed{0.5}", "\\frac{1}{2}", pool=pool)["score"] == 1.0  # a replacement worker


def test_killed_worker_counts_as_crash_and_is_replaced(pool):
    victim = pool._idle[-1]  # the worker the next call will use (LIFO)
    result: dict = {}

    def run():
        result["r"] = pool.verify("5", SLOW, timeout_s=30.0)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.5)
    os.kill(victim.proc.pid, signal.SIGKILL)
    t.join(timeout=20)
    assert not t.is_alive()
    assert result["r"] is False
    assert pool.stats["crashes"] == 1
    assert pool.verify("\\frac{1}{2}", "0.5") is True


def test_concurrent_callers_get_their_own_answers(pool):
    pairs = [(str(i), str(i) if i % 3 else str(i + 1)) for i in range(60)]
    with ThreadPoolExecutor(max_workers=8) as ex:
        got = list(ex.map(lambda gp: pool.verify(gp[0], gp[1]), pairs))
    assert got == [i % 3 != 0 for i in range(60)]
    assert pool.verify_many(pairs) == got


def test_pool_of_one_does_not_deadlock_when_its_worker_dies():
    p = MathVerifyPool(size=1, timeout_s=0.5)
    try:
        with ThreadPoolExecutor(max_workers=3) as ex:
            futures = [ex.submit(p.verify, "5", SLOW) for _ in range(3)]
            assert [f.result(timeout=60) for f in futures] == [False, False, False]
        assert p.verify("2", "2.0") is True
    finally:
        p.close()


@pytest.mark.parametrize(
    "pred",
    [
        "\\frac{" * 400 + "1" + "}" * 400,
        "x" * 900,
        "\\boxed{" * 50 + "1",
        "\x00\x01\x02",
        "\ud800",
        "}{",
        "\\begin{matrix} 1 & 2 \\\\ 3 & 4 \\end{matrix}",
        "10^{10^{10}}",
    ],
)
def test_hostile_answers_never_raise(pool, pred):
    start = time.perf_counter()
    out = score_math(f"\\boxed{{{pred}}}", "5", pool=pool, timeout_s=1.0)
    assert out in ({"score": 0.0, "acc": 0.0}, {"score": 1.0, "acc": 1.0})
    assert out["score"] == 0.0
    assert time.perf_counter() - start < 1.0 + 3.0  # limit + kill + (possibly) a restart of the next worker


def test_long_unboxed_response_skips_symbolic_check(pool):
    start = time.perf_counter()
    assert score_math("blah " * 20_000, "5", pool=pool)["score"] == 0.0
    assert time.perf_counter() - start < 0.5
    assert pool.stats["timeouts"] == 0


def test_closed_pool_refuses_work():
    p = MathVerifyPool(size=1)
    p.close()
    with pytest.raises(MathWorkerError, match="closed"):
        p.verify("1", "1")


def test_bad_environment_settings_raise_clear_errors(monkeypatch):
    from vlnorm_verl.tasks.math import pool as math_pool

    monkeypatch.setenv("VLNORM_MATH_WORKERS", "zero")
    with pytest.raises(MathWorkerError, match="VLNORM_MATH_WORKERS"):
        math_pool.default_pool_size()
    monkeypatch.setenv("VLNORM_MATH_TIMEOUT_S", "-1")
    with pytest.raises(MathWorkerError, match="VLNORM_MATH_TIMEOUT_S"):
        math_pool.default_timeout()


def test_infrastructure_failures_raise_with_the_fix(monkeypatch):
    from vlnorm_verl.tasks.math import pool as math_pool

    monkeypatch.setattr(math_pool, "_math_verify_installed", lambda: False)
    with pytest.raises(MathWorkerError, match=r"pip install 'vlnorm-verl\[math\]'"):
        MathVerifyPool(size=1).verify("1", "1")
    monkeypatch.undo()
    monkeypatch.setattr(math_pool.sys, "executable", "/nonexistent/python")
    p = MathVerifyPool(size=1)
    with pytest.raises(MathWorkerError, match="cannot start a math-verify worker"):
        p.verify("1", "1")
    assert p._started == 0  # the failed start does not leak a slot
