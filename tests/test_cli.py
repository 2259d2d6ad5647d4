"""The ``lamina`` command: options checked before any work, --save checked before training,
Ctrl-C ends a run with one line, rc 130 and (with --save) the model of the last completed step."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import lamina as lm
from lamina import cli


def run(*args, timeout=120):
    # The child imports the lamina this test imported: the installed one, or PYTHONPATH's in a dev tree.
    return subprocess.run([sys.executable, "-m", "lamina.cli", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("option", ["--threads", "--batch-size", "--early-stopping"])
def test_zero_counts_are_rejected_naming_the_option(option, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", option, "0", "--epochs", "1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "positive integer" in err


@pytest.mark.parametrize("target", ["missing/model.lamina", "."])
def test_an_unwritable_save_path_is_refused_before_training(tmp_path, capsys, monkeypatch, target):
    monkeypatch.setattr(lm.Sequential, "fit", lambda *a, **k: pytest.fail("training started"))
    path = str(tmp_path / target)
    assert cli.main(["train", "--epochs", "1", "--verbose", "0", "--save", path]) == 2
    err = capsys.readouterr().err
    assert "--save" in err and ("does not exist" in err or "is a directory" in err)


def test_data_path_is_refused_for_the_bundled_digits(tmp_path, capsys):
    assert cli.main(["train", "--data", "digits", "--data-path", str(tmp_path), "--epochs", "1"]) == 2
    assert "--data-path is for fashion-mnist and mnist" in capsys.readouterr().err


def test_mnist_data_path_lacking_the_files_names_them_and_the_folder_without_downloading(tmp_path, capsys,
                                                                                         monkeypatch):
    monkeypatch.setattr(lm.datasets, "_download", lambda *a: pytest.fail("a download was attempted"))
    assert cli.main(["train", "--data", "mnist", "--data-path", str(tmp_path), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "train-images-idx3-ubyte.gz" in err and "t10k-labels-idx1-ubyte.gz" in err
    assert "pass path=" not in err


def test_ctrl_c_prints_one_line_saves_the_last_completed_step_and_exits_130(tmp_path):
    path = tmp_path / "run.lamina"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "lamina.cli", "train", "--epochs", "100000", "--verbose", "2",
                             "--save", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # training has started once an epoch line appears
            line = proc.stderr.readline()
            lines.append(line)
            if line.startswith("Epoch ") or not line:
                break
        assert lines[-1].startswith("Epoch "), lines
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 130, err
    extra = [line for line in err.splitlines() if not line.startswith("Epoch ")]
    assert len(extra) == 1, err
    assert "interrupted" in extra[0] and str(path) in extra[0] and "saved" in extra[0]
    model = lm.load_model(path)
    assert model.epochs_trained >= 1 and model.get_state()["iterations"] > 0
    x, _ = lm.datasets.load_digits()
    assert np.isfinite(model.predict(x / np.float32(16))).all()
