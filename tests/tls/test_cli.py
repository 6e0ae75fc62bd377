"""The ``styku-crypto tls`` commands, run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from styku_crypto import tls
from styku_crypto._cli import main
from tests._support import leaks

from ._loopback import serve_once


@pytest.mark.parametrize("server", ["nginx", "apache", "haproxy", "python"])
def test_config_generator_uses_policy_data(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`tls config` prints a snippet with the policy's suites, groups and HSTS age."""
    assert main(["tls", "config", "--policy", "intermediate", "--server", server]) == 0
    out = capsys.readouterr().out
    assert "guideline 6.0" in out
    assert "63072000" in out
    if server != "python":
        assert tls.profiles.MOZILLA_INTERMEDIATE.openssl_cipher_string in out
        assert "X25519MLKEM768:X25519:P-256:P-384" in out


def test_generated_nginx_cipher_string_passes_check(capsys: pytest.CaptureFixture[str]) -> None:
    """The generated nginx ssl_ciphers line is compliant when audited as a cipher string."""
    main(["tls", "config", "--policy", "5.7-intermediate", "--server", "nginx"])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("ssl_ciphers "))
    report = tls.check_cipher_string(
        line.split(" ", 1)[1].rstrip(";"), policy=tls.profiles.MOZILLA_5_7_INTERMEDIATE
    )
    assert report.ok, report.to_text()


def test_config_unknown_policy_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown profile name exits 2 with a message."""
    assert main(["tls", "config", "--policy", "ancient", "--server", "nginx"]) == 2
    assert "no such policy file" in capsys.readouterr().err


def test_check_cert_file_text_and_json(
    pki: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tls check-cert FILE` exits 0 for a good chain, 1 with JSON findings for an expired one."""
    ca = str(pki.ca)  # type: ignore[attr-defined]
    assert (
        main(["tls", "check-cert", str(pki.server_cert), "--hostname", "localhost", "--trust", ca])
        == 0
    )  # type: ignore[attr-defined]
    assert "result: PASS" in capsys.readouterr().out
    expired = pki.factory.expired("localhost")  # type: ignore[attr-defined]
    leaks.register_secret(expired.key_pem())
    cert, _ = expired.write(tmp_path, "expired")
    code = main(
        [
            "tls",
            "check-cert",
            str(cert),
            "--hostname",
            "localhost",
            "--trust",
            ca,
            "--format",
            "json",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert data["schema"] == "styku-tls-report/1"
    assert "CERT-EXPIRY-001" in {f["rule"] for f in data["findings"]}


def test_check_cert_host_port(pki: object, capsys: pytest.CaptureFixture[str]) -> None:
    """`tls check-cert HOST:PORT` fetches the chain from a live loopback server and checks it."""
    ctx = tls.server_context(certfile=pki.server_cert, keyfile=pki.server_key)  # type: ignore[attr-defined]
    run = serve_once(ctx)
    code = main(
        ["tls", "check-cert", f"127.0.0.1:{run.port}", "--trust", str(pki.ca), "--format", "json"]
    )  # type: ignore[attr-defined]
    run.join()
    data = json.loads(capsys.readouterr().out)
    assert code == 0, data
    assert data["subject"] == "127.0.0.1"


def test_check_cert_unreachable_and_bad_target(capsys: pytest.CaptureFixture[str]) -> None:
    """An unreachable HOST:PORT exits 3; a target that is neither file nor HOST:PORT exits 2."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["tls", "check-cert", f"127.0.0.1:{port}"]) == 3
    assert main(["tls", "check-cert", "no-such-file"]) == 2
    capsys.readouterr()
