"""Member files: read and check a whole CSV, JSONL or YAML file, and write one.

Pure: no database. A file is checked whole and every problem is collected as
`file:line: field: what is wrong` (CSV: the line a row starts on; JSONL: the line; YAML: the
line of the field), so a user fixes them all in one go. The checked records keep only the
fields a file gave, normalised (country codes in the Commission's form, lower-case choices,
stripped text), so that storing can tell "absent" (keep) from "empty" (clear).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from horizon_match.countries import normalise_country
from horizon_match.errors import InputError, Problem, ValidationError
from models.tables import ORGANISATION_TYPES, SIZE_CLASSES

FORMATS = ("csv", "jsonl", "yaml")
_EXTENSIONS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".yaml": "yaml",
    ".yml": "yaml",
}

# Field order of every export.
FIELDS = (
    "id",
    "name",
    "emails",
    "country",
    "city",
    "organisation_type",
    "size",
    "sme",
    "pic",
    "description",
    "keywords",
    "past_projects",
    "preferences",
)
PREFERENCE_KEYS = (
    "programmes",
    "types_of_action",
    "budget_min",
    "budget_max",
    "languages",
    "exclude_from_consortia",
)
# CSV has no nested values: preferences become one column each, past projects are absent.
CSV_COLUMNS = tuple(f for f in FIELDS if f not in ("past_projects", "preferences")) + tuple(
    f"preferences.{k}" for k in PREFERENCE_KEYS
)

# Ids appear in commands, URLs and project ids (`member:<id>:<n>`), hence the small alphabet.
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_RE = re.compile(
    rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+(?:[A-Za-z]{{2,63}}|xn--[A-Za-z0-9-]+)"
)
PIC_RE = re.compile(r"[0-9]{9}")
LANGUAGE_RE = re.compile(r"[a-z]{2,3}")

_MAX_TEXT = {"name": 500, "city": 200}


# ----------------------------------------------------------------------------------------
# records


@dataclass(frozen=True)
class MemberRecord:
    """One checked member of a file. `values` holds only the fields the file gave, already
    normalised; CSV preference columns appear as `preferences.<key>` (None = remove)."""

    id: str
    line: int
    values: dict[str, Any]
    field_lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, name: str) -> int:
        return self.field_lines.get(name, self.line)


@dataclass
class _RawItem:
    line: int
    values: dict[str, Any]
    field_lines: dict[str, int] = field(default_factory=dict)


class _Bad(Exception):
    """A value that cannot be used; the message says why."""


# ----------------------------------------------------------------------------------------
# reading files


def format_of(path: Path) -> str:
    """The member file format from the file name: csv, jsonl or yaml (a .gz suffix is allowed)."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    fmt = _EXTENSIONS.get(os.path.splitext(name)[1])
    if fmt is None:
        raise InputError(
            f"{path}: cannot tell the format from the file name; name it .csv, .jsonl, .yaml "
            "or .yml (optionally followed by .gz)"
        )
    return fmt


def _gunzip(raw: bytes, file: str) -> bytes:
    def fail(out: bytearray, what: str) -> ValidationError:
        line = bytes(out).count(b"\n") + 1
        return ValidationError(
            [Problem(file, line, None, f"{what}; get a complete copy of the file")],
            summary="cannot read the compressed file, nothing was imported",
        )

    if not raw.startswith(b"\x1f\x8b"):
        raise ValidationError(
            [Problem(file, None, None, "the name ends in .gz but it is not a gzip file")],
            summary="cannot read the compressed file, nothing was imported",
        )
    out = bytearray()
    data, pos, chunk = raw, 0, 1 << 16
    decomp = zlib.decompressobj(wbits=31)
    # Chunked so that a corrupt stream still tells how far the good data went.
    try:
        while pos < len(data):
            out += decomp.decompress(data[pos : pos + chunk])
            pos += chunk
            if decomp.eof:
                rest = decomp.unused_data + data[pos:]
                if not rest.strip(b"\x00"):
                    break
                # Several gzip members one after another form one file, as gzip itself allows.
                data, pos, decomp = rest, 0, zlib.decompressobj(wbits=31)
    except zlib.error as exc:
        raise fail(out, f"the compressed data is corrupt from this line on ({exc})") from exc
    if not decomp.eof:
        raise fail(out, "the compressed data ends in the middle of this line (truncated file)")
    return bytes(out)


def read_text_file(path: Path, file: str | None = None) -> str:
    """A whole UTF-8 text file (BOM allowed), gunzipped when its name ends in .gz.

    Raises InputError when the file cannot be read, ValidationError (one `file:line:`
    problem) when it is a broken gzip file or not UTF-8. Shared by every file importer.
    """
    file = file or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{file}: no such file; check the path") from None
    except IsADirectoryError:
        raise InputError(f"{file}: is a folder, not a file; give the file's path") from None
    except OSError as exc:
        raise InputError(f"{file}: cannot read it ({exc.strerror}); check the path") from exc
    if path.name.lower().endswith(".gz") and raw:
        raw = _gunzip(raw, file)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ValidationError(
            [
                Problem(
                    file,
                    line,
                    None,
                    f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {column}); save the "
                    "file as UTF-8 (in a spreadsheet: 'CSV UTF-8') and import it again",
                )
            ],
            summary="cannot read the file, nothing was imported",
        ) from exc


_CSV_ERRORS = {
    "unexpected end of data": "a quoted field that starts in this row is never closed "
    '(unbalanced ")',
    "',' expected after '\"'": "text follows a closing quote; inside a quoted field write a "
    'quote as ""',
}


def _csv_items(text: str, file: str) -> tuple[list[_RawItem], list[Problem]]:
    problems: list[Problem] = []
    items: list[_RawItem] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    known: set[str] = set(CSV_COLUMNS)
    previous = 0
    try:
        for row in reader:
            start, previous = previous + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                header_problems = _check_header(header, file, start)
                problems += header_problems
                if any(p.field in ("id", "name") or p.field is None for p in header_problems):
                    return items, problems
                continue
            if len(row) != len(header):
                problems.append(
                    Problem(
                        file,
                        start,
                        None,
                        f"this row has {len(row)} fields but the header has {len(header)} "
                        "columns; put a field that contains a comma in double quotes",
                    )
                )
                continue
            values = {col: cell for col, cell in zip(header, row, strict=True) if col in known}
            items.append(_RawItem(start, values))
    except csv.Error as exc:
        message = _CSV_ERRORS.get(str(exc), str(exc))
        problems.append(Problem(file, previous + 1, None, f"malformed CSV: {message}"))
    if header is None:
        problems.append(Problem(file, None, None, "the file is empty; it needs a header row"))
    return items, problems


def _check_header(header: list[str], file: str, line: int) -> list[Problem]:
    problems: list[Problem] = []
    if len(header) == 1 and ";" in header[0]:
        return [
            Problem(
                file,
                line,
                None,
                "the header is one column; separate columns with commas "
                "(';' separates the items of a list inside one field)",
            )
        ]
    seen: set[str] = set()
    for col in header:
        if col in seen:
            problems.append(Problem(file, line, col, "column given twice"))
        seen.add(col)
        if col in CSV_COLUMNS:
            continue
        if col == "past_projects":
            hint = "past projects can only be given in JSONL or YAML files"
        elif col == "preferences":
            hint = "in CSV give preferences as columns " + ", ".join(
                f"preferences.{k}" for k in PREFERENCE_KEYS
            )
        else:
            hint = "known columns are " + ", ".join(CSV_COLUMNS)
        problems.append(Problem(file, line, col or "(empty)", f"unknown column; {hint}"))
    for required in ("id", "name"):
        if required not in seen:
            problems.append(Problem(file, line, required, "required column is missing"))
    return problems


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _jsonl_items(text: str, file: str) -> tuple[list[_RawItem], list[Problem]]:
    problems: list[Problem] = []
    items: list[_RawItem] = []
    # split("\n"), not splitlines(): JSON strings may hold U+2028 and other line breaks.
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if not stripped:
            continue
        try:
            obj = json.loads(stripped, object_pairs_hook=_object_pairs)
        except _DuplicateKey as dup:
            problems.append(Problem(file, number, dup.key, "given twice in one object"))
            continue
        except json.JSONDecodeError as exc:
            problems.append(
                Problem(
                    file,
                    number,
                    None,
                    f"not valid JSON ({exc.msg} at column {exc.colno}); each line must be "
                    "one JSON object",
                )
            )
            continue
        if not isinstance(obj, dict):
            problems.append(
                Problem(file, number, None, "expected a JSON object {...} describing one member")
            )
            continue
        items.append(_RawItem(number, obj))
    return items, problems


def _yaml_items(text: str, file: str) -> tuple[list[_RawItem], list[Problem]]:
    problems: list[Problem] = []
    items: list[_RawItem] = []
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return items, problems
        nodes = _yaml_member_nodes(root, file, problems)
        for node in nodes:
            line = node.start_mark.line + 1
            if not isinstance(node, yaml.MappingNode):
                problems.append(Problem(file, line, None, "expected the fields of one member"))
                continue
            values: dict[str, Any] = {}
            lines: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node, deep=True)
                key_line = key_node.start_mark.line + 1
                if not isinstance(key, str):
                    problems.append(Problem(file, key_line, str(key), "a field name must be text"))
                    continue
                if key in values:
                    problems.append(Problem(file, key_line, key, "given twice for one member"))
                    continue
                values[key] = loader.construct_object(value_node, deep=True)
                lines[key] = key_line
            items.append(_RawItem(line, values, lines))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"not valid YAML: {exc.problem or exc.context}"
        if exc.context and exc.context_mark and exc.problem_mark:
            message += f" ({exc.context} that starts on line {exc.context_mark.line + 1})"
        problems.append(Problem(file, mark.line + 1 if mark else None, None, message))
    except yaml.YAMLError as exc:
        problems.append(Problem(file, None, None, f"not valid YAML: {exc}"))
    finally:
        loader.dispose()
    return items, problems


def _yaml_member_nodes(root: yaml.Node, file: str, problems: list[Problem]) -> list[yaml.Node]:
    if isinstance(root, yaml.SequenceNode):
        return list(root.value)
    if isinstance(root, yaml.MappingNode):
        found: list[yaml.Node] = []
        for key_node, value_node in root.value:
            line = key_node.start_mark.line + 1
            if key_node.value != "members":
                problems.append(
                    Problem(file, line, key_node.value, "unknown top-level key; use `members:`")
                )
            elif isinstance(value_node, yaml.SequenceNode):
                found = list(value_node.value)
            elif not (isinstance(value_node, yaml.ScalarNode) and value_node.value in ("", "~")):
                problems.append(Problem(file, line, "members", "expected a list of members"))
        return found
    problems.append(
        Problem(
            file,
            root.start_mark.line + 1,
            None,
            "expected a list of members (or `members:` followed by a list)",
        )
    )
    return []


# ----------------------------------------------------------------------------------------
# checking values


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _clean_text(value: str) -> str:
    if "\x00" in value:
        raise _Bad("contains a NUL character")
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def _text(value: Any, *, digits_ok: bool = False) -> str | None:
    """Text or None; numbers only where ids and PICs are commonly written as numbers."""
    if value is None:
        return None
    if digits_ok and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise _Bad(f"expected text, got {_kind(value)}")
    return _clean_text(value) or None


def _text_list(value: Any, csv_cell: bool, example: str) -> list[str]:
    if csv_cell:
        return [item for item in (_clean_text(v) for v in value.split(";")) if item]
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad(f"expected a list, e.g. {example}, got {_kind(value)}")
    items: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise _Bad(f"expected a list of text, e.g. {example}, but an item is {_kind(item)}")
        cleaned = _clean_text(item)
        if not cleaned:
            raise _Bad("an item is empty")
        if ";" in cleaned:
            # ';' separates list items in CSV; allowing it here would break the round trip.
            raise _Bad(f"the item {cleaned!r} contains ';', which separates list items")
        items.append(cleaned)
    return items


def _bool(value: Any, csv_cell: bool) -> bool | None:
    if csv_cell:
        word = value.strip().lower()
        if word in ("", "null"):
            return None
        if word in ("true", "yes", "1"):
            return True
        if word in ("false", "no", "0"):
            return False
        raise _Bad(f"expected true or false, got {value.strip()!r}")
    if value is None or isinstance(value, bool):
        return value
    raise _Bad(f"expected true or false, got {_kind(value)} {value!r}")


def _number(value: Any, csv_cell: bool) -> int | float | None:
    if csv_cell:
        text = value.strip()
        if not text:
            return None
        try:
            value = int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else float(text)
        except ValueError:
            raise _Bad(f"expected a number of euros, e.g. 500000, got {text!r}") from None
    elif value is None:
        return None
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f"expected a number of euros, e.g. 500000, got {_kind(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Bad("expected a finite number")
    if value < 0:
        raise _Bad("must not be negative")
    return value


def _choice(value: Any, choices: Sequence[str]) -> str | None:
    text = _text(value)
    if text is None:
        return None
    if text.lower() not in choices:
        raise _Bad(f"{text!r} is not one of {', '.join(choices)}")
    return text.lower()


def _emails(value: Any, csv_cell: bool) -> list[str]:
    emails = _text_list(value, csv_cell, '["info@example.eu"]')
    for email in emails:
        if not EMAIL_RE.fullmatch(email):
            raise _Bad(f"{email!r} is not an email address")
    return emails


def _country(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    code = normalise_country(text)
    if code is None:
        raise _Bad(f"unknown country {text!r}; use a two-letter ISO code such as IT, DE, EL, UK")
    return code


def _pic(value: Any) -> str | None:
    text = _text(value, digits_ok=True)
    if text is not None and not PIC_RE.fullmatch(text):
        raise _Bad(f"{text!r} is not a PIC; a PIC is 9 digits, e.g. 999999999")
    return text


def _preference(key: str, value: Any, csv_cell: bool) -> Any:
    """A checked preference value; None means "not set"."""
    if key in ("programmes", "types_of_action"):
        example = '["HORIZON"]' if key == "programmes" else '["HORIZON-RIA", "HORIZON-IA"]'
        items = _text_list(value, csv_cell, example)
        return items if items or not csv_cell else None
    if key == "languages":
        items = [item.lower() for item in _text_list(value, csv_cell, '["it", "en"]')]
        for item in items:
            if not LANGUAGE_RE.fullmatch(item):
                raise _Bad(f"{item!r} is not a language code; use ISO 639-1 codes like it, en")
        return items if items or not csv_cell else None
    if key in ("budget_min", "budget_max"):
        return _number(value, csv_cell)
    return _bool(value, csv_cell)  # exclude_from_consortia


def ordered_preferences(preferences: dict[str, Any]) -> dict[str, Any]:
    return {k: preferences[k] for k in PREFERENCE_KEYS if k in preferences}


def _past_projects(value: Any) -> tuple[list[dict[str, str]], list[tuple[str, str]]]:
    """Checked past projects and (field, message) problems."""
    if value is None:
        return [], []
    if not isinstance(value, list):
        return [], [("past_projects", f"expected a list of {{title, summary}}, got {_kind(value)}")]
    projects: list[dict[str, str]] = []
    problems: list[tuple[str, str]] = []
    for n, item in enumerate(value, 1):
        where = f"past_projects[{n}]"
        if not isinstance(item, dict):
            problems.append((where, f"expected {{title, summary}}, got {_kind(item)}"))
            continue
        for key in item:
            if key not in ("title", "summary"):
                problems.append(
                    (f"{where}.{key}", "unknown field; a past project has title, summary")
                )
        try:
            title = _text(item.get("title"))
            summary = _text(item.get("summary")) or ""
        except _Bad as bad:
            problems.append((where, str(bad)))
            continue
        if not title:
            problems.append((f"{where}.title", "missing; every past project needs a title"))
            continue
        projects.append({"title": title, "summary": summary})
    return projects, problems


def _check_item(
    raw: _RawItem, csv_cell: bool, file: str
) -> tuple[str | None, MemberRecord | None, list[Problem]]:
    """(the id if readable, the record if clean, problems)."""
    problems: list[Problem] = []
    values: dict[str, Any] = {}

    def problem(name: str, message: str) -> None:
        top = name.split(".")[0].split("[")[0]
        problems.append(Problem(file, raw.field_lines.get(top, raw.line), name, message))

    for name, value in raw.values.items():
        if not csv_cell and name not in FIELDS:
            problem(name, "unknown field; known fields are " + ", ".join(FIELDS))
            continue
        try:
            if name == "id":
                text = _text(value, digits_ok=True)
                if text is not None and not ID_RE.fullmatch(text):
                    raise _Bad(
                        f"{text!r} is not a usable id; use up to 80 letters, digits, '.', '_' "
                        "or '-', starting with a letter or digit"
                    )
                values[name] = text
            elif name == "name" or name == "city":
                text = _text(value)
                if text is not None and len(text) > _MAX_TEXT[name]:
                    raise _Bad(f"longer than {_MAX_TEXT[name]} characters")
                values[name] = text
            elif name == "description":
                values[name] = _text(value) or ""
            elif name == "emails":
                values[name] = _emails(value, csv_cell)
            elif name == "keywords":
                values[name] = _text_list(value, csv_cell, '["robotics", "AI"]')
            elif name == "country":
                values[name] = _country(value)
            elif name == "organisation_type":
                values[name] = _choice(value, ORGANISATION_TYPES)
            elif name == "size":
                values[name] = _choice(value, SIZE_CLASSES)
            elif name == "sme":
                values[name] = _bool(value, csv_cell)
            elif name == "pic":
                values[name] = _pic(value)
            elif name == "past_projects":
                projects, project_problems = _past_projects(value)
                for where, message in project_problems:
                    problem(where, message)
                values[name] = projects
            elif name == "preferences":
                values[name] = _check_preferences(value, problem)
            elif name.startswith("preferences."):  # a CSV column
                values[name] = _preference(name.split(".", 1)[1], value, csv_cell)
        except _Bad as bad:
            problem(name, str(bad))

    for required in ("id", "name"):
        if values.get(required) is None and not any(p.field == required for p in problems):
            problem(required, "missing; every member needs an id and a name")
    budget = ordered_preferences(values.get("preferences") or {})
    low = values.get("preferences.budget_min", budget.get("budget_min"))
    high = values.get("preferences.budget_max", budget.get("budget_max"))
    if low is not None and high is not None and low > high:
        problem("preferences.budget_min", f"{low} is more than budget_max {high}")

    member_id = values.get("id")
    if problems or member_id is None:
        return member_id, None, problems
    return member_id, MemberRecord(member_id, raw.line, values, dict(raw.field_lines)), []


def _check_preferences(value: Any, problem: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Bad(f"expected a mapping such as {{programmes: [HORIZON]}}, got {_kind(value)}")
    result: dict[str, Any] = {}
    for key, item in value.items():
        if key not in PREFERENCE_KEYS:
            problem(
                f"preferences.{key}", "unknown preference; known: " + ", ".join(PREFERENCE_KEYS)
            )
            continue
        try:
            checked = _preference(key, item, csv_cell=False)
        except _Bad as bad:
            problem(f"preferences.{key}", str(bad))
            continue
        if checked is not None:
            result[key] = checked
    return ordered_preferences(result)


def parse_members_file(path: Path, *, display_name: str | None = None) -> list[MemberRecord]:
    """Read and check a whole member file. Raises ValidationError listing every problem."""
    file = display_name or str(path)
    fmt = format_of(path)
    text = read_text_file(path, file)
    readers = {"csv": _csv_items, "jsonl": _jsonl_items, "yaml": _yaml_items}
    items, problems = readers[fmt](text, file)
    records: list[MemberRecord] = []
    first_line: dict[str, int] = {}
    pic_line: dict[str, tuple[str, int]] = {}
    for raw in items:
        member_id, record, item_problems = _check_item(raw, fmt == "csv", file)
        problems += item_problems
        if member_id is not None:
            id_line = raw.field_lines.get("id", raw.line)
            if member_id in first_line:
                problems.append(
                    Problem(
                        file,
                        id_line,
                        "id",
                        f"{member_id!r} is already used on line {first_line[member_id]}; "
                        "each member must appear once",
                    )
                )
                continue
            first_line[member_id] = id_line
        if record is not None:
            pic = record.values.get("pic")
            if pic:
                if pic in pic_line:
                    other, other_line = pic_line[pic]
                    problems.append(
                        Problem(
                            file,
                            record.line_of("pic"),
                            "pic",
                            f"PIC {pic} is also given to {other!r} on line {other_line}; "
                            "one organisation cannot be two members",
                        )
                    )
                    continue
                pic_line[pic] = (record.id, record.line_of("pic"))
            records.append(record)
    if not items and not problems:
        problems.append(Problem(file, None, None, "the file contains no members"))
    if problems:
        problems.sort(key=lambda p: (p.line or 0))
        raise ValidationError(problems)
    return records


# ----------------------------------------------------------------------------------------
# writing


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "; ".join(value)
    return str(value)


class _Dumper(yaml.SafeDumper):
    pass


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Multi-line descriptions read best as literal blocks; the emitter falls back to a
    # quoted style by itself when a block cannot represent the text exactly.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_text)


def write_profiles(profiles: list[dict[str, Any]], out: TextIO, fmt: str) -> None:
    """Write member profiles (as from `member_profiles`) in csv, jsonl or yaml."""
    if fmt == "jsonl":
        for profile in profiles:
            out.write(json.dumps(profile, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for profile in profiles:
            flat = dict(profile)
            for key in PREFERENCE_KEYS:
                flat[f"preferences.{key}"] = profile["preferences"].get(key)
            writer.writerow([csv_cell(flat[col]) for col in CSV_COLUMNS])
    elif fmt == "yaml":
        yaml.dump(
            {"members": profiles},
            out,
            Dumper=_Dumper,
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=False,
            width=100,
        )
    else:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
