"""Every example in README.md and docs/ runs as written (issue 14); see ``_harness``.

One test per page runs the page's examples in order in a fresh temporary directory;
it fails at the first example that fails, naming its line. The other tests prove the
harness itself: no ``python``/``console``/``sh`` block escapes collection, and the
cram-style matcher accepts what it should and nothing more.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils.functional import empty as django_unconfigured
from hypothesis import given
from hypothesis import strategies as st
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

from tests.docs._harness import (
    PAGES,
    REPO,
    SESSION_KEY,
    ShellSession,
    compile_expected,
    parse,
    parse_console,
)

_ENV_CLEARED = (
    "STYKU_CRYPTO_STORE",
    "STYKU_CRYPTO_ROOTS",
    "STYKU_CRYPTO_ROOT_KEY_FILE",
    "STYKU_CRYPTO_INCIDENTS",
    "STYKU_CRYPTO_PKCS11_PIN",
)


# Set once per process by the suite's support code; must survive a page's env reset.
_PROCESS_ENV = ("SOFTHSM2_CONF",)


class DocsServices:
    """What a hidden set-up block may ask for: the suite's servers, started on demand.

    A page's hidden block (``<!-- invisible-code-block: python ... -->``) calls these;
    environment variables it sets are undone after the page.
    """

    def __init__(self, request: pytest.FixtureRequest, workdir: Path) -> None:
        self._request = request
        self.workdir = workdir

    def postgres_url(self) -> str:
        """URL of a fresh, empty PostgreSQL database on the suite's server."""
        url: str = self._request.getfixturevalue("postgres_url")
        return url

    def softhsm(self) -> Any:
        """The suite's SoftHSM2 token (``module``, ``label``, ``pin``).

        Always the session's token: a PKCS#11 module loaded once per process does not
        see tokens initialised after it.
        """
        return self._request.getfixturevalue("softhsm_token")

    def new_postgres_database(self) -> str:
        """URL of one more fresh, empty database on the suite's PostgreSQL server."""
        server = self._request.getfixturevalue("postgres_server")
        url: str = server.create_database()
        return url

    def other_filesystem(self) -> str:
        """A new directory on another filesystem than the page's directory (/dev/shm)."""
        path = tempfile.mkdtemp(prefix="styku-docs-", dir="/dev/shm")
        if os.stat(path).st_dev == os.stat(self.workdir).st_dev:
            raise RuntimeError("/dev/shm is not a separate filesystem here")
        self._request.addfinalizer(lambda: shutil.rmtree(path, ignore_errors=True))
        return path

    def aws(self) -> str:
        """Point boto3 at the suite's moto server (env vars); return its endpoint."""
        from tests._support.moto_server import AWS_ENV

        server = self._request.getfixturevalue("moto_server")
        os.environ["AWS_ENDPOINT_URL"] = server.endpoint
        os.environ["AWS_ACCESS_KEY_ID"] = AWS_ENV["aws_access_key_id"]
        os.environ["AWS_SECRET_ACCESS_KEY"] = AWS_ENV["aws_secret_access_key"]
        os.environ["AWS_DEFAULT_REGION"] = AWS_ENV["region_name"]
        endpoint: str = server.endpoint
        return endpoint

    def kms_key(self, region: str = "us-east-1") -> str:
        """A new symmetric KMS key on moto; returns its ARN."""
        import boto3

        self.aws()
        kms = boto3.client("kms", region_name=region)
        arn: str = kms.create_key(KeySpec="SYMMETRIC_DEFAULT")["KeyMetadata"]["Arn"]
        return arn

    def s3_bucket(self, name: str) -> str:
        """Create bucket *name* on moto (once per session); return its name."""
        import boto3

        self.aws()
        s3 = boto3.client("s3")
        if name not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
            s3.create_bucket(Bucket=name)
        return name


def _page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


def _logging_state() -> dict[str, tuple[Any, ...]]:
    """Handlers, filters, level and flags of the root logger and every named logger."""
    loggers: list[logging.Logger] = [logging.getLogger()]
    known = logging.Logger.manager.loggerDict.values()
    loggers += [v for v in known if isinstance(v, logging.Logger)]
    return {
        lg.name: (lg, list(lg.handlers), list(lg.filters), lg.level, lg.propagate, lg.disabled)
        for lg in loggers
    }


def _restore_logging(saved: dict[str, tuple[Any, ...]], disabled: int) -> None:
    """Undo what a page's examples did to logging (handlers, filters, levels, disable)."""
    logging.disable(disabled)
    for name in _logging_state():
        if name not in saved:
            continue  # created by the page (a library's own logger): left as it is
        logger, handlers, filters, level, propagate, was_disabled = saved[name]
        logger.handlers[:] = handlers
        logger.filters[:] = filters
        logger.setLevel(level)
        logger.propagate = propagate
        logger.disabled = was_disabled


def _take_django_settings() -> Any:
    """Unconfigure Django's process-wide settings for a page; return what to put back.

    A page's program is a process of its own (web-django.md's ``site_app.py`` calls
    ``settings.configure``), while here it shares the test process with test modules
    that configured Django at import (tests/passwords/test_interop.py).
    """
    saved = django_settings._wrapped
    django_settings._wrapped = django_unconfigured
    return saved


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_page_examples_run(
    page: Path, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each python, console and sh example on the page runs as written, in order."""
    document = parse(page)
    work = tmp_path / "work"
    support = tmp_path / "support"
    work.mkdir()
    support.mkdir()
    monkeypatch.chdir(work)
    for name in _ENV_CLEARED:
        monkeypatch.delenv(name, raising=False)
    saved = dict(os.environ)
    # A page may attach handlers or set levels (events.md does): undo it afterwards, so
    # that the next test sees the logging set-up it started with.
    logging_saved, logging_disabled = _logging_state(), logging.root.manager.disable
    django_saved = _take_django_settings()
    document.namespace.update(
        {
            "__name__": "__docs__",
            SESSION_KEY: ShellSession(work, support),
            "docs_services": DocsServices(request, work),
        }
    )
    try:
        for example in document.examples():
            example.evaluate()
    finally:
        django_settings._wrapped = django_saved
        _restore_logging(logging_saved, logging_disabled)
        keep = {k: os.environ[k] for k in _PROCESS_ENV if k in os.environ}
        os.environ.clear()
        os.environ.update(saved)
        os.environ.update(keep)


_FENCE = re.compile(r"^[ \t>*+-]*(?:```|~~~)[ \t]*([A-Za-z0-9_+-]*)", re.MULTILINE)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_no_block_escapes_the_harness(page: Path) -> None:
    """Python-like fences use the ``python`` tag, and Sybil finds every fence the page has."""
    text = page.read_text(encoding="utf-8")
    tags = [m.group(1) for m in _FENCE.finditer(text)]
    # Opening fences carry a tag; closing ones do not. Count the tagged ones per language.
    for alias in ("py", "python3", "pycon", "ipython", "bash", "shell", "zsh", "shell-session"):
        assert alias not in tags, f"{_page_id(page)}: use python/console/sh, not {alias!r}"
    lexed = [r.lexemes["language"] for r in FencedCodeBlockLexer(language=r".+")(parse(page))]
    for language in ("python", "console", "sh"):
        assert lexed.count(language) == tags.count(language), (
            f"{_page_id(page)}: {tags.count(language)} {language} fences, "
            f"Sybil found {lexed.count(language)}"
        )


_HIDDEN = re.compile(r"<!--+\s*invisible-code(?:-block)?:\s*python\s*\n(.*?)-->", re.S)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_hidden_set_up_blocks_say_what_they_set_up(page: Path) -> None:
    """Each hidden block opens with a ``# Set-up ...`` comment, so the page source names it."""
    for body in _HIDDEN.findall(page.read_text(encoding="utf-8")):
        first = body.strip().splitlines()[0] if body.strip() else ""
        assert first.startswith("# Set-up"), f"{_page_id(page)}: hidden block starts {first!r}"


def test_console_parsing_and_status() -> None:
    """``$`` commands, backslash and ``>`` continuations, expected output and ``[N]``."""
    steps = parse_console(
        "$ a \\\n    --flag\nout 1\n\n$ b\n> more\n[2]\n$ c\n",
    )
    assert [s.command for s in steps] == ["a \\\n    --flag", "b\nmore", "c"]
    assert [s.expected for s in steps] == [["out 1"], [], []]
    assert [s.status for s in steps] == [0, 2, 0]
    with pytest.raises(ValueError, match="output before"):
        parse_console("stray\n$ a\n")


_plain_line = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40
).filter(lambda t: not any(p in t for p in ("<TIME>", "<N>", "<ID>", "<PATH>", "...")))


@given(lines=st.lists(_plain_line, max_size=5), extra=_plain_line.filter(bool))
def test_property_literal_output_matches_only_itself(lines: list[str], extra: str) -> None:
    """Without placeholders, expected lines match exactly that output and not one line more."""
    lines = [line.rstrip() for line in lines]
    pattern = compile_expected(lines)
    actual = "".join(f"{line}\n" for line in lines)
    assert pattern.fullmatch(actual)
    assert not pattern.fullmatch(actual + extra + "\n")


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        (["backup <ID>: <N> tenant(s)"], "backup 20261205T101010Z-ab12: 2 tenant(s)\n", True),
        (["done in <TIME>"], "done in 0.40s\n", True),
        (["at <TIME>"], "at 2026-11-27T02:10:00+00:00\n", True),
        (["in <PATH>"], "in /tmp/styku-demo-x1/\n", True),
        (["a", "...", "z"], "a\nb\nc\nz\n", True),
        (["a", "...", "z"], "a\nz\n", True),
        (["ciphers A:...;"], "ciphers A:B:C;\n", True),
        (["exact"], "exact\nextra\n", False),
        (["exact"], "exaCt\n", False),
        (["<N> keys"], "many keys\n", False),
        ([], "", True),
        ([], "unexpected\n", False),
    ],
)
def test_cram_matching(expected: list[str], actual: str, ok: bool) -> None:
    """Placeholders match what varies between runs, and nothing else does."""
    assert bool(compile_expected(expected).fullmatch(actual)) is ok


def test_a_page_gets_unconfigured_django_and_gives_it_back() -> None:
    """A page may ``settings.configure`` as its own process would; the suite's settings return."""
    original = django_settings._wrapped
    try:
        if not django_settings.configured:
            django_settings.configure(USE_TZ=True)  # as tests/passwords/test_interop.py does
        before = django_settings._wrapped
        saved = _take_django_settings()
        try:
            assert not django_settings.configured
            django_settings.configure(ROOT_URLCONF="site_app", USE_TZ=False)  # as a page does
        finally:
            django_settings._wrapped = saved
        assert django_settings._wrapped is before
        assert django_settings.USE_TZ is True
    finally:
        django_settings._wrapped = original
