import pytest

from opsfix.engine.rollout import batch_sizes, exceeds, split, validate_serial


@pytest.mark.parametrize(
    ("total", "serial", "sizes"),
    [
        (10, None, [10]),
        (10, [3], [3, 3, 3, 1]),
        (10, ["25%"], [2, 2, 2, 2, 2]),
        (10, [1, "25%", "100%"], [1, 2, 7]),
        (3, ["10%"], [1, 1, 1]),  # never below one host
        (5, [10], [5]),
        (4, ["2"], [2, 2]),
    ],
)
def test_batch_sizes(total, serial, sizes):
    assert batch_sizes(total, serial) == sizes


def test_split_keeps_order():
    assert split(list("abcde"), [1, 2]) == [["a"], ["b", "c"], ["d", "e"]]


@pytest.mark.parametrize("bad", [0, -1, "0%", "150%", "abc", [], True])
def test_bad_serial_is_rejected(bad):
    with pytest.raises(ValueError):
        validate_serial(bad)


def test_threshold_is_strictly_exceeded():
    assert not exceeds(1, 4, 25)
    assert exceeds(2, 4, 25)
    assert exceeds(1, 1, 0)
    assert not exceeds(0, 4, 0)
    # no threshold: only a batch where every host failed stops the rollout
    assert not exceeds(3, 4, None) and exceeds(4, 4, None)
