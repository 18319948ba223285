"""Whether a device can collect into a dataset: its samples must be windows of the sensors,
at the rate, that the dataset's samples were taken of."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from edgestack.bundle import InputSpec
from edgestack.hub.errors import Conflict
from edgestack.hub.store import devices
from edgestack.hub.store.tables import SampleRow, SpecRow
from edgestack.protocol import Collection, ReportedState

__all__ = ["check"]


def check(session: Session, device_id: str, collection: Collection) -> None:
    """Refuse (409) asking `device_id` to collect into `collection.dataset` when the device
    feeds other sensors, or another rate, than every input spec of the dataset's samples,
    naming both. A device that has not said what it feeds, or a dataset without samples yet,
    is no reason to refuse."""
    row = devices.get(session, device_id)
    reported = None if row.reported is None else ReportedState.model_validate(row.reported)
    feeds = reported.feeds if reported else None
    if feeds is None:
        return
    held = select(SampleRow.spec).where(SampleRow.dataset == collection.dataset).distinct()
    specs = {
        spec.fingerprint: InputSpec.model_validate(spec.spec)
        for spec in session.scalars(select(SpecRow).where(SpecRow.fingerprint.in_(held)))
    }
    if not specs or any(
        spec.sensors == feeds.sensors and spec.rate_hz == feeds.rate_hz for spec in specs.values()
    ):
        return
    wanted = "; ".join(
        f"spec {fingerprint}: sensors {', '.join(spec.sensors)} at {spec.rate_hz:g} Hz"
        for fingerprint, spec in sorted(specs.items())
    )
    raise Conflict(
        f"collect: device '{device_id}' feeds sensors {', '.join(feeds.sensors) or 'none'} at "
        f"{feeds.rate_hz:g} Hz, but dataset '{collection.dataset}' holds samples of {wanted}; "
        "collect into another dataset, or from a device with those sensors"
    )
