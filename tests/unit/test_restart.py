import pytest

from dockyard.daemon import restart
from dockyard.errors import InvalidParameter


def test_backoff_doubles_to_a_minute_and_resets_after_10s():
    b = restart.Backoff()
    delays = [b.next(0.5) for _ in range(12)]
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert delays[-1] == 60.0 and max(delays) == 60.0
    assert b.next(10.0) == 0.1      # a run of 10 s resets the backoff
    assert b.next(1.0) == 0.2


@pytest.mark.parametrize("policy,code,count,manual,expect", [
    ({"Name": "no"}, 1, 0, False, False),
    ({"Name": "always"}, 0, 5, False, True),
    ({"Name": "always"}, 0, 0, True, False),
    ({"Name": "unless-stopped"}, 1, 0, False, True),
    ({"Name": "on-failure", "MaximumRetryCount": 2}, 1, 0, False, True),
    ({"Name": "on-failure", "MaximumRetryCount": 2}, 1, 2, False, False),
    ({"Name": "on-failure", "MaximumRetryCount": 0}, 1, 99, False, True),
    ({"Name": "on-failure"}, 0, 0, False, False),
])
def test_should_restart(policy, code, count, manual, expect):
    assert restart.should_restart(policy, code, count, manual) is expect


def test_validate():
    assert restart.validate(None) == {"Name": "no", "MaximumRetryCount": 0}
    assert restart.validate({"Name": "on-failure", "MaximumRetryCount": 3})["MaximumRetryCount"] == 3
    with pytest.raises(InvalidParameter):
        restart.validate({"Name": "sometimes"})
    with pytest.raises(InvalidParameter):
        restart.validate({"Name": "always", "MaximumRetryCount": 3})
