"""`edgestack models` says how each version was made and which device profiles it fits."""

from datetime import UTC, datetime

from edgestack.bundle import Bundle, Footprint, Lineage
from edgestack.cli.fleet import models_listing
from edgestack.processing import vibration_spec
from edgestack.protocol import ModelView

AT = datetime(2026, 11, 30, 12, 30, tzinfo=UTC)


def _version(
    version: int,
    digest: str,
    lineage: Lineage | None,
    *,
    ram_bytes: int = 100_000,
    p99_ms: float | None = 0.01,
) -> ModelView:
    footprint = (
        None
        if p99_ms is None
        else Footprint(
            model_bytes=10_000,
            peak_ram_bytes=ram_bytes,
            latency_ms_p50=p99_ms / 2,
            latency_ms_p99=p99_ms,
        )
    )
    bundle = Bundle.create(
        name="motor",
        labels=["normal", "worn"],
        input=vibration_spec(),
        model=b"onnx",
        metrics={"accuracy": 0.9 + version / 100},
        footprint=footprint,
        lineage=lineage,
    )
    return ModelView(
        name="motor",
        version=version,
        digest=digest * 64,
        size_bytes=20_000,
        registered_at=AT,
        manifest=bundle.manifest,
    )


def test_each_version_says_how_it_was_made_from_what_and_which_profiles_it_fits() -> None:
    trained = Lineage(trainer="random_forest", dataset="motors", dataset_version=3)
    rows = [
        _version(1, "a", trained, ram_bytes=4_000_000, p99_ms=2.0),
        _version(2, "b", trained.model_copy(update={"parent": "a" * 64, "optimisation": "fp16"})),
        _version(
            3,
            "c",
            trained.model_copy(update={"parent": "f" * 64, "optimisation": "distilled"}),
            p99_ms=8.0,
        ),
        _version(4, "d", None, p99_ms=None),
    ]

    listing = models_listing(rows)

    columns = listing.headers
    cells = [dict(zip(columns, row, strict=True)) for row in listing.cells]
    assert [(c["model"], c["made"], c["fits"]) for c in cells] == [
        ("motor@1", "random_forest on motors@3", "pi, ipc, cloud"),
        ("motor@2", "fp16 of motor@1", "mcu, pi, ipc, cloud"),
        ("motor@3", "distilled of ffffffffffff", "cloud"),
        ("motor@4", "-", "unmeasured"),
    ]
    assert [c["accuracy"] for c in cells] == ["0.910", "0.920", "0.930", "0.940"]
    assert {c["size"] for c in cells} == {"20 kB"}
