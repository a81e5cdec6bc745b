"""Writing files so that a reader sees the old file or the complete new one, never a torn write."""

from __future__ import annotations

import os
import pathlib
import tempfile


def write_atomically(path: str | os.PathLike, data: bytes | memoryview) -> pathlib.Path:
    """Write ``data`` to ``path`` through a uniquely named temporary file in the same directory.

    The temporary file (``mkstemp``: unique across processes and hosts sharing a filesystem) is
    flushed to disk and renamed into place with ``os.replace``, atomic on POSIX and Windows; on
    any failure it is removed and ``path`` is left as it was. The file is readable by all (0644).
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp creates it owner-only
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise
    return path
