"""gemm's plan: a pure query, answered before anything runs, naming the path, split and threads."""

import numpy as np
import pytest

import lamina as lm
from lamina import _core


def plan(m, n, k, ta=False, tb=False, zeros=0.0, dtype=np.float32, alpha=1.0, beta=0.0):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    if zeros:
        a[rng.random(a.shape) < zeros] = 0
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    c = np.full((m, n), 7.0, dtype)
    got = _core.gemm_plan(ta, tb, alpha, a, b, beta, c)
    assert (c == 7.0).all(), "the query must not compute"
    return got


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape,kwargs,path", [
    ((1, 512, 784), {}, "small_m"),                         # batch-1 forward
    ((10, 512, 784), {}, "small_m"),
    ((128, 512, 784), {}, "blocked"),                       # batch-128 forward, dense
    ((128, 512, 784), {"zeros": 0.7}, "sparse_rows"),       # the same on image-like inputs
    ((1024, 10, 512), {}, "narrow"),                        # the 10-unit layer's forward
    ((784, 512, 128), {"ta": True}, "blocked"),             # dW = X^T dZ
    ((4, 784, 512), {"tb": True}, "small_m_dot"),           # dX = dZ W^T at batch 4
    ((300, 1, 40), {"tb": True}, "small_m_dot"),            # n == 1: computed as C^T
    ((5, 7, 3), {"alpha": 0.0, "beta": 2.0}, "scale"),     # alpha == 0: C = beta C
])
def test_plan_names_the_path_each_shape_takes(shape, kwargs, path, dtype):
    got = plan(*shape, dtype=dtype, **kwargs)
    assert got["path"] == path, got
    assert set(got) == {"path", "split", "threads", "transposed", "kernel"}
    assert got["kernel"] == _core.gemm_kernel_name()


def test_plan_reports_the_transpose_trick_for_one_column():
    assert plan(300, 1, 40, tb=True)["transposed"] is True
    assert plan(1024, 10, 512)["transposed"] is False  # the narrow path computes C itself


def test_plan_splits_only_with_more_than_one_thread(restore_threads):
    lm.set_num_threads(1)
    one = plan(128, 512, 784)
    assert (one["threads"], one["split"]) == (1, "none")
    lm.set_num_threads(2)
    assert (plan(128, 512, 784)["threads"], plan(128, 512, 784)["split"]) == (2, "columns")  # JR
    assert (plan(2000, 512, 128)["threads"], plan(2000, 512, 128)["split"]) == (2, "rows")   # IC
    assert plan(2, 3, 4)["threads"] == 1  # too small to wake a thread


def test_forward_batch_sizes_in_the_invariance_tests_cover_every_forward_path():
    # tests/test_batch_invariance.py compares rows across these batch sizes and densities.
    paths = {plan(m, n, k, zeros=z)["path"] for m in (1, 5, 300) for n, k in ((10, 512), (70, 255), (200, 513))
             for z in (0.0, 0.7)}
    assert paths == {"small_m", "narrow", "blocked", "sparse_rows"}, paths
