"""Device profiles: what a class of device can hold and how fast it runs a model.

A model's `Footprint` is measured once, on the machine that optimised it (ONNX Runtime, one
thread, batch 1). A profile's budgets are for the device itself; `speed_factor` says how much
slower than that reference machine it runs, so a measured latency scales to the device.

    profile = PROFILES["pi"]
    reasons = profile.refuses(footprint)   # [] when the model fits
"""

from edgestack.bundle import Footprint
from edgestack.protocol import Hardware, ProfileView

__all__ = ["PROFILES", "DeviceProfile", "profile_for"]

_MB = 1024 * 1024


class DeviceProfile(ProfileView):
    """A profile's budgets, as the hub lists them, and the check of a footprint against them."""

    def refuses(self, footprint: Footprint) -> list[str]:
        """Why a model with this footprint does not fit; empty when it does."""
        reasons = []
        if footprint.model_bytes > self.flash_bytes:
            reasons.append(
                f"model is {footprint.model_bytes / _MB:.2f} MB, profile {self.name} holds "
                f"{self.flash_bytes / _MB:.2f} MB"
            )
        if footprint.peak_ram_bytes > self.ram_bytes:
            reasons.append(
                f"model needs {footprint.peak_ram_bytes / _MB:.1f} MB of RAM, profile "
                f"{self.name} allows {self.ram_bytes / _MB:.1f} MB"
            )
        latency = footprint.latency_ms_p99 * self.speed_factor
        if latency > self.latency_ms:
            reasons.append(
                f"model takes about {latency:.2f} ms per window (p99) on {self.name}, "
                f"the budget is {self.latency_ms:.2f} ms"
            )
        return reasons


PROFILES: dict[str, DeviceProfile] = {
    p.name: p
    for p in (
        DeviceProfile(
            name="mcu",
            description="microcontroller-class: Cortex-M7, 2 MB flash, 512 kB RAM",
            flash_bytes=1 * _MB,
            ram_bytes=256 * 1024,
            latency_ms=50.0,
            speed_factor=40.0,
        ),
        DeviceProfile(
            name="pi",
            description="Raspberry-Pi-class: 4 Cortex-A cores, 1-4 GB RAM",
            flash_bytes=64 * _MB,
            ram_bytes=256 * _MB,
            latency_ms=20.0,
            speed_factor=6.0,
        ),
        DeviceProfile(
            name="ipc",
            description="industrial PC: x86-64, 8 GB RAM and more",
            flash_bytes=1024 * _MB,
            ram_bytes=2048 * _MB,
            latency_ms=10.0,
            speed_factor=1.5,
        ),
        DeviceProfile(
            name="cloud",
            description="cloud tier: server CPU or GPU",
            flash_bytes=16 * 1024 * _MB,
            ram_bytes=32 * 1024 * _MB,
            latency_ms=100.0,
            speed_factor=1.0,
        ),
    )
}


def profile_for(hardware: Hardware) -> DeviceProfile:
    """The profile a device's own report puts it in: the smallest whose class it reaches."""
    if hardware.ram_mb >= 8 * 1024 and hardware.arch in ("x86_64", "AMD64"):
        return PROFILES["ipc"]
    if hardware.ram_mb >= 512:
        return PROFILES["pi"]
    return PROFILES["mcu"]
