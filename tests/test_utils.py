"""lamina.utils.to_categorical: Keras-compatible one-hot encoding with clear errors."""

import numpy as np
import pytest

import lamina as lm

to_categorical = lm.utils.to_categorical


def test_to_categorical_puts_a_single_one_at_each_label_index():
    out = to_categorical([0, 2, 1, 2])
    expected = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.float32


def test_to_categorical_infers_num_classes_from_the_largest_label():
    assert to_categorical(np.array([4, 1])).shape == (2, 5)


def test_to_categorical_pads_with_zero_columns_up_to_num_classes():
    out = to_categorical([1, 0], num_classes=4)
    np.testing.assert_array_equal(out, [[0, 1, 0, 0], [1, 0, 0, 0]])


def test_to_categorical_treats_a_column_vector_like_a_flat_vector():
    column = np.array([[2], [0], [1]])
    np.testing.assert_array_equal(to_categorical(column), to_categorical(column.ravel()))
    assert to_categorical(column).shape == (3, 3)


def test_to_categorical_appends_the_class_axis_to_other_shapes_like_keras():
    out = to_categorical(np.array([[0, 1, 2], [2, 1, 0]]))
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out.argmax(axis=-1), [[0, 1, 2], [2, 1, 0]])


def test_to_categorical_returns_the_requested_dtype():
    assert to_categorical([0, 1], dtype="float64").dtype == np.float64
    assert to_categorical([0, 1], dtype=np.uint8).dtype == np.uint8


def test_to_categorical_accepts_whole_number_floats_and_uint8_labels():
    np.testing.assert_array_equal(to_categorical([1.0, 0.0]), to_categorical([1, 0]))
    np.testing.assert_array_equal(to_categorical(np.array([1, 0], dtype=np.uint8)), to_categorical([1, 0]))


def test_to_categorical_rejects_negative_labels_naming_the_value():
    with pytest.raises(ValueError, match=r"non-negative.*y=\[0, -1, 2\]"):
        to_categorical([0, -1, 2])


def test_to_categorical_rejects_fractional_labels_naming_the_value():
    with pytest.raises(ValueError, match=r"whole-number.*1\.5"):
        to_categorical([0.0, 1.5])


def test_to_categorical_rejects_nan_labels():
    with pytest.raises(ValueError, match="NaN"):
        to_categorical([0.0, np.nan])


def test_to_categorical_rejects_infinite_labels():
    with pytest.raises(ValueError, match="inf"):
        to_categorical([0.0, np.inf])


def test_to_categorical_rejects_num_classes_smaller_than_the_largest_label():
    with pytest.raises(ValueError, match=r"num_classes=3 is too small.*at least 6"):
        to_categorical([0, 5], num_classes=3)


@pytest.mark.parametrize("bad", [0, -2])
def test_to_categorical_rejects_non_positive_num_classes(bad):
    with pytest.raises(ValueError, match=f"num_classes={bad}"):
        to_categorical([0], num_classes=bad)


@pytest.mark.parametrize("bad", [2.0, "3", True])
def test_to_categorical_rejects_non_integer_num_classes(bad):
    with pytest.raises(TypeError, match="num_classes="):
        to_categorical([0], num_classes=bad)


def test_to_categorical_rejects_empty_labels():
    with pytest.raises(ValueError, match="must not be empty"):
        to_categorical([])


def test_to_categorical_rejects_a_scalar():
    with pytest.raises(ValueError, match="scalar y=3"):
        to_categorical(3)


def test_to_categorical_rejects_text_labels():
    with pytest.raises(TypeError, match="dtype <U"):
        to_categorical(["cat", "dog"])


def test_to_categorical_error_summarizes_large_inputs_instead_of_printing_them():
    labels = np.arange(1000) - 1
    with pytest.raises(ValueError, match=r"shape \(1000,\)") as excinfo:
        to_categorical(labels)
    assert len(str(excinfo.value)) < 200
