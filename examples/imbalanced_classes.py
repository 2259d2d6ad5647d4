"""Imbalanced classes: class_weight trades a little majority accuracy for minority recall.

    python examples/imbalanced_classes.py [--quick]

When one class is rare (fraud, a disease, a defect), a network trained on the plain mean loss
learns that "never the rare class" is almost always right: high accuracy, poor recall on the
class that matters. ``class_weight={class: weight}`` multiplies each sample's loss by its
class's weight (Keras's rule: the batch loss is the weighted sum over the batch size), so the
rare class's errors cost as much in total as the common class's. The "balanced" weights below
are scikit-learn's: ``n_samples / (n_classes * count(class))``.

Recall is the fraction of a class's samples found; precision the fraction of the samples
predicted as the class that are right. Weighting raises the minority recall (and usually costs
some minority precision and overall accuracy): which trade is right depends on what a miss
costs, which the weights let you say.
"""

import argparse

import numpy as np

import lamina as lm

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="fewer samples and epochs (for the tests)")
args = parser.parse_args()

# Two overlapping Gaussian classes in 10 dimensions; class 1 is 3% of the data.
rng = np.random.default_rng(0)
n, features, minority_share = (6000, 10, 0.03) if args.quick else (20000, 10, 0.03)
y = (rng.random(n) < minority_share).astype(int)
x = rng.standard_normal((n, features)) + 1.2 * y[:, None] * (np.arange(features) < 3)
(x_train, y_train), _, (x_test, y_test) = lm.data.train_dev_test_split(x, y, ratios=(0.7, 0.0, 0.3), stratify=y,
                                                                         seed=0)
counts = np.bincount(y_train, minlength=2)
balanced = {c: len(y_train) / (2 * counts[c]) for c in (0, 1)}
print(f"{len(y_train)} training samples: {counts[0]} of class 0, {counts[1]} of class 1 "
      f"({counts[1] / len(y_train):.1%}); balanced class_weight = {{0: {balanced[0]:.2f}, 1: {balanced[1]:.2f}}}")


def train(class_weight):
    model = lm.Sequential([lm.layers.Dense(16, activation="relu", input_shape=(features,)),
                           lm.layers.Dense(1, activation="sigmoid")], seed=0)
    model.compile(optimizer=lm.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=10 if args.quick else 20, verbose=0, class_weight=class_weight)
    return (model.predict(x_test)[:, 0] > 0.5).astype(int)


print(f"{'training':>22} {'accuracy':>9} {'recall 0':>9} {'recall 1':>9} {'precision 1':>12}")
for name, weights in (("unweighted", None), ("class_weight balanced", balanced)):
    predicted = train(weights)
    recall = [float(np.mean(predicted[y_test == c] == c)) for c in (0, 1)]
    precision = float(np.mean(y_test[predicted == 1] == 1)) if predicted.any() else 0.0
    print(f"{name:>22} {np.mean(predicted == y_test):9.3f} {recall[0]:9.3f} {recall[1]:9.3f} {precision:12.3f}")
