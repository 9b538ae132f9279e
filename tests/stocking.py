"""Filling a test database with calls and members through the real import paths."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from horizon_match.db import Database
from horizon_match.ingest import import_call_files
from horizon_match.members import import_members


def call_record(identifier: str, title: str, description: str, deadline: str,
                **extra: Any) -> dict[str, Any]:
    """A call file record with one deadline (RIA unless `type_of_action` is given)."""
    record: dict[str, Any] = {
        "identifier": identifier, "title": title, "call_identifier": identifier.rsplit("-", 1)[0],
        "programme": "HORIZON", "description": description,
        "deadlines": [{"at": deadline, "stage": 1}], "type_of_action": "HORIZON-RIA",
        "source": "test",
    }
    record.update(extra)
    return record


def stock(db: Database, folder: Path, calls: list[dict[str, Any]],
          members: list[dict[str, Any]], now: datetime = datetime(2026, 5, 1)) -> Database:
    """Import `calls` and `members` (written as JSONL files into `folder`) into `db`."""
    (folder / "calls.jsonl").write_text("\n".join(json.dumps(c) for c in calls) + "\n")
    import_call_files(db, [folder / "calls.jsonl"], now=now)
    (folder / "members.jsonl").write_text("\n".join(json.dumps(m) for m in members) + "\n")
    import_members(db, folder / "members.jsonl")
    return db
