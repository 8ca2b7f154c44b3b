"""Files that hold personal data or secrets, written so no one else ever reads them."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def write_private(path: Path, chunks: Iterable[bytes]) -> None:
    """Writes `chunks` to `path`: a new 0600 file in its folder (mkstemp: O_EXCL and a random
    name, never a file or symlink already there), renamed onto `path` once complete, so a
    symlink at `path` is replaced, never followed, and no half-written file is left."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
