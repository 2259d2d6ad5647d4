"""The core pieces data-parallel training stands on, checked in one process: a zero-row step
still runs the hook and the update (with the penalty's gradient alone), the ranks' gradients
weighted by their share of the global batch sum to the big batch's gradient with the penalty
counted once, and a dropout row offset draws the masks of those rows of a larger batch."""

import numpy as np
import pytest

import lamina as lm


def _model(dtype="float64", dropout=0.0, l2=1e-2, optimizer="sgd"):
    layers = [lm.layers.Dense(9, activation="tanh", input_shape=(4,), kernel_regularizer=lm.regularizers.L2(l2))]
    if dropout:
        layers.append(lm.layers.Dropout(dropout))
    layers.append(lm.layers.Dense(2))
    model = lm.Sequential(layers, seed=3, dtype=dtype)
    model.compile(optimizer, "mse")
    return model


def _data(rows, dtype="float64"):
    rng = np.random.default_rng(5)
    return rng.standard_normal((rows, 4)).astype(dtype), rng.standard_normal((rows, 2)).astype(dtype)


def _gradients_of_one_step(model, x, y, first=0, batch_size=None, steps=1, empty_steps=False):
    seen = []
    model.set_gradient_hook(lambda g, step: seen.append(g.copy()))
    stats = lm._core.BatchStats()
    model._net.train_batches(stats, x, y, None, first, batch_size or len(x), steps, empty_steps=empty_steps)
    return seen, stats


def _penalty_gradient(model):
    """The L2 term's gradient 2 * l2 * W on the first kernel, zero elsewhere."""
    out = np.zeros(model.count_params())
    kernel = model.layers[0].get_weights()[0]
    out[:kernel.size] = 2 * 1e-2 * kernel.ravel()
    return out


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_zero_row_step_calls_the_hook_with_the_penalty_gradient_and_updates(optimizer):
    x, y = _data(3)
    model = _model(optimizer=optimizer)
    model.train_on_batch(x, y)  # optimizer state to move with
    penalty = _penalty_gradient(model)
    before = model.get_state()
    seen, stats = _gradients_of_one_step(model, x, y, first=3, batch_size=3, empty_steps=True)
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], penalty)
    assert stats.samples == 0 and stats.loss_sum == 0.0 and stats.batches == 1
    after = model.get_state()
    assert after["iterations"] == before["iterations"] + 1 and after["steps"] == before["steps"] + 1
    assert not np.array_equal(after["params"], before["params"])  # the penalty's step was taken


def test_without_empty_steps_a_batch_past_the_end_is_not_taken():
    x, y = _data(3)
    model = _model()
    seen, stats = _gradients_of_one_step(model, x, y, first=3, batch_size=3)
    assert seen == [] and stats.batches == 0 and model._net.iterations == 0


def test_a_zero_row_step_without_a_hook_takes_the_penalty_step_as_the_hooked_one_does():
    x, y = _data(3)
    hooked, plain = _model(), _model()
    _gradients_of_one_step(hooked, x, y, first=3, batch_size=3, empty_steps=True)
    plain._net.train_batches(lm._core.BatchStats(), x, y, None, 3, 3, 1, empty_steps=True)
    np.testing.assert_array_equal(plain.get_state()["params"], hooked.get_state()["params"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rows", [(4, 4), (4, 1), (3, 0)])
def test_shares_of_the_ranks_gradients_sum_to_the_big_batch_gradient_with_the_penalty_once(dtype, rows):
    x, y = _data(sum(rows), dtype)
    whole, _ = _gradients_of_one_step(_model(dtype), x, y)
    total, start = np.zeros_like(whole[0], dtype=np.float64), 0
    for n in rows:
        part = _model(dtype)
        seen, _ = _gradients_of_one_step(part, x[start:start + n] if n else x[:1], y[start:start + n] if n else y[:1],
                                         first=0 if n else 1, batch_size=max(n, 1), empty_steps=True)
        total += n / sum(rows) * seen[0].astype(np.float64)
        start += n
    tol = 1e-13 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(total, whole[0], rtol=tol, atol=tol)


def test_dropout_row_offset_draws_the_masks_of_those_rows_of_the_larger_batch():
    x, y = _data(8)
    whole, _ = _gradients_of_one_step(_model(dropout=0.5), x, y)
    total = np.zeros_like(whole[0])
    for rank in range(2):
        part = _model(dropout=0.5)
        part._net.dropout_row_offset = 4 * rank
        seen, _ = _gradients_of_one_step(part, x[4 * rank:4 * rank + 4], y[4 * rank:4 * rank + 4])
        total += 0.5 * seen[0]
    np.testing.assert_allclose(total, whole[0], rtol=1e-13, atol=1e-15)
    shifted, unshifted = _model(dropout=0.5), _model(dropout=0.5)
    shifted._net.dropout_row_offset = 4
    assert not np.allclose(_gradients_of_one_step(shifted, x[4:], y[4:])[0][0],
                           _gradients_of_one_step(unshifted, x[4:], y[4:])[0][0])


def test_dropout_row_offset_rejects_a_negative_value():
    with pytest.raises(ValueError, match="dropout_row_offset must be in"):
        _model()._net.dropout_row_offset = -1
