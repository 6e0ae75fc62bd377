"""The public surface of styku_crypto.fields matches its documentation."""

from __future__ import annotations

from pathlib import Path

import styku_crypto.fields as fields
import styku_crypto.fields.sqlalchemy as orm
from styku_crypto import hazmat

DOC = (Path(__file__).resolve().parents[2] / "docs" / "fields.md").read_text(encoding="utf-8")


def test_all_is_sorted_and_documented() -> None:
    """__all__ is sorted, every name resolves, and every name appears in docs/fields.md."""
    for module in (fields, orm):
        assert list(module.__all__) == sorted(module.__all__)
        for name in module.__all__:
            assert getattr(module, name) is not None
            assert f"`{name}" in DOC or f"{name}(" in DOC or f" {name}" in DOC, name


def test_hazmat_exports_siv() -> None:
    """AES-SIV is reachable only through the hazmat package (not the recipes)."""
    assert "AesSiv" in hazmat.__all__
    assert not hasattr(fields, "AesSiv")
    assert hazmat.__doc__ is not None
    assert "danger" in hazmat.__doc__.lower()


def test_orm_module_names_the_missing_extra() -> None:
    """Without SQLAlchemy, importing the ORM module raises MissingExtraError naming the extra."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['sqlalchemy'] = None\n"
        "from styku_crypto.exceptions import MissingExtraError\n"
        "import styku_crypto.fields\n"
        "try:\n"
        "    import styku_crypto.fields.sqlalchemy\n"
        "except MissingExtraError as exc:\n"
        "    print('missing:', exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert "styku-crypto[sqlalchemy]" in proc.stdout, proc.stderr[-500:]
