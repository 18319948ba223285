"""The fleet simulator through a real Mosquitto with the hub's accounts and ACL: each
simulated device publishes under its own account, follows its retained desired state, and
every batch the broker acked is stored."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from edgestack.client import HubClient
from edgestack.demo import wait_until
from edgestack.fleetsim import SimOptions, simulate
from edgestack.protocol import DesiredPatch

from .test_mqtt_transport import WAIT_S, broker_and_hub

pytestmark = pytest.mark.integration

_DEVICES = 20


def test_simulated_devices_over_mqtt_are_stored_whole_and_follow_their_twin() -> None:
    with broker_and_hub([], {"EDGESTACK_HUB_ENROL_ATTEMPTS": str(2 * _DEVICES)}) as setup:
        client = setup.fleet.client
        options = SimOptions(
            hub=setup.fleet.hub_url,
            devices=_DEVICES,
            enrol_token=setup.fleet.enrol_token,
            transport=setup.url,
            interval_s=0.5,
            poll_s=5,
        )
        ids = options.device_ids()
        stop = threading.Event()
        with ThreadPoolExecutor(1) as pool:
            run = pool.submit(simulate, options, None, stop)
            try:
                wait_until(
                    lambda: None not in _desired_versions(client, ids).values(),
                    timeout_s=WAIT_S,
                    what="every simulated device to report through the broker",
                )
                versions = {
                    d: client.update_desired(d, DesiredPatch(telemetry_interval_s=2)).version
                    for d in ids
                }
                wait_until(
                    lambda: _desired_versions(client, ids) == versions,
                    timeout_s=WAIT_S,
                    what="every simulated device to report its new desired state",
                )
            finally:
                stop.set()
            summary = run.result(timeout=WAIT_S)
        acked = set(summary.acked_batches)
        stored = wait_until(
            lambda: (batches := _stored(client, ids)) >= acked and batches,
            timeout_s=WAIT_S,
            what="every batch the broker acked to be stored",
        )

    assert summary.devices_up == summary.enrolled == _DEVICES
    assert summary.desired_changes == _DEVICES
    assert summary.reports_acked == len(acked) >= _DEVICES
    assert not any(reason.startswith("refused") for reason in summary.errors)
    assert acked <= stored


def _desired_versions(client: HubClient, ids: list[str]) -> dict[str, int | None]:
    """The desired version each of `ids` reported, None for one that reported nothing yet."""
    reported = {view.device_id: view.reported for view in client.devices()}
    return {d: r.desired_version if (r := reported.get(d)) else None for d in ids}


def _stored(client: HubClient, ids: list[str]) -> set[str]:
    return {str(t.batch.batch_id) for d in ids for t in client.telemetry(d, limit=1000)}
