"""N training steps at batch 1 of bench/train.py's model on Fashion-MNIST, one thread, for counting
instructions per step under callgrind (no timing here; the machine's load does not change counts):

    valgrind --tool=callgrind python bench/batch1_steps.py <tree> 200
    valgrind --tool=callgrind python bench/batch1_steps.py <tree> 1200

per step = (count at 1200 - count at 200) / 1000. <tree> is a checkout with its built extension
(its python/ and bench/ are put first on the path), so two builds can be compared.
"""

import sys

tree, steps = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, tree + "/bench")
sys.path.insert(0, tree + "/python")

import train  # noqa: E402
from common import load_data  # noqa: E402

import lamina as lm  # noqa: E402

lm.set_num_threads(1)
train.lamina_trainer(load_data(), 1, steps)()
