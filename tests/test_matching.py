"""The matcher (pure), call filters, the ranker file, and the `match` path through the DB."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from pathlib import Path

import numpy as np
from scipy import sparse
import pytest
from click.testing import CliRunner

from horizon_match.call_filters import (
    CallFacts,
    MemberFacts,
    condition_flags,
    hidden_reason,
    visible_calls,
)
from horizon_match.config import load_settings
from horizon_match.db import Database
from horizon_match.embedding import EmbedderSet, EmbeddingCache, FakeEmbedder
from horizon_match.features import action_kind, parse_identifier
from horizon_match.matching import export_matches, hidden_counts, list_matches, run_matching
from stocking import call_record, stock
from horizon_match.ranker import DestinationProfiles, RankerModel
from horizon_match.scoring import FEATURES, CallDoc, Matcher, PastProject, Profile, top_indices
from horizon_match.training import TrainingOptions, TrainingSet, fit_ranker

WIND = CallDoc(
    key="HORIZON-CL5-2026-D3-01-01",
    title="Recyclable blades for offshore wind turbines",
    destination="Sustainable, secure and competitive energy supply",
    description="Develop recyclable offshore wind turbine blades from thermoplastic composite "
    "materials and demonstrate blade recycling at scale.",
    type_of_action="HORIZON-RIA",
)
ROBOTS = CallDoc(
    key="HORIZON-CL4-2026-DIGITAL-02-01",
    title="Autonomous underwater robots for port inspection",
    description="Underwater robots inspect ship hulls, quays and port infrastructure autonomously.",
    type_of_action="HORIZON-IA",
)
SOIL = CallDoc(
    key="HORIZON-CL6-2026-FARM-01-03",
    title="Soil microbiome for sustainable farming",
    description="Soil health, microbiome analysis and sustainable agriculture practices.",
    type_of_action="HORIZON-CSA",
)
CALLS = [WIND, ROBOTS, SOIL]
UNRELATED = [
    "Medieval manuscripts digitisation", "Opera singers vocal health", "Coffee supply chains",
    "Ancient Greek pottery", "Football fan culture", "Dairy cow genetics", "Volcano ash clouds",
    "Urban beekeeping", "Jazz music archives", "Glacier retreat photography",
    "Children literacy apps", "Wine tourism marketing", "Textile dyes history",
    "Chess engines", "Bird migration atlas", "Tea ceremony traditions", "Bridge card games",
    "Fashion week logistics", "Stamp collecting", "Perfume chemistry",
]


def _ranked(profile: Profile, calls: list[CallDoc] = CALLS, embedders: EmbedderSet | None = None) -> list[str]:
    matcher = Matcher(embedders or EmbedderSet(FakeEmbedder()))
    prepared = matcher.prepare([profile], calls)
    return [calls[r.call_index].key for r in matcher.rank(prepared, 10)[0]]


def test_the_relevant_call_comes_first() -> None:
    profile = Profile("windco", description="We design recyclable offshore wind turbine blades "
                      "from thermoplastic composite materials.")
    assert _ranked(profile)[0] == WIND.key
    profile = Profile("robotica", keywords=("underwater robots", "ship hull inspection", "port"))
    assert _ranked(profile)[0] == ROBOTS.key  # keywords alone are enough


def test_many_unrelated_projects_do_not_dilute_a_relevant_one() -> None:
    projects = [PastProject(title=t, summary=f"A study of {t.lower()}.") for t in UNRELATED]
    projects.append(PastProject(
        title="Soil microbiome monitoring",
        summary="Soil microbiome analysis for sustainable agriculture and soil health.",
    ))
    assert _ranked(Profile("uni", projects=projects))[0] == SOIL.key


def test_one_stray_sentence_does_not_win() -> None:
    description = (
        "We build autonomous underwater robots. Our robots inspect ship hulls in ports. "
        "Port infrastructure inspection is our business. Underwater inspection of quays. "
        "Our CEO once visited an offshore wind farm."
    )
    assert _ranked(Profile("robotica", description=description))[0] == ROBOTS.key


def test_explanation_names_the_passages_and_shared_terms() -> None:
    profile = Profile(
        "windco",
        description="Robotics is not our field.",
        projects=[PastProject(title="BLADE2", summary="Thermoplastic composite blades for "
                              "offshore wind turbines, recycled at the end of life.")],
    )
    matcher = Matcher(EmbedderSet(FakeEmbedder()))
    prepared = matcher.prepare([profile], CALLS)
    top = matcher.rank(prepared, 3)[0][0]
    assert CALLS[top.call_index] is WIND
    exp = top.explanation
    assert exp["member_source"] == "project: BLADE2"
    assert "blades" in exp["member_passage"].lower()
    assert "blades" in exp["call_passage"].lower() or "wind" in exp["call_passage"].lower()
    assert any("wind" in t or "blade" in t for t in exp["shared_terms"])
    assert len(exp["member_passage"]) <= 160 and len(exp["call_passage"]) <= 160
    assert "BLADE2" in exp["reason"] and len(exp["reason"]) < 250


def test_track_record_lifts_calls_in_known_destinations() -> None:
    assert parse_identifier("HORIZON-CL5-2022-D3-01-02").destination == "CL5/D3"
    assert parse_identifier("HORIZON-JU-SNS-2022-STREAM-B-01-02").part == "JU-SNS"
    assert parse_identifier("HORIZON-CL4-2024-DIGITAL-EMERGING-01-01").call == "CL4/DIGITAL-EMERGING/01"
    assert parse_identifier(None).part == ""
    assert action_kind("HORIZON Research and Innovation Actions") == "RIA"
    assert action_kind("HORIZON-JU-IA") == "IA"
    assert action_kind("HORIZON-CSA") == "CSA"
    neutral = "Applied research on energy materials and systems."
    calls = [
        CallDoc(key="HORIZON-CL6-2026-FARM-01-01", title="Energy materials", description=neutral),
        CallDoc(key="HORIZON-CL5-2026-D3-01-07", title="Energy materials", description=neutral),
    ]
    history = [
        PastProject(title="P1", summary=neutral, topic="HORIZON-CL5-2022-D3-02-01", funding_scheme="HORIZON-RIA"),
        PastProject(title="P2", summary=neutral, topic="HORIZON-CL5-2021-D3-01-05", funding_scheme="HORIZON-RIA"),
    ]
    matcher = Matcher(EmbedderSet(FakeEmbedder()))
    prepared = matcher.prepare([Profile("lab", projects=history)], calls)
    feats, _ = matcher.features(prepared, np.array([0]))
    dest = FEATURES.index("dest_share")
    assert feats[0, 1, dest] == 1.0 and feats[0, 0, dest] == 0.0
    ranked = matcher.rank(prepared, 2)[0]
    assert calls[ranked[0].call_index].key == "HORIZON-CL5-2026-D3-01-07"
    assert "CL5/D3" in ranked[0].explanation["track"]
    # and its parts, for emails worded in another language
    assert ranked[0].explanation["track_detail"] == {"projects": 2, "in": "destination", "place": "CL5/D3"}


def test_empty_profile_gets_nothing_and_calls_without_text_still_rank() -> None:
    bare = CallDoc(key="HORIZON-CL5-2026-D3-01-09", title="Offshore wind blades")
    matcher = Matcher(EmbedderSet(FakeEmbedder()))
    prepared = matcher.prepare([Profile("empty"), Profile("wind", keywords=("offshore wind",))], [*CALLS, bare])
    ranked = matcher.rank(prepared, 5)
    assert ranked[0] == []
    assert [(*CALLS, bare)[r.call_index].key for r in ranked[1]][:2] == [WIND.key, bare.key] or \
        bare.key in [(*CALLS, bare)[r.call_index].key for r in ranked[1]][:2]
    # nothing to match at all
    assert Matcher(EmbedderSet(FakeEmbedder())).rank(
        Matcher(EmbedderSet(FakeEmbedder())).prepare([Profile("x", description="wind")], []), 3
    ) == [[]]


def test_non_english_member_is_embedded_with_the_multilingual_model() -> None:
    english, multi = FakeEmbedder(name="english"), FakeEmbedder(name="multilingual")
    embedders = EmbedderSet(default=english, multilingual=multi)
    matcher = Matcher(embedders)
    profiles = [
        Profile("windco", description="Offshore wind turbine blades.", language="en"),
        Profile("robotica", description="Robot subacquei per ispezione di scafi nei porti.", language="it"),
    ]
    prepared = matcher.prepare(profiles, CALLS)
    assert prepared.profile_group == ["english", "multilingual"]
    # both models embedded the calls (each member is compared in its own model's space)
    assert set(prepared.groups) == {"english", "multilingual"}
    assert matcher.caches["multilingual"].stats.computed > 0
    multi_before = multi.calls
    ranked = matcher.rank(prepared, 3)
    assert len(ranked[1]) == 3
    # scores for the Italian member come from the multilingual vectors
    feats, extra = matcher.features(prepared, np.array([1]))
    unit_vec = prepared.groups["multilingual"].unit_vectors[prepared.unit_row[prepared.profile_units[1]]]
    expected = unit_vec @ prepared.groups["multilingual"].call_vectors.T
    np.testing.assert_allclose(feats[0, :, FEATURES.index("dense_max")], expected.max(0), atol=1e-5)
    assert multi.calls >= multi_before


def test_a_member_of_another_model_is_ranked_by_its_standardised_similarities() -> None:
    """The ranker reads raw similarities on the scale of the model it was trained with. For a
    member embedded by another model (an Italian one by the multilingual model) they are
    replaced, but their per-member z-scores must still come from the member's real
    similarities: once computed from the replaced values, they were all 0, every call scored
    the same and an Italian member got its calls in alphabetical order."""
    english, multi = FakeEmbedder(name="english"), FakeEmbedder(name="multilingual")
    model = _random_hidden_model(np.random.default_rng(3), np.ones(len(FEATURES), np.float32))
    model.meta["model"] = "english"
    matcher = Matcher(EmbedderSet(default=english, multilingual=multi), model=model)
    italian = Profile("robotica", description="Robot subacquei per ispezione di scafi nei porti.",
                      language="it")
    prepared = matcher.prepare([italian], CALLS)
    assert prepared.profile_group == ["multilingual"]
    feats, _ = matcher.features(prepared, np.array([0]))
    group = prepared.groups["multilingual"]
    sims = (group.unit_vectors[prepared.unit_row[prepared.profile_units[0]]] @ group.call_vectors.T).max(0)
    assert sims.std() > 1e-3
    np.testing.assert_allclose(feats[0, :, FEATURES.index("z_dense_max")],
                               (sims - sims.mean()) / sims.std(), atol=1e-4)
    # the raw value, on another model's scale, is put on the ranker's: as many of its standard
    # deviations from its average as the member's similarity stands from the member's average
    z = feats[0, :, FEATURES.index("z_dense_max")]
    np.testing.assert_allclose(feats[0, :, FEATURES.index("dense_max")],
                               model.neutral("dense_max") + z * model.spread("dense_max"), atol=1e-5)
    assert model.spread("dense_max") > 0 and model.spread("no such feature") == 0.0
    # so the calls do not all score alike
    assert len({round(float(c.score), 5) for c in matcher.rank(prepared, len(CALLS))[0]}) > 1


def test_top_indices_breaks_ties_by_position() -> None:
    scores = np.array([0.5, 0.9, 0.5, 0.9, 0.1], dtype=np.float32)
    assert top_indices(scores, 3).tolist() == [1, 3, 0]
    assert top_indices(scores, 10).tolist() == [1, 3, 0, 2, 4]
    assert top_indices(scores, 0).tolist() == []
    from horizon_match.scoring import top_indices_of_rows

    rng = np.random.default_rng(5)
    block = rng.integers(0, 4, size=(40, 9)).astype(np.float32)  # many ties
    block[3] = -np.inf
    block[4, :5] = -np.inf
    for k in (0, 1, 3, 9, 12):
        got = top_indices_of_rows(block, k)
        assert got.tolist() == [top_indices(row, k).tolist() for row in block]
    assert top_indices_of_rows(block[:0], 3).shape == (0, 3)


def test_sentence_split_fast_paths_split_like_the_full_pattern() -> None:
    from horizon_match.embedding import _SENTENCE_END, _sentences

    texts = ["One. Two! Three? Four; five", "Scope:Objectives are. Here", "a:B c: D",
             "Line one\n\nLine two.  Next", "- item\n- item two", "plain text", "",
             "Ends here.\u2028New line? Yes:No"]
    for text in texts:
        assert _sentences(text) == _SENTENCE_END.split(text)


# --- call filters -----------------------------------------------------------------------------

NOW = datetime(2026, 6, 1)


def _facts(**kw: object) -> CallFacts:
    base: dict = {"identifier": "HORIZON-CL5-2026-D3-01-01", "programme": "HORIZON",
                  "type_of_action": "HORIZON-RIA", "deadlines": [datetime(2026, 9, 1, 17)]}
    base.update(kw)
    return CallFacts(**base)


def test_hidden_reasons() -> None:
    member = MemberFacts(organisation_type="university", country="IT")
    assert hidden_reason(_facts(), member, NOW) is None
    assert hidden_reason(_facts(deadlines=[datetime(2026, 1, 1)]), member, NOW) == "closed"
    assert hidden_reason(_facts(deadlines=[], status="open"), member, NOW) is None
    assert hidden_reason(_facts(deadlines=[], status="closed"), member, NOW) == "closed"
    prefs = MemberFacts(preferences={"programmes": ["EURATOM"]})
    assert hidden_reason(_facts(), prefs, NOW) == "programme"
    prefs = MemberFacts(preferences={"types_of_action": ["HORIZON-IA", "HORIZON-CSA"]})
    assert hidden_reason(_facts(), prefs, NOW) == "type of action"
    assert hidden_reason(_facts(type_of_action=None), prefs, NOW) is None  # unknown type: shown
    prefs = MemberFacts(preferences={"budget_min": 2_000_000, "budget_max": 5_000_000})
    assert hidden_reason(_facts(budget=9_000_000), prefs, NOW) == "budget"
    assert hidden_reason(_facts(budget=1_000_000), prefs, NOW) == "budget"
    assert hidden_reason(_facts(budget=3_000_000), prefs, NOW) is None
    assert hidden_reason(_facts(budget=None), prefs, NOW) is None
    sme_only = _facts(text="This topic is open only to SMEs and start-ups.")
    assert hidden_reason(sme_only, member, NOW) == "eligibility"
    assert hidden_reason(sme_only, MemberFacts(organisation_type="company", size="sme"), NOW) is None


def test_visible_calls_agree_with_each_pair_and_share_work_between_alike_members(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import random

    import horizon_match.call_filters as call_filters

    rng = random.Random(3)
    calls = [
        _facts(identifier=f"{rng.choice(['HORIZON', 'EURATOM'])}-CL{j}-2026-01",
               programme=rng.choice(["HORIZON", "EURATOM", None]),
               type_of_action=rng.choice(["HORIZON-RIA", "HORIZON-IA", "HORIZON-CSA", None]),
               budget=rng.choice([None, 1e6, 3e6, 9e6]),
               deadlines=rng.choice([[datetime(2026, 9, 1)], [datetime(2026, 1, 1)], []]),
               status=rng.choice(["open", "closed", None]),
               text=rng.choice(["", "This topic is open only to SMEs.", "Any legal entity."]))
        for j in range(60)
    ]
    kinds = [("university", None, None), ("company", "sme", None), ("company", "large", None),
             ("company", None, True), ("research", None, None), (None, None, None)]
    preferences = [{}, {"programmes": ["euratom "]}, {"programmes": ["HORIZON", "EURATOM"]},
                   {"types_of_action": ["HORIZON-IA", "HORIZON-CSA"]}, {"types_of_action": [""]},
                   {"budget_min": 2_000_000}, {"budget_max": "5000000"},
                   {"programmes": ["HORIZON"], "types_of_action": ["RIA"], "budget_min": 1e6}]
    members = [MemberFacts(organisation_type=o, size=size, sme=sme, preferences=dict(p))
               for o, size, sme in kinds for p in preferences] * 3
    passes = []
    real = call_filters.preference_reason
    monkeypatch.setattr(call_filters, "preference_reason",
                        lambda c, m: passes.append(1) or real(c, m))
    allowed, hidden = visible_calls(calls, members, NOW)
    work = len(passes)
    for i, member in enumerate(members):
        reasons = [hidden_reason(c, member, NOW) for c in calls]
        assert allowed[i].tolist() == [r is None for r in reasons]
        expected: dict[str, int] = {}
        for r in reasons:
            if r:
                expected[r] = expected.get(r, 0) + 1
        assert hidden[i] == expected
    assert allowed.any() and not allowed.all() and {"eligibility", "budget"} <= set().union(*hidden)
    # 144 members, each set of facts seen three times: at most one pass per distinct set
    # one pass over the open calls per distinct set of facts the filters read
    distinct = len({call_filters._filter_key(m) for m in members})
    assert work == distinct * sum(call_filters.is_open(c, NOW) for c in calls) > 0
    assert distinct < len(kinds) * len(preferences)  # e.g. "euratom " = "EURATOM"
    # a preference that is not a plain value (a hand-edited database): filtered on its own
    odd = MemberFacts(preferences={"budget_min": [1_000_000]})
    no_budget = [c for c in calls if c.budget is None]
    allowed_odd, hidden_odd = visible_calls(no_budget, [odd, odd], NOW)
    expected_odd = [hidden_reason(c, odd, NOW) is None for c in no_budget]
    assert allowed_odd.tolist() == [expected_odd, expected_odd] and len(hidden_odd) == 2
    assert visible_calls([], members[:2], NOW)[0].shape == (2, 0)
    none, no_counts = visible_calls(calls, [], NOW)
    assert none.shape == (0, len(calls)) and no_counts == []


def test_condition_flags() -> None:
    assert any("not funded by default" in f for f in condition_flags(_facts(), MemberFacts(country="US")))
    assert condition_flags(_facts(), MemberFacts(country="IT")) == []
    widening = _facts(text="The coordinator must be established in a Widening country.")
    assert any("Widening" in f for f in condition_flags(widening, MemberFacts(country="IT")))
    assert condition_flags(widening, MemberFacts(country="PT")) == []
    ms_only = _facts(text="Participation is limited to legal entities established in Member States.")
    assert any("member states" in f for f in condition_flags(ms_only, MemberFacts(country="NO")))
    unknown_size = _facts(text="Applicants must be SMEs.")
    assert any("SMEs only" in f for f in condition_flags(unknown_size, MemberFacts(organisation_type="company")))


# --- the learned ranker -----------------------------------------------------------------------


def test_ranker_learns_from_examples_and_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = TrainingSet()
    informative = FEATURES.index("dest_share")
    for _ in range(300):
        feats = rng.normal(size=(30, len(FEATURES))).astype(np.float32)
        target = int(rng.integers(30))
        feats[target, informative] += 4.0
        data.add(feats, target, rng, negatives=29)
    dests = DestinationProfiles.fit(
        "fake", np.eye(4, dtype=np.float32), ["CL5/D3", "CL5/D3", "CL4/DATA", ""], ["CL5", "CL5", "CL4", ""]
    )
    assert dests.destinations == ["CL4/DATA", "CL5/D3"]
    model = fit_ranker(data, TrainingOptions(hidden=8, epochs=60, batch=32), dests, {"model": "fake"})
    test = rng.normal(size=(50, len(FEATURES))).astype(np.float32)
    test[7, informative] += 4.0
    assert int(np.argmax(model.score(test))) == 7
    path = tmp_path / "ranker.npz"
    model.save(path)
    loaded = RankerModel.load(path)
    np.testing.assert_allclose(loaded.score(test), model.score(test), atol=1e-5)
    assert loaded.destinations is not None and loaded.destinations.destinations == dests.destinations
    assert loaded.meta["model"] == "fake"
    linear = fit_ranker(data, TrainingOptions(hidden=0, epochs=60, batch=32), None, {})
    assert int(np.argmax(linear.score(test))) == 7


def test_a_broken_ranker_file_is_a_clear_error(tmp_path: Path) -> None:
    from horizon_match.errors import ConfigError

    bad = tmp_path / "ranker.npz"
    bad.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="train-ranker"):
        RankerModel.load(bad)


# --- through the database -------------------------------------------------------------------

AS_OF = date(2026, 6, 1)


@pytest.fixture
def stocked(db: Database, tmp_path: Path) -> Database:
    calls = [
        call_record("HORIZON-CL5-2026-D3-01-01", "Offshore wind turbine blades",
              "Develop recyclable offshore wind turbine blades and composite materials.",
              "2026-09-01T17:00:00"),
        call_record("HORIZON-CL4-2026-DIGITAL-02-01", "Robotics for inspection",
              "Autonomous underwater robots for inspection of ship hulls and port infrastructure.",
              "2026-10-01T17:00:00", type_of_action="HORIZON-IA"),
        call_record("HORIZON-EIC-2026-ACCELERATOR-01", "EIC Accelerator",
              "Breakthrough innovations. This call is open only to SMEs and start-ups.",
              "2026-10-01T17:00:00", type_of_action="HORIZON-EIC"),
        call_record("HORIZON-CL5-2026-D3-01-02", "Offshore wind farms without description", "",
              "2026-11-01T17:00:00"),
        call_record("HORIZON-CL5-2025-D3-01-09", "Closed wind call", "Offshore wind blades maintenance.",
              "2026-01-10T17:00:00"),
    ]
    members = [
        {"id": "windco", "name": "WindCo", "country": "IT", "organisation_type": "company",
         "size": "sme", "description": "We design offshore wind turbine blades from recyclable composites.",
         "past_projects": [{"title": "BLADE2", "summary": "Thermoplastic blades for wind turbines."}]},
        {"id": "unige", "name": "Università", "country": "IT", "organisation_type": "university",
         "description": "Robot subacquei autonomi per l'ispezione di scafi e infrastrutture portuali.",
         },
        {"id": "kw", "name": "Keywords Only", "country": "CH", "organisation_type": "research",
         "keywords": ["underwater robots", "port inspection"]},
        {"id": "empty", "name": "Empty Srl", "country": "IT", "organisation_type": "company"},
    ]
    return stock(db, tmp_path, calls, members)


def test_run_stores_ranked_explained_matches_and_counts_hidden_calls(stocked: Database) -> None:
    settings = load_settings({}, db=stocked.url)
    summary = run_matching(stocked, settings, embedder=FakeEmbedder(), top_k=3, as_of=AS_OF)
    rows = list_matches(stocked, member_id="windco")
    assert rows[0]["call"] == "HORIZON-CL5-2026-D3-01-01"
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert rows[0]["deadline"] == "2026-09-01"
    assert "HORIZON-CL5-2025-D3-01-09" not in {r["call"] for r in rows}
    assert rows[0]["details"]["member_passage"] and rows[0]["details"]["shared_terms"]
    assert summary.hidden["windco"]["closed"] == 1
    # the university is not an SME: the SME-only call is hidden and counted
    assert summary.hidden["unige"]["eligibility"] == 1
    assert hidden_counts(stocked, "unige") == {"eligibility": 1}
    assert "HORIZON-EIC-2026-ACCELERATOR-01" not in {r["call"] for r in list_matches(stocked, member_id="unige")}
    # a member outside the EU and associated countries... CH is associated: no flag
    assert all(not r["flags"] for r in list_matches(stocked, member_id="kw"))
    assert list_matches(stocked, member_id="empty") == []
    assert any("empty" in w and "no description" in w for w in summary.warnings)
    assert any("kw" in w and "only keywords" in w for w in summary.warnings)
    assert any("no description" in w and "HORIZON-CL5-2026-D3-01-02" in w for w in summary.warnings)


def test_as_of_replays_another_day_and_rerun_embeds_nothing(stocked: Database) -> None:
    settings = load_settings({}, db=stocked.url)
    embedder = FakeEmbedder()
    first = run_matching(stocked, settings, embedder=embedder, as_of=AS_OF)
    assert first.embedded.computed > 0
    calls_embedded = embedder.calls
    second = run_matching(stocked, settings, embedder=embedder, as_of=AS_OF)
    assert second.embedded.computed == 0 and embedder.calls == calls_embedded
    # on 2026-09-15 the first wind call has closed
    later = run_matching(stocked, settings, embedder=embedder, as_of=date(2026, 9, 15))
    assert later.calls == first.calls - 1
    assert "HORIZON-CL5-2026-D3-01-01" not in {r["call"] for r in list_matches(stocked, member_id="windco")}
    old = list_matches(stocked, member_id="windco", run_id=first.run_id)
    assert old[0]["call"] == "HORIZON-CL5-2026-D3-01-01"


def test_italian_member_uses_the_multilingual_embedder(stocked: Database) -> None:
    settings = load_settings({}, db=stocked.url)
    english, multi = FakeEmbedder(name="english"), FakeEmbedder(name="multilingual")
    run_matching(stocked, settings, embedder=EmbedderSet(english, multilingual=multi),
                 member_ids=["windco", "unige"], as_of=AS_OF)
    # the calls were embedded by both models, the Italian profile only by the multilingual one
    italian = "Robot subacquei autonomi per l'ispezione di scafi e infrastrutture portuali."
    assert EmbeddingCache(stocked, multi).encode([italian]) is not None
    probe = EmbeddingCache(stocked, english)
    probe.encode([italian])
    assert probe.stats.computed == 1  # never embedded with the English model
    assert list_matches(stocked, member_id="unige")


def test_export_jsonl_and_csv(stocked: Database) -> None:
    settings = load_settings({}, db=stocked.url)
    run_matching(stocked, settings, embedder=FakeEmbedder(), as_of=AS_OF)
    out = io.StringIO()
    n = export_matches(stocked, out, "csv", member_id="windco")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == n > 0
    assert list(rows[0]) == ["member", "call", "title", "score", "rank", "deadline", "explanation"]
    out = io.StringIO()
    assert export_matches(stocked, out, "jsonl") >= n
    first = json.loads(out.getvalue().splitlines()[0])
    assert {"member", "call", "score", "rank", "deadline", "explanation", "details"} <= set(first)


def test_cli_match_list_export(stocked: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    import cli
    import horizon_match.matching as matching

    # the CLI loads the configured model; the fake one keeps this test fast
    monkeypatch.setattr(matching, "load_embedder_set", lambda settings: EmbedderSet(FakeEmbedder()))
    runner = CliRunner()
    result = runner.invoke(cli.main, ["--db", stocked.url, "match", "--member", "unige", "--top", "2",
                                      "--as-of", "2026-06-01"])
    assert result.exit_code == 0, result.output
    assert "2 matches for 1 members" in result.output
    assert "unige: 1 calls hidden by your preferences" in result.output
    listed = runner.invoke(cli.main, ["--db", stocked.url, "matches", "list", "--member", "unige"])
    assert listed.exit_code == 0, listed.output
    # which two calls win depends on the shipped ranker (the fake embedder cannot read
    # Italian); the listing must show the member's two stored matches, ranks 1 and 2
    rows = [line.split() for line in listed.output.splitlines()[1:] if line.startswith("unige")]
    assert [r[1] for r in rows] == ["1", "2"]
    assert all(r[3].startswith("HORIZON-") and r[3] != "HORIZON-CL5-2025-D3-01-09" for r in rows)
    exported = runner.invoke(cli.main, ["--db", stocked.url, "matches", "export", "--format", "csv"])
    assert exported.stdout.splitlines()[0] == "member,call,title,score,rank,deadline,explanation"
    missing = runner.invoke(cli.main, ["--db", stocked.url, "match", "--member", "nobody"])
    assert missing.exit_code == 1 and "members list" in missing.output


def test_shared_terms_read_from_rows_match_the_matrix_product() -> None:
    from scipy import sparse

    from horizon_match.lexical import LexicalIndex, shared_terms, shared_terms_of_rows

    index = LexicalIndex()
    counts = index.fit([
        "offshore wind turbine blades from recyclable composites",
        "recyclable composite blades for offshore wind farms and turbine towers",
        "autonomous underwater robots for hull inspection",
    ])
    rows = index.weigh(counts)
    profile, call = sparse.csr_matrix(rows[0]), sparse.csr_matrix(rows[1])
    expected = shared_terms(index, profile, call, k=5)
    assert "wind" in expected and "blades" in expected
    assert shared_terms_of_rows(index, rows, 0, rows, 1, k=5) == expected
    assert shared_terms_of_rows(index, rows, 0, rows, 2, k=5) == []


def test_ranker_scores_a_block_like_its_rows() -> None:
    from horizon_match.ranker import RankerModel

    rng = np.random.default_rng(1)
    n = len(FEATURES)
    model = RankerModel(
        features=list(FEATURES), mean=rng.normal(size=n).astype(np.float32),
        scale=np.ones(n, np.float32), hidden_weights=rng.normal(size=(n, 4)).astype(np.float32),
        hidden_bias=np.zeros(4, np.float32), out_weights=rng.normal(size=4).astype(np.float32),
    )
    block = rng.normal(size=(3, 5, n)).astype(np.float32)
    scores = model.score(block)
    assert scores.shape == (3, 5)
    assert np.allclose(scores[1], model.score(block[1]), atol=1e-5)


def test_shared_terms_of_many_pairs_match_one_pair_at_a_time() -> None:
    from horizon_match.lexical import LexicalIndex, shared_terms_of_pairs, shared_terms_of_rows

    texts = [
        "offshore wind turbine blades from recyclable composites",
        "recyclable composite blades for offshore wind farms and turbine towers",
        "autonomous underwater robots for hull inspection",
        "underwater inspection of offshore wind turbine foundations by robots",
        "",
    ]
    index = LexicalIndex()
    rows = index.weigh(index.fit(texts))
    pairs = [(i, j) for i in range(len(texts)) for j in range(len(texts))]
    many = shared_terms_of_pairs(
        index, rows, np.array([i for i, _ in pairs]), rows, np.array([j for _, j in pairs]), k=3
    )
    assert many == [shared_terms_of_rows(index, rows, i, rows, j, k=3) for i, j in pairs]
    assert any(many) and many[pairs.index((0, 4))] == []
    # big profiles are taken a few pairs at a time, with the same answers
    import horizon_match.lexical as lexical

    old_budget = lexical.PAIR_BATCH_ENTRIES
    lexical.PAIR_BATCH_ENTRIES = 7
    try:
        batched = shared_terms_of_pairs(
            index, rows, np.array([i for i, _ in pairs]), rows, np.array([j for _, j in pairs]), k=3
        )
    finally:
        lexical.PAIR_BATCH_ENTRIES = old_budget
    assert batched == many
    assert shared_terms_of_pairs(index, rows, np.array([], int), rows, np.array([], int)) == []


def test_vocabulary_cap_keeps_the_most_frequent_terms() -> None:
    from horizon_match.lexical import LexicalIndex

    index = LexicalIndex(max_features=3)
    counts = index.fit(["graphene sensors graphene", "graphene batteries sensors", "robots"])
    assert counts.shape == (3, 3)
    # graphene (3), sensors (2), then the first of the terms seen once
    assert list(index.terms) == ["graphene", "sensors", "graphene sensors"]
    assert counts.toarray()[0].tolist() == [2.0, 1.0, 1.0]
    # texts counted later use the same vocabulary
    assert index.count(["sensors and graphene"]).toarray().tolist() == [[1.0, 1.0, 0.0]]
    only_stop_words = LexicalIndex()
    assert only_stop_words.fit(["the and of", ""]).shape[0] == 2


def _random_hidden_model(rng: np.random.Generator, used: np.ndarray, out_bias: float = 0.0) -> RankerModel:
    """A one-hidden-layer ranker over FEATURES with random weights, reading the `used` ones."""
    n = len(FEATURES)
    return RankerModel(
        features=list(FEATURES), mean=rng.normal(size=n).astype(np.float32),
        scale=rng.uniform(0.5, 2.0, n).astype(np.float32),
        hidden_weights=rng.normal(size=(n, 4)).astype(np.float32),
        hidden_bias=rng.normal(size=4).astype(np.float32),
        out_weights=rng.normal(size=4).astype(np.float32), out_bias=out_bias, used=used,
    )


def test_ranker_scores_feature_planes_like_feature_rows() -> None:
    from horizon_match.ranker import RankerModel

    rng = np.random.default_rng(2)
    n = len(FEATURES)
    hidden = _random_hidden_model(rng, (rng.random(n) > 0.5).astype(np.float32), out_bias=0.3)
    linear = RankerModel(
        features=list(FEATURES), mean=rng.normal(size=n).astype(np.float32),
        scale=rng.uniform(0.5, 2.0, n).astype(np.float32), hidden_weights=None, hidden_bias=None,
        out_weights=rng.normal(size=n).astype(np.float32), out_bias=-0.2,
    )
    block = rng.normal(size=(3, 5, n)).astype(np.float32)
    planes = np.ascontiguousarray(np.moveaxis(block, -1, 0))
    for model in (hidden, linear):
        assert np.allclose(model.score_planes(planes), model.score(block), atol=1e-4)


def test_threaded_scoring_ranks_exactly_like_one_thread() -> None:
    profiles = [
        Profile(key=f"m{i}", description=f"{name} research and wind turbine blades" if i % 3 else name)
        for i, name in enumerate(UNRELATED)
    ]
    calls = CALLS * 3
    results = []
    for threads in (1, 2):
        # chunks of 4 profiles, so several are in flight at once
        matcher = Matcher(EmbedderSet(FakeEmbedder()), threads=threads, chunk_size=4)
        prepared = matcher.prepare(profiles, calls)
        ranked = [(idx.tolist(), scores.copy()) for idx, scores, _ in matcher.scores(prepared)]
        order = [(len(r), [(c.call_index, c.explanation["reason"]) for c in r])
                 for r in matcher.rank(prepared, 5)]
        results.append((ranked, order))
    (one, order_one), (two, order_two) = results
    assert order_one == order_two and any(n for n, _ in order_one)
    assert [i for i, _ in one] == [i for i, _ in two] and len(one) == 5
    for (_, a), (_, b) in zip(one, two):
        assert np.array_equal(a, b)


def test_ranking_batch_by_batch_equals_ranking_all_profiles_at_once() -> None:
    # profiles prepared a batch at a time while earlier batches are scored: the same scores,
    # order and explanations as preparing everything first (no weight depends on the other
    # profiles), allowed masks and cache counts following their batch
    profiles = [
        Profile(key=f"m{i}", description=f"{name} research and wind turbine blades" if i % 3 else name,
                keywords=("port robots",) if i % 2 else (),
                projects=[PastProject(title=f"P{i}", summary="Soil health for farms.",
                                      topic="HORIZON-CL6-2024-FARM2FORK-01-02")] if i % 4 == 1 else [])
        for i, name in enumerate(UNRELATED)
    ] + [Profile("empty")]
    # distinct calls: products of differently shaped chunks may differ in the last bits, which
    # would reorder exact ties
    calls = CALLS
    allowed = np.ones((len(profiles), len(calls)), dtype=bool)
    allowed[1, 0] = allowed[4, :2] = False
    whole = Matcher(EmbedderSet(FakeEmbedder()), threads=1, chunk_size=2)
    prepared = whole.prepare(profiles, calls)
    fresh = prepared.stats
    expected = whole.rank(prepared, 4, allowed)
    for threads, batch in ((1, 3), (2, 2), (2, 1000)):
        matcher = Matcher(EmbedderSet(FakeEmbedder()), threads=threads, chunk_size=2)
        ranked, stats = matcher.rank_profiles(profiles, calls, 4, allowed, batch=batch)
        def plain(r: list) -> list:
            return [(c.call_index, {k: v for k, v in c.explanation.items() if k != "parts"})
                    for c in r]

        assert [plain(r) for r in ranked] == [plain(r) for r in expected]
        # float32 products of other shapes may differ in the last bits (a rounded comparison
        # failed on one machine: -0.7001351 vs -0.7001349), so may the rounded signal values
        assert np.allclose([c.score for r in ranked for c in r],
                           [c.score for r in expected for c in r], rtol=0, atol=1e-5)
        assert np.allclose([v for r in ranked for c in r for v in c.explanation["parts"].values()],
                           [v for r in expected for c in r for v in c.explanation["parts"].values()],
                           rtol=0, atol=2e-4)
        # what was embedded is counted once; explanations re-reading vectors count nothing
        assert stats.computed == fresh.computed > 0
        if batch >= len(profiles):
            assert (stats.requested, stats.cached) == (fresh.requested, fresh.cached)
        again, stats = matcher.rank_profiles(profiles, calls, 4, allowed, batch=batch)
        assert stats.computed == 0 and len(again) == len(profiles)
    assert any(ranked) and not ranked[-1]  # the empty profile gets nothing
    assert [c.call_index for c in ranked[4]] == [2] and 0 not in [c.call_index for c in ranked[1]]
    assert matcher.rank_profiles([], calls, 4)[0] == []
    assert matcher.rank_profiles(profiles[:2], [], 4)[0] == [[], []]


def test_ranking_in_batches_reads_an_in_memory_database_from_its_worker_thread() -> None:
    # members are prepared in a worker thread: an in-memory SQLite database must be the same
    # database there (SQLAlchemy's default gives every thread a new, empty one)
    database = Database("sqlite://")
    try:
        embedder = FakeEmbedder()
        cache = EmbeddingCache(database, embedder)
        matcher = Matcher(EmbedderSet(embedder), {embedder.name: cache}, threads=2)
        profiles = [Profile(f"m{i}", description=f"{name} and wind turbine blades")
                    for i, name in enumerate(UNRELATED[:5])]
        ranked, stats = matcher.rank_profiles(profiles, CALLS, 2, batch=2)
        assert all(len(r) == 2 for r in ranked) and stats.computed > 0
        again = Matcher(EmbedderSet(embedder), {embedder.name: EmbeddingCache(database, embedder)},
                        threads=2)
        assert again.rank_profiles(profiles, CALLS, 2, batch=2)[1].computed == 0
    finally:
        database.close()


def test_call_breadth_is_its_similarity_to_the_other_destinations() -> None:
    embedder = FakeEmbedder()
    profile = Profile("lab", description="offshore wind turbine blades and composites")
    matcher = Matcher(EmbedderSet(embedder))
    prepared = matcher.prepare([profile], CALLS)
    group = prepared.groups[embedder.name]
    keys = ["CL5/D3", "CL6/FARM", "CL9/OTHER"]  # the first two are WIND's and SOIL's own
    own = [parse_identifier(c.key).destination for c in CALLS]
    assert own[0] == keys[0] and own[2] == keys[1]

    def destinations(texts: list[str]) -> DestinationProfiles:
        vectors = np.asarray(embedder.encode(texts), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return DestinationProfiles.fit(embedder.name, vectors, keys, [k.split("/")[0] for k in keys])

    mean, top = FEATURES.index("call_hub_mean"), FEATURES.index("call_hub_max")
    seen = []
    for texts in (["wind turbine blades", "soil microbiome farming", "jazz archives"],
                  ["underwater robots", "port hulls", "ship inspection"]):
        dests = destinations(texts)
        feats, _ = matcher.derive(destinations=dests).features(prepared, np.array([0]))
        sims = group.call_vectors @ dests.destination_vectors.T
        for j, call_own in enumerate(own):
            # a call's own destination holds its own funded projects: never part of its breadth
            others = [d for d, key in enumerate(keys) if key != call_own]
            assert np.isclose(feats[0, j, mean], sims[j, others].mean(), atol=1e-6)
            assert np.isclose(feats[0, j, top], sims[j, others].max(), atol=1e-6)
        seen.append(feats[0, :, top].copy())
    # the second destination model on the same preparation is not served the first one's values
    assert not np.allclose(seen[0], seen[1])
    plain, _ = matcher.features(prepared, np.array([0]))
    assert not plain[0, :, mean].any()  # no destination model: no breadth


def test_destination_model_without_destinations_gives_no_breadth_and_no_crash() -> None:
    embedder = FakeEmbedder()
    empty = DestinationProfiles(embedder.name, [], np.zeros((0, embedder.dim), np.float32), [],
                                np.zeros((0, embedder.dim), np.float32))
    matcher = Matcher(EmbedderSet(embedder), destinations=empty)
    prepared = matcher.prepare([Profile("lab", description="wind turbine blades")], CALLS)
    feats, _ = matcher.features(prepared, np.array([0]))
    assert not feats[0, :, FEATURES.index("call_hub_max")].any()
    assert len(matcher.rank(prepared, 3)[0]) == 3


def test_chunks_hold_a_bounded_number_of_units() -> None:
    import horizon_match.scoring as scoring

    big = Profile("big", projects=[PastProject(title=f"P{k}", summary=f"Topic {k} work.")
                                   for k in range(30)])
    small = [Profile(f"s{i}", description=f"robots {i}") for i in range(5)]
    matcher = Matcher(EmbedderSet(FakeEmbedder()))
    prepared = matcher.prepare([small[0], big, *small[1:], big], CALLS)
    old = scoring.CHUNK_UNITS
    scoring.CHUNK_UNITS = 31
    try:
        chunks = [c.tolist() for c in matcher.chunks(prepared)]
    finally:
        scoring.CHUNK_UNITS = old
    assert sorted(i for c in chunks for i in c) == list(range(7))
    for c in chunks:
        units = sum(len(prepared.profile_units[i]) for i in c)
        assert len(c) == 1 or units <= 31
    # a big profile closes the chunk before it rather than overflowing it
    assert chunks == [[0, 1], [2, 3, 4, 5], [6]]


def test_vocabulary_learned_from_the_calls_only() -> None:
    from horizon_match.lexical import LexicalIndex

    index = LexicalIndex()
    texts = ["graphene sensors", "graphene batteries", "medieval manuscripts", "sensors"]
    counts = sparse.vstack([index.fit(texts[:1]), index.count(texts[1:])]).tocsr()
    assert sorted(index.terms) == ["graphene", "graphene sensors", "sensors"]
    dense = counts.toarray()
    assert dense.sum(1).tolist() == [3.0, 1.0, 0.0, 1.0]  # only the call's terms are counted
    # document frequencies come from the calls only: a profile's weights do not depend on
    # the other profiles of the run
    assert index.idf[list(index.terms).index("sensors")] == pytest.approx(np.log(2 / 2) + 1)
    again = LexicalIndex()
    again.fit(texts[:1])
    assert (again.count(texts[1:]).toarray() == dense[1:]).all()
    assert again.idf.tolist() == index.idf.tolist()
    rows = index.weigh(counts)
    # a profile is normalised over the terms calls use: its unrelated words do not dilute it
    assert float((rows[1] @ rows[0].T).toarray()[0, 0]) > 0.3
    assert rows[2].nnz == 0


def test_calls_without_a_destination_profile_get_the_members_average() -> None:
    embedder = FakeEmbedder()
    vectors = np.asarray(embedder.encode(["wind turbine blades", "port robots"]), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    dests = DestinationProfiles.fit(embedder.name, vectors, ["CL5/D3", "CL9/X"], ["CL5", "CL9"])
    matcher = Matcher(EmbedderSet(embedder), destinations=dests)
    prepared = matcher.prepare([Profile("lab", description="offshore wind blades"), Profile("empty")],
                               CALLS)
    feats, _ = matcher.features(prepared, np.array([0, 1]))
    column = FEATURES.index("dest_profile")
    # WIND's destination has a profile; ROBOTS' and SOIL's have none: they get WIND's value,
    # the average over the calls that have one, instead of a 0 that reads as "unlike"
    assert feats[0, 0, column] != 0.0
    assert feats[0, 1, column] == feats[0, 2, column] == pytest.approx(feats[0, 0, column])
    assert not feats[1, :, column].any()  # an empty profile has nothing to compare


# --- the fast paths of a big run give what the plain computations give ---------------------


def test_fast_analyser_splits_texts_like_scikit_learn() -> None:
    from horizon_match.lexical import LexicalIndex

    index = LexicalIndex()
    texts = [
        "Città di Genova: l’Università è  ÉCOLE naïve co-design, 5G-enabled X_y robots!",
        "Offshore wind-turbine blades\n\nfrom the recyclable composites; and the blades again",
        "", "the and of", "A B c dd e-f 3D 2030 H2 hydrogen",
    ]
    fast, reference = index._analyzer(), index.counter.build_analyzer()
    for text in texts:
        assert fast(text) == reference(text)
    # the token pattern without the alternative it used to have finds the same tokens
    import re

    from horizon_match.lexical import _TOKEN_PATTERN

    before = re.compile(r"(?u)\b[^\W\d_][\w\-]*[^\W_]\b|\b[^\W\d_]{2,}\b").findall
    odd = "x_y a_b _ab ab_ a-b -ab ab- 3d d3 a1 1a é_ è ǅa ab'cd l’università h2o x-ray-"
    for text in [*texts, odd, odd.upper()]:
        assert re.findall(_TOKEN_PATTERN, text.lower()) == before(text.lower())


def test_blockwise_counting_equals_counting_each_text(monkeypatch: pytest.MonkeyPatch) -> None:
    from collections import Counter

    import horizon_match.lexical as lexical

    monkeypatch.setattr(lexical, "COUNT_BLOCK", 2)  # several blocks on both sides
    calls = ["offshore wind turbine blades", "underwater robots for port inspection",
             "wind farms and port logistics"]
    profiles = ["recyclable blades for offshore wind turbine towers wind wind",
                "port robots and underwater robots", "", "medieval manuscripts",
                "wind turbine blades and port inspection robots"]
    index = lexical.LexicalIndex()
    counts = np.vstack([index.fit(calls).toarray(), index.count(profiles).toarray()])
    analyse = index.counter.build_analyzer()
    vocabulary = index.counter.vocabulary_
    for row, text in zip(counts, calls + profiles, strict=True):
        expected = np.zeros(len(vocabulary), np.float32)
        for term, n in Counter(analyse(text)).items():
            if term in vocabulary:
                expected[vocabulary[term]] = n
        assert row.tolist() == expected.tolist()
    assert counts[5].sum() == counts[6].sum() == 0 and counts[3].sum() > 0


def test_vectorised_counting_equals_the_analyser_text_by_text() -> None:
    from horizon_match.lexical import LexicalIndex

    calls = ["Città di Genova: l’Università è ÉCOLE naïve co-design, 5G-enabled robots!",
             "Offshore wind-turbine blades from recyclable composites and the wind blades",
             "H2 hydrogen 3D printing for port robots", "the and of"]
    texts = ["wind blades wind-turbine blades; the blades and CO-DESIGN", "", "the of and",
             "università naïve ÉCOLE è robots 5G-enabled robots", "hydrogen H2 3D printing x",
             "port robots port robots port", "printing hydrogen", "blades the wind blades"]
    index = LexicalIndex()
    index.fit(calls)
    fast = index.count(texts)
    # the plain definition: scikit-learn's analyser, one text at a time, terms of the vocabulary
    analyse = index.counter.build_analyzer()
    slow = np.zeros(fast.shape, np.float32)
    for r, text in enumerate(texts):
        for term in analyse(text):
            if term in index.counter.vocabulary_:
                slow[r, index.counter.vocabulary_[term]] += 1
    assert np.array_equal(fast.toarray(), slow) and fast.nnz > 10
    # stop words are dropped before phrases are formed (as scikit-learn does), so two words
    # around one still make a phrase; an unknown word between them does not
    vocabulary = index.counter.vocabulary_
    row = index.count(["wind the blades", "wind zebra blades", "wind blades"]).toarray()
    assert [r[vocabulary["wind blades"]] for r in row] == [1.0, 0.0, 1.0]


def test_unit_aggregates_equal_the_plain_mean_best_three_and_maximum() -> None:
    from horizon_match.scoring import _segment_means, _size_buckets, _unit_aggregates

    rng = np.random.default_rng(3)
    sizes = [0, 1, 2, 3, 4, 5, 9, 4, 1, 0, 7]
    matrix = rng.normal(size=(sum(sizes), 6)).astype(np.float32)
    mean, top3, maximum = (np.full((len(sizes), 6), np.nan, np.float32) for _ in range(3))
    _unit_aggregates(matrix, _size_buckets(sizes), mean, top3, maximum)
    start = 0
    for r, size in enumerate(sizes):
        block = matrix[start : start + size]
        start += size
        if size == 0:
            assert np.isnan(mean[r]).all()  # profiles without units are left untouched
            continue
        assert np.allclose(mean[r], block.mean(0), atol=1e-6)
        assert np.allclose(maximum[r], block.max(0))
        assert np.allclose(top3[r], np.sort(block, 0)[-3:].mean(0), atol=1e-6)
    # segment means: normalised, zero for empty segments
    means = _segment_means(matrix, sizes, 6)
    assert not means[0].any() and not means[9].any()
    assert np.allclose(means[4], matrix[6:10].mean(0) / np.linalg.norm(matrix[6:10].mean(0)), atol=1e-6)


def test_a_ranker_scores_gathered_planes_like_the_whole_block() -> None:
    rng = np.random.default_rng(4)
    n = len(FEATURES)
    used = (rng.random(n) > 0.5).astype(np.float32)
    model = _random_hidden_model(rng, used)
    planes = rng.normal(size=(n, 3, 8)).astype(np.float32)
    whole = model.score_planes(planes)
    strided = model.score_planes(planes[:, :, ::2])  # not contiguous: the read planes gathered
    assert np.allclose(strided, whole[:, ::2], atol=1e-4)
    # unread planes do not count, whatever finite values they hold
    planes[used == 0] = 1e6
    assert np.allclose(model.score_planes(planes), whole, atol=1e-3)


def test_explanations_of_a_ranking_pick_the_best_unit_and_passages() -> None:
    embedder = FakeEmbedder(max_tokens=8)  # short passages: units and calls have several
    profiles = [
        Profile("windco", description="We run a bakery in Genoa. Our robots inspect ports.",
                # two passages, the second about wind: "BAKERY." and the sentence after it
                projects=[PastProject(title="BAKERY", summary="Thermoplastic composite offshore "
                                      "wind turbine blades are recycled.")]),
        Profile("soil", keywords=("soil", "microbiome", "farming"),
                projects=[PastProject(title="ROOTS", summary="Soil health for farms.")]),
    ]
    matcher = Matcher(EmbedderSet(embedder))
    prepared = matcher.prepare(profiles, CALLS)
    group = prepared.groups[embedder.name]
    ranked = matcher.rank(prepared, 3)
    seen: set[tuple[str, int]] = set()
    for i, matches in enumerate(ranked):
        assert len(matches) == 3
        units = prepared.profile_units[i]
        for match in matches:
            j = match.call_index
            # the unit most similar to the call, then its passage and the call passage
            # that are most similar, computed one match at a time
            sims = group.unit_vectors[prepared.unit_row[units]] @ group.call_vectors[j]
            unit = prepared.units[int(units[int(np.argmax(sims))])]
            member = np.asarray(embedder.encode(unit.passages), np.float32)
            member /= np.linalg.norm(member, axis=1, keepdims=True)
            pair = member @ group.call_passage_vectors[j].T
            a, b = np.unravel_index(int(np.argmax(pair)), pair.shape)
            exp = match.explanation
            assert exp["member_passage"] == unit.passages[a][:160]
            assert exp["call_passage"] == group.call_passages[j][b][:160]
            seen.add((unit.kind, int(a)))
            one = matcher.explain(prepared, i, j, units, sims, matcher.features(
                prepared, np.array([i]))[0][0, j])
            assert one == exp
    assert ("project", 1) in seen  # a second passage of a project was the best one somewhere
    # the passages of the pairs are compared in batches: any batch size gives the same
    import horizon_match.scoring as scoring

    old_batch = scoring.PASSAGE_PAIR_BATCH
    scoring.PASSAGE_PAIR_BATCH = 1
    try:
        again = matcher.rank(prepared, 3)
    finally:
        scoring.PASSAGE_PAIR_BATCH = old_batch
    assert [[m.explanation for m in r] for r in again] == [[m.explanation for m in r] for r in ranked]
