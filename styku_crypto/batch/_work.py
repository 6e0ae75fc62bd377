"""The per-token step every batch path shares: rewrap or re-encrypt one token.

No Dask and no database here, so the same code runs in a worker, in the
driver (``client=None`` tests) and in :func:`rewrap_dataframe` partitions.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping

from styku_crypto.envelope._envelope import Envelope
from styku_crypto.envelope._events import reason as event_reason
from styku_crypto.envelope._format import SUITE_STREAM, from_text, parse_header, to_text
from styku_crypto.envelope._spec import EnvelopeSpec
from styku_crypto.exceptions import (
    DecryptionError,
    InvalidInputError,
    KeyDestroyedError,
    KeyNotFoundError,
    UnsupportedFormatError,
)

__all__ = ["MODES", "TokenError", "failure_reason", "open_for_run", "process_token"]

#: ``rewrap`` re-wraps data keys (payload untouched); ``reencrypt`` decrypts and
#: encrypts again under fresh data keys (after a compromise).
MODES = ("rewrap", "reencrypt")

#: The failures a job reports per token and goes on; anything else (a root
#: outage, a lost database) stops the partition.
TokenError = (
    DecryptionError,
    KeyNotFoundError,
    KeyDestroyedError,
    UnsupportedFormatError,
    InvalidInputError,
)


_runs: dict[EnvelopeSpec, str] = {}
_runs_lock = threading.Lock()


def open_for_run(spec: EnvelopeSpec, run: str) -> Envelope:
    """``spec.open()``, with the primary key versions re-read once per job *run*.

    Why: a worker keeps its envelope, and the key cache in it, between jobs
    (up to ``spec.cache_ttl`` seconds). A job started after a ``rotate`` made
    elsewhere must move tokens onto the new primary, never onto the primary a
    previous job cached: after a compromise, that one is the compromised key.
    The first task of each run on a worker drops the cached primary versions
    (:meth:`KeyStore._forget_primaries`); later tasks of the run reuse what it
    loaded, which is no older than the run.
    """
    env = spec.open()
    with _runs_lock:
        if _runs.get(spec) != run:
            env.store._forget_primaries()
            _runs[spec] = run
    return env


def failure_reason(exc: BaseException) -> str:
    """The report's reason for a token that failed (the same classes as the events).

    The envelope's event reasons, plus ``not_a_token`` for input that is no token at all.
    """
    known = (KeyDestroyedError, KeyNotFoundError, UnsupportedFormatError)
    if isinstance(exc, InvalidInputError) and not isinstance(exc, known):
        return "not_a_token"
    return event_reason(exc)


def check_mode(mode: str) -> str:
    """*mode* if it is one of :data:`MODES`.

    Raises:
        InvalidInputError: any other value.
    """
    if mode not in MODES:
        raise InvalidInputError(f"mode is one of {', '.join(MODES)}")
    return mode


def process_token(
    env: Envelope,
    token: bytes | str,
    *,
    tenant: str,
    context: Mapping[str, str],
    mode: str,
) -> bytes | str | None:
    """The new token, or ``None`` when *token* is already on the primary versions.

    ``rewrap`` only re-wraps the header (context unused) and authenticates the
    header of every token, current ones included, so a rerun also reports
    tampered headers; ``reencrypt`` authenticates the whole token under
    *context*, then encrypts the plaintext under fresh data keys with the same
    data class and suite family. A text token gives a text token.

    Raises:
        DecryptionError, KeyNotFoundError, KeyDestroyedError, UnsupportedFormatError,
        InvalidInputError: the token is refused (the caller reports it and goes on).
        RootKeyUnavailableError: the root is down (the caller stops).
    """
    if not isinstance(token, bytes | str):
        raise InvalidInputError("a token column holds bytes or text tokens")
    raw = from_text(token) if isinstance(token, str) else token
    if mode == "rewrap":
        # One call: Envelope.rewrap returns its argument itself when every layer is
        # current, so no separate needs_rewrap pass (a header parse and key lookups).
        rewrapped = env.rewrap(raw, tenant=tenant)
        if rewrapped is raw:
            return None
        return to_text(rewrapped) if isinstance(token, str) else rewrapped
    if not env.needs_rewrap(raw, tenant=tenant):
        return None
    header = parse_header(raw)
    if header.suite == SUITE_STREAM:
        out = io.BytesIO()
        reader = env.decrypt_stream(
            io.BytesIO(raw), tenant=tenant, context=context, data_class=header.data_class
        )
        with env.encrypt_stream(
            out, tenant=tenant, context=context, data_class=header.data_class
        ) as writer:
            while block := reader.read(1 << 20):
                writer.write(block)
        new = out.getvalue()
    else:
        plain = env.decrypt(raw, tenant=tenant, context=context, data_class=header.data_class)
        new = env.encrypt(plain, tenant=tenant, context=context, data_class=header.data_class)
    return to_text(new) if isinstance(token, str) else new
