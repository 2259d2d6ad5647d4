"""lamina.data: train/dev/test splitting and the Standardizer."""

import io
import json

import numpy as np
import pytest

import lamina as lm

split = lm.data.train_dev_test_split
Standardizer = lm.data.Standardizer


def _sizes(parts):
    return tuple(len(x) for x, _ in parts)


# --------------------------------------------------------------------------------------
# train_dev_test_split
# --------------------------------------------------------------------------------------


def test_split_parts_are_disjoint_cover_every_sample_and_keep_x_y_pairs():
    x = np.arange(50).reshape(25, 2)
    y = np.arange(25) * 10
    parts = split(x, y, seed=0)
    xs = np.concatenate([p[0] for p in parts])
    ys = np.concatenate([p[1] for p in parts])
    np.testing.assert_array_equal(np.sort(ys), y)
    np.testing.assert_array_equal(xs[:, 0] // 2 * 10, ys)  # each row still sits next to its label


def test_split_sizes_follow_ratios_and_add_up_to_every_sample():
    x = np.zeros((101, 3))
    assert _sizes(split(x, np.zeros(101), seed=0)) == (61, 20, 20)
    assert _sizes(split(x, np.zeros(101), ratios=(0.7, 0.15, 0.15), seed=0)) == (71, 15, 15)
    assert _sizes(split(x, np.zeros(101), ratios=(1.0, 0.0, 0.0), seed=0)) == (101, 0, 0)


def test_split_gives_each_split_with_a_positive_ratio_at_least_one_sample():
    assert _sizes(split(np.arange(3), np.arange(3), seed=0)) == (1, 1, 1)
    assert _sizes(split(np.arange(4), np.arange(4), ratios=(0.9, 0.05, 0.05), seed=0)) == (2, 1, 1)


def test_split_with_sizes_takes_exact_counts_and_leaves_the_rest_out():
    x = np.arange(100)
    parts = split(x, x, sizes=(10, 5, 3), seed=1)
    assert _sizes(parts) == (10, 5, 3)
    used = np.concatenate([p[0] for p in parts])
    assert len(np.unique(used)) == 18


def test_split_is_reproducible_with_a_seed_and_varies_without_one():
    x = np.arange(200)
    first = split(x, x, seed=123)
    again = split(x, x, seed=123)
    other = split(x, x, seed=124)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(first[0][0], other[0][0])
    assert not np.array_equal(split(x, x)[0][0], split(x, x)[0][0])


def test_split_accepts_a_numpy_generator_as_seed():
    x = np.arange(30)
    a = split(x, x, seed=np.random.default_rng(5))
    b = split(x, x, seed=np.random.default_rng(5))
    np.testing.assert_array_equal(a[2][0], b[2][0])


def test_split_without_shuffle_keeps_the_original_order():
    x = np.arange(10)
    (x_tr, _), (x_dev, _), (x_te, _) = split(x, x, shuffle=False)
    np.testing.assert_array_equal(np.concatenate([x_tr, x_dev, x_te]), x)
    np.testing.assert_array_equal(x_tr, np.arange(6))


def test_split_keeps_sample_shape_and_dtype_and_accepts_lists():
    x = np.zeros((20, 28, 28), dtype=np.uint8)
    (x_tr, y_tr), _, _ = split(x, list(range(20)), seed=0)
    assert x_tr.shape == (12, 28, 28) and x_tr.dtype == np.uint8
    assert isinstance(y_tr, np.ndarray)


def test_stratified_split_keeps_class_proportions_in_every_split():
    y = np.repeat([0, 1, 2], [350, 100, 50])  # imbalanced 70/20/10
    x = np.arange(len(y))
    for seed in range(20):
        parts = split(x, y, ratios=(0.6, 0.3, 0.1), stratify=y, seed=seed)
        for (_, y_part), ratio in zip(parts, (0.6, 0.3, 0.1)):
            ideal = np.array([350, 100, 50]) * ratio
            assert np.abs(np.bincount(y_part, minlength=3) - ideal).max() < 2


def test_stratified_split_with_sizes_samples_classes_proportionally():
    y = np.repeat([0, 1], [900, 100])
    parts = split(y, y, sizes=(100, 50, 50), stratify=y, seed=3)
    assert _sizes(parts) == (100, 50, 50)
    assert abs(np.sum(parts[0][1] == 1) - 10) < 2
    assert abs(np.sum(parts[1][1] == 1) - 5) < 2


def test_stratified_split_accepts_one_hot_labels():
    labels = np.repeat([0, 1], [80, 20])
    one_hot = lm.utils.to_categorical(labels)
    parts = split(labels, one_hot, stratify=one_hot, seed=0)
    assert abs(np.sum(parts[0][1][:, 1]) - 12) < 2


def test_stratified_split_is_reproducible_with_a_seed():
    y = np.repeat([0, 1, 2], 30)
    a = split(np.arange(90), y, stratify=y, seed=9)
    b = split(np.arange(90), y, stratify=y, seed=9)
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(pa[0], pb[0])


def test_split_rejects_x_and_y_of_different_lengths():
    with pytest.raises(ValueError, match=r"len\(x\)=10 and len\(y\)=9"):
        split(np.zeros(10), np.zeros(9))


def test_split_rejects_ratios_that_do_not_sum_to_one():
    with pytest.raises(ValueError, match=r"ratios must sum to 1, received ratios=\(0\.5, 0\.2, 0\.2\)"):
        split(np.zeros(10), np.zeros(10), ratios=(0.5, 0.2, 0.2))


def test_split_tolerates_floating_point_rounding_in_ratios():
    assert sum(_sizes(split(np.zeros(10), np.zeros(10), ratios=(0.7, 0.2, 0.1 + 1e-12)))) == 10


def test_split_rejects_negative_ratios():
    with pytest.raises(ValueError, match=r"must not be negative, received ratios=\(1\.2, -0\.2, 0\.0\)"):
        split(np.zeros(10), np.zeros(10), ratios=(1.2, -0.2, 0.0))


@pytest.mark.parametrize("bad", [(0.5, 0.5), "0.6,0.2,0.2", (0.6, None, 0.4), 1.0])
def test_split_rejects_ratios_that_are_not_three_numbers(bad):
    with pytest.raises(TypeError, match="ratios"):
        split(np.zeros(10), np.zeros(10), ratios=bad)


def test_split_rejects_too_few_samples_for_the_requested_splits():
    with pytest.raises(ValueError, match=r"too few samples: 2 cannot fill 3"):
        split(np.zeros(2), np.zeros(2))


def test_split_rejects_sizes_larger_than_the_dataset():
    with pytest.raises(ValueError, match=r"sizes add up to 12, more than the 10 samples.*sizes=\(8, 2, 2\)"):
        split(np.zeros(10), np.zeros(10), sizes=(8, 2, 2))


def test_split_rejects_negative_or_non_integer_sizes():
    with pytest.raises(ValueError, match=r"sizes=\(5, -1, 2\)"):
        split(np.zeros(10), np.zeros(10), sizes=(5, -1, 2))
    with pytest.raises(TypeError, match=r"sizes=\(5, 1\.5, 2\)"):
        split(np.zeros(10), np.zeros(10), sizes=(5, 1.5, 2))


def test_split_rejects_both_ratios_and_sizes():
    with pytest.raises(TypeError, match="either ratios or sizes"):
        split(np.zeros(10), np.zeros(10), ratios=(0.8, 0.1, 0.1), sizes=(5, 2, 2))


@pytest.mark.parametrize("bad", ["42", 1.5, True])
def test_split_rejects_a_seed_that_is_not_an_int_or_generator(bad):
    with pytest.raises(TypeError, match="seed="):
        split(np.zeros(10), np.zeros(10), seed=bad)


def test_split_rejects_a_negative_seed():
    with pytest.raises(ValueError, match="seed=-1"):
        split(np.zeros(10), np.zeros(10), seed=-1)


def test_stratified_split_requires_shuffling():
    y = np.repeat([0, 1], 5)
    with pytest.raises(ValueError, match="stratify requires shuffle=True"):
        split(y, y, stratify=y, shuffle=False)


def test_stratified_split_rejects_labels_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"one label per sample \(10\).*length 9"):
        split(np.zeros(10), np.zeros(10), stratify=np.zeros(9))


def test_stratified_split_rejects_a_class_with_a_single_sample():
    y = np.array([0, 0, 0, 0, 1])
    with pytest.raises(ValueError, match=r"class 1 has only 1 sample"):
        split(y, y, stratify=y)


# --------------------------------------------------------------------------------------
# Standardizer
# --------------------------------------------------------------------------------------


@pytest.fixture
def train_test():
    rng = np.random.default_rng(0)
    x_train = rng.normal(loc=[5.0, -3.0, 100.0], scale=[2.0, 0.5, 30.0], size=(200, 3))
    x_test = rng.normal(loc=[0.0, 0.0, 0.0], scale=1.0, size=(50, 3))
    return x_train, x_test


def test_standardizer_gives_training_data_zero_mean_and_unit_std(train_test):
    x_train, _ = train_test
    out = Standardizer().fit_transform(x_train)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1.0, rtol=1e-12)


def test_standardizer_uses_training_statistics_only(train_test):
    x_train, x_test = train_test
    scaler = Standardizer().fit(x_train)
    expected = (x_test - x_train.mean(axis=0)) / x_train.std(axis=0)
    np.testing.assert_allclose(scaler.transform(x_test), expected, rtol=1e-12)
    np.testing.assert_allclose(scaler.mean_, x_train.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scaler.scale_, x_train.std(axis=0), rtol=1e-12)


def test_standardizer_exposes_float64_statistics_and_feature_count(train_test):
    scaler = Standardizer().fit(train_test[0].astype(np.float32))
    assert scaler.mean_.dtype == np.float64 and scaler.scale_.dtype == np.float64
    assert scaler.mean_.shape == scaler.scale_.shape == (3,)
    assert scaler.n_features_in_ == 3


def test_standardizer_maps_constant_features_to_zero_never_nan_or_inf():
    x = np.column_stack([np.full(7, 0.1), np.full(7, 3e12), np.zeros(7), np.arange(7.0)])
    scaler = Standardizer().fit(x)
    np.testing.assert_array_equal(scaler.scale_[:3], 1.0)
    out = scaler.transform(x)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[:, :3], 0.0)
    np.testing.assert_allclose(out[:, 3].std(), 1.0)


def test_standardizer_treats_features_with_std_below_epsilon_as_constant():
    x = np.array([[0.0], [1e-9]])
    assert Standardizer(epsilon=1e-7).fit(x).scale_[0] == 1.0
    assert Standardizer(epsilon=0.0).fit(x).scale_[0] == pytest.approx(5e-10)


def test_standardizer_inverse_transform_recovers_the_input(train_test):
    x_train, x_test = train_test
    scaler = Standardizer().fit(x_train)
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(x_test)), x_test, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "dtype, expected",
    [(np.uint8, np.float32), (np.int64, np.float32), (np.float16, np.float32),
     (np.float32, np.float32), (np.float64, np.float64)],
)  # fmt: skip
def test_standardizer_returns_float32_unless_the_input_is_float64(dtype, expected):
    x = (np.arange(12).reshape(4, 3) * 10).astype(dtype)
    scaler = Standardizer().fit(x)
    assert scaler.transform(x).dtype == expected
    assert scaler.inverse_transform(scaler.transform(x)).dtype == expected


def test_standardizer_does_not_modify_its_input(train_test):
    x_train, _ = train_test
    before = x_train.copy()
    Standardizer().fit_transform(x_train)
    np.testing.assert_array_equal(x_train, before)


def test_standardizer_transform_before_fit_raises_a_clear_error():
    with pytest.raises(RuntimeError, match=r"not fitted yet: call fit\(x_train\) before transform\(\)"):
        Standardizer().transform(np.zeros((2, 2)))
    with pytest.raises(RuntimeError, match="not fitted"):
        Standardizer().state()


def test_standardizer_rejects_a_different_number_of_features(train_test):
    scaler = Standardizer().fit(train_test[0])
    with pytest.raises(ValueError, match=r"x has 4 features, but this Standardizer was fitted on 3 features"):
        scaler.transform(np.zeros((5, 4)))


def test_standardizer_rejects_arrays_that_are_not_2d():
    with pytest.raises(ValueError, match=r"2-D.*shape \(5, 28, 28\)"):
        Standardizer().fit(np.zeros((5, 28, 28)))


def test_standardizer_rejects_non_finite_or_empty_training_data():
    with pytest.raises(ValueError, match="NaN or infinite"):
        Standardizer().fit(np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match="at least one sample"):
        Standardizer().fit(np.zeros((0, 3)))


def test_standardizer_rejects_a_negative_epsilon():
    with pytest.raises(ValueError, match=r"epsilon=-1"):
        Standardizer(epsilon=-1)


def test_standardizer_round_trips_through_json_config_and_npz_arrays_without_pickle(train_test):
    x_train, x_test = train_test
    scaler = Standardizer(epsilon=1e-5).fit(x_train)

    config_text = json.dumps(scaler.get_config())
    buffer = io.BytesIO()
    np.savez(buffer, **scaler.state())
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as arrays:
        state = {key: arrays[key] for key in arrays.files}

    restored = Standardizer.from_state(state, config=json.loads(config_text))
    assert restored.epsilon == 1e-5 and restored.n_features_in_ == 3
    np.testing.assert_array_equal(restored.transform(x_test), scaler.transform(x_test))


def test_standardizer_from_config_rebuilds_an_unfitted_copy():
    restored = Standardizer.from_config(Standardizer(epsilon=0.5).get_config())
    assert restored.epsilon == 0.5 and not restored.is_fitted
    with pytest.raises(ValueError, match="unknown Standardizer config keys"):
        Standardizer.from_config({"epsilon": 1.0, "with_mean": False})


def test_standardizer_state_is_a_copy_not_a_view_of_its_statistics(train_test):
    scaler = Standardizer().fit(train_test[0])
    scaler.state()["mean"][:] = 0
    assert scaler.mean_[2] != 0


def test_standardizer_from_state_rejects_missing_or_malformed_arrays():
    with pytest.raises(ValueError, match=r"missing \['scale'\]"):
        Standardizer.from_state({"mean": np.zeros(3)})
    with pytest.raises(ValueError, match="same length"):
        Standardizer.from_state({"mean": np.zeros(3), "scale": np.ones(2)})
    with pytest.raises(ValueError, match="positive 'scale'"):
        Standardizer.from_state({"mean": np.zeros(2), "scale": np.array([1.0, 0.0])})


def test_standardizer_repr_shows_epsilon_and_whether_it_is_fitted():
    assert repr(Standardizer()) == "Standardizer(epsilon=1e-07)"
    assert repr(Standardizer().fit(np.zeros((2, 4)))) == "Standardizer(epsilon=1e-07, n_features_in_=4)"
