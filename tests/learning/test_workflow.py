import pytest

from edgestack.learning.workflow import WorkflowError, check_train
from edgestack.protocol import TrainRequest


def test_a_train_request_is_checked_before_anything_is_fitted() -> None:
    named = TrainRequest(dataset="motors", model="decision_tree", name="motor-faults")

    assert check_train(named) == "motor-faults"
    assert check_train(TrainRequest(dataset="motors")) == "motors"
    assert check_train(TrainRequest(dataset="Arrow Head")).startswith("arrow-head-")
    # The shape of a network over raw windows comes from the data set's spec.
    assert check_train(TrainRequest(dataset="d", model="cnn1d", params={"epochs": 1})) == "d"


@pytest.mark.parametrize(
    ("request_", "field", "says"),
    [
        (TrainRequest(dataset="motors", model="oracle"), "model", "unknown trainer 'oracle'"),
        (TrainRequest(dataset="motors", params={"depth": 3}), "params", "auto tries"),
        (
            TrainRequest(dataset="motors", model="decision_tree", params={"nope": 1}),
            "params",
            "nope",
        ),
        (TrainRequest(dataset="motors", version=2, freeze=True), "version", "freeze trains"),
        (
            TrainRequest(dataset="d", model="cnn1d", params={"epochs": 0}),
            "params",
            "params.epochs: Input should be greater than or equal to 1",
        ),
        (
            TrainRequest(dataset="d", model="cnn1d", params={"shape": [1, 2]}),
            "params",
            "params.shape[1]",
        ),
    ],
)
def test_a_bad_train_request_names_its_field(request_: TrainRequest, field: str, says: str) -> None:
    with pytest.raises(WorkflowError) as raised:
        check_train(request_)

    assert raised.value.field == field
    assert raised.value.usage
    assert str(raised.value).startswith(field)
    assert says in str(raised.value)
