"""The window features of an input spec as C: the same statistics and spectra as the
`processing` extractors, computed in double precision and rounded to float once, as the
extractors round their float64 results to float32 columns, so a model sees the same inputs on
the device as it was trained and checked on.

    code = features_c(spec)   # defines es_features(const float *window, float *features)
"""

import math
import re
from collections.abc import Callable

from edgestack.bundle import InputSpec
from edgestack.processing import EXTRACTORS
from edgestack.processing.features import (
    BandEnergies,
    DominantFrequency,
    Raw,
    SpectralCentroid,
    TimeStats,
)

__all__ = ["C_EXTRACTORS", "ExportError", "c_float", "features_c"]


class ExportError(ValueError):
    """A model or spec that has no C version; the message names the part and what to do."""


C_EXTRACTORS = (
    "band_energies",
    "dominant_frequency",
    "mean",
    "raw",
    "spectral_centroid",
    "time_stats",
)
"""The extractors with a C version."""

# What an extractor needs of the C support, each level including the one before.
_RAW, _STATISTICS, _SPECTRA = range(3)

# Each expression reads the analysis `w` of one channel's window, as `_Windows.stat` does.
_STATS = {
    "mean": "w.mean",
    "min": "w.min",
    "max": "w.max",
    "rms": "sqrt(w.power)",
    "peak": "w.peak",
    "crest": "w.varying ? w.peak / sqrt(w.safe) : 0.0",
    "kurtosis": "w.varying ? w.m4 / (w.safe * w.safe) : 0.0",
    "skewness": "w.varying ? w.m3 / (w.safe * sqrt(w.safe)) : 0.0",
}

_BASE = """
#define ES_WINDOW {window}
#define ES_BINS {bins}
#define ES_PI 3.14159265358979323846

/* As finite_columns: rounded to float once, 0 for what is not finite. */
static float es_out(double v) {{
    const float f = (float)v;
    return isfinite(f) ? f : 0.0f;
}}
"""

_ANALYSE = """
/* One channel's window as float64, centred, and what the statistics share. */
typedef struct {
    double x[ES_WINDOW];
    double mean, min, max, power, safe, peak, m3, m4;
    int varying;
} EsWindow;

static void es_analyse(const float *samples, EsWindow *w) {
    double sum = 0.0;
    w->min = INFINITY;
    w->max = -INFINITY;
    for (int i = 0; i < ES_WINDOW; i++) {
        /* The pipeline zeroes what no step repaired before it cuts windows. */
        const double v = isfinite(samples[i]) ? (double)samples[i] : 0.0;
        w->x[i] = v;
        sum += v;
        if (v < w->min) w->min = v;
        if (v > w->max) w->max = v;
    }
    w->mean = sum / ES_WINDOW;
    double p2 = 0.0, p3 = 0.0, p4 = 0.0;
    w->peak = 0.0;
    for (int i = 0; i < ES_WINDOW; i++) {
        const double c = w->x[i] - w->mean;
        const double sq = c * c;
        w->x[i] = c;
        p2 += sq;
        p3 += sq * c;
        p4 += sq * sq;
        if (fabs(c) > w->peak) w->peak = fabs(c);
    }
    w->power = p2 / ES_WINDOW;
    w->m3 = p3 / ES_WINDOW;
    w->m4 = p4 / ES_WINDOW;
    /* Below this share of the signal's power, the variation is rounding noise on a constant. */
    w->varying = w->power > 1e-10 * (w->mean * w->mean + w->power);
    w->safe = w->varying ? w->power : 1.0;
}
"""

_SPECTRUM = """
static double es_freq(int k) {{
    return (double)k * (1.0 / ((double)ES_WINDOW * (1.0 / {rate})));
}}
{transform}
/* The Hann-tapered power of the centred window, bin 0 left out; all 0 without variation.
   Returns the spectrum's energy, 1 when it has none, so shares of it stay finite. */
static double es_spectrum(const EsWindow *w, double *power) {{
    double re[ES_WINDOW], im[ES_WINDOW];
    for (int i = 0; i < ES_WINDOW; i++) {{
        const double taper = ES_WINDOW > 1
            ? 0.5 + 0.5 * cos(ES_PI * (double)(1 - ES_WINDOW + 2 * i) / (double)(ES_WINDOW - 1))
            : 1.0;
        re[i] = w->x[i] * taper;
        im[i] = 0.0;
    }}
    es_transform(re, im);
    double total = 0.0;
    power[0] = 0.0;
    for (int k = 1; k < ES_BINS; k++) {{
        power[k] = re[k] * re[k] + im[k] * im[k];
        total += power[k];
    }}
    if (w->varying && total > 0.0) return total;
    for (int k = 0; k < ES_BINS; k++) power[k] = 0.0;
    return 1.0;
}}
"""

# In place, bins 0..ES_BINS-1 of the discrete Fourier transform: radix 2 when the window is a
# power of two, else the direct sum (O(n^2), for windows few devices use).
_FFT = """
static void es_transform(double *re, double *im) {
    for (int i = 1, j = 0; i < ES_WINDOW; i++) {
        int bit = ES_WINDOW >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            const double r = re[i], m = im[i];
            re[i] = re[j]; im[i] = im[j];
            re[j] = r; im[j] = m;
        }
    }
    for (int len = 2; len <= ES_WINDOW; len <<= 1) {
        const int half = len >> 1;
        for (int j = 0; j < half; j++) {
            const double wr = cos(-2.0 * ES_PI * j / len), wi = sin(-2.0 * ES_PI * j / len);
            for (int i = j; i < ES_WINDOW; i += len) {
                const double r = re[i + half] * wr - im[i + half] * wi;
                const double m = re[i + half] * wi + im[i + half] * wr;
                re[i + half] = re[i] - r; im[i + half] = im[i] - m;
                re[i] += r; im[i] += m;
            }
        }
    }
}
"""

_DFT = """
static void es_transform(double *re, double *im) {
    double x[ES_WINDOW];
    for (int i = 0; i < ES_WINDOW; i++) x[i] = re[i];
    for (int k = 0; k < ES_BINS; k++) {
        double sr = 0.0, si = 0.0;
        for (int n = 0; n < ES_WINDOW; n++) {
            const double a = 2.0 * ES_PI * (double)((long)k * n % ES_WINDOW) / ES_WINDOW;
            sr += x[n] * cos(a);
            si -= x[n] * sin(a);
        }
        re[k] = sr;
        im[k] = si;
    }
}
"""


def c_string(text: str) -> str:
    """`text` as a C string literal: letters, digits, space, `_`, `.` and `-` as they are,
    every other byte of its UTF-8 as an octal escape. Names come from users' files (labels,
    column headers): no quote, backslash, newline or trigraph (`??/`) of theirs reaches the
    C as code."""
    return '"' + "".join(_c_char(byte) for byte in text.encode()) + '"'


def c_comment(text: str) -> str:
    """`text` safe inside a C comment: what is not a letter, digit, `_`, `.` or `-` as `_`."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def _c_char(byte: int) -> str:
    char = chr(byte)
    return char if char.isascii() and (char.isalnum() or char in " _.-") else f"\\{byte:03o}"


def c_float(value: float, suffix: str = "") -> str:
    """`value` as an exact C literal (hexadecimal), `f` suffixed for a float."""
    if not math.isfinite(value):
        raise ExportError(f"{value} has no C literal; the model holds a value that is not finite")
    return float(value).hex() + suffix


def features_c(spec: InputSpec) -> str:
    """C defining `static void es_features(const float *window, float *features)`: `window` is
    `len(spec.sensors) x spec.window` samples, channel-major; `features` gets the spec's
    columns in its order. Raises `ExportError` naming a step or extractor with no C version."""
    if spec.steps:
        stage = spec.steps[0]
        raise ExportError(
            f"steps[0] ({stage.kind}): the C target has no version of processing steps; "
            "export a model whose spec has none (filter the signal on the device before it)"
        )
    blocks: list[str] = []
    tables: list[str] = []
    needs = _RAW
    for i, feature in enumerate(spec.extractors):
        if feature.kind not in C_EXTRACTORS:
            raise ExportError(
                f"extractors[{i}] ({feature.kind}): no C version; the C target computes "
                f"{', '.join(C_EXTRACTORS)}: train on a spec of those"
            )
        extractor = EXTRACTORS.build(feature.kind, feature.params, where=f"extractors[{i}]")
        channels = spec.sensors if feature.channels is None else feature.channels
        emit, table, need = _emitter(extractor, spec, i)
        tables.extend(table)
        needs = max(needs, need)
        for channel in channels:
            offset = spec.sensors.index(channel) * spec.window
            blocks.append(f"    /* {feature.kind} of {c_comment(channel)} */\n" + emit(offset))
    parts = [_BASE.format(window=spec.window, bins=spec.window // 2 + 1)]
    declarations = "    int k = 0;\n"
    if needs >= _STATISTICS:
        parts.append(_ANALYSE)
        declarations += "    EsWindow w;\n"
    if needs == _SPECTRA:
        power_of_two = spec.window & (spec.window - 1) == 0
        transform = _FFT if power_of_two else _DFT
        parts.append(_SPECTRUM.format(rate=c_float(spec.rate_hz), transform=transform))
        declarations += "    double power[ES_BINS], total;\n"
    parts.extend(tables)
    body = "\n".join(blocks)
    parts.append(
        "static void es_features(const float *window, float *features) {\n"
        f"{declarations}{body}\n}}\n"
    )
    return "\n".join(parts)


def _emitter(
    extractor: object, spec: InputSpec, index: int
) -> tuple[Callable[[int], str], list[str], int]:
    """What writes one channel's columns given the offset of its window, the tables it reads,
    and what it needs of the C support: the samples only, their statistics, or spectra."""
    analyse = "    es_analyse(window + {offset}, &w);\n"
    if isinstance(extractor, TimeStats):  # and Mean, its one-statistic kind
        lines = "".join(f"    features[k++] = es_out({_STATS[s]});\n" for s in extractor.stats)
        return lambda offset: analyse.format(offset=offset) + lines, [], _STATISTICS
    spectrum = analyse + "    total = es_spectrum(&w, power);\n"
    if isinstance(extractor, BandEnergies):
        bands = extractor.band_of_bins(spec.window, spec.rate_hz)
        table = (
            f"static const uint8_t es_bands_{index}[ES_BINS] = {{{', '.join(map(str, bands))}}};"
        )
        lines = (
            f"    {{\n        double energy[{extractor.bands}] = {{0.0}};\n"
            f"        for (int b = 0; b < ES_BINS; b++) energy[es_bands_{index}[b]] += power[b];\n"
            f"        for (int b = 0; b < {extractor.bands}; b++) "
            "features[k++] = es_out(energy[b] / total);\n    }\n"
        )
        return lambda offset: spectrum.format(offset=offset) + lines, [table], _SPECTRA
    if isinstance(extractor, DominantFrequency):
        lines = (
            "    {\n        int top = 0;\n"
            "        for (int b = 1; b < ES_BINS; b++) if (power[b] > power[top]) top = b;\n"
            "        features[k++] = es_out(es_freq(top));\n    }\n"
        )
        return lambda offset: spectrum.format(offset=offset) + lines, [], _SPECTRA
    if isinstance(extractor, SpectralCentroid):
        lines = (
            "    {\n        double moment = 0.0;\n"
            "        for (int b = 0; b < ES_BINS; b++) moment += power[b] * es_freq(b);\n"
            "        features[k++] = es_out(moment / total);\n    }\n"
        )
        return lambda offset: spectrum.format(offset=offset) + lines, [], _SPECTRA
    assert isinstance(extractor, Raw)  # the last of C_EXTRACTORS
    if extractor.size != spec.window:
        raise ExportError(
            f"extractors[{index}] (raw): size {extractor.size}, window {spec.window}; "
            "set size to the spec's window"
        )
    raw = (
        "    for (int i = 0; i < ES_WINDOW; i++) "
        "features[k++] = es_out(isfinite(window[{offset} + i]) ? window[{offset} + i] : 0.0f);\n"
    )
    return lambda offset: raw.format(offset=offset), [], _RAW
