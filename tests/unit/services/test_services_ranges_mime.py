import pytest

from lightning.services.mime import content_type
from lightning.services.ranges import Unsatisfiable, parse_range


@pytest.mark.parametrize(
    ("header", "length", "expected"),
    [
        (None, 10, None),
        ("bytes=0-4", 10, (0, 5)),
        ("bytes=5-", 10, (5, 10)),
        ("bytes=-3", 10, (7, 10)),
        ("bytes=-30", 10, (0, 10)),
        ("bytes=8-100", 10, (8, 10)),
        ("bytes=0-0", 1, (0, 1)),
        ("bytes=0-1,4-5", 10, None),  # several ranges: whole body
        ("items=0-1", 10, None),
        ("bytes=5-2", 10, None),
        ("bytes=a-b", 10, None),
        ("bytes", 10, None),
    ],
)
def test_parse_range(header, length, expected):
    assert parse_range(header, length) == expected


@pytest.mark.parametrize(
    ("header", "length"), [("bytes=10-", 10), ("bytes=10-20", 10), ("bytes=-0", 10), ("bytes=-5", 0)]
)
def test_unsatisfiable(header, length):
    with pytest.raises(Unsatisfiable):
        parse_range(header, length)


def test_content_type():
    assert content_type("movie.mp4", b"") == "video/mp4"
    assert content_type("list.m3u8", b"") == "application/vnd.apple.mpegurl"
    assert content_type("a.json", b"") == "application/json; charset=utf-8"
    assert content_type(None, b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert content_type(None, b"\x00\x00\x00\x18ftypmp42") == "video/mp4"
    assert content_type(None, b"hello world") == "text/plain; charset=utf-8"
    assert content_type(None, b"<html><script>") == "text/plain; charset=utf-8"  # never sniffed as HTML
    assert content_type(None, b"\x00\x01\x02") == "application/octet-stream"
    assert content_type(None, "é".encode() * 300) == "text/plain; charset=utf-8"
