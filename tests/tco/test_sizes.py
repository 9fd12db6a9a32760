import pytest

from ponder.core.errors import ConfigError
from ponder.tco.sizes import parse_list, parse_size


def test_parse_size():
    assert parse_size("8k") == 8192
    assert parse_size("1K") == 1024
    assert parse_size("1.5k") == 1536
    assert parse_size("300") == 300
    assert parse_size("1m") == 1048576


@pytest.mark.parametrize("bad", ["8q", "", "k", "-3", "0"])
def test_parse_size_rejects(bad):
    with pytest.raises(ConfigError) as e:
        parse_size(bad, "prompt length")
    assert "prompt length" in str(e.value)


def test_parse_list():
    assert parse_list("1,8,64") == [1, 8, 64]
    assert parse_list("1, 8,8") == [1, 8]
    with pytest.raises(ConfigError, match="comma-separated"):
        parse_list(",")
