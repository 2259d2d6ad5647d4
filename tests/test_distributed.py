"""Data-parallel training over MPI: ranks launched with mpiexec (tests/_mpi_scenarios.py) give the
weights and metrics of one process training on the ranks' batches side by side, replicas stay
bit-identical, a setup mismatch is one clear error on every rank, and a failing or killed rank
ends the whole job within seconds."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import lamina as lm

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import _mpi_scenarios as scenarios  # noqa: E402

LAUNCH_TIMEOUT = 60


def _command(ranks, *args, threads="1"):
    """The mpiexec command line and environment for ranks running `python args` (threads: their
    OMP_NUM_THREADS, or None to let lm.distributed.init choose)."""
    pytest.importorskip("mpi4py", reason='distributed training needs mpi4py: pip install "lamina[mpi]"')
    try:
        mpiexec = lm.distributed.launcher()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(lm.__file__).parent.parent), os.environ.get("PYTHONPATH", "")]))
    env.pop("OMP_NUM_THREADS", None)
    if threads is not None:
        env["OMP_NUM_THREADS"] = threads
    return [mpiexec, "-n", str(ranks), sys.executable, *args], env


def _mpiexec(ranks, *args, timeout=LAUNCH_TIMEOUT, threads="1"):
    command, env = _command(ranks, *args, threads=threads)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    return done, time.perf_counter() - started


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One launch of every training scenario on 2 ranks; its output folder."""
    out = tmp_path_factory.mktemp("mpi")
    done, _ = _mpiexec(2, str(HERE / "_mpi_scenarios.py"), str(out), "train", threads=None)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def _result(out, name, rank):
    with open(out / f"{name}-rank{rank}.json") as f:
        history = json.load(f)
    return np.load(out / f"{name}-rank{rank}.npz")["params"], history


def _one_process(name):
    """What a single process gets training on batches that are the ranks' batch j side by side."""
    config = scenarios.SCENARIOS[name]
    x, y, where = scenarios.shards(config, 2)
    b = scenarios.BATCH
    steps = max(-(-(stop - start) // b) for start, stop in where)

    def batches(epoch):
        """Step j's rows: each rank's batch j of its shard, in its (seed, epoch, rank) order when shuffled."""
        orders = [np.arange(start, stop) for start, stop in where]
        if config.get("shuffle"):
            orders = [rows[lm._core.shuffled_order(len(rows), (10 + rank * lm.distributed._RANK_SEED_STRIDE) % 2**64,
                                                   epoch)] for rank, rows in enumerate(orders)]
        return [np.concatenate([rows[j * b:(j + 1) * b] for rows in orders]) for j in range(steps)]

    m = scenarios.model(config, seed=10)
    val = scenarios.data(16, seed=2) if config.get("validation") else None
    if not config.get("shuffle") and all(len(rows) == 2 * b for rows in batches(0)):  # fit itself: metrics too
        order = np.concatenate(batches(0))
        h = m.fit(x[order], y[order], batch_size=2 * b, epochs=config["epochs"], shuffle=False, verbose=0,
                  validation_data=val)
        return m.get_state()["params"], h.history
    for epoch in range(config["epochs"]):
        for rows in batches(epoch):
            m.train_on_batch(x[rows], y[rows])
    return m.get_state()["params"], None


def _relative(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("name", ["adam_l2_validation", "sgd_momentum_clipnorm_dropout",
                                  "rmsprop_uneven_zero_row_step", "adam_float32", "adam_shuffled"])
def test_two_ranks_give_one_process_weights_on_the_side_by_side_batches(trained, name):
    got, _ = _result(trained, name, 0)
    want, _ = _one_process(name)
    tolerance = 1e-12 if scenarios.SCENARIOS[name].get("dtype", "float64") == "float64" else 1e-5
    assert _relative(got, want) <= tolerance


@pytest.mark.parametrize("name", list(scenarios.SCENARIOS))
def test_replicas_end_bit_identical(trained, name):
    np.testing.assert_array_equal(_result(trained, name, 0)[0], _result(trained, name, 1)[0])


def test_global_training_and_validation_metrics_equal_the_single_process_ones(trained):
    want = _one_process("adam_l2_validation")[1]
    for rank in (0, 1):
        got = _result(trained, "adam_l2_validation", rank)[1]
        assert sorted(got) == sorted(want) == ["accuracy", "loss", "val_accuracy", "val_loss"]
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=0)


def test_early_stopping_and_lr_plateaus_act_alike_on_every_rank_and_only_rank_0_writes_files(trained):
    runs = [json.loads((trained / f"stopping-rank{r}.json").read_text()) for r in (0, 1)]
    assert runs[0] == runs[1] and runs[0]["epochs"] == 2 and runs[0]["stopped_epoch"] == 1
    assert runs[0]["learning_rate"] == pytest.approx(0.005)  # halved once, on both
    assert (trained / "checkpoint-rank0.lamina").exists() and (trained / "log-rank0.csv").exists()
    assert not (trained / "checkpoint-rank1.lamina").exists() and not (trained / "log-rank1.csv").exists()


def test_a_setup_mismatch_raises_the_same_error_on_every_rank_before_any_step(trained):
    runs = [json.loads((trained / f"mismatch-rank{r}.json").read_text()) for r in (0, 1)]
    assert runs[0]["messages"][0] == runs[1]["messages"][0]
    assert "rank 1 disagrees with rank 0 on batch_size" in runs[0]["messages"][0]
    assert runs[0]["iterations"] == runs[1]["iterations"] == 0


def test_arguments_refused_on_one_rank_raise_on_every_rank_instead_of_hanging(trained):
    on_0, on_1 = (json.loads((trained / f"mismatch-rank{r}.json").read_text())["messages"][1] for r in (0, 1))
    assert on_1.startswith("x contains NaN or infinity")
    assert on_0 == f"distributed fit: rank 1 refused its fit arguments (ValueError: {on_1}); every rank stops"


@pytest.mark.parametrize("how", ["raise", "kill"])
def test_a_failing_rank_ends_the_whole_job_within_seconds(tmp_path, how):
    done, seconds = _mpiexec(2, str(HERE / "_mpi_scenarios.py"), str(tmp_path), how, timeout=30)
    assert done.returncode != 0
    assert seconds < 10
    if how == "raise":
        assert "rank 1 of 2 failed" in done.stderr and "a failure on rank 1 in epoch 2" in done.stderr


def test_ctrl_c_on_the_launcher_stops_every_rank_within_seconds(tmp_path):
    command, env = _command(2, str(HERE / "_mpi_scenarios.py"), str(tmp_path), "run")
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        job = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.perf_counter() + LAUNCH_TIMEOUT
        while not (tmp_path / "started").exists():
            assert job.poll() is None and time.perf_counter() < deadline, log.read_text()
            time.sleep(0.05)
        time.sleep(0.3)  # into the steps
        started = time.perf_counter()
        job.send_signal(signal.SIGINT)
        job.wait(timeout=10)
        assert time.perf_counter() - started < 10 and job.returncode != 0
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()


def test_three_oversubscribed_ranks_with_uneven_shards_stay_identical(tmp_path):
    done, _ = _mpiexec(3, str(HERE / "_mpi_scenarios.py"), str(tmp_path), "rmsprop_uneven_zero_row_step")
    assert done.returncode == 0, done.stderr
    params = [np.load(tmp_path / f"rmsprop_uneven_zero_row_step-rank{r}.npz")["params"] for r in range(3)]
    np.testing.assert_array_equal(params[0], params[1])
    np.testing.assert_array_equal(params[0], params[2])


def test_each_rank_takes_its_share_of_the_host_cores_and_build_info_says_so(trained):
    for rank in (0, 1):
        got = json.loads((trained / f"setup-rank{rank}.json").read_text())
        threads = max(1, (os.cpu_count() or 1) // 2)
        assert got["build_info"] == {"rank": rank, "size": 2, "local_size": 2, "threads_per_rank": threads}
        assert got["threads"] == threads
        assert "comm must be an mpi4py intracommunicator" in got["refused"]


class _Comm:
    def __init__(self, rank, size):
        self.rank, self.size = rank, size

    def Get_rank(self):  # mpi4py's name
        return self.rank

    def Get_size(self):
        return self.size


@pytest.mark.parametrize("rows", [7, 2, 9])
def test_shard_splits_the_rows_into_contiguous_blocks_differing_by_at_most_one(rows):
    x, y = np.arange(rows * 2).reshape(rows, 2), np.arange(rows)
    parts = [lm.distributed.Context(_Comm(r, 3), 1, 1).shard(x, y) for r in range(3)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), x)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), y)
    sizes = [len(p[1]) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError, match="same number of rows"):
        lm.distributed.Context(_Comm(0, 3), 1, 1).shard(x, y[:-1])


def test_init_without_mpi4py_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r'pip install "lamina\[mpi\]"'):
        lm.distributed.init()


def test_fit_rejects_a_distributed_value_that_is_not_a_context():
    m = scenarios.model(scenarios.SCENARIOS["adam_float32"], seed=0)
    with pytest.raises(TypeError, match="distributed must be the context"):
        m.fit(*scenarios.data(8, seed=0), epochs=1, verbose=0, distributed="mpi")


def test_the_cli_trains_distributed_printing_and_saving_on_rank_0_only(tmp_path):
    done, _ = _mpiexec(2, "-m", "lamina.cli", "train", "--distributed", "--epochs", "2", "--verbose", "0",
                       "--save", str(tmp_path / "digits.lamina"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("test accuracy") == 1 and "distributed over 2 ranks, batch size 32 per rank" in done.stdout
    model = lm.load_model(tmp_path / "digits.lamina")
    assert model.epochs_trained == 2
