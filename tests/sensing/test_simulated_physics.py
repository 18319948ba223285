"""Each simulated sensor measures something physically plausible, and its events show."""

import numpy as np
import pytest

from edgestack.sensing import (
    AudioSimulator,
    CameraSimulator,
    ColourSimulator,
    Defects,
    ImuSimulator,
    LightSimulator,
    RangerSimulator,
    VehicleSimulator,
    WeatherSimulator,
)

CLEAN = Defects(noise=0.0, dropout=0.0, outliers=0.0, drift=0.0)
QUIET = Defects(dropout=0.0, outliers=0.0)  # nominal noise and drift, no gaps or spikes
SEEDS = range(1, 5)


def _haversine_m(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Distances between consecutive fixes on a sphere of the Earth's mean radius."""
    phi, lam = np.radians(lat.astype(float)), np.radians(lon.astype(float))
    a = (
        np.sin(np.diff(phi) / 2) ** 2
        + np.cos(phi[:-1]) * np.cos(phi[1:]) * np.sin(np.diff(lam) / 2) ** 2
    )
    return 2 * 6_371_000.0 * np.arcsin(np.sqrt(a))


class TestVehicle:
    @pytest.mark.parametrize("seed", SEEDS)
    def test_speed_agrees_with_the_distance_between_fixes(self, seed: int) -> None:
        car = VehicleSimulator(seed, start=0.0, defects=CLEAN)

        lat, lon, altitude, speed, heading = car.read(600).data

        driven = _haversine_m(lat, lon)
        # Fixes are float32: each position is good to about a metre, so compare over minutes.
        assert driven.sum() == pytest.approx(speed[1:].sum(), rel=0.01)
        assert 5.0 < speed.mean() < 25.0
        assert ((heading >= 0) & (heading < 360)).all()
        assert np.ptp(altitude) < 150.0

    def test_heading_points_along_the_track(self) -> None:
        car = VehicleSimulator(2, start=0.0, defects=CLEAN)

        lat, lon, _, _, heading = car.read(600).data.astype(float)

        north = np.diff(lat)
        east = np.diff(lon) * np.cos(np.radians(lat[1:]))
        bearing = np.degrees(np.arctan2(east, north)) % 360
        error = (bearing - heading[1:] + 180) % 360 - 180
        assert np.median(np.abs(error)) < 5.0

    def test_a_stop_brings_the_vehicle_to_a_halt_and_it_drives_on(self) -> None:
        car = VehicleSimulator(1, start=0.0, defects=CLEAN)
        car.read(30)

        car.inject("stop", severity=0.5)  # 4 s braking, 10 s waiting, 6 s pulling away
        speed = car.read(40).data[3]

        assert speed[6:12].max() < 0.1
        assert speed[0] > 3.0
        assert speed[-10:].min() > 3.0


class TestImu:
    @pytest.mark.parametrize("seed", SEEDS)
    def test_at_rest_it_feels_one_g_upwards(self, seed: int) -> None:
        imu = ImuSimulator(seed, start=0.0, defects=QUIET)

        data = imu.read(500).data

        magnitude = np.linalg.norm(data[:3], axis=0)
        assert magnitude.mean() == pytest.approx(1.0, abs=0.02)
        assert magnitude.std() < 0.03
        assert data[2].mean() == pytest.approx(1.0, abs=0.02)
        assert np.abs(data[3:]).max() < 5.0

    @pytest.mark.parametrize("seed", SEEDS)
    def test_walking_bounces_at_the_step_rate_and_running_lands_hard(self, seed: int) -> None:
        imu = ImuSimulator(seed, start=0.0, activity="walk", defects=QUIET)

        walk = imu.read(1000).data[2]
        imu.inject("run")
        run = imu.read(1000).data[2]

        freqs = np.fft.rfftfreq(walk.size, 1 / imu.rate_hz)
        steps_hz = freqs[np.argmax(np.abs(np.fft.rfft(walk - walk.mean())))]
        assert 1.5 <= steps_hz <= 2.1
        assert walk.mean() == pytest.approx(1.0, abs=0.05)
        assert run.max() > 2.0
        assert run.std() > 2 * walk.std()

    @pytest.mark.parametrize("seed", SEEDS)
    def test_a_fall_is_free_fall_then_impact_then_lying_still(self, seed: int) -> None:
        imu = ImuSimulator(seed, start=0.0, activity="walk", defects=QUIET)
        imu.read(300)

        imu.inject("fall")
        data = imu.read(300).data

        magnitude = np.linalg.norm(data[:3], axis=0)
        floating = np.flatnonzero(magnitude < 0.3)
        impact = int(np.argmax(magnitude))
        assert floating.size >= 0.2 * imu.rate_hz
        assert magnitude[impact] > 2.5
        assert floating[0] < impact
        assert 0.25 <= (impact - floating[0]) / imu.rate_hz <= 0.5
        lying = data[:3, -100:].mean(axis=1)
        assert np.linalg.norm(lying) == pytest.approx(1.0, abs=0.05)
        assert abs(lying[2]) < 0.1
        assert imu.activity == "fall"


class TestWeather:
    @pytest.mark.parametrize("seed", SEEDS)
    def test_afternoons_are_warmer_and_drier_than_nights(self, seed: int) -> None:
        # One sample per hour of a day starting at midnight.
        station = WeatherSimulator(seed, start=0.0, time_scale=3600.0, defects=QUIET)

        pressure, temperature, humidity = station.read(24).data

        assert temperature[14] > temperature[4] + 4.0
        assert humidity[14] < humidity[4] - 10.0
        assert ((humidity >= 0) & (humidity <= 100)).all()
        assert (np.abs(pressure - 1013) < 30).all()

    @pytest.mark.parametrize("seed", SEEDS)
    def test_a_front_drops_the_pressure_and_raises_the_humidity(self, seed: int) -> None:
        # Hourly from 06:00, so the front peaks around noon, when the air is far from saturated.
        calm = WeatherSimulator(seed, start=6 * 3600.0, time_scale=3600.0, defects=QUIET)
        stormy = WeatherSimulator(seed, start=6 * 3600.0, time_scale=3600.0, defects=QUIET)
        stormy.inject("front")

        change = stormy.read(24).data - calm.read(24).data

        assert change[0].min() < -6.0
        assert 3 <= int(np.argmin(change[0])) <= 9
        assert change[2, 4:9].mean() > 5.0
        assert np.abs(change[:, 18:]).max() < 1.0  # over by the next night


class TestLight:
    @pytest.mark.parametrize("seed", SEEDS)
    def test_days_are_bright_and_nights_dark(self, seed: int) -> None:
        # One sample every six minutes of a day starting at midnight.
        meter = LightSimulator(seed, rate_hz=1.0, start=0.0, time_scale=360.0, defects=QUIET)

        lux = meter.read(240).data[0]

        hour = np.arange(240) / 10
        day, night = lux[(hour > 10) & (hour < 14)], lux[(hour < 4) | (hour > 21)]
        assert day.max() > 50_000
        assert day.min() > 10_000
        assert night.max() < 5.0
        assert (lux >= 0).all()

    def test_a_shadow_darkens_the_sensor_for_a_few_seconds(self) -> None:
        meter = LightSimulator(1, start=12 * 3600.0, defects=CLEAN)
        twin = LightSimulator(1, start=12 * 3600.0, defects=CLEAN)
        meter.inject("shadow")

        ratio = meter.read(60).data[0] / twin.read(60).data[0]

        assert ratio[5:30] == pytest.approx(np.full(25, 0.1), abs=0.01)
        assert ratio[-10:] == pytest.approx(np.ones(10))


class TestRanger:
    @pytest.mark.parametrize("seed", SEEDS)
    def test_objects_come_and_go_within_the_range(self, seed: int) -> None:
        ranger = RangerSimulator(seed, start=0.0, defects=QUIET)

        distance = ranger.read(1200).data[0]

        assert ((distance >= 0.02) & (distance <= 4.0)).all()
        assert (distance < 2.0).mean() > 0.05
        assert (distance > 2.8).mean() > 0.1

    def test_with_nothing_in_range_it_reports_max_range(self) -> None:
        # Seeds differ in whether a wall stands within range; some stand beyond.
        maxed = [
            (RangerSimulator(seed, start=0.0, defects=CLEAN).read(600).data[0] == 4.0).mean()
            for seed in range(1, 9)
        ]

        assert max(maxed) > 0.2

    def test_an_obstacle_comes_close_and_leaves(self) -> None:
        ranger = RangerSimulator(1, start=0.0, defects=CLEAN)
        ranger.read(20)

        ranger.inject("obstacle", severity=2.0)
        distance = ranger.read(100).data[0]

        assert distance[10:50] == pytest.approx(np.full(40, 0.5))
        assert distance[-30:].min() > 0.5


class TestAudio:
    @staticmethod
    def _spectrogram(sound: np.ndarray, rate: float, frame: int) -> tuple[np.ndarray, np.ndarray]:
        frames = sound[: sound.size // frame * frame].reshape(-1, frame)
        power = np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1)) ** 2
        return np.fft.rfftfreq(frame, 1 / rate), power

    @pytest.mark.parametrize("seed", SEEDS)
    def test_a_siren_sweeps_through_the_siren_band(self, seed: int) -> None:
        mic = AudioSimulator(seed, start=0.0, defects=QUIET)
        mic.read(1600)

        mic.inject("siren")
        sound = mic.read(6 * 16000).data[0]

        freqs, power = self._spectrogram(sound[8000:-8000], mic.rate_hz, 1024)
        dominant = freqs[np.argmax(power, axis=1)]
        assert ((dominant > 500) & (dominant < 1400)).all()
        assert np.ptp(dominant) > 500
        assert np.sqrt(np.mean(sound**2)) > 0.5  # about 100 dB, far above the ambience

    @pytest.mark.parametrize("seed", SEEDS)
    def test_breaking_glass_is_a_broadband_burst_that_rings_on(self, seed: int) -> None:
        mic = AudioSimulator(seed, start=0.0, defects=QUIET)
        quiet = mic.read(16000).data[0]

        mic.inject("glass")
        sound = mic.read(16000).data[0]

        freqs, power = self._spectrogram(sound[:512], mic.rate_hz, 512)
        bands = [power[0, (freqs >= lo) & (freqs < lo + 2000)].sum() for lo in (0, 2000, 4000)]
        assert min(bands) > 0.1 * sum(bands)
        loudness = np.sqrt(np.mean(sound[:800] ** 2))
        assert loudness > 20 * np.sqrt(np.mean(quiet**2))
        assert np.sqrt(np.mean(sound[4000:8000] ** 2)) < loudness / 3
        assert np.abs(sound[-4000:]).max() < 0.2


class TestColour:
    def test_objects_of_different_colours_pass_over_the_belt(self) -> None:
        sensor = ColourSimulator(1, start=0.0, defects=QUIET)

        red, green, blue, clear = sensor.read(1200).data  # one minute

        strongest = np.argmax(np.vstack([red, green, blue]), axis=0)
        belt = np.median(clear[clear < np.percentile(clear, 30)])
        assert set(strongest.tolist()) == {0, 1, 2}
        assert (clear > 2 * belt).mean() > 0.2
        assert ((red >= 0) & (red <= 65535)).all()

    def test_glare_lifts_every_band(self) -> None:
        sensor, twin = ColourSimulator(2, defects=CLEAN), ColourSimulator(2, defects=CLEAN)
        sensor.inject("glare")

        lift = sensor.read(40).data - twin.read(40).data

        assert (lift[:, 10:40] > 10_000).all()


class TestCamera:
    @pytest.mark.parametrize("seed", SEEDS)
    def test_a_bright_shape_crosses_a_dim_background(self, seed: int) -> None:
        camera = CameraSimulator(seed, start=0.0, defects=QUIET)

        frames = camera.read(100).data[0]  # 20 s

        assert frames.shape == (100, 32, 32)
        background = np.median(frames, axis=(1, 2))
        bright = frames > background[:, None, None] + 0.25
        seen = bright.sum(axis=(1, 2)) >= 6
        assert seen.mean() > 0.5
        rows, cols = np.mgrid[0:32, 0:32]
        centre = np.array(
            [[(rows * b).sum() / b.sum(), (cols * b).sum() / b.sum()] for b in bright[seen]]
        )
        assert np.ptp(centre, axis=0).max() > 10  # it moves
        assert ((frames >= 0) & (frames <= 1)).all()

    def test_a_flash_overexposes_a_few_frames(self) -> None:
        camera, twin = CameraSimulator(1, defects=CLEAN), CameraSimulator(1, defects=CLEAN)
        camera.inject("flash")

        lift = (camera.read(10).data - twin.read(10).data)[0].mean(axis=(1, 2))

        assert lift[1] > 0.3
        assert lift[-5:] == pytest.approx(np.zeros(5))
