import pytest
from flwr.supercore.task_identity import TaskIdentity


@pytest.fixture
def aggregator(monkeypatch):
    """This process as a ServerApp's, which Flower gives an identity before it sends."""
    for name, value in {"_run_id": 1, "_node_id": 0, "_task_id": 1}.items():
        monkeypatch.setattr(TaskIdentity, name, value)
