"""The probe connection under arbitrary server bytes: a Reply or a ProbeError, in bounded time."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from styku_crypto.tls.audit import _clienthello as ch
from styku_crypto.tls.audit._wire import ProbeError, Reply, exchange
from tests.tls.audit._hello import record, server_hello

HELLO = ch.client_hello(version=ch.TLS12, suites=[0xC02F, 0x002F])


async def _answer_with(chunks: list[bytes], *, full_flight: bool, sslv2: bool) -> Reply | str:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await exchange(
            "127.0.0.1", port, HELLO, timeout=2.0, full_flight=full_flight, sslv2=sslv2
        )
    except ProbeError as exc:
        return exc.kind
    finally:
        server.close()
        await server.wait_closed()


valid_prefix = st.sampled_from(
    [b"", record(22, server_hello(version=0x0303, suite=0xC02F)), b"\x16\x03\x03", b"\x15\x03\x03"]
)


@given(
    prefix=valid_prefix,
    chunks=st.lists(st.binary(max_size=200), max_size=5),
    full_flight=st.booleans(),
    sslv2=st.booleans(),
)
def test_fuzz_server_bytes_give_reply_or_probe_error(
    prefix: bytes, chunks: list[bytes], full_flight: bool, sslv2: bool
) -> None:
    """Whatever a server sends and however it splits it, exchange never crashes or hangs."""
    result = asyncio.run(_answer_with([prefix, *chunks], full_flight=full_flight, sslv2=sslv2))
    if isinstance(result, str):
        assert result in {"protocol", "timeout", "unreachable"}
    else:
        assert result.kind in {"hello", "alert", "closed", "sslv2"}
        if result.kind == "hello":
            assert result.hello is not None
