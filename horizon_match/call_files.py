"""Call files: reading saved portal responses and normalized JSONL; writing exports.

Accepted inputs (recognised by content, not by name):
- a saved search page (`{"results": [...], "totalResults": ...}`), e.g. from `--save DIR`;
- a saved topic-details file (`{"TopicDetails": {...}}`);
- normalized JSONL, one CallRecord per line (see horizon_match.call_records).
Every file is read and checked whole before anything is stored; all problems are reported
together as `file:line: field: problem`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from horizon_match.call_records import length_problems, record_from_dict, record_to_dict
from horizon_match.errors import InputError, Problem, ValidationError
from horizon_match.member_files import read_text_file
from models import CallRecord
from scrapers.ft_portal import (
    merge_duplicates,
    merge_records,
    next_deadline,
    parse_search_results,
    parse_topic_details,
)

CSV_COLUMNS = ("identifier", "title", "status", "programme", "type_of_action", "budget",
               "opening_date", "next_deadline", "deadlines", "call_identifier", "call_title",
               "destination", "keywords", "url", "source", "description")


@dataclass
class CallFiles:
    """Records read from files, and which of them came with their topic details."""

    records: list[CallRecord] = field(default_factory=list)
    with_details: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def read_call_files(paths: Sequence[Path]) -> CallFiles:
    """Read every file; raise ValidationError listing all problems, or return the records."""
    problems: list[Problem] = []
    listings: dict[str, CallRecord] = {}
    details: dict[str, CallRecord] = {}
    normalized: dict[str, tuple[CallRecord, str]] = {}
    notes: list[str] = []
    origin: dict[str, str] = {}  # identifier -> the saved file it was first read from
    for path in paths:
        name = str(path)
        if not path.exists():
            raise InputError(f"{name}: no such file; give saved search pages, topic-details "
                             "files or a normalized .jsonl")
        try:
            # strict UTF-8 (a latin-1 file is refused, not imported with U+FFFD), .gz allowed
            text = read_text_file(path, name)
        except ValidationError as exc:
            problems.extend(exc.problems)
            continue
        if not text.strip():
            problems.append(Problem(name, None, None, "the file is empty; give a saved search "
                                    "page, a topic-details file or normalized JSONL"))
            continue
        if _looks_like_jsonl(path, text):
            _read_jsonl(name, text, normalized, problems)
            continue
        try:
            payload = json.loads(text)
        except ValueError as exc:
            line = getattr(exc, "lineno", None)
            problems.append(Problem(name, line, None, f"not valid JSON ({exc}); a cut download? "
                                    "save the response again"))
            continue
        if isinstance(payload, dict) and isinstance(payload.get("TopicDetails"), dict):
            try:
                record = parse_topic_details(payload)
            except (ValueError, TypeError, AttributeError, KeyError) as exc:
                problems.append(Problem(name, None, "TopicDetails", f"cannot be read ({exc}); "
                                        "save the topic-details response again"))
                continue
            details[record.identifier] = record
            origin.setdefault(record.identifier, name)
        elif isinstance(payload, dict) and isinstance(payload.get("results"), list):
            page = parse_search_results(payload)
            if page.skipped_languages:
                notes.append(f"{name}: {page.skipped_languages} result(s) not in English skipped")
            for record in page.records:
                previous = listings.get(record.identifier)
                listings[record.identifier] = (
                    merge_duplicates(previous, record) if previous else record
                )
                origin.setdefault(record.identifier, name)
        else:
            problems.append(Problem(name, None, None, "neither a search page (`results`), a "
                                    "topic-details file (`TopicDetails`) nor JSONL"))
    if problems:
        raise ValidationError(problems)
    merged: dict[str, CallRecord] = {}
    for identifier, listing in listings.items():
        merged[identifier] = (
            merge_records(listing, details[identifier]) if identifier in details else listing
        )
    for identifier, record in details.items():
        merged.setdefault(identifier, record)
    for identifier, (record, _where) in normalized.items():
        merged[identifier] = record
    # saved portal responses are not checked field by field above; a value too long for its
    # column would otherwise fail inside the database (PostgreSQL) instead of being reported
    for identifier, record in merged.items():
        where = normalized[identifier][1] if identifier in normalized else origin[identifier]
        for fld, message in length_problems(record):
            problems.append(Problem(where, None, fld, f"{identifier}: {message}"))
    if problems:
        raise ValidationError(problems)
    return CallFiles(records=list(merged.values()), with_details=set(details), notes=notes)


def _looks_like_jsonl(path: Path, text: str) -> bool:
    if path.name.lower().removesuffix(".gz").endswith((".jsonl", ".ndjson")):
        return True
    first = next((line for line in text.split("\n") if line.strip()), "")
    # a JSON document spread over lines starts with a lone "{" or "["
    return first.strip().startswith("{") and first.strip().endswith("}") and \
        len([ln for ln in text.split("\n") if ln.strip()]) > 1


def _read_jsonl(name: str, text: str, out: dict[str, tuple[CallRecord, str]],
                problems: list[Problem]) -> None:
    # split("\n"), not splitlines(): export writes U+2028 and other line breaks unescaped
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            problems.append(Problem(name, number, None, f"not a JSON object ({exc})"))
            continue
        record, found = record_from_dict(data)
        for where, message in found:
            problems.append(Problem(name, number, where, message))
        if record is None:
            continue
        if record.identifier in out:
            problems.append(Problem(name, number, "identifier", f"{record.identifier} again "
                                    f"(first at {out[record.identifier][1]})"))
            continue
        out[record.identifier] = (record, f"{name}:{number}")


def write_jsonl(records: Iterable[CallRecord], out: TextIO) -> int:
    count = 0
    for record in records:
        out.write(json.dumps(record_to_dict(record), ensure_ascii=False) + "\n")
        count += 1
    return count


def write_csv(records: Iterable[CallRecord], out: TextIO, now: datetime) -> int:
    """One row per call; list fields `;`-separated, deadlines as ISO datetimes."""
    writer = csv.DictWriter(out, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    count = 0
    for record in records:
        row = record_to_dict(record)
        upcoming = next_deadline(record.deadlines, now)
        writer.writerow({
            **{k: row.get(k) for k in CSV_COLUMNS if k in row},
            "deadlines": ";".join(d["at"] for d in row["deadlines"]),
            "keywords": ";".join(row["keywords"]),
            "next_deadline": upcoming.isoformat() if upcoming else "",
            "budget": "" if record.budget is None else f"{record.budget:.0f}",
        })
        count += 1
    return count
