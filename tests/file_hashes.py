"""The inputs-unchanged check every bad-input test makes: a digest of each file in a folder."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_hashes(folder: Path) -> dict:
    """{relative path: sha256} of every file under ``folder``; equal before and after = untouched."""
    return {path.relative_to(folder): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(Path(folder).rglob("*")) if path.is_file()}
