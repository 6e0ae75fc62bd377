"""Scan the audit test bed with sslyze and with ``styku-crypto tls audit``; compare.

Prints, in one run on the same machine and the same servers:

* process wall time for one server (full audit) and for five servers in one
  invocation, median of ``--repeat`` interleaved runs, and the ratio to sslyze
  (targets: <= 0.30 for one server, <= 0.25 for five);
* every difference between the two tools' findings (protocols, suites per
  version, EC groups, compression, fallback SCSV, secure and client-initiated
  renegotiation, EMS, OCSP stapling, leaf certificate, Heartbleed, CCS
  injection, ROBOT), then what only this
  scanner reports (FFDHE and ML-KEM groups, server preference, HSTS, expiry
  horizon, grade, verdict).

sslyze pins ``cryptography < 50``, so it lives in its own virtualenv
(``benchmarks/.venv-sslyze``, created on first use; gitignored) and runs as a
subprocess. The output is also written to ``benchmarks/results/audit.txt``.

Then the STARTTLS servers of ``tests/tls/audit/_daemons.py`` (PostgreSQL,
aiosmtpd, Dovecot IMAP and POP3, slapd, vsftpd, MariaDB, Prosody XMPP), each
scanned by sslyze (``--starttls``), by testssl.sh (Debian ``testssl``,
``--starttls``, one run each: it takes minutes) and by this scanner, with the
per-server ratio (target <= 0.25 of sslyze) and the differences in findings.
sslyze has no MySQL support; testssl.sh does. Beside each ratio is the
server's own floor, measured in the same run: the median time of a bare
connect + preamble, and of a connect + preamble + one full TLS handshake
(stdlib ``ssl``), so a slow server's share of the time is visible.

Both tools run as installed packages do: sslyze's virtualenv was byte-compiled
by pip, so this package is byte-compiled (``compileall``) before any timing;
otherwise a ``PYTHONDONTWRITEBYTECODE=1`` environment makes every one of our
runs recompile the package (0.3-0.8 s on a loaded 2-CPU machine).

Usage: ``python benchmarks/compare_audit.py [--repeat N] [--no-testssl] [--starttls-only]
[--protocols ldap,smtp,...]``
"""

from __future__ import annotations

import argparse
import base64
import compileall
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from styku_crypto.tls import group_by_name  # noqa: E402
from styku_crypto.tls.audit._starttls import open_sync, protocol_for  # noqa: E402
from tests.tls.audit import _bed  # noqa: E402

SSLYZE_VENV = ROOT / "benchmarks" / ".venv-sslyze"
RESULTS = ROOT / "benchmarks" / "results" / "audit.txt"
NAMES = ["intermediate", "tls13", "weak", "badname", "stapled"]
SSLYZE_VERSIONS = {
    "ssl_2_0_cipher_suites": "SSLv2",
    "ssl_3_0_cipher_suites": "SSLv3",
    "tls_1_0_cipher_suites": "TLSv1.0",
    "tls_1_1_cipher_suites": "TLSv1.1",
    "tls_1_2_cipher_suites": "TLSv1.2",
    "tls_1_3_cipher_suites": "TLSv1.3",
}


def sslyze_python() -> Path:
    """The sslyze virtualenv's interpreter, creating the venv if needed."""
    python = SSLYZE_VENV / "bin" / "python"
    if not python.exists():
        venv.EnvBuilder(with_pip=True).create(SSLYZE_VENV)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "sslyze"], check=True)
    return python


def timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    """Run *argv* and return its process wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, check=False, timeout=600)
    return time.perf_counter() - t0, proc


def ours(targets: list[str], ca: Path) -> list[str]:
    """The ``styku-crypto tls audit`` command line for *targets* (JSON on stdout)."""
    return [
        sys.executable, "-m", "styku_crypto", "tls", "audit", *targets,
        "--format", "json", "--ca-file", str(ca),
    ]  # fmt: skip


def run_ours(targets: list[str], ca: Path, out: Path) -> float:
    """Run our scanner, save its JSON to *out*, return the process wall time."""
    elapsed, proc = timed(ours(targets, ca))
    out.write_bytes(proc.stdout)
    return elapsed


def theirs(python: Path, targets: list[str], out: Path) -> list[str]:
    """The sslyze command line for *targets* writing JSON to *out*."""
    return [str(python), "-m", "sslyze", *targets, f"--json_out={out}", "--quiet"]


def _group(name: str) -> str:
    try:
        return group_by_name(name).name
    except ValueError:
        return name


def sslyze_facts(doc: dict) -> dict[str, dict]:
    """Normalise sslyze's JSON to comparable facts, by target."""
    out: dict[str, dict] = {}
    for server in doc["server_scan_results"]:
        loc = server["server_location"]
        label = f"{loc['ip_address']}:{loc['port']}"
        res = server.get("scan_result") or {}

        def result(name: str, res: dict = res) -> dict | None:
            entry = res.get(name) or {}
            return entry.get("result") if entry.get("status") == "COMPLETED" else None

        facts: dict[str, object] = {"protocols": {}, "suites": {}}
        for key, proto in SSLYZE_VERSIONS.items():
            r = result(key)
            if r is None:
                continue
            names = sorted(s["cipher_suite"]["name"] for s in r["accepted_cipher_suites"])
            facts["protocols"][proto] = bool(names)  # type: ignore[index]
            if names:
                facts["suites"][proto] = names  # type: ignore[index]
        curves = result("elliptic_curves")
        if curves is not None:
            facts["ec_groups"] = sorted(_group(c["name"]) for c in curves["supported_curves"])
        if (r := result("tls_compression")) is not None:
            facts["compression"] = r["supports_compression"]
        if (r := result("tls_fallback_scsv")) is not None:
            facts["fallback_scsv"] = r["supports_fallback_scsv"]
        if (r := result("session_renegotiation")) is not None:
            facts["secure_renegotiation"] = r["supports_secure_renegotiation"]
            facts["client_renegotiation"] = r["is_vulnerable_to_client_renegotiation_dos"]
        if (r := result("tls_extended_master_secret")) is not None:
            facts["ems"] = r["supports_ems_extension"]
        if (r := result("certificate_info")) is not None:
            deployment = r["certificate_deployments"][0]
            facts["ocsp_stapling"] = deployment.get("ocsp_response") is not None
            chain = deployment["received_certificate_chain"]
            facts["leaf_sha256"] = (
                base64.b64decode(chain[0]["fingerprint_sha256"]).hex() if chain else None
            )
        if (r := result("heartbleed")) is not None:
            facts["heartbleed"] = r["is_vulnerable_to_heartbleed"]
        if (r := result("openssl_ccs_injection")) is not None:
            facts["ccs_injection"] = r["is_vulnerable_to_ccs_injection"]
        if (r := result("robot")) is not None:
            verdict = r["robot_result"]
            facts["robot"] = None if verdict.startswith("UNKNOWN") else verdict.startswith("VULN")
        out[label] = facts
    return out


def our_facts(doc: dict) -> dict[str, dict]:
    """Our JSON, reduced to the facts sslyze also reports (plus our extras)."""
    out: dict[str, dict] = {}
    for t in doc["targets"]:
        features = t["features"]
        ec = sorted(g for g in t["groups"] if group_by_name(g).kind == "ecdhe")
        out[t["target"]] = {
            "protocols": {p: v for p, v in t["protocols"].items() if v is not None},
            "suites": {p: sorted(v) for p, v in t["cipher_suites"].items() if v},
            "ec_groups": ec,
            "compression": features["compression"] or False,
            "fallback_scsv": features["fallback_scsv"],
            "secure_renegotiation": features["secure_renegotiation"],
            "client_renegotiation": features["client_renegotiation"] or False,
            "ems": features["extended_master_secret"],
            "ocsp_stapling": features["ocsp_stapling"],
            "leaf_sha256": t["certificates"][0]["sha256"] if t["certificates"] else None,
            "heartbleed": t["vulnerabilities"]["heartbleed"],
            "ccs_injection": t["vulnerabilities"]["ccs_injection"],
            "robot": t["vulnerabilities"]["robot"],
            "extras": {
                "ffdhe_groups": sorted(g for g in t["groups"] if g.startswith("ffdhe")),
                "pq_groups": sorted(g for g in t["groups"] if "MLKEM" in g),
                "pq_groups_tested": not any("MLKEM" in k for k in t["not_tested"]),
                "server_preference": t["server_preference"],
                "hsts": t["hsts"]["header"],
                "leaf_days_left": t["certificates"][0]["days_left"] if t["certificates"] else None,
                "grade": t["verdict"]["grade"],
                "compliant": t["verdict"]["compliant"],
                "errors": sorted(
                    {
                        f["rule"]
                        for f in t["findings"]
                        if f["severity"] == "error" and not f["waived"]
                    }
                ),
            },
        }
    return out


def compare(name: str, label: str, a: dict, b: dict) -> list[str]:
    """Human-readable differences between sslyze (*a*) and ours (*b*) for one server."""
    lines = [f"-- {name} ({label})"]
    diffs = 0
    for proto in SSLYZE_VERSIONS.values():
        pa, pb = a["protocols"].get(proto), b["protocols"].get(proto)
        if pa != pb:
            lines.append(f"   protocol {proto}: sslyze={pa} ours={pb}")
            diffs += 1
        sa, sb = set(a["suites"].get(proto, [])), set(b["suites"].get(proto, []))
        if sa != sb:
            diffs += 1
            if sa - sb:
                lines.append(f"   {proto} suites only sslyze: {sorted(sa - sb)}")
            if sb - sa:
                lines.append(f"   {proto} suites only ours:   {sorted(sb - sa)}")
    tls13_only = [p for p, ok in b["protocols"].items() if ok] == ["TLSv1.3"]
    for key in (
        "ec_groups",
        "compression",
        "fallback_scsv",
        "secure_renegotiation",
        "client_renegotiation",
        "ems",
        "ocsp_stapling",
        "leaf_sha256",
        "heartbleed",
        "ccs_injection",
        "robot",
    ):
        if key in a and a[key] != b.get(key):
            if b.get(key) is None and tls13_only:
                lines.append(f"   {key}: sslyze={a[key]} ours=not applicable (TLS 1.3 only)")
                continue
            lines.append(f"   {key}: sslyze={a[key]} ours={b.get(key)}")
            diffs += 1
    n_suites = sum(len(v) for v in b["suites"].values())
    lines.append(
        f"   agreement: {'identical' if not diffs else f'{diffs} difference(s)'} "
        f"({n_suites} accepted suites, protocols, EC groups, 7 features, 3 bugs, leaf)"
    )
    lines.append(f"   only ours: {json.dumps(b['extras'])}")
    return lines


#: name -> (our URL scheme, sslyze --starttls value or None, testssl --starttls value or None)
STARTTLS = {
    "postgres": ("postgres", "postgres", "postgres"),
    "smtp": ("smtp", "smtp", "smtp"),
    "imap": ("imap", "imap", "imap"),
    "pop3": ("pop3", "pop3", "pop3"),
    "ldap": ("ldap", "ldap", "ldap"),
    "ftp": ("ftp", "ftp", "ftp"),
    "mysql": ("mysql", None, "mysql"),
    "xmpp": ("xmpp", "xmpp", "xmpp"),
}
#: Extra arguments per protocol: Prosody serves "localhost" only, so each tool names it.
SSLYZE_EXTRA = {"xmpp": ["--xmpp_to=localhost"]}
TESTSSL_EXTRA = {"xmpp": ["--xmpphost", "localhost"]}
TESTSSL_VERSIONS = {
    "SSLv2": "SSLv2",
    "SSLv3": "SSLv3",
    "TLS1": "TLSv1.0",
    "TLS1_1": "TLSv1.1",
    "TLS1_2": "TLSv1.2",
    "TLS1_3": "TLSv1.3",
}


def start_starttls_servers(work: Path, certs: _bed.Certs) -> tuple[dict[str, int], list]:
    """The STARTTLS daemons in their good configuration: name -> port, and the servers."""
    from tests.tls.audit import _daemons

    servers = []
    pg = _daemons.postgres("postgres", certs, weak=False)
    smtp = _daemons.smtp("smtp", certs, weak=False)
    dovecot, imap, pop3 = _daemons.dovecot("dovecot", certs, work, weak=False)
    slapd = _daemons.slapd("slapd", certs, work, weak=False)
    ftp = _daemons.vsftpd("vsftpd", certs, work, weak=False)
    mysql = _daemons.mariadb("mariadb", certs, work, weak=False)
    xmpp = _daemons.prosody("prosody", certs, weak=False)
    servers = [pg, smtp, dovecot, slapd, ftp, mysql, xmpp]
    ports = {
        "postgres": pg.port,
        "smtp": smtp.port,
        "imap": imap,
        "pop3": pop3,
        "ldap": slapd.port,
        "ftp": ftp.port,
        "mysql": mysql.port,
        "xmpp": xmpp.port,
    }
    return ports, servers


def server_floor(name: str, port: int, rounds: int = 7) -> tuple[float, float]:
    """Median seconds for connect + preamble, and for connect + preamble + one TLS handshake.

    One connection at a time, stdlib ``ssl``: what any scanner pays per
    connection to this server, whatever it does afterwards.
    """
    protocol = protocol_for(name, port)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    preamble, handshake = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port), 5) as sock:
            open_sync(protocol, "localhost", sock)
            preamble.append(time.perf_counter() - t0)
            with ctx.wrap_socket(sock, server_hostname="localhost"):
                handshake.append(time.perf_counter() - t0)
    return statistics.median(preamble), statistics.median(handshake)


def testssl_protocols(path: Path) -> dict[str, bool]:
    """testssl.sh's flat JSON reduced to protocol -> offered."""
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    for row in rows:
        proto = TESTSSL_VERSIONS.get(row.get("id", ""))
        if proto:
            out[proto] = row.get("finding", "").startswith("offered")
    return out


def start_up_argv(python: Path) -> tuple[list[str], list[str]]:
    """Each tool doing nothing but start its interpreter and import itself (ours, sslyze)."""
    return (
        [sys.executable, "-c", "import styku_crypto._cli._tls_audit, styku_crypto.tls.audit"],
        [str(python), "-m", "sslyze", "--help"],
    )


def starttls_section(
    python: Path, work: Path, repeat: int, use_testssl: bool, only: set[str] | None = None
) -> list[str]:
    """Time and compare the three scanners on every STARTTLS server (or those in *only*)."""
    (work / "starttls").mkdir()
    certs = _bed.make_certs(work / "starttls")
    ports, servers = start_starttls_servers(work, certs)
    up_ours, up_sslyze = start_up_argv(python)
    out = [
        "",
        f"STARTTLS servers: median of {repeat} interleaved runs (sslyze, ours); testssl.sh "
        "one run; process wall time (ours: scan = the audit itself, without interpreter "
        "start-up and imports); load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
        "start-up = each tool's interpreter start + imports, no scan (timed in the same "
        "interleaved loop); scan ratio = (ours - start-up) / (sslyze - start-up)",
    ]
    ratios = []
    try:
        for name, (scheme, sslyze_proto, testssl_proto) in STARTTLS.items():
            if only and name not in only:
                continue
            target = f"127.0.0.1:{ports[name]}"
            url = f"{scheme}://{target}"
            t_ours = []
            t_sslyze = []
            sslyze_argv = [
                *theirs(python, [target], work / "st-s.json"),
                f"--starttls={sslyze_proto}",
                *SSLYZE_EXTRA.get(name, []),
            ]
            scan = []
            t_up_ours: list[float] = []
            t_up_sslyze: list[float] = []
            for _ in range(repeat):
                t_up_ours.append(timed(up_ours)[0])
                t_ours.append(run_ours([url, "--sni", "localhost"], certs.ca, work / "st-o.json"))
                doc = json.loads((work / "st-o.json").read_text())
                scan.append(doc["targets"][0]["duration_s"])
                if sslyze_proto:
                    t_sslyze.append(timed(sslyze_argv)[0])
                    t_up_sslyze.append(timed(up_sslyze)[0])
            floor_preamble, floor_handshake = server_floor(name, ports[name])
            floor_ours = statistics.median(t_up_ours)
            line = (
                f"{name:9} ours {statistics.median(t_ours):5.2f} s "
                f"(scan {statistics.median(scan):4.2f} s, start-up {floor_ours:4.2f} s)"
            )
            if t_sslyze:
                ratio = statistics.median(t_ours) / statistics.median(t_sslyze)
                ratios.append(ratio)
                floor_sslyze = statistics.median(t_up_sslyze)
                scan_ratio = (statistics.median(t_ours) - floor_ours) / max(
                    statistics.median(t_sslyze) - floor_sslyze, 1e-3
                )
                line += (
                    f"  sslyze {statistics.median(t_sslyze):5.2f} s "
                    f"(start-up {floor_sslyze:4.2f} s)  ratio {ratio:.2f} "
                    f"(target <= 0.25; scan ratio {scan_ratio:.2f})"
                )
            else:
                line += "  sslyze: no such protocol"
            line += (
                f"  floor: preamble {floor_preamble * 1000:.1f} ms, "
                f"+handshake {floor_handshake * 1000:.1f} ms"
            )
            theirs_testssl = {}
            if use_testssl and testssl_proto:
                json_path = work / f"testssl-{name}.json"
                json_path.unlink(missing_ok=True)
                elapsed, _proc = timed(
                    [
                        "testssl", "--quiet", "--color", "0", "--warnings", "off",
                        "--starttls", testssl_proto, *TESTSSL_EXTRA.get(name, []),
                        "--jsonfile", str(json_path), target,
                    ]
                )  # fmt: skip
                theirs_testssl = testssl_protocols(json_path)
                line += f"  testssl.sh {elapsed:6.1f} s"
            out.append(line)
            ours_doc = our_facts(json.loads((work / "st-o.json").read_text()))
            b = next(iter(ours_doc.values()))
            if t_sslyze:
                a = next(iter(sslyze_facts(json.loads((work / "st-s.json").read_text())).values()))
                out.extend("  " + x for x in compare(f"{name} vs sslyze", target, a, b)[1:-1])
            for proto, offered in sorted(theirs_testssl.items()):
                if b["protocols"].get(proto) != offered:
                    out.append(
                        f"     protocol {proto}: testssl.sh={offered} "
                        f"ours={b['protocols'].get(proto)}"
                    )
            if theirs_testssl:
                same = all(b["protocols"].get(p) == v for p, v in theirs_testssl.items())
                out.append(f"     protocols vs testssl.sh: {'identical' if same else 'differ'}")
            out.append(f"     ours: grade {b['extras']['grade']}, errors {b['extras']['errors']}")
        if ratios:
            out.append(
                f"worst ratio to sslyze {max(ratios):.2f}, median {statistics.median(ratios):.2f}"
            )
    finally:
        for server in servers:
            server.stop()
    return out


def main() -> int:
    """Run the comparison and print (and save) the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-testssl", action="store_true", help="skip testssl.sh (slow)")
    parser.add_argument("--starttls-only", action="store_true", help="only the STARTTLS part")
    parser.add_argument(
        "--protocols", help=f"comma-separated subset of {','.join(STARTTLS)} (default: all)"
    )
    args = parser.parse_args()
    only = set(args.protocols.split(",")) if args.protocols else None
    python = sslyze_python()
    version = subprocess.run(
        [str(python), "-c", "from importlib.metadata import version; print(version('sslyze'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="audit-bench-"))
    # As a pip install would (sslyze's venv is byte-compiled): see the module docstring.
    compileall.compile_dir(ROOT / "styku_crypto", quiet=1)
    if args.starttls_only:
        out = [f"TLS audit vs sslyze {version} and testssl.sh"]
        out += starttls_section(python, work, args.repeat, not args.no_testssl, only)
        return _finish(out, RESULTS.with_name("audit-starttls.txt"))
    certs = _bed.make_certs(work)
    hold = threading.Event()
    servers = {s.name: s for s in _bed.start_bed(certs, hold, hostile=False)}
    out = []
    try:
        one = [servers["intermediate"].target]
        five = [servers[n].target for n in NAMES]
        # Warm both tools once (page cache, bytecode) before timing.
        timed(theirs(python, one, work / "warm.json"))
        run_ours(one, certs.ca, work / "warm-ours.json")
        times: dict[str, list[float]] = {k: [] for k in ("s1", "o1", "s5", "o5")}
        for _ in range(args.repeat):
            times["s1"].append(timed(theirs(python, one, work / "s1.json"))[0])
            times["o1"].append(run_ours(one, certs.ca, work / "o1.json"))
            times["s5"].append(timed(theirs(python, five, work / "s5.json"))[0])
            times["o5"].append(run_ours(five, certs.ca, work / "o5.json"))
        med = {k: statistics.median(v) for k, v in times.items()}
        load = os.getloadavg()[0]
        out.append(
            f"TLS audit vs sslyze {version}, {args.repeat} interleaved runs, median "
            f"process wall time; load average {load:.1f} on {os.cpu_count()} CPUs"
        )
        out.append(
            f"one server (intermediate): sslyze {med['s1']:.2f} s  ours {med['o1']:.2f} s  "
            f"ratio {med['o1'] / med['s1']:.2f}  (target <= 0.30)"
        )
        out.append(
            f"five servers, one run:     sslyze {med['s5']:.2f} s  ours {med['o5']:.2f} s  "
            f"ratio {med['o5'] / med['s5']:.2f}  (target <= 0.25)"
        )
        out.append(
            "runs (s): " + json.dumps({k: [round(x, 2) for x in v] for k, v in times.items()})
        )
        out.append("")
        a = sslyze_facts(json.loads((work / "s5.json").read_text()))
        b = our_facts(json.loads((work / "o5.json").read_text()))
        for name in NAMES:
            label = servers[name].target
            out.extend(compare(name, label, a[label], b[label]))
    finally:
        hold.set()
        for s in servers.values():
            s.stop()
    out += starttls_section(python, work, args.repeat, not args.no_testssl, only)
    return _finish(out, RESULTS)


def _finish(out: list[str], path: Path) -> int:
    text = "\n".join(out) + "\n"
    print(text, end="")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
