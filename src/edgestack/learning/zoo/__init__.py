"""The model zoo: every built-in trainer, registered in `TRAINERS` when this package is
imported. scikit-learn classifiers (`decision_tree`, `random_forest`, `gradient_boosting`,
`svm`, `logistic_regression`, `mlp`), PyTorch nets over structured rows (`cnn1d`, `cnn2d`, and
`cnn1d_exits`, a 1D-CNN with an early exit that splits across a device and a server),
MiniRocket over raw windows (`minirocket`) and anomaly detectors fitted on normal rows
(`isolation_forest`, `autoencoder`).

    trainer = TRAINERS.build("cnn1d", {"shape": (3, 512)})
    trainer.fit(rows, classes, seed=0)
    trainer.module        # the torch.nn.Module, for pruning or distillation
    trainer.fine_tune(rows, teacher_probabilities, seed=0, epochs=5)
"""

from edgestack.learning.zoo.anomaly import Calibration
from edgestack.learning.zoo.exits import Cnn1dExits, SplitModel
from edgestack.learning.zoo.nets import NetTrainer
from edgestack.learning.zoo.rocket import MiniRocketTrainer
from edgestack.learning.zoo.tabular import SklearnTrainer

__all__ = [
    "Calibration",
    "Cnn1dExits",
    "MiniRocketTrainer",
    "NetTrainer",
    "SklearnTrainer",
    "SplitModel",
]
