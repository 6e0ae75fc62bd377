"""One probe on the wire: connect, send a hello, read the server's first flight, hang up.

Every probe is bounded: one deadline covers connect, write and every read, the
bytes read are capped by :mod:`._records`, and the socket is aborted (not
gracefully closed) afterwards, so a server that never answers, answers forever
or resets costs at most *timeout* seconds and never raises anything but
:class:`ProbeError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from styku_crypto.tls.audit import _records, _starttls
from styku_crypto.tls.audit._starttls import PreambleError, Protocol

__all__ = [
    "Gate",
    "Outcome",
    "ProbeError",
    "Reply",
    "converse",
    "exchange",
    "no_gate",
    "preamble_only",
]

Gate = Callable[[], AbstractAsyncContextManager[None]]

_HS_SERVER_HELLO = 2
_HS_SERVER_HELLO_DONE = 14


class ProbeError(Exception):
    """A probe could not get a TLS answer: ``kind`` is timeout, unreachable or protocol."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Reply:
    """What a server answered to one hello.

    Attributes:
        kind: ``hello`` (ServerHello or HRR), ``alert``, ``closed`` (EOF or reset
            before any byte) or ``sslv2``.
        hello: the ServerHello when ``kind == "hello"``.
        messages: handshake messages that followed the ServerHello (TLS 1.2 and
            older, when the full flight was requested), as ``(type, body)``.
        alert: the alert when ``kind == "alert"`` (or one after the ServerHello).
        sslv2: the SSLv2 SERVER-HELLO when ``kind == "sslv2"``.
        detail: a short human-readable note (``reset``, ``eof``).
    """

    kind: str
    hello: _records.ServerHello | None = None
    messages: tuple[tuple[int, bytes], ...] = ()
    alert: _records.Alert | None = None
    sslv2: _records.SSLv2ServerHello | None = None
    detail: str = ""


@contextlib.asynccontextmanager
async def _no_gate() -> AsyncIterator[None]:
    yield


def no_gate() -> AbstractAsyncContextManager[None]:
    """A gate that never waits (tests and single probes)."""
    return _no_gate()


async def exchange(
    host: str,
    port: int,
    payload: bytes,
    *,
    timeout: float,
    gate: Gate = no_gate,
    full_flight: bool = False,
    sslv2: bool = False,
    protocol: Protocol | None = None,
    server_name: str = "",
) -> Reply:
    """Send *payload* and read the answer.

    Args:
        host: address or name to connect to.
        port: TCP port.
        payload: the ClientHello record(s).
        timeout: seconds for the whole probe (connect included).
        gate: an async context manager factory that limits concurrency; the
            deadline starts once the gate is entered.
        full_flight: for TLS 1.2 and older, read up to ServerHelloDone.
        sslv2: expect an SSLv2 answer.
        protocol: run this protocol's preamble (STARTTLS...) first, under the
            same deadline.
        server_name: the name the preamble announces (XMPP ``to``).

    Raises:
        ProbeError: timeout, refused/unreachable, a refused preamble, or bytes
            that are not TLS.
    """
    async with gate():
        progress = _Progress()
        try:
            async with asyncio.timeout(timeout):
                return await _exchange(
                    host, port, payload, full_flight, sslv2, progress, protocol, server_name
                )
        except TimeoutError:
            if progress.hello is not None:
                # The ServerHello came; the rest of the flight did not: keep what we saw.
                return Reply(
                    kind="hello",
                    hello=progress.hello,
                    messages=tuple(progress.messages),
                    detail="flight incomplete",
                )
            raise ProbeError("timeout", f"no complete answer within {timeout:g} s") from None
        except _records.TLSParseError as exc:
            raise ProbeError("protocol", str(exc)) from None
        except PreambleError as exc:
            raise ProbeError("preamble", str(exc)) from None


class _Progress:
    """What has been parsed so far, so a timeout after the ServerHello keeps it."""

    def __init__(self) -> None:
        self.hello: _records.ServerHello | None = None
        self.messages: list[tuple[int, bytes]] = []


async def _exchange(
    host: str,
    port: int,
    payload: bytes,
    full_flight: bool,
    sslv2: bool,
    progress: _Progress,
    protocol: Protocol | None,
    server_name: str,
) -> Reply:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except (ConnectionResetError, ConnectionAbortedError):
        return Reply(kind="closed", detail="reset")
    except OSError as exc:
        raise ProbeError("unreachable", f"cannot connect: {exc.strerror or exc}") from None
    try:
        if protocol is not None:
            try:
                await _starttls.open_async(protocol, server_name, reader, writer)
            except OSError as exc:
                raise PreambleError(
                    "closed", f"{protocol.title}: connection lost during the preamble ({exc})"
                ) from None
        try:
            writer.write(payload)
            await writer.drain()
        except OSError:
            return Reply(kind="closed", detail="reset")
        return await _read_answer(reader, full_flight, sslv2, progress)
    finally:
        writer.transport.abort()


async def _read_answer(
    reader: asyncio.StreamReader, full_flight: bool, sslv2: bool, progress: _Progress
) -> Reply:
    first = bytearray()
    try:
        return await _read_records(reader, full_flight, sslv2, progress, first)
    except _records.TLSParseError:
        if progress.hello is None and first and not 20 <= first[0] <= 24:
            # Not even a TLS content type: name the protocol it does speak.
            what = _starttls.describe_foreign(bytes(first))
            if what:
                raise _records.TLSParseError(f"not TLS: the server speaks {what}") from None
        raise


def _eof_reply(
    received: int, hello: _records.ServerHello | None, messages: list[tuple[int, bytes]]
) -> Reply:
    """What an end of stream means: closed, the flight so far, or a truncated record."""
    if not received:
        return Reply(kind="closed", detail="eof")
    if hello is not None:
        return Reply(kind="hello", hello=hello, messages=tuple(messages), detail="eof")
    raise _records.TLSParseError("connection closed inside a record (truncated)")


def _sslv2_reply(records: _records.RecordBuffer) -> Reply | None:
    """The SSLv2 ServerHello once its whole record is buffered, else ``None`` (wait for more)."""
    data = records.take_all()
    length = ((data[0] & 0x7F) << 8 | data[1]) if len(data) >= 2 else 1 << 16
    if len(data) < 2 + length:
        records.feed(data)
        return None
    return Reply(kind="sslv2", sslv2=_records.parse_sslv2_server_hello(data))


async def _read_records(
    reader: asyncio.StreamReader,
    full_flight: bool,
    sslv2: bool,
    progress: _Progress,
    first: bytearray,
) -> Reply:
    records = _records.RecordBuffer()
    handshake = _records.HandshakeBuffer()
    received = 0
    hello: _records.ServerHello | None = None
    messages = progress.messages
    while True:
        try:
            chunk = await reader.read(65536)
        except OSError:
            chunk = b""
            if not received:
                return Reply(kind="closed", detail="reset")
        if not chunk:
            return _eof_reply(received, hello, messages)
        received += len(chunk)
        if len(first) < 512:
            first += chunk[: 512 - len(first)]
        records.feed(chunk)
        if sslv2 and records.peek_sslv2():
            reply = _sslv2_reply(records)
            if reply is None:
                continue
            return reply
        while (record := records.next_record()) is not None:
            ctype, _version, fragment = record
            if ctype == _records.CONTENT_ALERT:
                alert = _records.parse_alert(fragment)
                if hello is not None:
                    return Reply(kind="hello", hello=hello, messages=tuple(messages), alert=alert)
                return Reply(kind="alert", alert=alert)
            if ctype == _records.CONTENT_CHANGE_CIPHER_SPEC:
                if hello is None:
                    raise _records.TLSParseError("ChangeCipherSpec before ServerHello")
                return Reply(kind="hello", hello=hello, messages=tuple(messages))
            if ctype != _records.CONTENT_HANDSHAKE:
                if hello is None:
                    raise _records.TLSParseError(f"record type {ctype} before ServerHello")
                return Reply(kind="hello", hello=hello, messages=tuple(messages))
            handshake.feed(fragment)
            for msg_type, body in handshake.messages():
                if hello is None:
                    if msg_type != _HS_SERVER_HELLO:
                        raise _records.TLSParseError(
                            f"handshake type {msg_type} before ServerHello"
                        )
                    hello = progress.hello = _records.parse_server_hello(body)
                    if not full_flight or hello.is_hrr or hello.version >= 0x0304:
                        return Reply(kind="hello", hello=hello)
                    continue
                messages.append((msg_type, body))
                if msg_type == _HS_SERVER_HELLO_DONE:
                    return Reply(kind="hello", hello=hello, messages=tuple(messages))


async def preamble_only(
    host: str,
    port: int,
    protocol: Protocol,
    server_name: str,
    *,
    timeout: float,
    gate: Gate = no_gate,
) -> None:
    """Connect and run *protocol*'s preamble once, then hang up (no TLS byte is sent).

    Raises:
        ProbeError: ``preamble`` (refused, not the protocol, injected bytes),
            ``timeout`` (silence) or ``unreachable``.
    """
    async with gate():
        try:
            async with asyncio.timeout(timeout):
                try:
                    reader, writer = await asyncio.open_connection(host, port)
                except OSError as exc:
                    raise ProbeError(
                        "unreachable", f"cannot connect: {exc.strerror or exc}"
                    ) from None
                try:
                    await _starttls.open_async(protocol, server_name, reader, writer)
                except OSError as exc:
                    raise ProbeError(
                        "preamble", f"{protocol.title}: connection lost during the preamble ({exc})"
                    ) from None
                finally:
                    writer.transport.abort()
        except TimeoutError:
            raise ProbeError(
                "timeout",
                f"{protocol.title}: no complete answer to the preamble within {timeout:g} s",
            ) from None
        except PreambleError as exc:
            raise ProbeError("preamble", str(exc)) from None


@dataclass(frozen=True)
class Outcome:
    """How a server reacted to what was sent after its first flight.

    Attributes:
        kind: ``alert``, ``record`` (another content type, e.g. heartbeat 24),
            ``eof`` (closed or reset) or ``timeout`` (silence).
        alert: the alert description when ``kind == "alert"``.
        content_type: the record type when ``kind == "record"``.
        length: the record's length when ``kind == "record"``.
    """

    kind: str
    alert: int | None = None
    content_type: int | None = None
    length: int = 0


async def converse(
    host: str,
    port: int,
    hello: bytes,
    follow_up: Callable[[Reply], list[bytes] | None],
    *,
    timeout: float,
    gate: Gate = no_gate,
    protocol: Protocol | None = None,
    server_name: str = "",
) -> tuple[Reply, Outcome | None]:
    """Send *hello*, read the flight, send what *follow_up* returns, observe the reaction.

    *follow_up* sees the server's flight and returns the records to send next
    (or ``None`` to stop). The reaction is the first record or end of stream
    after that, within the same deadline; silence is ``Outcome("timeout")``.

    Raises:
        ProbeError: no usable first flight (timeout, unreachable, not TLS).
    """
    async with gate():
        try:
            async with asyncio.timeout(timeout):
                try:
                    reader, writer = await asyncio.open_connection(host, port)
                except OSError as exc:
                    raise ProbeError("unreachable", f"cannot connect: {exc}") from None
        except TimeoutError:
            raise ProbeError("timeout", f"no connection within {timeout:g} s") from None
        try:
            try:
                async with asyncio.timeout(timeout):
                    if protocol is not None:
                        await _starttls.open_async(protocol, server_name, reader, writer)
                    writer.write(hello)
                    await writer.drain()
                    reply = await _read_answer(reader, True, False, _Progress())
            except TimeoutError:
                raise ProbeError("timeout", f"no complete flight within {timeout:g} s") from None
            except OSError:
                return Reply(kind="closed", detail="reset"), None
            except _records.TLSParseError as exc:
                raise ProbeError("protocol", str(exc)) from None
            except PreambleError as exc:
                raise ProbeError("preamble", str(exc)) from None
            records = follow_up(reply)
            if not records:
                return reply, None
            return reply, await _reaction(reader, writer, records, timeout)
        finally:
            writer.transport.abort()


async def _reaction(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    records: list[bytes],
    timeout: float,
) -> Outcome:
    buffer = _records.RecordBuffer()
    try:
        async with asyncio.timeout(timeout):
            writer.write(b"".join(records))
            await writer.drain()
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return Outcome("eof")
                buffer.feed(chunk)
                record = buffer.next_record()
                if record is None:
                    continue
                ctype, _version, fragment = record
                if ctype == _records.CONTENT_ALERT:
                    return Outcome("alert", alert=_records.parse_alert(fragment).description)
                return Outcome("record", content_type=ctype, length=len(fragment))
    except TimeoutError:
        return Outcome("timeout")
    except (OSError, _records.TLSParseError):
        return Outcome("eof")
