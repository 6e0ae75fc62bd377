"""The runbook commands' command line: bad input, named logs, JSON schemas (issues 14 and 17)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from styku_crypto._cli import main
from tests._support import leaks

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``styku-crypto incidents ...`` in tmp_path; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    for name in ("STYKU_CRYPTO_STORE", "STYKU_CRYPTO_INCIDENTS", "STYKU_CRYPTO_ROOT_KEY_FILE",
                 "STYKU_CRYPTO_INCIDENTS_CONFIG"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    assert main(["keys", "init"]) == 0  # only keys init creates a key store
    capsys.readouterr()

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["incidents", *argv])
        out, err = capsys.readouterr()
        leaks.assert_no_secret_in(f"incidents {argv[0]}", out + err)
        return code, out, err

    return run


def _seed(cli: Run) -> None:
    code, _, err = cli("open", "--type", "key-compromise", "--tenant", "acme", "--tenant", "globex")
    assert code == 0, err


@pytest.mark.parametrize(
    ("argv", "valid"),
    [
        (("open", "--type", "alien"), "type must be one of: backup-or-dr-failure, credential-"),
        (("open", "--type", "lost-device", "--status", "resolved"), "suspected, confirmed"),
        (("update", "INC-000001", "--status", "fixed"), "status must be one of: suspected, "),
        (("update", "INC-000001", "--status", "resolved"), "it can move to confirmed, "),
        (("step", "INC-000001", "9", "--done"), "step must be one of: 1..6"),
        (("step", "INC-000001", "0", "--run", "--yes"), "step must be one of: 1..6"),
        (("step", "INC-000001", "2", "--run", "--tenant", "initech", "--yes"),
         "tenants: acme, globex"),
        (("step", "INC-000001", "1", "--run", "--yes"), "has no library action"),
        (("step", "INC-000001", "2", "--run", "--yes"), "give --tenant"),
        (("notify", "INC-000001", "--tenant", "initech", "--channel", "email"),
         "tenants: acme, globex"),
        (("notify", "INC-000001", "--tenant", "acme", "--channel", "fax"),
         "channel must be one of: email, phone"),
        (("notify", "INC-000001", "--tenant", "acme", "--channel", "email",
          "--at", "2000-01-01T00:00:00Z"), "before the incident was detected"),
        (("notify", "INC-000001", "--tenant", "acme", "--channel", "email",
          "--at", "2999-01-01T00:00:00Z"), "in the future"),
        (("notify", "INC-000001", "--tenant", "acme", "--channel", "email", "--at", "tomorrow"),
         "not an ISO 8601 time"),
        (("show", "INC-000099"), "no incident 'INC-000099'"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_naming_valid_values_exit_2(
    cli: Run, argv: tuple[str, ...], valid: str
) -> None:
    """Unknown type, status, step, tenant, channel or a bad time: exit 2, one line, no entry."""
    _seed(cli)
    before = cli("verify", "--format", "json")[1]
    code, out, err = cli(*argv)
    assert code == 2, (out, err)
    assert valid in err
    assert len(err.strip().splitlines()) == 1
    assert cli("verify", "--format", "json")[1] == before  # nothing was appended


def test_run_asks_for_confirmation(
    cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--run without --yes reads the answer from stdin: 'n' runs nothing, no answer is exit 2."""
    _seed(cli)
    assert main(["keys", "create", "acme"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    code, _, err = cli("step", "INC-000001", "2", "--run", "--tenant", "acme")
    assert code == 1
    assert "not run" in err
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = cli("step", "INC-000001", "2", "--run", "--tenant", "acme")
    assert code == 2
    assert "--yes" in err
    doc = json.loads(cli("show", "INC-000001", "--format", "json")[1])
    assert doc["steps"][1]["runs"] == []
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    code, out, _ = cli("step", "INC-000001", "2", "--run", "--tenant", "acme")
    assert code == 1  # no --tokens: keys rotated, tokens not rewrapped: partial
    assert "partial" in out


def test_every_json_output_has_a_schema(cli: Run, tmp_path: Path) -> None:
    """Every command with --format json prints a document with a schema id."""
    outputs = [
        cli("open", "--type", "data-exposure", "--tenant", "acme", "--format", "json"),
        cli("update", "INC-000001", "--status", "confirmed", "--format", "json"),
        cli("step", "INC-000001", "1", "--done", "--note", "scoped", "--format", "json"),
        cli("notify", "INC-000001", "--tenant", "acme", "--channel", "email", "--format", "json"),
        cli("close", "INC-000001", "--disposition", "ok", "--format", "json"),
        cli("show", "INC-000001", "--format", "json"),
        cli("list", "--format", "json"),
        cli("overdue", "--format", "json"),
        cli("playbooks", "--format", "json"),
        cli("verify", "--format", "json"),
        cli("export", "--format", "json"),
    ]
    for code, out, err in outputs:
        assert code == 0, err
        assert json.loads(out)["schema"].startswith("styku-crypto/"), out


def test_show_prints_checklist_notifications_and_timeline(cli: Run) -> None:
    """show lists the steps with ticks, per-tenant deadline and notice, and the timeline."""
    _seed(cli)
    cli("update", "INC-000001", "--status", "confirmed")
    cli("step", "INC-000001", "1", "--done", "--note", "scoped")
    cli("notify", "INC-000001", "--tenant", "acme", "--channel", "portal", "--reference", "n-7")
    code, out, _ = cli("show", "INC-000001")
    assert code == 0
    assert "1. [x] Establish which keys" in out
    assert "2. [ ] Rotate" in out
    assert "[rotate-and-rewrap]" in out
    assert "acme: deadline" in out
    assert "by portal (n-7): notified" in out
    assert "globex: deadline" in out
    assert ": pending" in out
    assert "status confirmed" in out


def test_playbooks_lists_builtins_and_own(cli: Run, tmp_path: Path) -> None:
    """playbooks lists the built-ins; --playbooks DIR adds the organisation's own."""
    (tmp_path / "pb").mkdir()
    (tmp_path / "pb" / "x.toml").write_text(
        'name = "vendor-breach"\ntitle = "Vendor"\nowner = "ciso"\nseverity = "high"\n'
        '[[steps]]\ntitle = "Call the vendor"\n'
    )
    code, out, _ = cli("playbooks")
    assert code == 0
    assert "key-compromise" in out
    assert "vendor-breach" not in out
    code, out, _ = cli("playbooks", "--playbooks", "pb", "--format", "json")
    names = [b["name"] for b in json.loads(out)["playbooks"]]
    assert "vendor-breach" in names
    code, out, _ = cli("open", "--type", "vendor-breach", "--playbooks", "pb")
    assert code == 0
    assert "vendor-breach" in out


def test_a_second_named_log_on_the_same_store(cli: Run, tmp_path: Path) -> None:
    """open --log new.jsonl on a store that has a log works; each log keeps its own head."""
    _seed(cli)
    code, _, err = cli("open", "--log", "new.jsonl", "--title", "t", "--severity", "low",
                       "--description", "d")  # fmt: skip
    assert code == 0, err
    assert cli("verify")[0] == 0
    code, out, _ = cli("verify", "--log", "new.jsonl", "--format", "json")
    assert code == 0
    assert json.loads(out)["head_checked"]
    assert json.loads(out)["entries"] == 1
    assert cli("list", "--log", "new.jsonl", "--format", "json")[0] == 0
    # truncating one log is still caught by its own head
    (tmp_path / "new.jsonl").write_text("")
    assert cli("verify", "--log", "new.jsonl")[0] == 1
    assert cli("verify")[0] == 0


def test_a_log_that_does_not_exist_is_not_tampering(cli: Run, tmp_path: Path) -> None:
    """--log typo.jsonl: 'no incident log at PATH', exit 2, no file created."""
    _seed(cli)
    for argv in (("list",), ("verify",), ("overdue",), ("show", "INC-000001"),
                 ("notify", "INC-000001", "--tenant", "acme", "--channel", "email")):  # fmt: skip
        code, _, err = cli(*argv, "--log", "typo.jsonl")
        assert code == 2, argv
        assert "no incident log at typo.jsonl" in err
    assert not (tmp_path / "typo.jsonl").exists()


def test_a_deleted_log_with_its_head_is_still_tampering(cli: Run, tmp_path: Path) -> None:
    """The default log deleted while its head record remains: verify reports truncation, exit 1."""
    _seed(cli)
    (tmp_path / "incidents.jsonl").unlink()
    code, _, err = cli("verify")
    assert code == 1
    assert "ChainTamperedError" not in err
    assert "truncated" in err


def test_policy_config_sets_deadlines(cli: Run, tmp_path: Path) -> None:
    """--config FILE with [notification] sets per-tenant windows; a bad file is exit 2."""
    (tmp_path / "ir.toml").write_text("[notification]\ndefault_hours = 48\n"
                                      "[notification.tenants]\nacme = 12\n")  # fmt: skip
    _seed(cli)
    cli("update", "INC-000001", "--status", "confirmed", "--config", "ir.toml")
    doc = json.loads(cli("show", "INC-000001", "--format", "json")[1])
    assert {n["tenant"]: n["hours"] for n in doc["notifications"]} == {"acme": 12, "globex": 48}
    (tmp_path / "bad.toml").write_text("[notification]\ndefault_hours = -1\n")
    assert cli("list", "--config", "bad.toml")[0] == 2


def test_a_log_from_before_named_logs_still_reads(cli: Run, tmp_path: Path) -> None:
    """A custom --log written when every log's head was 'default' keeps verifying (no false
    alarm); a custom log whose head is really missing is still tampering."""
    from styku_crypto.incidents import IncidentLog
    from styku_crypto.keys import KeyStore, LocalRootKey

    root = LocalRootKey(tmp_path / "styku-keys.db.rootkey")
    with KeyStore.open(tmp_path / "styku-keys.db", root=root) as store:
        old = IncidentLog.open(tmp_path / "custom.jsonl", store=store)  # head name "default"
        old.open_incident("before", severity="low", description="d")
    code, out, err = cli("verify", "--log", "custom.jsonl")
    assert code == 0, err
    assert "head record matches" in out
    assert cli("update", "INC-000001", "--log", "custom.jsonl", "--action", "more")[0] == 0
    # a file whose entries neither its own head nor the legacy head covers is refused
    with KeyStore.open(tmp_path / "styku-keys.db", root=root) as store:
        other = IncidentLog.open(tmp_path / "other.jsonl", store=store, name="elsewhere")
        other.open_incident("x", severity="low", description="d")
    code, _, err = cli("verify", "--log", "other.jsonl")
    assert code == 1
    assert "head record is missing" in err


def test_verify_reports_tampering_found_while_opening_the_log(
    cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A head record that fails its own check while the log is being located is reported by
    verify as TAMPERED (exit 1, JSON intact false), never as a crash or another error."""
    from styku_crypto.exceptions import TamperedLogError
    from styku_crypto.incidents import IncidentLog

    _seed(cli)
    (tmp_path / "incidents.jsonl").unlink()

    def forged(self: IncidentLog) -> bool:
        raise TamperedLogError("incident log head differs from its authenticated copy")

    monkeypatch.setattr(IncidentLog, "has_head", forged)
    code, out, err = cli("verify", "--format", "json")
    assert code == 1
    assert err.startswith("TAMPERED: incident log head differs")
    assert json.loads(out)["intact"] is False
