"""Readings published to a real broker are classified by a model deployed on a real agent."""

import json
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest

from edgestack.appspec import AppSpec, load_app_spec
from edgestack.bundle import Bundle
from edgestack.demo import LocalFleet, wait_until
from edgestack.learning import train_classifier
from edgestack.processing import FeaturePipeline
from edgestack.protocol import DeployRequest
from edgestack.sensing import Chunk

pytestmark = pytest.mark.integration

RATE_HZ = 50.0
TOPIC = "plant/press-4/vibration"

APP = """
name: press-monitor
sources:
  - kind: mqtt
    params:
      host: 127.0.0.1
      port: {port}
      topics: {{"{topic}": [level]}}
      units: [mm]
      rate_hz: {rate}
steps:
  - {{kind: resample, params: {{rate_hz: {rate}}}}}
window: 50
hop: 50
extractors:
  - {{kind: time_stats}}
model: {{name: press-shaking, preprocess: [{{kind: normalise}}]}}
rules: {{normal_label: calm, trigger_windows: 2, min_confidence: 0.6}}
"""


def _signal(label: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * RATE_HZ)
    t = np.arange(n) / RATE_HZ
    amplitude = 0.2 if label == "calm" else 2.0
    return 10 + amplitude * np.sin(2 * np.pi * 3.0 * t) + 0.1 * rng.standard_normal(n)


def _train(app: AppSpec, tmp_path: Path) -> bytes:
    source = app.source()
    spec = app.input_spec(source)
    source.close()
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for label in ("calm", "shaking"):
        values = _signal(label, 60, rng)
        times = 1_700_000_000 + np.arange(len(values)) / RATE_HZ
        chunk = Chunk(times[0], RATE_HZ, ("level",), ("mm",), values[None, :], timestamps=times)
        features = FeaturePipeline(spec).push(chunk)
        rows.append(features)
        labels += [label] * len(features)
    assert app.model is not None
    trained = train_classifier(np.vstack(rows), labels, preprocess=app.model.preprocess)
    assert trained.metrics["accuracy"] >= 0.95
    bundle = Bundle.create(
        name="press-shaking",
        version=1,
        labels=trained.labels,
        input=spec,
        model=trained.onnx,
        metrics=trained.metrics,
    )
    return bundle.pack()


def _publish(client: mqtt.Client, values: np.ndarray, start: float) -> None:
    for i, value in enumerate(values.tolist()):
        payload = json.dumps({"t": start + i / RATE_HZ, "value": value})
        client.publish(TOPIC, payload, qos=1).wait_for_publish(timeout=5)


def test_mqtt_readings_are_classified_on_the_agent_and_alarms_reach_the_hub(
    tmp_path: Path, mosquitto: tuple[str, int]
) -> None:
    host, port = mosquitto
    app_path = tmp_path / "press.yaml"
    app_path.write_text(APP.format(port=port, topic=TOPIC, rate=RATE_HZ))
    app = load_app_spec(app_path)
    bundle = _train(app, tmp_path)
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    publisher.connect(host, port)
    publisher.loop_start()
    rng = np.random.default_rng(1)

    with LocalFleet(tmp_path / "fleet", ["press-4"]) as fleet:
        fleet.start_hub()
        fleet.start_agent("press-4", app=app_path)
        model = fleet.client.register_model(bundle)
        wait_until(
            lambda: [d for d in fleet.client.devices() if d.reported],
            timeout_s=60,
            what="the agent to report what it can feed",
        )
        fleet.client.deploy(DeployRequest(model="press-shaking", devices=["press-4"]))
        wait_until(
            lambda: (
                (d := fleet.client.device("press-4")).reported
                and d.reported.bundle
                and d.reported.bundle.digest == model.digest
            ),
            timeout_s=60,
            what="the agent to run the model",
        )
        clock = 1_800_000_000.0
        _publish(publisher, _signal("calm", 10, rng), clock)
        publisher.publish(TOPIC, b"{not json", qos=1).wait_for_publish(timeout=5)
        publisher.publish(TOPIC, json.dumps({"t": clock, "value": 1.0}), qos=1)
        _publish(publisher, _signal("shaking", 10, rng), clock + 10)

        alarm = wait_until(
            lambda: [e for e in fleet.client.events() if e.event.kind == "alarm_raised"],
            timeout_s=30,
            what="an alarm for the shaking press",
        )
        fleet.stop_agents()
        device = fleet.client.device("press-4")
    publisher.loop_stop()

    assert {e.event.label for e in alarm} == {"shaking"}
    predictions = device.telemetry.predictions
    assert predictions.get("calm", 0) >= 8
    assert predictions.get("shaking", 0) >= 2
    assert device.telemetry.bad_input.get("malformed_payload") == 1
    assert device.telemetry.bad_input.get("time_backwards", 0) >= 1
    assert any(e.reason == "malformed_payload" for e in device.telemetry.bad_examples)
