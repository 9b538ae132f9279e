"""The pure pieces of consortium suggestions: eligibility rules, aspects, the partner pool and
its leave-one-out features, the baselines, the tree model and the team search.

Small hand-built pools and the fake embedder; nothing here touches a database.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from horizon_match.aspects import aspect_sentences, sections, split_aspects
from horizon_match.eligibility import RULES, TeamEntity, check_team, rule_for
from horizon_match.embedding import FakeEmbedder, MemoryCache
from horizon_match.errors import ModelUnavailableError
from horizon_match.partner_pool import (
    PoolOrganisation,
    PoolParticipation,
    PoolProject,
    attach_pool_vectors,
    build_pool,
    pool_from_cordis,
)
from horizon_match.partner_ranking import (
    ALL_FEATURES,
    CallQuery,
    PoolIndex,
    baseline_lead_partners,
    baseline_most_active,
    call_head_text,
    partner_features,
    rank_partners,
)
from horizon_match.teams import Candidate, TeamRequest, build_team
from horizon_match.tree_model import (
    CrossFitted,
    Ensemble,
    from_lightgbm,
    from_sklearn,
    shipped_models,
)

SMALL = Path(__file__).parent / "fixtures" / "consortia" / "cordis_small"
TARGET, SIBLING = "101000008", "101000009"
LEAD = "100000001"


# --- eligibility ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("HORIZON-RIA", "RIA"),
        ("HORIZON  Research and Innovation Actions", "RIA"),
        ("HORIZON-JU-IA", "IA"),
        ("HORIZON Innovation Actions", "IA"),
        ("HORIZON Coordination and Support Actions", "CSA"),
        ("HORIZON-TMA-MSCA-DN", "MSCA-DN"),
        ("HORIZON TMA MSCA Postdoctoral Fellowships - European Fellowships", "MSCA-PF"),
        ("HORIZON ERC Grants", "ERC"),
        ("HORIZON EIC Accelerator", "EIC"),
        ("HORIZON Pre-commercial Procurement", "PCP"),
        ("HORIZON Recognition Prize", "PRIZE"),
        ("HORIZON Programme Cofund Actions", "COFUND"),
        (None, "OTHER"),
    ],
)
def test_rule_for_reads_codes_and_portal_names(text: str | None, kind: str) -> None:
    assert rule_for(text).kind == kind


def test_rule_for_uses_the_identifier_when_the_type_is_missing() -> None:
    assert rule_for(None, "ERC-2026-ADG").kind == "ERC"


def test_ria_needs_three_entities_from_three_countries() -> None:
    rule = RULES["RIA"]
    two_italians = [TeamEntity("a", "IT"), TeamEntity("b", "IT")]
    check = check_team(rule, two_italians)
    assert not check.eligible
    text = " ".join(check.missing)
    assert "1 more partner" in text
    assert "2 more EU member states or associated countries" in text

    almost = [TeamEntity("a", "IT"), TeamEntity("b", "IT"), TeamEntity("c", "DE")]
    check = check_team(rule, almost)
    assert check.missing == ("needs a partner from another EU member state or associated country",)

    ok = [TeamEntity("a", "IT"), TeamEntity("b", "DE"), TeamEntity("c", "NO")]
    assert check_team(rule, ok).eligible


def test_associated_countries_count_but_a_member_state_is_required() -> None:
    rule = RULES["IA"]
    check = check_team(rule, [TeamEntity("a", "NO"), TeamEntity("b", "UK"), TeamEntity("c", "CH")])
    assert not check.eligible
    assert "needs at least one partner established in an EU member state" in check.missing


def test_third_country_partners_do_not_count_and_iso_codes_are_accepted() -> None:
    rule = RULES["RIA"]
    check = check_team(rule, [TeamEntity("a", "IT"), TeamEntity("b", "GR"), TeamEntity("c", "US")])
    assert not check.eligible
    assert any("US" in m and "do not count" in m for m in check.missing)
    assert "EL" in check.countries


def test_csa_and_single_beneficiary_actions() -> None:
    assert check_team(RULES["CSA"], [TeamEntity("a", "IT")]).eligible
    assert check_team(RULES["ERC"], [TeamEntity("a", "IT")]).eligible
    assert not check_team(RULES["ERC"], [TeamEntity("a", "US")]).eligible


def test_pcp_needs_two_public_buyers_from_two_countries() -> None:
    team = [TeamEntity("a", "IT", "public"), TeamEntity("b", "DE", "company"),
            TeamEntity("c", "FR", "company")]
    check = check_team(RULES["PCP"], team)
    assert not check.eligible and any("public procurers" in m for m in check.missing)
    team[1] = TeamEntity("b", "DE", "public")
    assert check_team(RULES["PCP"], team).eligible


# --- aspects ----------------------------------------------------------------------------------

DESCRIPTION = (
    "Expected Outcome:Projects are expected to contribute to all of the following expected "
    "outcomes:Battery cells with solid state electrolytes reach higher energy density for "
    "electric vehicles.Recycling processes recover lithium and cobalt from end of life "
    "battery cells at industrial scale. Scope:Proposals should develop solid state electrolyte "
    "materials and scale up cell manufacturing on pilot lines. Proposals should demonstrate "
    "hydrometallurgical recycling of lithium and cobalt with life cycle assessment. "
    "Proposals should involve social sciences and humanities (SSH) expertise where relevant. "
    "Selected projects are expected to cooperate with other projects funded under this topic."
)


def test_sections_and_boilerplate() -> None:
    parts = sections(DESCRIPTION)
    assert set(parts) == {"expected outcome", "scope"}
    sentences = aspect_sentences(DESCRIPTION)
    assert any("solid state" in s for s in sentences)
    assert not any("SSH" in s or "cooperate with other projects" in s for s in sentences)
    # conditions and advice of the 2026-27 topics, whose rare words made labels such as
    # "does, exclude" or "accordingly, earmark"
    advice = ("Expected Outcome: Robots inspect offshore pipelines with autonomous underwater vehicles. "
              "While the scope prioritises software, it does not exclude the purchase of complementary "
              "equipment. International collaboration is encouraged. Proposals should foresee a "
              "dedicated work package and earmark the appropriate resources accordingly. "
              "Recycling of end-of-life products is excluded from this topic.")
    assert aspect_sentences(advice) == [
        "Robots inspect offshore pipelines with autonomous underwater vehicles."]


def test_split_aspects_groups_by_meaning_and_weights_sum_to_one() -> None:
    emb = FakeEmbedder()
    aspects = split_aspects("Battery cells", DESCRIPTION, emb.encode)
    assert 2 <= len(aspects) <= 6
    assert abs(sum(a.weight for a in aspects) - 1.0) < 1e-6
    assert len({a.label for a in aspects}) == len(aspects)
    for a in aspects:
        assert abs(float(np.linalg.norm(a.vector)) - 1.0) < 1e-5
    # deterministic
    again = split_aspects("Battery cells", DESCRIPTION, emb.encode)
    assert [a.label for a in again] == [a.label for a in aspects]


def test_a_call_without_description_has_one_aspect_its_title() -> None:
    emb = FakeEmbedder()
    aspects = split_aspects("Quantum sensing for navigation", "", emb.encode)
    assert len(aspects) == 1 and aspects[0].weight == 1.0
    assert "Quantum sensing" in aspects[0].label
    nothing = split_aspects("", "", emb.encode)
    assert len(nothing) == 1 and nothing[0].label == "The call"


def test_call_head_text_skips_empty_and_repeated_parts() -> None:
    assert call_head_text("A title", "", "A title") == "A title"
    assert call_head_text("T", "D", "C") == "T. D. C"


# --- pool and leave-one-out -------------------------------------------------------------------


def _cache() -> MemoryCache:
    return MemoryCache(FakeEmbedder())


def _call(cache: MemoryCache) -> CallQuery:
    return CallQuery(
        vector=cache.encode(["Robot learning for agile production"])[0],
        identifier="HORIZON-CL4-2022-DIGITAL-EMERGING-01-02",
        type_of_action="HORIZON-RIA",
    )


def test_pool_from_cordis_keeps_beneficiaries_only() -> None:
    pool = pool_from_cordis(SMALL)
    assert pool.find("100000012") is None  # associated partner only
    assert len(pool) == 11
    assert len(pool.projects) == 11
    lead = pool.find(LEAD)
    assert lead is not None
    assert pool.coordinated[lead] == 2  # MANIPULATE and AGILEROB
    assert pool.activity[lead] == 4


def _without(folder: Path, tmp: Path, drop: set[str]) -> Path:
    tmp.mkdir()
    for name in ("projects.csv", "organizations.csv"):
        with (folder / name).open(newline="") as fh:
            rows = list(csv.reader(fh))
        with (tmp / name).open("w", newline="") as fh:
            csv.writer(fh).writerows([rows[0], *(r for r in rows[1:] if r[0] not in drop)])
    return tmp


def test_leaving_projects_out_equals_never_having_them(tmp_path: Path) -> None:
    """Masking the target (and its topic sibling) gives exactly the features of a pool
    built without them: nothing of the left-out projects leaks into any feature."""
    cache = _cache()
    call = _call(cache)
    full = pool_from_cordis(SMALL)
    attach_pool_vectors(full, cache)
    cut = pool_from_cordis(_without(SMALL, tmp_path / "cut", {TARGET, SIBLING}))
    attach_pool_vectors(cut, cache)
    assert cut.find("100000011") is None  # known only from the target project
    m_full, act_full = partner_features(
        PoolIndex.build(full), call, full.find(LEAD), full.project_rows([TARGET, SIBLING])
    )
    m_cut, act_cut = partner_features(PoolIndex.build(cut), call, cut.find(LEAD))
    for org in cut.orgs:
        i, j = full.find(org.key), cut.find(org.key)
        assert np.allclose(m_full[i], m_cut[j], atol=1e-5), (
            org.key, [ALL_FEATURES[k] for k in np.flatnonzero(~np.isclose(m_full[i], m_cut[j], atol=1e-5))]
        )
        assert act_full[i] == act_cut[j]
    assert act_full[full.find("100000011")] == 0


def test_baselines_rank_by_activity_and_by_history_with_the_lead() -> None:
    cache = _cache()
    pool = pool_from_cordis(SMALL)
    attach_pool_vectors(pool, cache)
    index = PoolIndex.build(pool)
    exclude = pool.project_rows([TARGET, SIBLING])
    lead = pool.find(LEAD)
    keys = [pool.orgs[i].key for i in baseline_lead_partners(index, lead, exclude)]
    assert LEAD not in keys and "100000011" not in keys
    # Munich and Lyon shared MANIPULATE and COBOTFAB with the lead, Warsaw MANIPULATE and
    # SURGEBOT; ties go to the more active (Munich and Warsaw: 3 projects left, Lyon 2)
    assert keys[:3] == ["100000002", "100000007", "100000003"]
    assert keys[3] == "100000009"
    active = [pool.orgs[i].key for i in baseline_most_active(index, None, exclude)]
    counts = [pool.activity[pool.find(k)] for k in active]
    # activity without the left-out projects never increases down the list
    left = [pool.activity[pool.find(k)] - sum(1 for j in exclude if pool.find(k) in pool.project_orgs(j))
            for k in active]
    assert left == sorted(left, reverse=True)
    assert len(counts) == 10


def test_members_without_history_stay_in_the_pool() -> None:
    orgs = [
        PoolOrganisation("m1", "Member One", "IT", "company", True, member_id="one"),
        PoolOrganisation("x", "Ext", "DE", "research"),
        PoolOrganisation("y", "Nobody", "FR", "research"),
    ]
    projects = [PoolProject("p1", "t", "text one")]
    pool = build_pool(orgs, projects, [PoolParticipation("p1", "x", "coordinator")],
                      keep_orgs_without_projects=False)
    assert [o.key for o in pool.orgs] == ["m1", "x"]


def test_a_lead_outside_the_pool_is_ranked_without_collaboration_features() -> None:
    cache = _cache()
    pool = pool_from_cordis(SMALL)
    attach_pool_vectors(pool, cache)
    index = PoolIndex.build(pool)
    matrix, _ = partner_features(index, _call(cache), None, pool.project_rows([TARGET, SIBLING]))
    for name in ("shared_with_lead", "two_hop", "same_country", "country_affinity",
                 "lead_expanded_vote", "profile_lead", "shared_lead_coordinated",
                 "coordinated_with_lead"):
        assert not matrix[:, ALL_FEATURES.index(name)].any(), name
    ranked = rank_partners(_call(cache), None, index, exclude=pool.project_rows([TARGET, SIBLING]))
    keys = [pool.orgs[i].key for i in ranked.order]
    # every organisation with a project left is a candidate, the one known only from the
    # left-out projects is not
    assert len(keys) == len(set(keys)) == 10 and "100000011" not in keys
    assert np.isfinite(ranked.scores[ranked.order]).all()


# --- the tree model ---------------------------------------------------------------------------


def test_the_shipped_model_was_trained_on_the_features_the_code_computes() -> None:
    """A model file trained on other feature definitions would still score (the names are
    the same) but with thresholds that no longer mean anything; it is refused instead."""
    from horizon_match.partner_ranking import FEATURES_VERSION, check_model

    models = shipped_models()
    assert set(models) == {"combined", "text", "collaboration"}
    for model in models.values():
        check_model(model)
        assert model.meta["features_version"] == FEATURES_VERSION
        assert model.meta.get("features") == list(ALL_FEATURES)
        assert set(model.features) <= set(ALL_FEATURES)
    cache = _cache()
    pool = pool_from_cordis(SMALL)
    attach_pool_vectors(pool, cache)
    index = PoolIndex.build(pool)
    combined = models["combined"]
    for meta in ({}, {**combined.meta, "features_version": FEATURES_VERSION - 1}):
        stale = CrossFitted("combined", combined.folds, meta)
        with pytest.raises(ModelUnavailableError, match="retrain it with"):
            rank_partners(_call(cache), pool.find(LEAD), index, models={"combined": stale})




def test_tree_ensemble_reproduces_scikit_learn_exactly() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(1)
    X = rng.random((400, 3))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0.7).astype(int)
    clf = HistGradientBoostingClassifier(max_iter=15, max_leaf_nodes=7).fit(X, y)
    ens = from_sklearn(clf, ["a", "b", "c"], ["T1"])
    again = Ensemble.from_dict(json.loads(json.dumps(ens.to_dict())))
    assert np.allclose(again.predict(X), clf.decision_function(X), atol=1e-5)
    assert again.train_topics == frozenset({"T1"})


def test_a_lightgbm_dump_is_walked_like_lightgbm_walks_it() -> None:
    """tree_model.from_lightgbm reads Booster.dump_model() without LightGBM: a hand-written
    dump (go left when x <= threshold) and, when LightGBM is installed, a trained ranker."""
    dump = {"tree_info": [
        {"tree_structure": {
            "split_feature": 1, "threshold": 0.5, "decision_type": "<=", "missing_type": "None",
            "left_child": {"leaf_value": -1.0},
            "right_child": {"split_feature": 0, "threshold": 2.0, "decision_type": "<=",
                            "missing_type": "None", "left_child": {"leaf_value": 0.25},
                            "right_child": {"leaf_value": 3.0}}}},
        {"tree_structure": {"leaf_value": 0.5}},
    ]}
    ens = from_lightgbm(dump, ["a", "b"], ["T"])
    X = np.array([[0.0, 0.5], [2.0, 0.6], [2.5, 0.6], [9.0, -1.0]], dtype=np.float32)
    again = Ensemble.from_dict(json.loads(json.dumps(ens.to_dict())))
    assert np.allclose(again.predict(X), [-0.5, 0.75, 3.5, -0.5])
    assert again.train_topics == frozenset({"T"})
    with pytest.raises(ValueError, match="numerical"):
        from_lightgbm({"tree_info": [{"tree_structure": {
            **dump["tree_info"][0]["tree_structure"], "decision_type": "=="}}]}, ["a", "b"], [])

    lightgbm = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(2)
    X = rng.random((600, 4)).astype(np.float32)
    X[:, 3] = np.round(X[:, 3] * 4) / 4  # ties and zeros, as in the coarsened features
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.random(600) * 0.3 > 0.9).astype(int)
    params = dict(objective="lambdarank", num_leaves=7, min_data_in_leaf=5, num_threads=1,
                  seed=0, deterministic=True, verbose=-1, lambdarank_truncation_level=20)
    booster = lightgbm.train(params, lightgbm.Dataset(X, y, group=[100] * 6), num_boost_round=20)
    ens = Ensemble.from_dict(json.loads(json.dumps(
        from_lightgbm(booster.dump_model(), list("abcd"), []).to_dict())))
    assert np.allclose(ens.predict(X), booster.predict(X), atol=1e-5)


# --- team search ------------------------------------------------------------------------------


def _cand(i: int, key: str, country: str, fit: list[float], *, rank: float = 0.5,
          member: str | None = None, kind: str = "research", sme: bool = False) -> Candidate:
    return Candidate(index=i, key=key, name=key.upper(), country=country, organisation_type=kind,
                     sme=sme, fit=np.array(fit, dtype=np.float32), rank_score=rank,
                     member_id=member, coordinated=1)


def _request(n: int, kind: str = "RIA", aspects: int = 3) -> TeamRequest:
    return TeamRequest(tuple(f"aspect {a}" for a in range(aspects)),
                       np.full(aspects, 1.0 / aspects), RULES[kind], n)


def test_team_prefers_complementary_partners_over_near_copies() -> None:
    lead = _cand(0, "lead", "IT", [0.6, 0.1, 0.1], member="lead")
    copies = [_cand(i, f"copy{i}", c, [0.62, 0.1, 0.1], rank=0.9, kind="company")
              for i, c in ((1, "DE"), (2, "FR"))]
    b = _cand(3, "b", "DE", [0.1, 0.6, 0.1], rank=0.4, kind="company")
    c = _cand(4, "c", "FR", [0.1, 0.1, 0.6], rank=0.4)
    cands = [*copies, b, c]
    shared = np.zeros((5, 5))
    team = build_team(lead, cands, shared, _request(3))
    assert team.keys() == ("lead", "b", "c")
    assert team.eligible
    roles = {m.candidate.key: (m.role, m.aspects) for m in team.members}
    assert roles["lead"] == ("coordinator", ["aspect 0"])
    assert roles["b"] == ("partner", ["aspect 1"])
    assert roles["c"] == ("partner", ["aspect 2"])


def test_club_members_come_first_when_they_add_competence() -> None:
    lead = _cand(0, "lead", "IT", [0.6, 0.0], member="lead")
    member = _cand(1, "member", "IT", [0.0, 0.5], rank=0.1, member="m2")
    external = _cand(2, "ext", "DE", [0.0, 0.55], rank=1.0)
    others = [_cand(3, "de", "DE", [0.1, 0.1]), _cand(4, "fr", "FR", [0.1, 0.1])]
    team = build_team(lead, [member, external, *others], np.zeros((5, 5)), _request(4, aspects=2))
    assert team.keys()[1] == "member"
    # the two places left go to partners from new countries, since the club is all Italian
    assert {_ for _ in team.keys()[2:]} <= {"ext", "de", "fr"}
    assert team.eligible


def test_free_places_are_kept_for_the_countries_eligibility_needs() -> None:
    lead = _cand(0, "lead", "IT", [0.5], member="lead")
    italians = [_cand(i, f"it{i}", "IT", [0.9], rank=1.0, member=f"m{i}") for i in (1, 2)]
    de = _cand(3, "de", "DE", [0.2], rank=0.1)
    fr = _cand(4, "fr", "FR", [0.2], rank=0.1)
    team = build_team(lead, [*italians, de, fr], np.zeros((5, 5)), _request(3, aspects=1))
    assert set(team.keys()) == {"lead", "de", "fr"}
    assert team.eligible


def test_an_italian_only_pool_says_what_is_missing() -> None:
    lead = _cand(0, "lead", "IT", [0.5, 0.1], member="lead")
    others = [_cand(i, f"it{i}", "IT", [0.1, 0.5], member=f"m{i}") for i in (1, 2, 3)]
    team = build_team(lead, others, np.zeros((4, 4)), _request(4, aspects=2))
    assert not team.eligible
    assert any("2 more EU member states" in m for m in team.missing)


def test_shared_history_breaks_ties() -> None:
    lead = _cand(0, "lead", "IT", [0.5], member="lead")
    a = _cand(1, "a", "DE", [0.3])
    b = _cand(2, "b", "DE", [0.3])
    shared = np.zeros((3, 3))
    shared[0, 2] = shared[2, 0] = 2
    team = build_team(lead, [a, b], shared, _request(2, aspects=1))
    assert team.keys() == ("lead", "b")
    assert any("worked before with LEAD" in r for r in team.members[1].reasons)


def test_size_below_the_minimum_gives_an_ineligible_team_with_the_reason() -> None:
    lead = _cand(0, "lead", "IT", [0.5], member="lead")
    team = build_team(lead, [_cand(1, "a", "DE", [0.3])], np.zeros((2, 2)), _request(2, aspects=1))
    assert len(team.members) == 2 and not team.eligible
    assert any("1 more partner" in m for m in team.missing)


def test_the_mix_the_action_needs_is_reported() -> None:
    lead = _cand(0, "lead", "IT", [0.5], member="lead", kind="research")
    de = _cand(1, "de", "DE", [0.3], kind="university")
    fr = _cand(2, "fr", "FR", [0.3], kind="research")
    team = build_team(lead, [de, fr], np.zeros((3, 3)), _request(3, kind="IA", aspects=1))
    assert team.eligible
    assert any("industrial partner" in m for m in team.missing)


def test_every_reason_teams_write_has_an_italian_wording() -> None:
    """Italian emails reword the partners' reasons (horizon_match.digest.team_reason): a
    sentence changed here without its pattern there would reach Italian members in English."""
    from dataclasses import replace

    from horizon_match.digest import team_reason

    lead = _cand(0, "lead", "IT", [0.5, 0.1], member="lead")
    outsider_lead = replace(_cand(0, "lead", "IT", [0.5, 0.1]), projects=3)
    pool = [
        _cand(1, "member", "IT", [0.1, 0.5], member="m2"),
        replace(_cand(2, "de", "DE", [0.3, 0.3], kind="company", sme=True), projects=4),
        replace(_cand(3, "fr", "FR", [0.2, 0.4], kind="public"), projects=1),
        _cand(4, "nl", "NL", [0.1, 0.6], kind="company"),
    ]
    shared = np.zeros((5, 5))
    shared[0, 2] = shared[2, 0] = 1
    reasons = set()
    for first in (lead, outsider_lead):
        for kind in ("RIA", "IA", "CSA"):
            team = build_team(first, pool, shared, _request(4, kind=kind, aspects=2))
            reasons.update(r for m in team.members for r in m.reasons)
    starts = {r.split(" ")[0] for r in reasons}
    assert {"club", "leads", "worked", "brings", "adds"} <= starts, reasons
    for reason in reasons:
        assert team_reason(reason, "it") != reason, reason


def test_every_missing_line_has_an_italian_wording() -> None:
    """Italian emails reword what a team still lacks (horizon_match.digest.team_missing)."""
    from dataclasses import replace

    from horizon_match.digest import team_missing
    from horizon_match.eligibility import DEFAULT_RULE

    lines = set()
    for rule in (*RULES.values(), DEFAULT_RULE):
        for team in ([], [TeamEntity("us", "US")], [TeamEntity("it", "IT"), TeamEntity("us", "US")],
                     [TeamEntity("a", "IT"), TeamEntity("b", "IT"), TeamEntity("c", "IT"),
                      TeamEntity("d", "IT", "public")],
                     [TeamEntity("a", "NO"), TeamEntity("b", "CH"), TeamEntity("c", "IS")]):
            lines.update(check_team(rule, team).missing)
    # the team builder's own lines: too few partners found, a kind the action usually needs
    lead = _cand(0, "lead", "IT", [0.5, 0.1], member="lead", kind="company")
    for kind in ("RIA", "IA", "CSA", "PCP"):
        for pool in ([], [replace(_cand(1, "de", "DE", [0.3, 0.3]), organisation_type="other")]):
            lines.update(build_team(lead, pool, np.zeros((2, 2)), _request(4, kind=kind, aspects=2)).missing)
    starts = {" ".join(line.split(" ")[:2]) for line in lines}
    assert {"needs one", "needs 1", "needs 2", "needs a", "needs partners", "needs at",
            "partners from", "only 1", "no university"} <= starts, sorted(lines)
    for line in lines:
        italian = team_missing(line, "it")
        assert italian != line and "needs" not in italian and " the " not in italian, line
