"""Memory stays bounded by the chunk size: objects larger than the process's address-space limit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

LIMIT_MIB = 256
OBJECT_MIB = 384

# Runs in a child process whose address space is capped at LIMIT_MIB. The object is
# generated on the fly and piped, in one thread, from the encrypting writer into the
# decrypting reader, so neither the plaintext nor the ciphertext ever exists whole.
CHILD = textwrap.dedent(
    """
    import hashlib, io, os, resource, sys
    limit = int(sys.argv[2]) << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from styku_crypto.envelope import Envelope
    from styku_crypto.keys import KeyStore

    store = KeyStore.open(os.path.join(sys.argv[1], "keys.db"))
    store.create_tenant("acme")
    env = Envelope(store)
    ctx = {"object": "huge"}
    total = int(sys.argv[3]) << 20
    block = bytearray(os.urandom(1 << 20))

    class Pipe:
        '''Pull-driven: each read() encrypts more plaintext into a small buffer.'''

        def __init__(self):
            self.buf = bytearray()
            self.sent = 0
            self.digest = hashlib.sha256()
            self.writer = env.encrypt_stream(self, tenant="acme", context=ctx)

        def write(self, data):
            self.buf += data
            return len(data)

        def flush(self):
            pass

        def read(self, n):
            while len(self.buf) < n and self.writer is not None:
                if self.sent < total:
                    block[:8] = self.sent.to_bytes(8, "big")
                    self.digest.update(block)
                    self.writer.write(block)
                    self.sent += len(block)
                else:
                    self.writer.close()
                    self.writer = None
            out = bytes(self.buf[:n])
            del self.buf[:n]
            return out

    pipe = Pipe()
    reader = env.decrypt_stream(pipe, tenant="acme", context=ctx)
    got = hashlib.sha256()
    size = 0
    buf = bytearray(1 << 20)
    while n := reader.readinto(buf):
        got.update(memoryview(buf)[:n])
        size += n
    assert reader.complete
    assert size == total, (size, total)
    assert got.digest() == pipe.digest.digest()

    # File to file: a sparse source larger than the limit, encrypted and decrypted.
    src = os.path.join(sys.argv[1], "big.bin")
    with open(src, "wb") as fh:
        fh.truncate(total)
    enc = os.path.join(sys.argv[1], "big.stk")
    out = os.path.join(sys.argv[1], "big.out")
    assert env.encrypt_file(src, enc, tenant="acme", context=ctx) == total
    os.unlink(src)
    assert env.decrypt_file(enc, out, tenant="acme", context=ctx) == total
    assert os.path.getsize(out) == total
    middle = env.decrypt_range(enc, total // 2, 1 << 20, tenant="acme", context=ctx)
    assert middle == bytes(1 << 20)
    # VmHWM is this process's own peak RSS. (ru_maxrss would also count the
    # pytest parent's RSS at fork time: Linux carries it across exec.)
    with open("/proc/self/status") as fh:
        hwm_kib = next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:"))
    peak = hwm_kib // 1024
    print(f"OK peak_rss_mib={peak}")
    """
)


@pytest.mark.slow
def test_object_larger_than_memory_limit(tmp_path: Path) -> None:
    """A 384 MiB object streams (memory and file to file) in a process capped at 256 MiB."""
    env = {**os.environ, "MALLOC_ARENA_MAX": "1", "PYTHONPATH": os.getcwd()}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), str(LIMIT_MIB), str(OBJECT_MIB)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=os.getcwd(),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK" in proc.stdout
    peak = int(proc.stdout.split("peak_rss_mib=")[1])
    assert peak < LIMIT_MIB


def test_limit_is_real(tmp_path: Path) -> None:
    """Control: the same child limit does make a whole-object allocation fail."""
    code = textwrap.dedent(
        """
        import resource, sys
        limit = int(sys.argv[1]) << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            data = bytearray(int(sys.argv[2]) << 20)
        except MemoryError:
            print("MemoryError")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(LIMIT_MIB), str(OBJECT_MIB)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.stdout.strip() == "MemoryError"
