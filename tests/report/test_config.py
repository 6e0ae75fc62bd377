"""report.toml: every error names the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from styku_crypto._cli import main
from styku_crypto.report import ReportConfigError, load_config, parse_config
from styku_crypto.report._tomlpos import format_path, key_lines

GOOD = """\
[report]
title = "prod"

[keys]
store = "keys.db"
roots = ["local:root.key"]

[rotation]
max_age_days = 365

[backups]
destinations = ["/backups/a", "s3://bucket/keys"]
max_age_hours = 26

[[waivers]]
control = "AR-LAYERED"
reason = "legacy tenant"
expires = 2027-03-31

[[waivers]]
control = "TX-CERT"
subject = "partner.example:443"
reason = "decommissioned in March"
expires = 2027-03-31
"""


def _error(text: str) -> ReportConfigError:
    with pytest.raises(ReportConfigError) as info:
        parse_config(text, path="/etc/styku/report.toml")
    return info.value


def test_good_config_parses_and_resolves_relative_paths() -> None:
    """Relative store and root paths are resolved against the config file's directory."""
    cfg = parse_config(GOOD, path="/etc/styku/report.toml")
    assert cfg.keys is not None
    assert cfg.keys.store == "/etc/styku/keys.db"
    assert cfg.keys.roots == ("local:/etc/styku/root.key",)
    assert cfg.backups is not None
    assert cfg.backups.destinations[1] == "s3://bucket/keys"
    assert [w.where for w in cfg.waivers] == [
        "/etc/styku/report.toml:15",
        "/etc/styku/report.toml:20",
    ]


@pytest.mark.parametrize(
    ("old", "new", "line", "key", "problem"),
    [
        ("max_age_hours = 26", "max_age_hour = 26", 13, "backups.max_age_hour", "unknown key"),
        (
            "max_age_days = 365",
            'max_age_days = "365"',
            9,
            "rotation.max_age_days",
            "positive integer",
        ),
        ('subject = "partner', 'subjekt = "partner', 22, "waivers[1].subjekt", "unknown key"),
        ('control = "TX-CERT"', 'control = "TX-CRT"', 21, "waivers[1].control", "unknown control"),
        ("expires = 2027-03-31\n\n", 'expires = "soon"\n\n', 18, "waivers[0].expires", "date"),
        ('"s3://bucket/keys"', "7", 12, "backups.destinations[1]", "non-empty string"),
        ("[rotation]", "[rotaton]", 8, "rotaton", "unknown table"),
        ('store = "keys.db"\n', "", 4, "keys", "missing required key 'store'"),
    ],
)
def test_errors_name_file_line_and_key(
    old: str, new: str, line: int, key: str, problem: str
) -> None:
    """A typo, a wrong type or a missing key is refused with file:line: key: problem."""
    assert old in GOOD
    err = _error(GOOD.replace(old, new, 1))
    assert (err.file, err.line, err.key) == ("/etc/styku/report.toml", line, key)
    assert problem in err.problem
    assert str(err).startswith(f"/etc/styku/report.toml:{line}: {key}: ")


def test_toml_syntax_error_names_the_line() -> None:
    """Invalid TOML reports tomllib's line."""
    err = _error(GOOD.replace("max_age_hours = 26", "max_age_hours = = 26"))
    assert err.line == 13
    assert "invalid TOML" in str(err)


def test_missing_file_and_cli_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unreadable config or a bad key: exit 2, one line naming the place, nothing written."""
    with pytest.raises(ReportConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")
    bad = tmp_path / "report.toml"
    bad.write_text(GOOD.replace("max_age_hours", "max_age_hourz"))
    out = tmp_path / "r.html"
    assert main(["report", "--config", str(bad), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:13: backups.max_age_hourz: unknown key" in err
    assert not out.exists()


_NAME = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


@given(
    tables=st.lists(
        st.tuples(_NAME, st.booleans(), st.lists(_NAME, min_size=1, max_size=4, unique=True)),
        min_size=1,
        max_size=5,
        unique_by=lambda t: t[0],
    ),
    blank=st.lists(st.integers(0, 2), min_size=40, max_size=40),
)
def test_key_lines_finds_every_key(
    tables: list[tuple[str, bool, list[str]]], blank: list[int]
) -> None:
    """Generated TOML (tables, arrays of tables, comments, blanks): each key maps to its line."""
    lines: list[str] = []
    expected: dict[tuple[str | int, ...], int] = {}
    i = 0
    for name, array, keys in tables:
        for index in range(2 if array else 1):
            lines += ["# comment"] * blank[i % 40]
            i += 1
            lines.append(f"[[{name}]]" if array else f"[{name}]")
            base: tuple[str | int, ...] = (name, index) if array else (name,)
            for key in keys:
                lines += [""] * blank[i % 40]
                i += 1
                lines.append(f'{key} = "v = [x]"')
                expected[(*base, key)] = len(lines)
    found = key_lines("\n".join(lines) + "\n")
    for path, line in expected.items():
        assert found[path] == line, format_path(path)
