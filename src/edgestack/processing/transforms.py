"""Row transforms, fitted offline on feature rows: scikit-learn's own classes, registered as
they are, because the ONNX converters recognise a transformer by its exact class.

    scaler = TRANSFORMS.build("standardise").fit(rows)
    pca = TRANSFORMS.build("pca", {"n_components": 8}).fit(rows)

Their parameters are scikit-learn's, checked by scikit-learn when `fit` runs. They load when
first used: scikit-learn costs a process about 100 MB, and a device only runs the ONNX graphs.
"""

from edgestack.processing.step import TRANSFORMS

TRANSFORMS.add_lazy("standardise", "sklearn.preprocessing:StandardScaler")
TRANSFORMS.add_lazy("normalise", "sklearn.preprocessing:MinMaxScaler")
TRANSFORMS.add_lazy("pca", "sklearn.decomposition:PCA")
