"""Small labelled data from the simulated motor, shared by the learning tests."""

import numpy as np

from edgestack.processing import FeaturePipeline, vibration_spec
from edgestack.sensing import FAULTS, MotorSimulator

MACHINES = (1, 2)
WINDOW = 512  # raw samples per channel of a window for the 1D-CNN
ACCEL = 3  # the accelerometer axes, the first channels of the motor


def motor_features(seconds: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """Vibration feature rows of each machine through each fault, and their fault indices
    into `FAULTS`."""
    rows, faults = [], []
    for seed in MACHINES:
        motor = MotorSimulator(seed, start=0.0)
        for k, fault in enumerate(FAULTS):
            motor.inject(fault)
            pipeline = FeaturePipeline(vibration_spec())
            chunk = round(motor.rate_hz / 10)
            found = [pipeline.push(motor.read(chunk)) for _ in range(round(seconds * 10))]
            rows.append(np.concatenate(found))
            faults += [k] * len(rows[-1])
    return np.concatenate(rows), np.array(faults, dtype=np.int64)


def motor_windows(per_fault: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Raw accelerometer windows, one row each, channel-major: `(n, ACCEL * WINDOW)`."""
    rows, faults = [], []
    for seed in MACHINES:
        motor = MotorSimulator(seed, start=0.0)
        for k, fault in enumerate(FAULTS):
            motor.inject(fault)
            data = motor.read(per_fault * WINDOW).data[:ACCEL]  # (channels, samples)
            windows = data.reshape(ACCEL, per_fault, WINDOW).transpose(1, 0, 2)
            rows.append(windows.reshape(per_fault, ACCEL * WINDOW))
            faults += [k] * per_fault
    return np.concatenate(rows), np.array(faults, dtype=np.int64)
