"""Row transforms, fitted offline on feature rows: scikit-learn's own classes, registered as
they are, because the ONNX converters recognise a transformer by its exact class.

    scaler = TRANSFORMS.build("standardise").fit(rows)
    pca = TRANSFORMS.build("pca", {"n_components": 8}).fit(rows)

Their parameters are scikit-learn's, checked by scikit-learn when `fit` runs.
"""

from sklearn.decomposition import PCA
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from edgestack.processing.step import TRANSFORMS

TRANSFORMS.add("standardise", StandardScaler)
TRANSFORMS.add("normalise", MinMaxScaler)
TRANSFORMS.add("pca", PCA)
