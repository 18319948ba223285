"""From raw chunks to model input: cleaning, filtering, resampling, alignment, windows and
feature extraction, and the row transforms that training fits.

Every built-in step, extractor and transform is registered in `STEPS`, `EXTRACTORS` and
`TRANSFORMS` when this package is imported.
"""

# The modules of the built-ins, imported for their registrations.
from edgestack.processing import clean as clean
from edgestack.processing import features as features
from edgestack.processing import filters as filters
from edgestack.processing import image as image
from edgestack.processing import resample as resample
from edgestack.processing import sound as sound
from edgestack.processing import transforms as transforms
from edgestack.processing.align import AlignedSource, Aligner
from edgestack.processing.pipeline import (
    DEFAULT_EXTRACTORS,
    FeaturePipeline,
    extractors_of,
    make_spec,
    silence,
    vibration_spec,
    with_extractors,
)
from edgestack.processing.step import EXTRACTORS, STEPS, TRANSFORMS, Extractor, Step
from edgestack.processing.window import Windower

__all__ = [
    "DEFAULT_EXTRACTORS",
    "EXTRACTORS",
    "STEPS",
    "TRANSFORMS",
    "AlignedSource",
    "Aligner",
    "Extractor",
    "FeaturePipeline",
    "Step",
    "Windower",
    "extractors_of",
    "make_spec",
    "silence",
    "vibration_spec",
    "with_extractors",
]
