"""A microcontroller target: models and their window features as C, through emlearn.
A fitted model is compiled with the host's C compiler, checked against its ONNX model and
measured before it is written:

    exported = export_c(refit.trainer, spec, labels, onnx, held_out_rows)
    exported.write(Path("firmware/model"))   # edgestack_model.h/.c, main.c, emlearn's headers
    exported.footprint, exported.refusals    # measured; why it does not fit the mcu profile
"""

from edgestack.learning.mcu.build import CBuild, CSize
from edgestack.learning.mcu.export import (
    C_TRAINERS,
    CExport,
    c_sources,
    export_c,
    probe_windows,
    python_features,
    sources_tar,
)
from edgestack.learning.mcu.features import C_EXTRACTORS, ExportError, features_c

__all__ = [
    "C_EXTRACTORS",
    "C_TRAINERS",
    "CBuild",
    "CExport",
    "CSize",
    "ExportError",
    "c_sources",
    "export_c",
    "features_c",
    "probe_windows",
    "python_features",
    "sources_tar",
]
