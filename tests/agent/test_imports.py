import subprocess
import sys

# What an agent never uses: training, plotting, dataset files and scipy's signal toolbox.
HEAVY = ("matplotlib", "pandas", "pyarrow", "scipy", "skl2onnx", "sklearn", "torch")

PROBE = f"""
import sys
from edgestack.cli import app
from edgestack.agent import Agent
from edgestack.appspec import motor_app
motor_app(0).source().read(2048)
print(",".join(m for m in {HEAVY!r} if m in sys.modules))
"""


def test_an_agent_running_the_motor_app_loads_no_training_or_plotting_library() -> None:
    # A fresh interpreter: this one has loaded them all for other tests.
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )

    assert result.stdout.strip() == ""
