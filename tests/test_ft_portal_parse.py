"""The portal parsers on every real saved response in ../shared/fixtures/ft_portal."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from models import DeadlineRecord
from scrapers.ft_portal import (
    build_search_parts,
    clean_html,
    derive_status,
    normalise_type_of_action,
    parse_portal_datetime,
    parse_search_page,
    parse_search_results,
    parse_topic_details,
    type_of_action_code,
)

AS_OF = datetime(2026, 6, 1)
OPEN_DETAILS = "topicDetails_HORIZON-CL6-2026-01-CIRCBIO-07_open.json"
CLOSED_DETAILS = "topicDetails_SMP-COSME-2024-CLUSTER-01_closed.json"
MIXED = "search_page_horizon_mixed_2026_trimmed_strings.json"


def load(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text(encoding="utf-8"))


def by_id(records: list) -> dict:
    return {r.identifier: r for r in records}


def test_every_search_fixture_parses_into_records(portal_fixtures: Path) -> None:
    names = sorted(p.name for p in portal_fixtures.glob("search_*.json"))
    assert len(names) == 6
    for name in names:
        payload = load(portal_fixtures, name)
        page = parse_search_results(payload, languages=None, now=AS_OF)
        assert page.rows == len(payload["results"]), name
        assert page.records, name
        for record in page.records:
            assert record.identifier and record.title, name
            assert record.status in ("open", "forthcoming", "closed"), (name, record.identifier)
            assert record.deadlines, (name, record.identifier)
            assert "\ufeff" not in record.description and "\u200b" not in record.description


def test_every_details_fixture_parses(portal_fixtures: Path) -> None:
    for name in sorted(p.name for p in portal_fixtures.glob("topicDetails_*.json")):
        record = parse_topic_details(load(portal_fixtures, name), now=AS_OF)
        assert record.identifier in name
        assert len(record.description) > 1000 and len(record.conditions) > 500
        assert record.budget and record.budget > 0
        assert record.deadlines and record.opening_date


def test_trimmed_page_gives_partial_data_and_says_so(portal_fixtures: Path) -> None:
    records = by_id(parse_search_page(load(portal_fixtures, MIXED))[0])
    soil = records["HORIZON-MISS-2027-05-SOIL-01-two-stage"]
    # its budgetOverview is cut before this topic's entry: no budget, a note, the rest intact
    assert soil.budget is None
    assert any("budgetOverview" in n for n in soil.extra["parse_notes"])
    assert soil.title.startswith("Living labs") and soil.call_identifier
    # cut after this topic's budgetYearMap: the entry is recovered from the cut text
    eccc = records["HORIZON-CL3-2026-02-CS-ECCC-01"]
    assert eccc.budget == 20_000_000
    assert eccc.extra["expected_grants"] == 5
    # a whole, parseable overview listing one topic
    assert records["HORIZON-CL6-2026-04-GOVERNANCE-01"].budget == 60_000_000


def test_truncated_json_strings_never_crash(portal_fixtures: Path) -> None:
    payload = load(portal_fixtures, MIXED)
    for result in payload["results"]:
        for key in ("actions", "budgetOverview", "descriptionByte"):
            if result["metadata"].get(key):
                result["metadata"][key] = [result["metadata"][key][0][:57]]
    records, total = parse_search_page(payload)
    assert total == 9 and len(records) == 8


def test_duplicates_merge_on_identifier(portal_fixtures: Path) -> None:
    payload = load(portal_fixtures, MIXED)
    identifiers = [r["metadata"]["identifier"][0] for r in payload["results"]]
    assert identifiers.count("HORIZON-INFRA-2024-EOSC-01-03") == 2
    records, _ = parse_search_page(payload)
    assert [r.identifier for r in records].count("HORIZON-INFRA-2024-EOSC-01-03") == 1
    assert len(records) == len(set(identifiers))


def test_legacy_keywords_string_is_decoded(portal_fixtures: Path) -> None:
    records = by_id(parse_search_page(load(portal_fixtures, MIXED))[0])
    keywords = records["HORIZON-CL2-2024-TRANSFORMATIONS-01-08"].keywords
    assert "Gender research" in keywords and not any(k.startswith("[") for k in keywords)
    assert len(keywords) == len({k.lower() for k in keywords})


def test_bom_and_zero_width_are_removed(portal_fixtures: Path) -> None:
    raw = load(portal_fixtures, OPEN_DETAILS)
    assert "\ufeff" in raw["TopicDetails"]["conditions"]  # the fixture has the real thing
    record = parse_topic_details(raw)
    for text in (record.conditions, record.description, record.description_html):
        assert "\ufeff" not in text and "\u200b" not in text
    cleaned = clean_html("<p>zero\u200bwidth\u2060 and <em>\ufeff</em>soft\u00adhyphen</p>")
    assert cleaned.text == "zerowidth and softhyphen"


def test_html_keeps_headings_and_paragraphs_apart(portal_fixtures: Path) -> None:
    record = parse_topic_details(load(portal_fixtures, OPEN_DETAILS))
    lines = record.description.splitlines()
    assert lines[0] == "Expected Outcome:" and lines[1] == ""
    assert "Scope:" in lines
    assert "outcomes:Scope" not in record.description.replace("\n", "")
    assert any(line.startswith("- significant advance") for line in lines)
    # the displayed HTML keeps structure, drops styles, classes and unsafe links
    html = clean_html('<SPAN class="topicdescriptionkind">Scope</SPAN>:<p style="x">a</p>'
                      '<a href="javascript:alert(1)">x</a><script>bad()</script>').html
    assert html == "<h4>Scope:</h4><p>a</p><a>x</a>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-09-15T00:00:00.000+0000", datetime(2026, 9, 15)),
        ("2023-05-11T02:00:00.000+0200", datetime(2023, 5, 11)),
        ("2025-04-29", datetime(2025, 4, 29)),
        ("20 April 2022", datetime(2022, 4, 20)),
        ("1789603200000", datetime(2026, 9, 17)),
        (1765497600000, datetime(2025, 12, 12)),
        ("Apr 27, 2023 4:18:31 PM", datetime(2023, 4, 27, 16, 18, 31)),
        ("2026-05-05T09:57:38.405", datetime(2026, 5, 5, 9, 57, 38, 405000)),
        ("not a date", None),
        ("", None),
    ],
)
def test_portal_date_spellings(value: object, expected: datetime | None) -> None:
    assert parse_portal_datetime(value) == expected


def test_deadlines_in_every_format_agree(portal_fixtures: Path) -> None:
    bg = load(portal_fixtures, "search_full_page_unfiltered_bg_2025-05.json")
    eosc = by_id(parse_search_page(bg, languages=None)[0])["HORIZON-INFRA-2022-EOSC-01-02"]
    # the row says "2022-04-20T02:00:00.000+0200"; its actions JSON says "20 April 2022"
    assert eosc.deadlines == [DeadlineRecord(datetime(2022, 4, 20), 1)]
    assert eosc.opening_date == datetime(2022, 1, 19)
    details = parse_topic_details(load(portal_fixtures, OPEN_DETAILS))  # epoch ms strings
    assert details.deadlines == [DeadlineRecord(datetime(2026, 9, 17), 1)]
    assert details.publication_date.isoformat() == "2025-12-12"


def test_english_only_by_default(portal_fixtures: Path) -> None:
    bg = load(portal_fixtures, "search_full_page_unfiltered_bg_2025-05.json")
    page = parse_search_results(bg)
    assert page.records == [] and page.skipped_languages == 10 and page.total == 541009


def test_stale_statuses_are_derived_from_dates(portal_fixtures: Path) -> None:
    eic = parse_search_page(load(portal_fixtures, "search_subset_horizon_eic_stale_open_2023.json"),
                            now=AS_OF)[0]
    assert {r.extra["portal_status"] for r in eic} == {"open"}
    assert {r.status for r in eic} == {"closed"}
    two = by_id(parse_search_page(load(portal_fixtures, "search_trimmed_two_stage_and_prize.json"),
                                  now=AS_OF)[0])
    chips = two["HORIZON-JU-CHIPS-2025-IA-LEAI-two-stage"]
    assert chips.extra["portal_status"] == "forthcoming" and chips.status == "closed"
    assert [d.stage for d in chips.deadlines] == [1, 2]
    prize = two["HORIZON-JU-EDCTP3-2026-SCILEADERSHIPMANSSAPRIZE"]
    assert prize.extra["portal_status"] == "forthcoming" and prize.status == "open"
    mixed = by_id(parse_search_page(load(portal_fixtures, MIXED), now=AS_OF)[0])
    assert mixed["HORIZON-CL2-2024-TRANSFORMATIONS-01-08"].status == "closed"
    assert mixed["HORIZON-CL5-2027-03-D5-05"].status == "forthcoming"


def test_derive_status_rules() -> None:
    d = [DeadlineRecord(datetime(2026, 4, 1)), DeadlineRecord(datetime(2026, 9, 1), 2)]
    assert derive_status(datetime(2026, 7, 1), d, datetime(2026, 6, 1)) == "forthcoming"
    assert derive_status(datetime(2026, 1, 1), d, datetime(2026, 6, 1)) == "open"
    assert derive_status(datetime(2026, 1, 1), d, datetime(2026, 9, 2)) == "closed"
    assert derive_status(datetime(2026, 1, 1), [], datetime(2026, 9, 2)) == "open"
    assert derive_status(None, [], datetime(2026, 9, 2)) is None


def test_budget_is_this_topics_share_of_the_call(portal_fixtures: Path) -> None:
    raw = load(portal_fixtures, OPEN_DETAILS)["TopicDetails"]
    entries = [e for es in raw["budgetOverviewJSONItem"]["budgetTopicActionMap"].values()
               for e in es]
    assert len(entries) > 10  # the overview lists the whole call
    own = [e for e in entries if e["action"].startswith("HORIZON-CL6-2026-01-CIRCBIO-07 ")]
    expected = sum(float(v) for e in own for v in e["budgetYearMap"].values())
    whole = sum(float(v) for e in entries for v in e["budgetYearMap"].values())
    record = parse_topic_details({"TopicDetails": raw})
    assert record.budget == expected and record.budget < whole
    closed = parse_topic_details(load(portal_fixtures, CLOSED_DETAILS))
    assert closed.budget == 42_000_000  # four budget years of its one entry
    assert closed.extra["budget_by_year"]["2027"] == 9_000_000


def test_details_fields(portal_fixtures: Path) -> None:
    record = parse_topic_details(load(portal_fixtures, OPEN_DETAILS), now=AS_OF)
    assert record.type_of_action == "HORIZON-RIA HORIZON Research and Innovation Actions"
    assert record.programme == "HORIZON" and record.programme_id == "43108390"
    assert record.extra["submission_links"][0]["url"].startswith("https://ec.europa.eu/")
    assert record.url.endswith("/topic-details/HORIZON-CL6-2026-01-CIRCBIO-07")
    closed = parse_topic_details(load(portal_fixtures, CLOSED_DETAILS), now=AS_OF)
    assert closed.status == "closed" and closed.programme == "SMP"
    assert len(closed.extra["latest_infos"]) == 3 and "submission_links" not in closed.extra


def test_cascade_calls_get_their_own_key(portal_fixtures: Path) -> None:
    records = parse_search_page(load(portal_fixtures, "search_trimmed_cascade_type8.json"))[0]
    keys = [r.identifier for r in records]
    assert keys == ["CS-11143", "CS-11145", "CS-11265", "CS-11264"]
    metu = records[0]
    # two cascade calls share the parent topic identifier; both are kept
    assert metu.call_identifier == records[1].call_identifier == "DIGITAL-2023-SKILLS-05-SPECIALEDU"
    assert metu.title == "METU Internships Offer" and metu.budget == 30_500
    assert metu.extra["project_acronym"] == "SUSA" and len(metu.deadlines) == 7


def test_type_of_action_gets_its_code() -> None:
    assert normalise_type_of_action("HORIZON  Research and Innovation Actions") == (
        "HORIZON-RIA HORIZON Research and Innovation Actions")
    assert normalise_type_of_action("HORIZON-JU-IA HORIZON JU Innovation Actions") == (
        "HORIZON-JU-IA HORIZON JU Innovation Actions")
    assert normalise_type_of_action("HORIZON EIC Accelerator Blended Finance") == (
        "HORIZON EIC Accelerator Blended Finance")
    assert type_of_action_code("HORIZON-RPr HORIZON Recognition Prize") == "HORIZON-RPr"
    assert type_of_action_code("HORIZON EIC Accelerator Blended Finance") is None


def test_keyword_query_is_the_front_ends_own(portal_fixtures: Path) -> None:
    sent = load(portal_fixtures, "request_query_portal_frontend_keyword_digital_twin.json")
    # the captured request also has tag boosts from the portal's own tagging service
    should = sent["bool"]["must"][1]["bool"]["should"]
    sent["bool"]["must"][1]["bool"]["should"] = [c for c in should if "term" not in c]
    parts = build_search_parts(keyword="digital twin", types=("1", "2", "8"),
                               statuses=("forthcoming", "open"), programmes=())
    assert parts.query == sent
    files = parts.files()
    assert set(files) == {"query", "languages", "sort"}
    assert all(part[2] == "application/json" for part in files.values())
    assert json.loads(files["languages"][1]) == ["en"]
    assert parts.params(2, 50) == {"apiKey": "SEDIA", "text": "***", "pageSize": "50",
                                   "pageNumber": "2"}


def test_default_query_filters_programmes_statuses_and_grants() -> None:
    query = build_search_parts().query
    assert query == {"bool": {"must": [
        {"terms": {"type": ["1"]}},
        {"terms": {"status": ["31094501", "31094502"]}},
        {"terms": {"frameworkProgramme": ["31045243", "43108390"]}},
    ]}}
    assert build_search_parts().sort == {"order": "ASC", "field": "identifier"}


def test_odd_shapes_in_topic_details_do_not_crash() -> None:
    # a live scrape only catches ValueError from the parser: anything else would stop it
    record = parse_topic_details({"TopicDetails": {
        "identifier": "X-1",
        "actions": [{"status": None, "deadlineDates": "2026-09-01", "types": {"typeOfAction":
                     "HORIZON Innovation Actions"}}],
        "keywords": "robots",
        "description": 5,
        "budgetOverviewJSONItem": {"budgetTopicActionMap": [1]},
    }})
    assert record.deadlines == [DeadlineRecord(datetime(2026, 9, 1), 1)]
    assert record.keywords == ["robots"]  # a lone string is one keyword, not six letters
    assert record.type_of_action == "HORIZON-IA HORIZON Innovation Actions"
    assert "portal_status" not in record.extra
