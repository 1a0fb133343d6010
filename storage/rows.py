"""Dataset rows from wherever they live: a JSONL export or a store URL.

Training and evaluation take either, so a model can be trained from a file handed around as well
as from a live store. Rows are plain dicts in the export's shape (``DatasetEntry.to_dict``), the one
form both sources share.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from circuits import CktLoopError


def load_rows(source: str | Path, dataset: str | None = None) -> list[dict[str, Any]]:
    """Rows of a JSONL export (a path) or of dataset ``dataset`` in a store (a database URL)."""
    text = str(source)
    if "://" in text:
        if not dataset:
            raise CktLoopError(f"{text}: a dataset name is needed to read rows from a store")
        from storage.store import Store

        with Store.open(text) as store:
            return [entry.to_dict() for entry in store.dataset_rows(dataset)]
    path = Path(text)
    if not path.is_file():
        raise CktLoopError(f"{path}: no such dataset file (give a .jsonl export or a store URL)")
    rows = []
    with path.open() as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CktLoopError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise CktLoopError(f"{path}:{lineno}: expected a JSON object per line")
            rows.append(row)
    return rows
