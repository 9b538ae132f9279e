"""Pure parsers: search pages and topic-details payloads -> CallRecord.

Quirks handled here (see ../shared/fixtures/ft_portal/SOURCES.md for the real samples):
- every search metadata value is a list, even single values; some lists are empty;
- `actions`, `budgetOverview`, `latestInfos`, `links` are JSON documents inside strings,
  and trimmed or truncated copies of them are not parseable -- the record is kept with what
  could be read and a note in `extra["parse_notes"]`;
- legacy rows carry `keywords` as one JSON-encoded string;
- `budgetOverview` lists every topic of the call: the budget of *this* topic is the sum of the
  entries whose `action` starts with its identifier;
- the same topic can come twice (two record generations, or a language copy) and is merged;
- cascade-funding calls (type 8) share the identifier of the parent project's topic, so they
  are keyed by their own competitive-call reference.
Statuses are derived from the dates (see dates.derive_status) when `now` is given.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from typing import Any

from models.records import CallRecord
from scrapers.ft_portal.cleaning import clean_html, clean_text
from scrapers.ft_portal.dates import deadlines_from_values, derive_status, parse_portal_datetime
from scrapers.ft_portal.query import (
    STATUS_NAMES,
    TYPE_CASCADE,
    portal_topic_url,
    programme_name,
)

# Type-of-action labels whose code the portal omits in search rows (codes as the portal
# writes them in `actions` and `budgetOverview`).
TYPE_OF_ACTION_CODES = {
    "HORIZON Research and Innovation Actions": "HORIZON-RIA",
    "HORIZON Innovation Actions": "HORIZON-IA",
    "HORIZON Coordination and Support Actions": "HORIZON-CSA",
    "HORIZON Programme Cofund Actions": "HORIZON-COFUND",
    "HORIZON JU Research and Innovation Actions": "HORIZON-JU-RIA",
    "HORIZON JU Innovation Actions": "HORIZON-JU-IA",
    "HORIZON JU Coordination and Support Actions": "HORIZON-JU-CSA",
    "HORIZON Recognition Prize": "HORIZON-RPr",
    "HORIZON Pre-commercial Procurement": "HORIZON-PCP",
    "HORIZON Public Procurement of Innovative Solutions": "HORIZON-PPI",
    "HORIZON ERC Grants": "HORIZON-ERC",
    "HORIZON ERC Proof of Concept Grants": "HORIZON-ERC-POC",
}
_CODE_RE = re.compile(r"^[A-Z0-9]+(?:-[A-Za-z0-9]+)+$")
_SPACES = re.compile(r"\s+")
_CASCADE_REF = re.compile(r"^(\d+)")


@dataclass
class SearchPage:
    """One parsed search page.

    `identifiers` lists every row's key in page order, duplicates and skipped languages
    included, so a crawler can compare pages; `rows` is the number of results on the page;
    `row_digests` the (key, listing digest) of every row kept.
    """

    records: list[CallRecord]
    total: int
    rows: int
    identifiers: list[str] = field(default_factory=list)
    skipped_languages: int = 0
    row_digests: list[tuple[str, str]] = field(default_factory=list)


# index bookkeeping (queue and ingest times) that moves on every re-index of an unchanged topic
_VOLATILE_PREFIXES = ("esDA_",)


def listing_digest(result: Mapping[str, Any]) -> str:
    """sha256 of a search row's metadata: equal digests mean the portal changed nothing.

    Cheap next to parsing (no HTML cleaning), so an unchanged topic costs a hash only.
    """
    meta = result.get("metadata") if isinstance(result, Mapping) else None
    stable = {k: v for k, v in (meta or {}).items() if not k.startswith(_VOLATILE_PREFIXES)}
    canonical = json.dumps(stable, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def combine_digests(digests: Iterable[str]) -> str:
    """One digest for all the rows of a topic (duplicates included), whatever their order."""
    unique = sorted(set(digests))
    if len(unique) == 1:
        return unique[0]
    return hashlib.sha256("+".join(unique).encode()).hexdigest()


# --- small readers ---------------------------------------------------------------------


def _values(meta: Mapping[str, Any], key: str) -> list[Any]:
    value = meta.get(key)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _first(meta: Mapping[str, Any], key: str) -> Any:
    values = _values(meta, key)
    return values[0] if values else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = clean_text(str(value))
    return _SPACES.sub(" ", text) or None


def _embedded_json(meta: Mapping[str, Any], key: str, notes: list[str]) -> Any:
    """A JSON document the portal ships inside a string (or already decoded)."""
    value = _first(meta, key)
    if value is None or not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        notes.append(f"{key}: not parseable JSON (truncated?)")
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).replace(",", "").strip())
    except ValueError:
        return None


def normalise_type_of_action(value: str | None) -> str | None:
    """"HORIZON-RIA HORIZON  Research and Innovation Actions" or its label alone ->
    "HORIZON-RIA HORIZON Research and Innovation Actions" (code first when known)."""
    text = _text(value)
    if not text:
        return None
    head, _, rest = text.partition(" ")
    if rest and _CODE_RE.match(head):
        return f"{head} {rest}"
    code = TYPE_OF_ACTION_CODES.get(text)
    return f"{code} {text}" if code else text


def type_of_action_code(value: str | None) -> str | None:
    """The code ("HORIZON-RIA") of a normalised type of action, when it has one."""
    if not value:
        return None
    head = value.split(" ", 1)[0]
    return head if _CODE_RE.match(head) else None


def _keywords(values: Iterable[Any], exclude: Iterable[str | None]) -> list[str]:
    """Keywords and tags, legacy JSON-string lists decoded, identifiers and repeats dropped."""
    skip = {e.lower() for e in exclude if e}
    out: list[str] = []
    seen: set[str] = set()
    for value in values:
        items: list[Any] = [value]
        if isinstance(value, str) and value.lstrip().startswith("["):
            try:
                decoded = json.loads(value)
                items = decoded if isinstance(decoded, list) else [decoded]
            except ValueError:
                items = [value]
        for item in items:
            text = _text(item)
            if text and text.lower() not in skip and text.lower() not in seen:
                seen.add(text.lower())
                out.append(text)
    return out


# --- budget -----------------------------------------------------------------------------


def topic_budget(overview: Any, identifier: str) -> tuple[float | None, dict]:
    """This topic's budget from a call's budget overview (which lists every topic).

    Returns the summed `budgetYearMap` of the entries whose `action` is
    "<identifier> - <type of action>", and what else those entries say (expected grants,
    contribution range, per-year split).
    """
    if not isinstance(overview, Mapping):
        return None, {}
    action_map = overview.get("budgetTopicActionMap")
    if not isinstance(action_map, Mapping):
        return None, {}
    wanted = identifier.strip().lower()
    total = 0.0
    found = False
    info: dict[str, Any] = {}
    years: dict[str, float] = {}
    for entries in action_map.values():
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, Mapping):
                continue
            action = str(entry.get("action") or "")
            if action.split(" - ", 1)[0].strip().lower() != wanted:
                continue
            found = True
            for year, amount in (entry.get("budgetYearMap") or {}).items():
                value = _number(amount)
                if value is not None:
                    total += value
                    years[str(year)] = years.get(str(year), 0.0) + value
            for key, name in (("expectedGrants", "expected_grants"),
                              ("minContribution", "min_contribution"),
                              ("maxContribution", "max_contribution")):
                value = _number(entry.get(key))
                if value:  # the portal writes 0 for "not stated"
                    info[name] = value
    if not found:
        return None, {}
    if years:
        info["budget_by_year"] = dict(sorted(years.items()))
    return (total if years else None), info


def salvage_topic_budget(raw: Any, identifier: str) -> tuple[float | None, dict]:
    """This topic's budget read out of a truncated budgetOverview string, when it survived.

    Trimmed copies end mid-string, but entries before the cut are intact up to their
    `budgetYearMap`; the topic's own entry is often one of them.
    """
    if not isinstance(raw, str):
        return None, {}
    pattern = re.compile(
        r'\{"action":"' + re.escape(identifier) + r' - [^"]*"(?P<body>[^{}]*?)'
        r'"budgetYearMap":(?P<years>\{[^{}]*\})', re.IGNORECASE,
    )
    entries = []
    for match in pattern.finditer(raw):
        try:
            entry = {"action": f"{identifier} - ", "budgetYearMap": json.loads(match["years"])}
        except ValueError:
            continue
        for key, value in re.findall(r'"(\w+)":(\d+(?:\.\d+)?)', match["body"]):
            entry[key] = value
        entries.append(entry)
    return topic_budget({"budgetTopicActionMap": {"salvaged": entries}}, identifier)


# --- search results ---------------------------------------------------------------------


def result_key(result: Mapping[str, Any]) -> str | None:
    """The identifier a search row is stored under (cascade calls get their own)."""
    meta = result.get("metadata") if isinstance(result, Mapping) else None
    if not isinstance(meta, Mapping):
        return None
    if str(_first(meta, "type") or "") == TYPE_CASCADE:
        match = _CASCADE_REF.match(str(result.get("reference") or ""))
        return f"CS-{match.group(1)}" if match else None
    identifier = _first(meta, "identifier")
    return str(identifier).strip() if identifier else None


def parse_search_result(
    result: Mapping[str, Any], *, now: datetime | None = None, html: bool = True
) -> CallRecord | None:
    """One search row -> a record; None when it has no identifier at all.

    `html=False` leaves the description and conditions empty, skipping the costly HTML
    cleaning, for a grant topic whose topic details will supply them anyway.
    """
    key = result_key(result)
    if not key:
        return None
    meta: Mapping[str, Any] = result["metadata"]
    notes: list[str] = []
    kind = str(_first(meta, "type") or "")
    topic_identifier = str(_first(meta, "identifier") or key).strip()
    programme_id = _first(meta, "frameworkProgramme")
    programme_id = str(programme_id) if programme_id is not None else None
    actions = _embedded_json(meta, "actions", notes)
    overview = _embedded_json(meta, "budgetOverview", notes)
    latest = _embedded_json(meta, "latestInfos", notes)

    deadline_model = _text(_first(meta, "deadlineModel"))
    staged = bool(deadline_model and "stage" in deadline_model and "single" not in deadline_model)
    deadline_values = _values(meta, "deadlineDate")
    opening = parse_portal_datetime(_first(meta, "startDate"))
    first_action = actions[0] if isinstance(actions, list) and actions else {}
    if not deadline_values and isinstance(first_action, Mapping):
        deadline_values = list(first_action.get("deadlineDates") or [])
    if opening is None and isinstance(first_action, Mapping):
        opening = parse_portal_datetime(first_action.get("plannedOpeningDate"))
    deadlines = deadlines_from_values(deadline_values, staged=staged)

    type_of_action = None
    if isinstance(first_action, Mapping):
        types = _as_list(first_action.get("types"))
        if types and isinstance(types[0], Mapping):
            type_of_action = normalise_type_of_action(types[0].get("typeOfAction"))
    type_of_action = type_of_action or normalise_type_of_action(_first(meta, "typesOfAction"))

    html = html or kind == TYPE_CASCADE  # cascade calls have no details to fill them in
    description = clean_html(
        str(_first(meta, "descriptionByte") or _first(meta, "description") or "") if html else ""
    )
    conditions = clean_html(str(_first(meta, "topicConditions") or "") if html else "")

    extra: dict[str, Any] = {
        "type": kind or None,
        "reference": result.get("reference"),
        "language": result.get("language") or _first(meta, "language"),
        "portal_status": STATUS_NAMES.get(str(_first(meta, "status") or ""), None),
        "deadline_model": deadline_model,
        "cross_cutting_priorities": [str(v) for v in _values(meta, "crossCuttingPriorities")],
    }
    if kind == TYPE_CASCADE:
        budget = _number(_first(meta, "budget"))
        extra.update(
            parent_topic=topic_identifier,
            project_acronym=_text(_first(meta, "projectAcronym")),
            project_name=_text(_first(meta, "projectName")),
        )
        title = _text(_first(meta, "callTitle")) or _text(result.get("summary")) or key
        call_identifier, call_title = topic_identifier, _text(_first(meta, "title"))
        url = str(result.get("url") or "") or None
    else:
        budget, budget_info = topic_budget(overview, topic_identifier)
        if overview is None and budget is None:
            budget, budget_info = salvage_topic_budget(_first(meta, "budgetOverview"),
                                                       topic_identifier)
            if budget is not None:
                notes.append("budgetOverview: this topic's entry recovered from the cut text")
        extra.update(budget_info)
        title = _text(_first(meta, "title")) or _text(result.get("summary")) or key
        call_identifier = _text(_first(meta, "callIdentifier"))
        call_title = _text(_first(meta, "callTitle"))
        url = portal_topic_url(topic_identifier)
    if isinstance(latest, list) and latest:
        extra["latest_infos"] = _latest_infos(latest)
    if notes:
        extra["parse_notes"] = notes
    record = CallRecord(
        identifier=key,
        title=title,
        call_identifier=call_identifier,
        call_title=call_title,
        programme=programme_name(programme_id, topic_identifier),
        programme_id=programme_id,
        description=description.text,
        description_html=description.html,
        conditions=conditions.text,
        destination=_text(_first(meta, "destinationDescription")),
        opening_date=opening,
        deadlines=deadlines,
        type_of_action=type_of_action,
        budget=budget,
        keywords=_keywords(
            _values(meta, "keywords") + _values(meta, "tags"),
            exclude=(topic_identifier, call_identifier),
        ),
        url=url,
        source="portal",
        extra={k: v for k, v in extra.items() if v not in (None, [], {})},
    )
    if now is not None:
        record.status = derive_status(record.opening_date, record.deadlines, now)
    return record


def parse_search_results(
    payload: Mapping[str, Any],
    *,
    languages: Sequence[str] | None = ("en",),
    now: datetime | None = None,
    without_html: Container[str] = (),
) -> SearchPage:
    """A search response -> its records (duplicates merged), the total and page facts.

    Rows in another language than `languages` are left out (None keeps every language).
    Rows whose key is in `without_html` are parsed with `html=False`.
    """
    results = payload.get("results") if isinstance(payload, Mapping) else None
    if not isinstance(results, list):
        results = []
    total = payload.get("totalResults") if isinstance(payload, Mapping) else None
    by_key: dict[str, CallRecord] = {}
    identifiers: list[str] = []
    row_digests: list[tuple[str, str]] = []
    skipped = 0
    for result in results:
        if not isinstance(result, Mapping):
            continue
        key = result_key(result)
        if key:
            identifiers.append(key)
        language = result.get("language")
        if languages is not None and language and language not in languages:
            skipped += 1
            continue
        if key:
            row_digests.append((key, listing_digest(result)))
        record = parse_search_result(result, now=now, html=key not in without_html)
        if record is None:
            continue
        previous = by_key.get(record.identifier)
        by_key[record.identifier] = merge_duplicates(previous, record) if previous else record
    return SearchPage(
        records=list(by_key.values()),
        total=int(total) if isinstance(total, int | float) else len(results),
        rows=len(results),
        identifiers=identifiers,
        skipped_languages=skipped,
        row_digests=row_digests,
    )


def parse_search_page(
    payload: Mapping[str, Any],
    *,
    languages: Sequence[str] | None = ("en",),
    now: datetime | None = None,
) -> tuple[list[CallRecord], int]:
    """A search response -> (records, totalResults)."""
    page = parse_search_results(payload, languages=languages, now=now)
    return page.records, page.total


# --- topic details ----------------------------------------------------------------------


def parse_topic_details(payload: Mapping[str, Any], *, now: datetime | None = None) -> CallRecord:
    """A topicDetails file ({"TopicDetails": {...}}) -> a record with the full texts."""
    details = payload.get("TopicDetails", payload) if isinstance(payload, Mapping) else None
    if not isinstance(details, Mapping) or not details.get("identifier"):
        raise ValueError("not a topic-details document: no TopicDetails.identifier")
    identifier = str(details["identifier"]).strip()
    programme = details.get("frameworkProgramme")
    programme_id = None
    programme_abbr = None
    if isinstance(programme, Mapping):
        programme_id = str(programme.get("id")) if programme.get("id") is not None else None
        programme_abbr = programme.get("abbreviation")
    actions = [a for a in details.get("actions") or [] if isinstance(a, Mapping)]
    opening = None
    deadline_values: list[Any] = []
    type_of_action = None
    staged = False
    for action in actions:
        opening = opening or parse_portal_datetime(action.get("plannedOpeningDate"))
        deadline_values.extend(_as_list(action.get("deadlineDates")))
        procedure = action.get("submissionProcedure") or {}
        if isinstance(procedure, Mapping) and "two-stage" in str(procedure.get("abbreviation")):
            staged = True
        types = _as_list(action.get("types"))
        if type_of_action is None and types and isinstance(types[0], Mapping):
            type_of_action = normalise_type_of_action(types[0].get("typeOfAction"))
    overview = details.get("budgetOverviewJSONItem")
    budget, budget_info = topic_budget(overview, identifier)
    action_map = overview.get("budgetTopicActionMap") if isinstance(overview, Mapping) else None
    if not staged and isinstance(action_map, Mapping):
        staged = any(
            "two-stage" in str(e.get("deadlineModel"))
            for entries in action_map.values() if isinstance(entries, list)
            for e in entries if isinstance(e, Mapping)
            and str(e.get("action", "")).split(" - ", 1)[0].strip().lower() == identifier.lower()
        )
    description = clean_html(_html(details.get("description")))
    conditions = clean_html(_html(details.get("conditions")))
    status = actions[0].get("status") if actions else None
    status_id = status.get("id") if isinstance(status, Mapping) else None
    extra: dict[str, Any] = {
        "type": str(details.get("type")) if details.get("type") is not None else None,
        "portal_status": STATUS_NAMES.get(str(status_id)) if status_id else None,
        "deadline_model": "two-stage" if staged else None,
        "submission_links": _links(details.get("links")),
        "latest_infos": _latest_infos(details.get("latestInfos")),
        "sme": details.get("sme") if isinstance(details.get("sme"), bool) else None,
        **budget_info,
    }
    publication = parse_portal_datetime(details.get("publicationDateLong"))
    record = CallRecord(
        identifier=identifier,
        title=_text(details.get("title")) or identifier,
        call_identifier=_text(details.get("callIdentifier")),
        call_title=_text(details.get("callTitle")),
        programme=(str(programme_abbr) if programme_abbr else None)
        or programme_name(programme_id, identifier),
        programme_id=programme_id,
        description=description.text,
        description_html=description.html,
        conditions=conditions.text,
        opening_date=opening,
        deadlines=deadlines_from_values(deadline_values, staged=staged),
        type_of_action=type_of_action,
        budget=budget,
        keywords=_keywords(
            _as_list(details.get("keywords")) + _as_list(details.get("tags")),
            exclude=(identifier, details.get("callIdentifier")),
        ),
        url=portal_topic_url(identifier),
        source="portal",
        publication_date=publication.date() if publication else None,
        extra={k: v for k, v in extra.items() if v not in (None, [], {})},
    )
    if now is not None:
        record.status = derive_status(record.opening_date, record.deadlines, now)
    return record


def _html(value: Any) -> str | None:
    return value if isinstance(value, str) or value is None else str(value)


def _as_list(value: Any) -> list[Any]:
    """A list field that may come as one value (a lone string is one item, not characters)."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _links(links: Any) -> list[dict[str, Any]]:
    out = []
    for link in links if isinstance(links, list) else []:
        if isinstance(link, Mapping) and link.get("url"):
            out.append({
                "url": str(link["url"]),
                "type_of_action": _text(link.get("criterionDescription")),
                "mga": _text(link.get("mgaDescription")),
                "opens": _iso(parse_portal_datetime(link.get("startDate"))),
                "closes": _iso(parse_portal_datetime(link.get("endDate"))),
            })
    return out


def _latest_infos(infos: Any) -> list[dict[str, Any]]:
    out = []
    for info in infos if isinstance(infos, list) else []:
        if not isinstance(info, Mapping):
            continue
        text = clean_html(str(info.get("content") or "")).text
        if text:
            when = parse_portal_datetime(info.get("lastChangeDate") or info.get("approvalDate"))
            out.append({"date": _iso(when), "text": text})
    return out


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- merging ----------------------------------------------------------------------------


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _is_current_generation(record: CallRecord) -> bool:
    # New-style rows ("<ccm2Id>TOPICSen") are the portal's current copy; legacy rows
    # ("<ccm2Id><TypeOfAction><epochms>") linger in the index with stale values.
    return str(record.extra.get("reference", "")).endswith("TOPICSen")


def merge_duplicates(first: CallRecord, second: CallRecord) -> CallRecord:
    """Two search rows of one topic -> one record: the current generation wins field by field,
    the other fills what it lacks."""
    primary, other = (second, first) if (
        _is_current_generation(second) and not _is_current_generation(first)
    ) else (first, second)
    return _fill(primary, other)


def merge_records(listing: CallRecord, details: CallRecord) -> CallRecord:
    """A search-listing record completed with its topic details.

    Details win where they say something: they carry the full description, the conditions,
    per-stage deadlines and the submission links; the listing keeps what details lack
    (the destination, cross-cutting priorities, the listing's reference).
    """
    merged = _fill(details, listing)
    merged.extra = {**listing.extra, **details.extra}
    if listing.keywords or details.keywords:
        merged.keywords = _keywords(details.keywords + listing.keywords, exclude=())
    return merged


def _fill(primary: CallRecord, other: CallRecord) -> CallRecord:
    changes = {
        f.name: getattr(other, f.name)
        for f in fields(CallRecord)
        if _empty(getattr(primary, f.name)) and not _empty(getattr(other, f.name))
    }
    merged = replace(primary, **changes)
    merged.extra = {**other.extra, **primary.extra}
    return merged
