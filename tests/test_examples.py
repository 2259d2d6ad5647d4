"""Runs each script in examples/ in a subprocess, in its quick mode, and checks what it prints.

The examples teach one lesson each; these tests check that the lesson still shows (a passing and
a failing gradient check, the bias sweep's minimum found by gradient descent, ...), not exact
numbers. The subprocesses run with OMP_NUM_THREADS=1: results are identical for any thread count,
and one thread keeps these small-batch runs fast when the machine is shared.
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(not FASHION.is_dir(), reason=f"Fashion-MNIST not installed in {FASHION}")
needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib not installed")


def run(script, *args, timeout=120):
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=EXAMPLES.parent)
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def row(output, start):
    """The numbers on the output line that starts with `start` (after stripping)."""
    for line in output.splitlines():
        if line.strip().startswith(start):
            rest = line.strip()[len(start):]
            return [float(v) for v in re.findall(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?|nan", rest)]
    raise AssertionError(f"no line starting with {start!r} in:\n{output}")


def test_ice_cream_regression_finds_the_sweep_minimum(tmp_path):
    plot_args = ["--plot-dir", str(tmp_path)] if importlib.util.find_spec("matplotlib") else []
    out = run("ice_cream_regression.py", *plot_args)
    sweep = float(re.search(r"sweep minimum: bias = ([\d.]+)", out).group(1))
    gd = float(re.search(r"gradient descent lands at w = [\d.]+, bias = ([\d.]+)", out).group(1))
    assert abs(gd - sweep) <= 0.1 and "same" in out
    # The sweep is a parabola: the MSE falls to the minimum and rises after it.
    mses = [float(m) for m in re.findall(r"->  MSE\s+([\d.]+)", out)]
    assert mses[0] > mses[3] < mses[-1]
    if plot_args:
        assert (tmp_path / "ice_cream_bias_sweep.png").stat().st_size > 0


def test_gradient_checking_passes_then_fails():
    out = run("gradient_checking.py")
    verdicts = re.findall(r"difference = ([\d.e+-]+) -> (passed|FAILED)", out)
    assert [v for _, v in verdicts] == ["passed", "passed", "FAILED", "FAILED"]
    assert float(verdicts[1][0]) < 1e-8          # eps=1e-5: ~1e-10
    assert float(verdicts[2][0]) > 1e-2          # the factor-0.5 bug
    assert "hidden/kernel[" in out               # the worst parameters name the broken layer


def test_batch_vs_online():
    out = run("batch_vs_online.py", "--epochs", "5")
    full, mini, online = row(out, "full batch"), row(out, "minibatch"), row(out, "online")
    # (batch size) updates time ms/epoch train-loss dev-accuracy
    assert (full[1], mini[1], online[1]) == (5, 5 * 40, 5 * 1258)
    assert full[-1] < 0.5 < mini[-1] and online[-1] > 0.9


def test_bias_variance_diagnosis():
    out = run("bias_variance.py", "--quick")
    assert "high bias" in next(l for l in out.splitlines() if l.startswith("one linear neuron"))
    assert "high variance" in next(l for l in out.splitlines() if l.startswith("2x128 ReLU"))
    big_dev = row(out, "2x128 ReLU")[2]                    # numbers: epochs, train, dev, train-Bayes, dev-train
    for fix in ("2x128 + L2(0.1)", "2x128 + Dropout(0.1)", "2x128 + EarlyStopping", "2x128, 10x the data"):
        assert row(out, fix)[2] < big_dev, fix               # dev error below the unregularized one's
    assert row(out, "2x128 + EarlyStopping")[1] < 1000     # stopped early


def test_normalizing_inputs():
    out = run("normalizing_inputs.py", "--epochs", "10")
    standardized = row(out, "standardized")
    assert "converged" in next(l for l in out.splitlines() if l.startswith("standardized"))
    raw_dev = [float(l.split()[5]) for l in out.splitlines() if l.startswith("raw ")]
    assert len(raw_dev) == 4 and standardized[-1] < 0.5 and all(d > 10 * standardized[-1] for d in raw_dev)


def test_initialization_vanishing_and_exploding():
    out = run("initialization.py", "--epochs", "3")
    for act in ("tanh", "relu"):
        good = row(out, f"{act}, glorot_normal (right)" if act == "tanh" else f"{act}, he_normal (right)")
        small, large = row(out, f"{act}, normal, std 0.01 (too small)"), row(out, f"{act}, normal, std 1.0 (too large)")
        # numbers: std of a1, a5, a10, |dW1|, |dW10|, loss ep1, loss last, dev acc
        assert 0.1 < good[3] / good[4] < 10 and good[-1] > 0.6          # gradients of the same size, learns
        assert small[3] < 1e-6 and small[-1] < 0.2                         # vanishes, does not learn
        assert large[-1] < 0.3                                             # explodes or thrashes
    assert row(out, "relu, normal, std 1.0 (too large)")[2] > 1e6            # activation std at layer 10


@needs_fashion
def test_mnist_keras_style_quick():
    out = run("mnist_keras_style.py", "--quick")                 # 1 epoch on 10,000 images: ~0.7
    assert float(re.search(r"test accuracy: ([\d.]+)", out).group(1)) > 0.6


@needs_fashion
def test_fashion_mnist_augmented_trains_with_augmentation_and_normalization_quick():
    out = run("fashion_mnist_augmented.py", "--quick")          # 2 epochs on 10,000 images, small network: ~0.77
    assert float(re.search(r"test accuracy: ([\d.]+)", out).group(1)) > 0.7


@needs_fashion
def test_fashion_mnist_regularized_quick(tmp_path):
    plot_args = ["--plot-dir", str(tmp_path)] if importlib.util.find_spec("matplotlib") else []
    out = run("fashion_mnist_regularized.py", "--quick", *plot_args)
    assert "kept epoch" in out and "val_loss" in out
    assert float(re.search(r"test accuracy: ([\d.]+)", out).group(1)) > 0.75
    if plot_args:
        assert (tmp_path / "fashion_mnist_regularized.png").stat().st_size > 0


def test_imbalanced_classes_class_weight_raises_minority_recall():
    out = run("imbalanced_classes.py", "--quick")
    plain, weighted = row(out, "unweighted"), row(out, "class_weight balanced")
    # accuracy, recall 0, recall 1, precision 1
    assert plain[2] < 0.5 < weighted[2]        # the rare class is found far more often
    assert plain[0] > weighted[0]              # at some cost in plain accuracy


@needs_fashion
def test_data_augmentation_shrinks_the_overfitting_gap_quick(tmp_path):
    plot_args = ["--plot-dir", str(tmp_path)] if importlib.util.find_spec("matplotlib") else []
    out = run("data_augmentation.py", "--quick", *plot_args)     # 6 epochs on 3,000 images, twice
    gaps = re.search(r"plain ([+-][\d.]+), augmented ([+-][\d.]+): shrinks", out)
    assert gaps, out
    assert float(gaps.group(2)) < float(gaps.group(1))
    if plot_args:
        assert (tmp_path / "data_augmentation.png").stat().st_size > 0
