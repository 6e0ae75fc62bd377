"""The CLI dispatcher: one line per error, nothing created by accident, quiet broken pipes."""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from styku_crypto._cli import EXIT_BROKEN_PIPE, main
from styku_crypto._cli._keys_dr import same_device
from styku_crypto.envelope import Envelope
from styku_crypto.exceptions import KeyStoreError
from styku_crypto.keys import KeyStore, LocalRootKey


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An initialised key store with one tenant."""
    monkeypatch.setenv("STYKU_CRYPTO_ROOT_KEY_FILE", str(tmp_path / "root.key"))
    path = tmp_path / "keys.db"
    assert main(["keys", "init", "--store", str(path)]) == 0
    assert main(["keys", "create", "acme", "--store", str(path)]) == 0
    return path


@pytest.mark.parametrize("command", ["encrypt", "decrypt"])
def test_unreadable_input_is_one_line_exit_2(
    command: str, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory given as the input file exits 2 with one stderr line and no output file."""
    capsys.readouterr()
    source = tmp_path / "a-directory"
    source.mkdir()
    out = tmp_path / "out.bin"
    code = main([command, "--store", str(store), "--tenant", "acme", str(source), str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert err.count("\n") == 1
    assert "a-directory" in err
    assert not out.exists()


def test_storage_failure_is_one_line_nonzero(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory given as the incident log is refused with one stderr line naming it."""
    capsys.readouterr()
    log_dir = tmp_path / "a-directory"
    log_dir.mkdir()
    code = main(["incidents", "list", "--store", str(store), "--log", str(log_dir)])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    assert err.count("\n") == 1
    assert str(log_dir) in err


# -- nothing is created by accident (issue 14) ------------------------------------------------


def _tree(root: Path) -> set[str]:
    """Every path under *root*, relative, so a test can prove nothing was created."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory with no store configured through the environment."""
    for name in (
        "STYKU_CRYPTO_STORE",
        "STYKU_CRYPTO_ROOTS",
        "STYKU_CRYPTO_ROOT_KEY_FILE",
        "STYKU_CRYPTO_INCIDENTS",
    ):
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "in.txt").write_bytes(b"plain")
    (work / "backups").mkdir()
    LocalRootKey(work / "second.rootkey")  # an existing provider for `keys root add`
    return work


# Every command that works on a store, each with the arguments it needs otherwise.
_STORE_COMMANDS = [
    ["encrypt", "--tenant", "acme", "in.txt", "out.tok"],
    ["encrypt", "--tenant", "acme", "--text", "in.txt", "out.tok"],
    ["decrypt", "--tenant", "acme", "in.txt", "out.bin"],
    ["rewrap", "--tenant", "acme", "in.txt", "out.tok"],
    ["keys", "list"],
    ["keys", "list", "--format", "json"],
    ["keys", "create", "acme"],
    ["keys", "rotate", "acme"],
    ["keys", "shred", "acme", "--yes"],
    ["keys", "backup", "--to", "backups"],
    ["keys", "restore", "backups"],
    ["keys", "check"],
    ["keys", "drill", "backups"],
    ["keys", "root", "list"],
    ["keys", "root", "add", "local:second.rootkey"],
    ["keys", "root", "remove", "local:x", "--root", "local:second.rootkey"],
    ["incidents", "open", "--title", "t", "--severity", "low", "--description", "d"],
    ["incidents", "list"],
    ["incidents", "show", "INC-000001"],
    ["incidents", "verify"],
    ["incidents", "export", "--format", "json"],
]


# ``keys restore --store NEW`` may create NEW (tested below); without --store it may not.
_CASES = [
    pytest.param(argv, how, id=f"{' '.join(argv[:3])}-{how}")
    for argv in _STORE_COMMANDS
    for how in ("--store", "env", "default")
    if not (argv[:2] == ["keys", "restore"] and how == "--store")
]


@pytest.mark.parametrize(("argv", "how"), _CASES)
def test_missing_store_is_one_line_exit_2_and_creates_nothing(
    argv: list[str],
    how: str,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every store command on a missing store prints the one exact line, exits 2, writes nothing."""
    before = _tree(workdir)
    if how == "--store":
        target, extra = "typo.db", ["--store", "typo.db"]
    elif how == "env":
        target, extra = "from-env.db", []
        monkeypatch.setenv("STYKU_CRYPTO_STORE", "from-env.db")
    else:
        target, extra = "styku-keys.db", []
    capsys.readouterr()
    code = main([*argv, *extra])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err == (
        f"no key store at {target} (create one with: styku-crypto keys init --store {target})\n"
    )
    assert captured.out == ""
    assert _tree(workdir) == before


def test_decrypt_with_typo_store_creates_no_store_and_no_root_key(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's case: ``decrypt --store typo.db`` used to create typo.db and a new root key."""
    token = tmp_path / "t.tok"
    src = tmp_path / "p.txt"
    src.write_bytes(b"x")
    assert main(["encrypt", "--store", str(store), "--tenant", "acme", str(src), str(token)]) == 0
    typo = tmp_path / "typo.db"
    capsys.readouterr()
    code = main(["decrypt", "--store", str(typo), "--tenant", "acme", str(token), "-"])
    assert code == 2
    assert "no key store at" in capsys.readouterr().err
    assert not typo.exists()
    assert not Path(f"{typo}.rootkey").exists()


def test_missing_store_as_sqlite_url(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A ``sqlite:///`` URL to a missing file gets the same one line, naming the URL."""
    assert main(["keys", "check", "--store", "sqlite:///typo.db"]) == 2
    assert capsys.readouterr().err == (
        "no key store at sqlite:///typo.db"
        " (create one with: styku-crypto keys init --store sqlite:///typo.db)\n"
    )
    assert not (workdir / "typo.db").exists()


def test_missing_store_message_quotes_the_suggested_command(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store path with a space gets a shell-quoted ``keys init`` suggestion."""
    assert main(["keys", "list", "--store", "my keys.db"]) == 2
    assert capsys.readouterr().err == (
        "no key store at my keys.db"
        " (create one with: styku-crypto keys init --store 'my keys.db')\n"
    )


def test_library_open_with_create_false_writes_nothing(tmp_path: Path) -> None:
    """``KeyStore.open(create=False)`` on a missing store raises KeyStoreError, writes nothing."""
    with pytest.raises(KeyStoreError):
        KeyStore.open(tmp_path / "absent.db", create=False)
    assert list(tmp_path.iterdir()) == []


def test_init_needs_the_parent_directory_unless_parents(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``keys init --store missing/dir/k.db`` exits 2 and creates nothing; ``--parents`` creates."""
    target = workdir / "missing" / "dir" / "k.db"
    before = _tree(workdir)
    capsys.readouterr()
    assert main(["keys", "init", "--store", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "does not exist" in err
    assert "--parents" in err
    assert _tree(workdir) == before
    assert main(["keys", "init", "--store", str(target), "--parents"]) == 0
    assert target.exists()
    assert Path(f"{target}.rootkey").exists()


def test_init_needs_the_root_key_directory_unless_parents(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A root key file in a missing directory ($STYKU_CRYPTO_ROOT_KEY_FILE) is refused alike."""
    monkeypatch.setenv("STYKU_CRYPTO_ROOT_KEY_FILE", str(workdir / "keys" / "root.key"))
    before = _tree(workdir)
    capsys.readouterr()
    assert main(["keys", "init", "--store", "k.db"]) == 2
    assert "keys" in capsys.readouterr().err
    assert _tree(workdir) == before
    assert main(["keys", "init", "--store", "k.db", "--parents"]) == 0
    assert (workdir / "keys" / "root.key").exists()


def test_restore_creates_its_target_only_when_named(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``keys restore`` creates the store named by --store; a refused restore leaves none behind."""
    other = tmp_path / "other-fs-not-needed"
    other.mkdir()
    assert (
        main(["keys", "backup", "--store", str(store), "--to", str(other), "--same-device-ok"]) == 0
    )
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    # Not named: the default store does not exist, so nothing happens.
    assert main(["keys", "restore", str(other)]) == 2
    assert not (tmp_path / "styku-keys.db").exists()
    # Named in a missing directory: refused unless --parents.
    deep = tmp_path / "a" / "b" / "restored.db"
    assert main(["keys", "restore", str(other), "--store", str(deep)]) == 2
    assert not (tmp_path / "a").exists()
    # A refused restore (nothing to restore) removes the store it created.
    empty = tmp_path / "empty-source"
    empty.mkdir()
    refused = tmp_path / "refused.db"
    assert main(["keys", "restore", str(empty), "--store", str(refused)]) == 1
    assert not refused.exists()
    assert not Path(f"{refused}-wal").exists()
    named = tmp_path / "restored.db"
    assert main(["keys", "restore", str(other), "--store", str(named)]) == 0
    with KeyStore.open(named, create=False) as ks:
        assert [t.name for t in ks.tenants()] == ["acme"]
    assert main(["keys", "restore", str(other), "--store", str(deep), "--parents"]) == 0
    assert deep.exists()


def test_backup_destination_must_exist(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing destination (an unmounted /mnt/backup-a) exits 2 and is not created."""
    missing = tmp_path / "mnt" / "backup-a"
    capsys.readouterr()
    assert main(["keys", "backup", "--store", str(store), "--to", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert str(missing) in err
    assert not (tmp_path / "mnt").exists()


def test_backup_to_the_stores_filesystem_is_refused_unless_same_device_ok(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A destination with the store's st_dev is not a second place: exit 2 unless allowed."""
    dest = tmp_path / "same-disk"
    dest.mkdir()
    assert os.stat(dest).st_dev == os.stat(store).st_dev
    capsys.readouterr()
    assert main(["keys", "backup", "--store", str(store), "--to", str(dest)]) == 2
    err = capsys.readouterr().err
    assert "same filesystem" in err
    assert "--same-device-ok" in err
    assert list(dest.iterdir()) == []
    assert (
        main(["keys", "backup", "--store", str(store), "--to", str(dest), "--same-device-ok"]) == 0
    )
    assert len(list(dest.iterdir())) == 1


def test_backup_to_another_filesystem_is_accepted(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A destination on another filesystem (/dev/shm, a tmpfs) needs no flag."""
    shm = Path("/dev/shm")
    assert os.stat(shm).st_dev != os.stat(store).st_dev, "the test needs /dev/shm on a tmpfs"
    with tempfile.TemporaryDirectory(dir=shm) as dest:
        assert main(["keys", "backup", "--store", str(store), "--to", dest]) == 0
        assert len(os.listdir(dest)) == 1


def test_same_device_compares_st_dev(tmp_path: Path) -> None:
    """same_device is true inside one filesystem and false across mounts (/proc)."""
    (tmp_path / "a").mkdir()
    assert same_device(tmp_path / "a", tmp_path)
    assert not same_device(tmp_path, Path("/proc"))


def test_root_add_counts_the_configured_default_root(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``keys root add local:second`` without --root keeps the default root and adds the second."""
    second = tmp_path / "second.rootkey"
    provider = LocalRootKey(second)
    src = tmp_path / "p.txt"
    src.write_bytes(b"payload")
    token = tmp_path / "p.tok"
    assert main(["encrypt", "--store", str(store), "--tenant", "acme", str(src), str(token)]) == 0
    capsys.readouterr()
    assert main(["keys", "root", "add", f"local:{second}", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert f"under {provider.provider_id}" in out
    assert "PROBLEM" not in out
    # Both roots now unwrap every key: the second alone decrypts, and so does the default.
    with KeyStore.open(store, root=LocalRootKey(second, create=False), create=False) as ks:
        assert Envelope(ks).decrypt_stream(io.BytesIO(token.read_bytes()), tenant="acme",
                                           context={}).read() == b"payload"  # fmt: skip
    assert main(["keys", "check", "--deep", "--store", str(store)]) == 0


# -- output paths and pipes --------------------------------------------------------------------


@pytest.mark.parametrize("extra", [[], ["--text"]])
def test_encrypt_into_a_directory_names_the_users_path(
    extra: list[str], store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``encrypt IN DIR`` names DIR in its one-line error, never a hidden temp file, leaves none."""
    src = tmp_path / "p.txt"
    src.write_bytes(b"x")
    out_dir = tmp_path / "outdir"
    out_dir.mkdir()
    before = _tree(tmp_path)
    capsys.readouterr()
    code = main(
        ["encrypt", "--store", str(store), "--tenant", "acme", *extra, str(src), str(out_dir)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"styku-crypto: cannot write {out_dir}: it is a directory\n"
    assert ".tmp" not in err
    assert _tree(tmp_path) == before


def test_decrypt_into_a_directory_names_the_users_path(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``decrypt TOKEN DIR`` is refused the same way."""
    src = tmp_path / "p.txt"
    src.write_bytes(b"x")
    tok = tmp_path / "p.tok"
    assert main(["encrypt", "--store", str(store), "--tenant", "acme", str(src), str(tok)]) == 0
    out_dir = tmp_path / "outdir"
    out_dir.mkdir()
    capsys.readouterr()
    assert main(["decrypt", "--store", str(store), "--tenant", "acme", str(tok), str(out_dir)]) == 2
    assert capsys.readouterr().err == f"styku-crypto: cannot write {out_dir}: it is a directory\n"
    assert list(out_dir.iterdir()) == []


class _ClosedPipe(io.StringIO):
    """A stdout whose reader went away: every write raises BrokenPipeError."""

    def write(self, s: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_broken_pipe_in_process_stops_quietly(
    store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A closed stdout makes main() return 141 (SIGPIPE) with nothing on stderr."""
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    code = main(["keys", "list", "--format", "json", "--store", str(store)])
    monkeypatch.undo()
    assert code == EXIT_BROKEN_PIPE == 141
    assert capsys.readouterr().err == ""


def test_broken_pipe_subprocess_like_head(store: Path, tmp_path: Path) -> None:
    """``keys list --format json | head -1``: the reader is gone, the command exits 141 silently."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "styku_crypto",
            "keys",
            "list",
            "--format",
            "json",
            "--store",
            str(store),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # the reader goes away before the command writes a byte
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141
    assert err == b""


def test_broken_pipe_through_head(store: Path) -> None:
    """The shell pipeline itself: head prints the first line, the command adds nothing to stderr."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with KeyStore.open(store, create=False) as ks:
        for i in range(200):  # ~140 KiB of JSON: more than a pipe holds once head has gone
            ks.create_tenant(f"tenant-{i:04d}")
    script = (
        f"{shlex.quote(sys.executable)} -m styku_crypto keys list --format json"
        f' --store {shlex.quote(str(store))} | head -1; echo "status ${{PIPESTATUS[0]}}" >&2'
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, env=env, timeout=60)
    assert done.stdout == b"{\n"
    assert done.stderr == b"status 141\n"


def test_init_never_makes_a_new_root_key_for_an_existing_store(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``keys init`` on a store whose root key file is gone refuses; it does not make a new one."""
    root = tmp_path / "root.key"
    root.rename(tmp_path / "root.key.away")
    capsys.readouterr()
    code = main(["keys", "init", "--store", str(store)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert "does not exist" in err
    assert not root.exists()
