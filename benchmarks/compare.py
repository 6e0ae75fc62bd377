"""The envelope comparison the foundation issue names: ``python benchmarks/compare.py``.

Prints, in one run, ops/s and MB/s of ``Envelope`` against raw ``AESGCM`` (the
floor), Fernet, Tink's envelope AEAD and the AWS Encryption SDK with a raw AES
keyring. It is ``compare_envelope.py`` under the name the issue uses; the other
capabilities' comparisons are the ``compare_<area>.py`` scripts beside it, all of
which ``nox -s bench`` runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_envelope import main  # after the path set-up above

if __name__ == "__main__":
    raise SystemExit(main())
