"""Peer streams that show up out of id order are all accepted (a lost first packet delays one stream's event)."""

from __future__ import annotations

from types import SimpleNamespace

from aioquic.quic import events

from lightning.net.config import NetConfig
from lightning.net.driver import QuicConn


class ScriptedQuic:
    """Stands in for aioquic's QuicConnection: hands out a fixed list of events."""

    def __init__(self, evs: list[events.QuicEvent]) -> None:
        self.configuration = SimpleNamespace(is_client=False)
        self._evs = list(evs)
        self._close_event = None

    def next_event(self) -> events.QuicEvent | None:
        return self._evs.pop(0) if self._evs else None


class NoRouting:
    config = NetConfig()

    def route(self, *args: object) -> None:
        pass

    def unroute(self, *args: object) -> None:
        pass


async def test_streams_arriving_out_of_order_are_all_accepted():
    evs = [
        events.StreamDataReceived(data=b"\x02\x04req8", end_stream=False, stream_id=8),
        events.StreamDataReceived(data=b"\x02\x04req4", end_stream=False, stream_id=4),
        events.StreamDataReceived(data=b"\x01\x03consensus", end_stream=False, stream_id=6),
        events.StreamDataReceived(data=b"\x01\x01broadcast", end_stream=False, stream_id=2),
        events.StreamDataReceived(data=b"late", end_stream=False, stream_id=4),  # more data on a known stream
    ]
    conn = QuicConn(NoRouting(), ScriptedQuic(evs), expected_peer=None, address=("1.2.3.4", 1))  # type: ignore[arg-type]
    conn._authenticated = True
    conn._peer_seen_low = {False: 1, True: 0}  # stream 0 (the auth stream) was seen
    conn._process_events()
    assert sorted(s.stream_id for s in conn._accept) == [2, 4, 6, 8]
    assert conn._peer_seen_low == {False: 3, True: 2} and conn._peer_seen_above == {False: set(), True: set()}
