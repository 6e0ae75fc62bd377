"""Draw docs/img/benchmarks.png from the saved comparison results.

Reads ``benchmarks/results/{envelope,streams,passwords,audit}.txt`` (written by
the ``compare_*.py`` scripts of one ``nox -s bench`` run) and draws four panels:
1 KiB record encryption against raw AES-GCM and peers, streaming throughput,
password hashing against raw argon2-cffi, and TLS audit wall time against sslyze.

Usage: ``python benchmarks/plot.py [--out docs/img/benchmarks.png]``
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _envelope() -> list[tuple[str, float]]:
    text = (RESULTS / "envelope.txt").read_text()
    block = text.split("== 1 KiB records: encrypt ==")[1].split("==")[0]
    rows = []
    for line in block.splitlines():
        m = re.match(r"\s+(.+?)\s+([\d,]+) ops/s", line)
        if m:
            rows.append((m.group(1), float(m.group(2).replace(",", ""))))
    return rows


def _streams() -> list[tuple[str, float]]:
    text = (RESULTS / "streams.txt").read_text()
    wanted = [
        "AESGCM.encrypt_into 1 MiB pieces",
        "Envelope.encrypt_stream (memory)",
        "Tink streaming AEAD encrypt",
        "AESGCM.decrypt_into 1 MiB pieces",
        "Envelope.decrypt_stream (memory)",
        "Tink streaming AEAD decrypt",
        "Envelope.encrypt_file",
        "Tink streaming file to file (fsync)",
    ]
    found = {
        m.group(1).strip(): float(m.group(2))
        for m in re.finditer(r"^\s+(.+?)\s+([\d.]+) GB/s$", text, re.MULTILINE)
    }
    return [(name, found[name]) for name in wanted if name in found]


def _passwords() -> list[tuple[str, float, float]]:
    text = (RESULTS / "passwords.txt").read_text()
    rows = []
    for m in re.finditer(
        r"^(\S+)\s+(hash|verify)\s+([\d.]+)\s+([\d.]+)\s+[\d.]+", text, re.MULTILINE
    ):
        rows.append((f"{m.group(1)} {m.group(2)}", float(m.group(3)), float(m.group(4))))
    return rows


def _audit() -> list[tuple[str, float, float]]:
    text = (RESULTS / "audit.txt").read_text()
    rows = []
    for label, key in (("one server", "one server"), ("five servers", "five servers")):
        m = re.search(rf"{key}.*?sslyze ([\d.]+) s\s+ours ([\d.]+) s", text)
        if m:
            rows.append((label, float(m.group(1)), float(m.group(2))))
    return rows


def main() -> None:
    """Parse the results and write the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="docs/img/benchmarks.png")
    out = Path(parser.parse_args().out)

    fig, axes = plt.subplots(2, 2, figsize=(14, 10))
    ours = "#1f6f8b"
    other = "#b0b0b0"
    floor = "#404040"

    ax = axes[0][0]
    env = _envelope()
    names = [n for n, _ in env]
    colors = [
        ours if n.startswith("Envelope") else floor if n.startswith("raw") else other for n in names
    ]
    ax.barh(names, [v / 1000 for _, v in env], color=colors)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("thousand encryptions per second (log scale)")
    ax.set_title("1 KiB records: encrypt, fresh data key per message")

    ax = axes[0][1]
    streams = _streams()
    names = [n for n, _ in streams]
    colors = [
        ours if n.startswith("Envelope") else floor if n.startswith("AESGCM") else other
        for n in names
    ]
    ax.barh(names, [v for _, v in streams], color=colors)
    ax.invert_yaxis()
    ax.set_xlabel("GB/s (1 GiB object)")
    ax.set_title("Streaming encryption and decryption")

    ax = axes[1][0]
    pw = _passwords()
    labels = [n for n, _, _ in pw]
    ys = range(len(pw))
    ax.barh(
        [y - 0.2 for y in ys], [r for _, r, _ in pw], height=0.4, color=other, label="argon2-cffi"
    )
    ax.barh(
        [y + 0.2 for y in ys], [o for _, _, o in pw], height=0.4, color=ours, label="styku_crypto"
    )
    ax.set_yticks(list(ys), labels)
    ax.invert_yaxis()
    ax.set_xlabel("median ms per operation (lower is better)")
    ax.set_title("Argon2id: pre-faulted buffer pool vs raw argon2-cffi")
    ax.legend()

    ax = axes[1][1]
    audit = _audit()
    labels = [n for n, _, _ in audit]
    ys = range(len(audit))
    ax.barh(
        [y - 0.2 for y in ys], [s for _, s, _ in audit], height=0.4, color=other, label="sslyze 6.3"
    )
    ax.barh(
        [y + 0.2 for y in ys],
        [o for _, _, o in audit],
        height=0.4,
        color=ours,
        label="styku-crypto tls audit",
    )
    ax.set_yticks(list(ys), labels)
    ax.invert_yaxis()
    ax.set_xlabel("process wall time, s (lower is better)")
    ax.set_title("TLS audit of loopback test-bed servers")
    ax.legend()

    fig.suptitle(
        "styku_crypto benchmarks (2-core machine, one run per script; see docs/benchmarks.md)"
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
