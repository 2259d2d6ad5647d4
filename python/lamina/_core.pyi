"""
lamina's C++ core: kernels, the network and the minibatch loop.
"""
from __future__ import annotations
import collections.abc
import enum
import numpy
import numpy.typing
import typing
class Activation(enum.Enum):
    elu = ...
    gelu = ...
    leaky_relu = ...
    linear = ...
    relu = ...
    sigmoid = ...
    softmax = ...
    softplus = ...
    tanh = ...
class Loss(enum.Enum):
    binary_crossentropy = ...
    categorical_crossentropy = ...
    huber = ...
    mean_absolute_error = ...
    mean_squared_error = ...
    sparse_categorical_crossentropy = ...
class OptimizerKind(enum.Enum):
    adagrad = ...
    adam = ...
    adamw = ...
    rmsprop = ...
    sgd = ...
class MetricMode(enum.Enum):
    argmax_onehot = ...
    argmax_sparse = ...
    none = ...
    threshold = ...
class InitKind(enum.Enum):
    constant = ...
    glorot_normal = ...
    glorot_uniform = ...
    he_normal = ...
    he_uniform = ...
    lecun_normal = ...
    lecun_uniform = ...
    ones = ...
    random_normal = ...
    random_uniform = ...
    truncated_normal = ...
    zeros = ...
class LayerKind(enum.Enum):
    activation = ...
    batch_normalization = ...
    dense = ...
    dropout = ...
    gaussian_noise = ...
    layer_normalization = ...
    random_flip = ...
    random_rotation = ...
    random_translation = ...
    random_zoom = ...
class FillMode(enum.Enum):
    constant = ...
    nearest = ...
    reflect = ...
    wrap = ...
class Interpolation(enum.Enum):
    bilinear = ...
    nearest = ...
class AugmentSpec:
    """
    An augmentation layer's image shape (h, w, c) and Keras factors.
    """
    fill_mode: FillMode
    flip_horizontal: bool
    flip_vertical: bool
    interpolation: Interpolation
    zoom_keep_aspect: bool
    def __init__(self, *, height: typing.SupportsInt | typing.SupportsIndex, width: typing.SupportsInt | typing.SupportsIndex, channels: typing.SupportsInt | typing.SupportsIndex, flip_horizontal: bool, flip_vertical: bool, height_lower: typing.SupportsFloat | typing.SupportsIndex, height_upper: typing.SupportsFloat | typing.SupportsIndex, width_lower: typing.SupportsFloat | typing.SupportsIndex, width_upper: typing.SupportsFloat | typing.SupportsIndex, zoom_keep_aspect: bool, fill_mode: FillMode, interpolation: Interpolation, fill_value: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def channels(self) -> int:
        ...
    @channels.setter
    def channels(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def fill_value(self) -> float:
        ...
    @fill_value.setter
    def fill_value(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def height(self) -> int:
        ...
    @height.setter
    def height(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def height_lower(self) -> float:
        ...
    @height_lower.setter
    def height_lower(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def height_upper(self) -> float:
        ...
    @height_upper.setter
    def height_upper(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def width(self) -> int:
        ...
    @width.setter
    def width(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def width_lower(self) -> float:
        ...
    @width_lower.setter
    def width_lower(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def width_upper(self) -> float:
        ...
    @width_upper.setter
    def width_upper(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
class Initializer:
    """
    An initializer rule and its two parameters.
    """
    kind: InitKind
    def __init__(self, *, kind: InitKind, value: typing.SupportsFloat | typing.SupportsIndex, value2: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def value(self) -> float:
        ...
    @value.setter
    def value(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def value2(self) -> float:
        ...
    @value2.setter
    def value2(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
class LayerSpec:
    """
    One layer as the core builds it; make it with dense(), dropout(), activation_layer(),
    augmentation(), gaussian_noise(), batch_normalization() or layer_normalization().
    """
    activation: Activation
    augment: AugmentSpec
    bias_initializer: Initializer
    center: bool
    kernel_initializer: Initializer
    scale: bool
    use_bias: bool
    @staticmethod
    def activation_layer(*, activation: Activation) -> LayerSpec:
        ...
    @staticmethod
    def augmentation(*, kind: LayerKind, augment: AugmentSpec) -> LayerSpec:
        ...
    @staticmethod
    def batch_normalization(*, momentum: typing.SupportsFloat | typing.SupportsIndex, epsilon: typing.SupportsFloat | typing.SupportsIndex, center: bool, scale: bool) -> LayerSpec:
        ...
    @staticmethod
    def dense(*, units: typing.SupportsInt | typing.SupportsIndex, activation: Activation, use_bias: bool, kernel_initializer: Initializer, bias_initializer: Initializer, l1: typing.SupportsFloat | typing.SupportsIndex, l2: typing.SupportsFloat | typing.SupportsIndex) -> LayerSpec:
        ...
    @staticmethod
    def dropout(*, rate: typing.SupportsFloat | typing.SupportsIndex) -> LayerSpec:
        ...
    @staticmethod
    def gaussian_noise(*, stddev: typing.SupportsFloat | typing.SupportsIndex) -> LayerSpec:
        ...
    @staticmethod
    def layer_normalization(*, epsilon: typing.SupportsFloat | typing.SupportsIndex, center: bool, scale: bool) -> LayerSpec:
        ...
    @property
    def epsilon(self) -> float:
        ...
    @epsilon.setter
    def epsilon(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def kind(self) -> LayerKind:
        ...
    @property
    def l1(self) -> float:
        ...
    @l1.setter
    def l1(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def l2(self) -> float:
        ...
    @l2.setter
    def l2(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def momentum(self) -> float:
        ...
    @momentum.setter
    def momentum(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def rate(self) -> float:
        ...
    @rate.setter
    def rate(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def stddev(self) -> float:
        ...
    @stddev.setter
    def stddev(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def units(self) -> int:
        ...
    @units.setter
    def units(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
class LossConfig:
    """
    The loss the network trains on.
    """
    from_logits: bool
    kind: Loss
    def __init__(self, *, kind: Loss, from_logits: bool, delta: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def delta(self) -> float:
        ...
    @delta.setter
    def delta(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
class OptimizerConfig:
    """
    Every optimizer hyperparameter; 0 turns a clip off.
    """
    amsgrad: bool
    centered: bool
    kind: OptimizerKind
    nesterov: bool
    def __init__(self, *, kind: OptimizerKind, learning_rate: typing.SupportsFloat | typing.SupportsIndex, momentum: typing.SupportsFloat | typing.SupportsIndex, nesterov: bool, rho: typing.SupportsFloat | typing.SupportsIndex, centered: bool, beta_1: typing.SupportsFloat | typing.SupportsIndex, beta_2: typing.SupportsFloat | typing.SupportsIndex, amsgrad: bool, epsilon: typing.SupportsFloat | typing.SupportsIndex, initial_accumulator_value: typing.SupportsFloat | typing.SupportsIndex, weight_decay: typing.SupportsFloat | typing.SupportsIndex, clipnorm: typing.SupportsFloat | typing.SupportsIndex, clipvalue: typing.SupportsFloat | typing.SupportsIndex, global_clipnorm: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def beta_1(self) -> float:
        ...
    @beta_1.setter
    def beta_1(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def beta_2(self) -> float:
        ...
    @beta_2.setter
    def beta_2(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def clipnorm(self) -> float:
        ...
    @clipnorm.setter
    def clipnorm(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def clipvalue(self) -> float:
        ...
    @clipvalue.setter
    def clipvalue(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def epsilon(self) -> float:
        ...
    @epsilon.setter
    def epsilon(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def global_clipnorm(self) -> float:
        ...
    @global_clipnorm.setter
    def global_clipnorm(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def initial_accumulator_value(self) -> float:
        ...
    @initial_accumulator_value.setter
    def initial_accumulator_value(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def learning_rate(self) -> float:
        ...
    @learning_rate.setter
    def learning_rate(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def momentum(self) -> float:
        ...
    @momentum.setter
    def momentum(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def rho(self) -> float:
        ...
    @rho.setter
    def rho(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def weight_decay(self) -> float:
        ...
    @weight_decay.setter
    def weight_decay(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
class BatchStats:
    def __init__(self) -> None:
        ...
    def reset(self, classes: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
    @property
    def absolute_error(self) -> float:
        ...
    @property
    def batches(self) -> int:
        ...
    @property
    def classes(self) -> int:
        ...
    @property
    def confusion(self) -> numpy.typing.NDArray[numpy.int64]:
        ...
    @property
    def elements(self) -> int:
        ...
    @property
    def gradient_norms(self) -> list[float]:
        ...
    @property
    def loss_sum(self) -> float:
        ...
    @property
    def samples(self) -> int:
        ...
    @property
    def squared_error(self) -> float:
        ...
    @property
    def weight_sum(self) -> float:
        ...
    @property
    def weighted_absolute_error(self) -> float:
        ...
    @property
    def weighted_confusion(self) -> numpy.typing.NDArray[numpy.float64]:
        ...
    @property
    def weighted_elements(self) -> float:
        ...
    @property
    def weighted_squared_error(self) -> float:
        ...
class Network32:
    track_gradient_norms: bool
    def __init__(self, input_dim: typing.SupportsInt | typing.SupportsIndex, layers: collections.abc.Sequence[LayerSpec], seed: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def dense_params(self) -> list:
        ...
    def evaluate(self, stats: BatchStats, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], y: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], batch_size: typing.SupportsInt | typing.SupportsIndex, sample_weight: typing.Any = None) -> None:
        ...
    def folded_batch_norms(self) -> list[int]:
        """
        The layers (indices) that are a BatchNormalization run, outside training, in the epilogue of
        the linear Dense before it (same bits as running it on its own).
        """
    def forward(self, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], training: bool) -> numpy.typing.NDArray[numpy.float32]:
        """
        One forward pass over x as one batch; training=True draws dropout and augmentation at the
        current step (which does not advance).
        """
    def gradients(self) -> numpy.typing.NDArray[numpy.float32]:
        """
        The gradient block of the last step as a writable 1-D view (no copy).
        """
    def loss_and_gradient(self, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], y: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], sample_weight: typing.Any = None, training: bool = False) -> float:
        ...
    def loss_config(self) -> LossConfig:
        """
        A copy of the loss the network trains on.
        """
    def norm_params(self) -> list:
        """
        Each normalization layer's offsets in the parameter block (-1: absent).
        """
    def numerical_gradient(self, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], y: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], epsilon: typing.SupportsFloat | typing.SupportsIndex, indices: typing.Annotated[numpy.typing.ArrayLike, numpy.int64], sample_weight: typing.Any = None, training: bool = False) -> numpy.typing.NDArray[numpy.float32]:
        ...
    def optimizer_config(self) -> OptimizerConfig:
        """
        A copy of the optimizer configuration the core holds.
        """
    def optimizer_slots(self) -> list:
        """
        Copies of the optimizer's state vectors (empty ones for unused slots).
        """
    def parameters(self) -> numpy.typing.NDArray[numpy.float32]:
        """
        The parameter block as a writable 1-D view (no copy).
        """
    def predict(self, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], batch_size: typing.SupportsInt | typing.SupportsIndex, check_finite: bool = False) -> typing.Any:
        ...
    def regularization_penalty(self) -> float:
        ...
    def set_gradient_hook(self, hook: typing.Any) -> None:
        """
        hook(gradient, step) is called once per training step with the whole gradient block
        (a writable view, valid during the call) before clipping and the update; None removes it.
        """
    def set_loss(self, loss: LossConfig) -> None:
        ...
    def set_metric_mode(self, mode: MetricMode) -> None:
        ...
    def set_norm_trainable(self, norm_index: typing.SupportsInt | typing.SupportsIndex, trainable: bool) -> None:
        """
        Freezes (False) or unfreezes normalization layer norm_index: the update skips gamma and beta,
        and a BatchNormalization normalizes with its moving statistics.
        """
    def set_optimizer(self, config: OptimizerConfig) -> None:
        ...
    def set_optimizer_slots(self, slots: list) -> None:
        ...
    def set_trainable(self, dense_index: typing.SupportsInt | typing.SupportsIndex, trainable: bool) -> None:
        """
        Freezes (False) or unfreezes Dense layer dense_index: the update skips its tensors.
        """
    def train_batch_list(self, stats: BatchStats, batches: list) -> None:
        """
        One training step per (x, y, sample_weight or None) batch, in order, in one call with the GIL released.
        """
    def train_batches(self, stats: BatchStats, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], y: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], order: typing.Any, first: typing.SupportsInt | typing.SupportsIndex, batch_size: typing.SupportsInt | typing.SupportsIndex, n_batches: typing.SupportsInt | typing.SupportsIndex, sample_weight: typing.Any = None, empty_steps: bool = False) -> None:
        """
        n_batches steps from position first of order (None: the rows in order). sample_weight: None or
        one weight per row of x (gathered with the rows, so shuffled with them). With empty_steps,
        batches past the end of the data are zero-row steps (hook and update still run).
        """
    @property
    def bf16_products(self) -> bool:
        """
        dtype='mixed_bfloat16': every Dense product with bfloat16 operands and float32 accumulation (float32 networks only).
        """
    @bf16_products.setter
    def bf16_products(self, arg1: bool) -> None:
        ...
    @property
    def dropout_row_offset(self) -> int:
        """
        Rows before this batch in a larger one (distributed training): dropout draws that batch's masks.
        """
    @dropout_row_offset.setter
    def dropout_row_offset(self, arg1: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def input_dim(self) -> int:
        ...
    @property
    def iterations(self) -> int:
        ...
    @iterations.setter
    def iterations(self, arg1: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def learning_rate(self) -> float:
        ...
    @learning_rate.setter
    def learning_rate(self, arg1: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def num_threads(self) -> int:
        ...
    @num_threads.setter
    def num_threads(self, arg1: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def output_dim(self) -> int:
        ...
    @property
    def param_count(self) -> int:
        ...
    @property
    def seed(self) -> int:
        ...
    @property
    def steps(self) -> int:
        ...
    @steps.setter
    def steps(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
class Network64:
    track_gradient_norms: bool
    def __init__(self, input_dim: typing.SupportsInt | typing.SupportsIndex, layers: collections.abc.Sequence[LayerSpec], seed: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def dense_params(self) -> list:
        ...
    def evaluate(self, stats: BatchStats, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], y: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], batch_size: typing.SupportsInt | typing.SupportsIndex, sample_weight: typing.Any = None) -> None:
        ...
    def folded_batch_norms(self) -> list[int]:
        """
        The layers (indices) that are a BatchNormalization run, outside training, in the epilogue of
        the linear Dense before it (same bits as running it on its own).
        """
    def forward(self, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], training: bool) -> numpy.typing.NDArray[numpy.float64]:
        """
        One forward pass over x as one batch; training=True draws dropout and augmentation at the
        current step (which does not advance).
        """
    def gradients(self) -> numpy.typing.NDArray[numpy.float64]:
        """
        The gradient block of the last step as a writable 1-D view (no copy).
        """
    def loss_and_gradient(self, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], y: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], sample_weight: typing.Any = None, training: bool = False) -> float:
        ...
    def loss_config(self) -> LossConfig:
        """
        A copy of the loss the network trains on.
        """
    def norm_params(self) -> list:
        """
        Each normalization layer's offsets in the parameter block (-1: absent).
        """
    def numerical_gradient(self, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], y: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], epsilon: typing.SupportsFloat | typing.SupportsIndex, indices: typing.Annotated[numpy.typing.ArrayLike, numpy.int64], sample_weight: typing.Any = None, training: bool = False) -> numpy.typing.NDArray[numpy.float64]:
        ...
    def optimizer_config(self) -> OptimizerConfig:
        """
        A copy of the optimizer configuration the core holds.
        """
    def optimizer_slots(self) -> list:
        """
        Copies of the optimizer's state vectors (empty ones for unused slots).
        """
    def parameters(self) -> numpy.typing.NDArray[numpy.float64]:
        """
        The parameter block as a writable 1-D view (no copy).
        """
    def predict(self, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], batch_size: typing.SupportsInt | typing.SupportsIndex, check_finite: bool = False) -> typing.Any:
        ...
    def regularization_penalty(self) -> float:
        ...
    def set_gradient_hook(self, hook: typing.Any) -> None:
        """
        hook(gradient, step) is called once per training step with the whole gradient block
        (a writable view, valid during the call) before clipping and the update; None removes it.
        """
    def set_loss(self, loss: LossConfig) -> None:
        ...
    def set_metric_mode(self, mode: MetricMode) -> None:
        ...
    def set_norm_trainable(self, norm_index: typing.SupportsInt | typing.SupportsIndex, trainable: bool) -> None:
        """
        Freezes (False) or unfreezes normalization layer norm_index: the update skips gamma and beta,
        and a BatchNormalization normalizes with its moving statistics.
        """
    def set_optimizer(self, config: OptimizerConfig) -> None:
        ...
    def set_optimizer_slots(self, slots: list) -> None:
        ...
    def set_trainable(self, dense_index: typing.SupportsInt | typing.SupportsIndex, trainable: bool) -> None:
        """
        Freezes (False) or unfreezes Dense layer dense_index: the update skips its tensors.
        """
    def train_batch_list(self, stats: BatchStats, batches: list) -> None:
        """
        One training step per (x, y, sample_weight or None) batch, in order, in one call with the GIL released.
        """
    def train_batches(self, stats: BatchStats, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], y: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], order: typing.Any, first: typing.SupportsInt | typing.SupportsIndex, batch_size: typing.SupportsInt | typing.SupportsIndex, n_batches: typing.SupportsInt | typing.SupportsIndex, sample_weight: typing.Any = None, empty_steps: bool = False) -> None:
        """
        n_batches steps from position first of order (None: the rows in order). sample_weight: None or
        one weight per row of x (gathered with the rows, so shuffled with them). With empty_steps,
        batches past the end of the data are zero-row steps (hook and update still run).
        """
    @property
    def bf16_products(self) -> bool:
        """
        dtype='mixed_bfloat16': every Dense product with bfloat16 operands and float32 accumulation (float32 networks only).
        """
    @bf16_products.setter
    def bf16_products(self, arg1: bool) -> None:
        ...
    @property
    def dropout_row_offset(self) -> int:
        """
        Rows before this batch in a larger one (distributed training): dropout draws that batch's masks.
        """
    @dropout_row_offset.setter
    def dropout_row_offset(self, arg1: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def input_dim(self) -> int:
        ...
    @property
    def iterations(self) -> int:
        ...
    @iterations.setter
    def iterations(self, arg1: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def learning_rate(self) -> float:
        ...
    @learning_rate.setter
    def learning_rate(self, arg1: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def num_threads(self) -> int:
        ...
    @num_threads.setter
    def num_threads(self, arg1: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def output_dim(self) -> int:
        ...
    @property
    def param_count(self) -> int:
        ...
    @property
    def seed(self) -> int:
        ...
    @property
    def steps(self) -> int:
        ...
    @steps.setter
    def steps(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
class Optimizer32:
    def __init__(self, config: OptimizerConfig, size: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def step(self, params: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], grads: typing.Annotated[numpy.typing.ArrayLike, numpy.float32]) -> None:
        ...
    @property
    def config(self) -> OptimizerConfig:
        """
        A copy of the configuration the optimizer holds.
        """
    @property
    def iterations(self) -> int:
        ...
    @iterations.setter
    def iterations(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
class Optimizer64:
    def __init__(self, config: OptimizerConfig, size: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def step(self, params: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], grads: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> None:
        ...
    @property
    def config(self) -> OptimizerConfig:
        """
        A copy of the configuration the optimizer holds.
        """
    @property
    def iterations(self) -> int:
        ...
    @iterations.setter
    def iterations(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
def activation_backward(activation: Activation, da: numpy.ndarray, z: numpy.ndarray, a: numpy.ndarray) -> typing.Any:
    ...
def activation_forward(activation: Activation, z: numpy.ndarray) -> typing.Any:
    ...
def all_finite(a: numpy.ndarray) -> bool:
    """
    True when no element is NaN or infinite (float arrays; others are converted to float64).
    """
def bf16_gemm(a: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], b: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], portable: bool = False) -> numpy.typing.NDArray[numpy.float32]:
    """
    a @ b with bfloat16 operands and float32 accumulation through packed pair panels (the VDPBF16PS kernel when bf16_kernels_enabled(), else or with portable its portable twin).
    """
def bf16_gemm_kernel() -> str:
    """
    The tile kernel of mixed_bfloat16's products: 'amx', 'avx512_bf16' or 'portable'.
    """
def bf16_gemm_kernels_available() -> list[str]:
    """
    The bfloat16 tile kernels this CPU and build can run, best first.
    """
def bf16_kernels_enabled() -> bool:
    """
    Whether the AVX512_BF16 kernels are in use.
    """
def bf16_round(x: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], portable: bool = False) -> numpy.typing.NDArray[numpy.uint16]:
    """
    x rounded to bfloat16 (round-to-nearest-even, subnormals to signed zero), as uint16 bit patterns; portable forces the portable twin of the AVX512_BF16 conversion.
    """
def dense_backward(dz: numpy.ndarray, x: numpy.ndarray, W: numpy.ndarray) -> typing.Any:
    ...
def dense_forward(x: numpy.ndarray, W: numpy.ndarray, b: typing.Any = None, activation: Activation | None = None) -> typing.Any:
    """
    z = x @ W + b; with an (elementwise) activation, (z, activation(z)) from the GEMM's tile epilogue.
    """
def flush_denormals() -> bool:
    ...
def fused_loss(loss: Loss, z: numpy.ndarray, y: numpy.ndarray, scale: typing.SupportsFloat | typing.SupportsIndex = 1.0, sample_weight: typing.Any = None) -> typing.Any:
    """
    Softmax/sigmoid + cross-entropy on logits z: (sum of row losses, scale * gradient w.r.t. z)
    """
def gemm(trans_a: bool, trans_b: bool, alpha: typing.SupportsFloat | typing.SupportsIndex, a: numpy.ndarray, b: numpy.ndarray, beta: typing.SupportsFloat | typing.SupportsIndex, c: numpy.ndarray) -> None:
    """
    c = alpha * op(a) @ op(b) + beta * c, in place (c's dtype chooses float32 or float64).
    """
def gemm_bf16(trans_a: bool, trans_b: bool, a: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], b: typing.Annotated[numpy.typing.ArrayLike, numpy.float32], kernel: str | None = None) -> numpy.typing.NDArray[numpy.float32]:
    """
    op(a) @ op(b) through the blocked, threaded bfloat16 GEMM of mixed_bfloat16 (gemm_bf16.h), with the kernel in use (bf16_gemm_kernel()) or the one named.
    """
def gemm_kernel_name() -> str:
    """
    The GEMM kernel table in use: avx512, avx2 or generic (LAMINA_GEMM_KERNEL forces one).
    """
def gemm_kernels_available() -> list[str]:
    """
    The GEMM kernel tables this build and CPU can run, best first.
    """
def gemm_naive(trans_a: bool, trans_b: bool, alpha: typing.SupportsFloat | typing.SupportsIndex, a: numpy.ndarray, b: numpy.ndarray, beta: typing.SupportsFloat | typing.SupportsIndex, c: numpy.ndarray) -> None:
    ...
def gemm_plan(trans_a: bool, trans_b: bool, alpha: typing.SupportsFloat | typing.SupportsIndex, a: numpy.ndarray, b: numpy.ndarray, beta: typing.SupportsFloat | typing.SupportsIndex, c: numpy.ndarray) -> typing.Any:
    """
    The plan gemm would follow for these arguments: {path, split, threads, transposed, kernel}; c is not written.
    """
def get_num_threads() -> int:
    ...
def initialize(kind: InitKind, count: typing.SupportsInt | typing.SupportsIndex, fan_in: typing.SupportsInt | typing.SupportsIndex, fan_out: typing.SupportsInt | typing.SupportsIndex, value: typing.SupportsFloat | typing.SupportsIndex = 0.0, seed: typing.SupportsInt | typing.SupportsIndex = 0, stream: typing.SupportsInt | typing.SupportsIndex = 0, dtype: str = 'float64', value2: typing.SupportsFloat | typing.SupportsIndex = 0.0) -> typing.Any:
    ...
def loss(loss: Loss, p: numpy.ndarray, y: numpy.ndarray, delta: typing.SupportsFloat | typing.SupportsIndex = 1.0, scale: typing.SupportsFloat | typing.SupportsIndex = 1.0, sample_weight: typing.Any = None) -> typing.Any:
    """
    (sum of (weighted) row losses, scale * gradient w.r.t. p)
    """
def max_threads() -> int:
    """
    The most threads set_num_threads accepts.
    """
def openmp_enabled() -> bool:
    ...
def rank_update(x: numpy.ndarray, dz: numpy.ndarray) -> typing.Any:
    """
    x^T dz by the small-batch rank-n kernel of the fused update.
    """
def scale_in_place(a: numpy.ndarray, factor: typing.SupportsFloat | typing.SupportsIndex) -> None:
    """
    a *= factor in place (factor 0 sets every element to 0), GIL released.
    """
def set_flush_denormals(on: bool) -> None:
    ...
def set_num_threads(n: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
def shuffled_order(n: typing.SupportsInt | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex, epoch: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.int64]:
    ...
__version__: str = '0.1.0'
