"""Labelled data sets from files: cases read from a long table or a folder of files, and cut
into the windows of an input spec, each window keeping its case's label and split.

A long table (`.csv` or `.parquet`) has a row per reading: columns `case` and `label`, optional
`split` (`train` or `test`) and `t` (seconds), and one column per channel. A folder holds a
folder per label (`normal/a.csv`, `worn/b.csv`), each file one case, optionally inside `train/`
and `test/` folders; a single file without a `case` column is one case.

    cases = read_cases(Path("vowels.csv"), rate_hz=1.0)
    spec = raw_spec(cases, window=None)                 # raw windows of the longest case
    cut = cut_cases(cases, spec, "resample", recorded_at=datetime.now(UTC))
    cut.features, cut.labels, cut.splits, cut.short     # rows, and the cases too short
    import_cut(client, "Japanese Vowels", cut)           # uploaded, then frozen once
"""

from edgestack.cases._cut import Cut, Length, cut_cases, import_cut, raw_spec
from edgestack.cases._read import (
    KEY_COLUMNS,
    SUFFIXES,
    TIME_COLUMNS,
    Case,
    CaseError,
    Cases,
    read_cases,
)

__all__ = [
    "KEY_COLUMNS",
    "SUFFIXES",
    "TIME_COLUMNS",
    "Case",
    "CaseError",
    "Cases",
    "Cut",
    "Length",
    "cut_cases",
    "import_cut",
    "raw_spec",
    "read_cases",
]
