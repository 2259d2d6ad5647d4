"""The Keras MNIST example, line for line in lamina: Dense(512, relu) -> Dense(10, softmax).

    python examples/mnist_keras_style.py                      # Fashion-MNIST, test accuracy ~0.87-0.88
    python examples/mnist_keras_style.py --mnist-path DIR     # MNIST from a folder of IDX .gz files (~0.98)
    python examples/mnist_keras_style.py --quick             # 10,000 training images, 1 epoch (for the tests)

Fashion-MNIST (Zalando, MIT licence) is found in /usr/share/datasets/fashion-mnist (Debian's
dataset-fashion-mnist package) or downloaded once into ~/.cache/lamina/datasets.
"""

import argparse
import time

import lamina as lm

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--mnist-path", help="folder with MNIST's four IDX files (default: Fashion-MNIST)")
parser.add_argument("--quick", action="store_true", help="a 10,000-image subset and 1 epoch")
args = parser.parse_args()

if args.mnist_path:
    (x_train, y_train), (x_test, y_test) = lm.datasets.load_mnist(args.mnist_path)
else:
    (x_train, y_train), (x_test, y_test) = lm.datasets.load_fashion_mnist()
# 28x28 uint8 images -> 784 features in [0, 1]; labels -> one-hot vectors of 10.
x_train = x_train.reshape(len(x_train), 784).astype("float32") / 255
x_test = x_test.reshape(len(x_test), 784).astype("float32") / 255
y_train = lm.utils.to_categorical(y_train, 10)
y_test = lm.utils.to_categorical(y_test, 10)
epochs = 5
if args.quick:
    x_train, y_train, epochs = x_train[:10000], y_train[:10000], 1

model = lm.Sequential([
    lm.layers.Dense(512, activation="relu", input_shape=(784,)),
    lm.layers.Dense(10, activation="softmax"),
], seed=0)
model.summary()
model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])

started = time.perf_counter()
history = model.fit(x_train, y_train, batch_size=128, epochs=epochs, verbose=2)
seconds = time.perf_counter() - started
test_loss, test_accuracy = model.evaluate(x_test, y_test)
print(f"trained {epochs} epochs on {len(x_train):,} images in {seconds:.1f} s")
print(f"test loss: {test_loss:.4f}")
print(f"test accuracy: {test_accuracy:.4f}")
