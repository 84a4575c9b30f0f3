import pytest

from lightning.loadgen import BenchError, Target, _percentiles


def test_percentiles_nearest_rank():
    values = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    assert _percentiles(values) == {"p50": 50.0, "p90": 90.0, "p99": 99.0}
    assert _percentiles([0.002]) == {"p50": 2.0, "p90": 2.0, "p99": 2.0}
    assert _percentiles([]) == {"p50": None, "p90": None, "p99": None}


def test_target_parse():
    t = Target.parse("http://127.0.0.5:4220/")
    assert (t.host, t.port, t.prefix) == ("127.0.0.5", 4220, "")
    assert Target.parse("127.0.0.1:9").port == 9
    with pytest.raises(BenchError):
        Target.parse("https://x:1")
