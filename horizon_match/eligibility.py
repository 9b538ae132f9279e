"""Who may form a consortium for which type of action: the minimum composition rules.

The table follows the Horizon Europe Work Programme General Annexes (2021-2022, Commission
Decision C(2021)1940; 2023-2024, C(2022)7550; the 2025 annexes keep the same rules):
Annex B "Eligibility" lists the countries whose entities are eligible for funding (member
states and associated countries, `horizon_match.countries`) and the standard consortium
composition per type of action, itself taken from Regulation (EU) 2021/695 Article 22(2):
"at least three independent legal entities, each established in a different Member State or
associated country, with at least one of them established in a Member State". Annex H adds
the buyers' group of pre-commercial procurement (PCP) and public procurement of innovative
solutions (PPI) actions. A topic may add conditions of its own ("specific conditions" on
the topic page); those are not parsed here, so a team that passes these checks is eligible
under the standard rules only, and the text says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from horizon_match.countries import (
    EU_MEMBER_STATES,
    HORIZON_ASSOCIATED_COUNTRIES,
    normalise_country,
)


@dataclass(frozen=True)
class EligibilityRule:
    """Minimum composition of a consortium for one kind of action."""

    kind: str  # RIA, IA, CSA, PCP, COFUND, ERC, MSCA-PF, ...
    label: str
    min_entities: int
    # distinct member states / associated countries among the entities counted
    min_countries: int
    # at least this many entities established in an EU member state
    min_member_state: int
    # a single beneficiary is the normal case (ERC, MSCA fellowships, EIC Accelerator, ...)
    single_beneficiary: bool = False
    # size of the core team suggested when none is asked for (see RULES)
    default_size: int = 1
    # extra entities of one organisation type the action needs (PCP/PPI buyers' group)
    min_public_buyers: int = 0
    # a prize or similar: no consortium to build
    no_team: bool = False
    note: str = ""


_MULTI = "at least 3 independent legal entities from 3 different EU member states or associated countries, one of them in a member state"

# kind -> rule. Default sizes are a core team for the lead to complete, smaller than funded
# consortia: the median number of beneficiaries of the 2022 projects in CORDIS is 11 for RIA,
# 16 for IA, 2 for CSA, 8 for MSCA-DN and PCP, 7 for MSCA-SE.
RULES: dict[str, EligibilityRule] = {
    "RIA": EligibilityRule("RIA", "Research and Innovation Action", 3, 3, 1, default_size=7, note=_MULTI),
    "IA": EligibilityRule("IA", "Innovation Action", 3, 3, 1, default_size=7, note=_MULTI),
    "CSA": EligibilityRule(
        "CSA", "Coordination and Support Action", 1, 1, 0, default_size=5,
        note="at least 1 legal entity from an EU member state or associated country",
    ),
    "PCP": EligibilityRule(
        "PCP", "Pre-commercial / public procurement action", 3, 3, 1, default_size=6,
        min_public_buyers=2,
        note=_MULTI + ", with at least 2 public procurers (buyers) from 2 different countries",
    ),
    "COFUND": EligibilityRule(
        "COFUND", "Programme Co-fund Action", 3, 3, 1, default_size=6, note=_MULTI,
    ),
    "MSCA-DN": EligibilityRule(
        "MSCA-DN", "MSCA Doctoral Network", 3, 3, 1, default_size=6, note=_MULTI,
    ),
    "MSCA-SE": EligibilityRule(
        "MSCA-SE", "MSCA Staff Exchanges", 3, 3, 0, default_size=6,
        note="at least 3 independent legal entities from 3 different countries, 2 of them "
        "in EU member states or associated countries",
    ),
    "EIC-PATHFINDER": EligibilityRule(
        "EIC-PATHFINDER", "EIC Pathfinder", 3, 3, 1, default_size=5, note=_MULTI,
    ),
    "ERC": EligibilityRule(
        "ERC", "ERC grant", 1, 1, 0, single_beneficiary=True,
        note="one host institution in an EU member state or associated country",
    ),
    "MSCA-PF": EligibilityRule(
        "MSCA-PF", "MSCA Postdoctoral Fellowship", 1, 1, 0, single_beneficiary=True,
        note="one host organisation in an EU member state or associated country",
    ),
    "MSCA-COFUND": EligibilityRule(
        "MSCA-COFUND", "MSCA COFUND", 1, 1, 0, single_beneficiary=True,
        note="one organisation in an EU member state or associated country",
    ),
    "EIC": EligibilityRule(
        "EIC", "EIC Accelerator / Transition", 1, 1, 0, single_beneficiary=True,
        note="a single company (Accelerator) or a small team (Transition) in an EU member "
        "state or associated country",
    ),
    "PRIZE": EligibilityRule(
        "PRIZE", "prize", 1, 1, 0, single_beneficiary=True, no_team=True,
        note="a prize is awarded to one contestant; there is no consortium to form",
    ),
}
# Unknown types of action are checked against the standard collaborative minimum, the
# strictest common case, rather than waved through.
DEFAULT_RULE = EligibilityRule(
    "OTHER", "type of action not recognised", 3, 3, 1, default_size=6,
    note=_MULTI + " (the standard rule; check the topic's conditions)",
)


def rule_for(type_of_action: str | None, identifier: str | None = None) -> EligibilityRule:
    """The composition rule for a type of action code or name ('HORIZON-RIA', 'HORIZON
    Research and Innovation Actions', 'HORIZON-TMA-MSCA-DN', ...); the topic identifier
    helps when the type is missing (e.g. 'ERC-2026-ADG')."""
    text = f"{type_of_action or ''} {identifier or ''}".upper().replace("_", "-")
    tokens = set(text.replace("-", " ").split())
    if "PRIZE" in tokens or "RECOGNITION" in tokens:
        return RULES["PRIZE"]
    if "MSCA" in tokens or "TMA" in tokens:
        if "DN" in tokens or "DOCTORAL NETWORK" in text:
            return RULES["MSCA-DN"]
        if "SE" in tokens or "STAFF EXCHANGE" in text:
            return RULES["MSCA-SE"]
        if "COFUND" in tokens:
            return RULES["MSCA-COFUND"]
        return RULES["MSCA-PF"]
    if "ERC" in tokens:
        return RULES["ERC"]
    if "EIC" in tokens:
        if "PATHFINDER" in tokens:
            return RULES["EIC-PATHFINDER"]
        return RULES["EIC"]
    if tokens & {"PCP", "PPI"} or "PROCUREMENT" in text:
        return RULES["PCP"]
    if "COFUND" in tokens or "CO-FUND" in text:
        return RULES["COFUND"]
    if "CSA" in tokens or "COORDINATION AND SUPPORT" in text:
        return RULES["CSA"]
    if "RIA" in tokens or "RESEARCH AND INNOVATION" in text:
        return RULES["RIA"]
    if "IA" in tokens or "INNOVATION ACTION" in text:
        return RULES["IA"]
    return DEFAULT_RULE


def eligible_country(country: str | None) -> bool:
    code = normalise_country(country) if country else None
    return code is not None and (code in EU_MEMBER_STATES or code in HORIZON_ASSOCIATED_COUNTRIES)


def country_group(country: str | None) -> str:
    """'member state', 'associated country' or 'third country' (not funded by default)."""
    code = normalise_country(country) if country else None
    if code in EU_MEMBER_STATES:
        return "member state"
    if code in HORIZON_ASSOCIATED_COUNTRIES:
        return "associated country"
    return "third country"


@dataclass(frozen=True)
class TeamEntity:
    """What eligibility needs to know about one team member."""

    key: str
    country: str | None
    organisation_type: str | None = None  # company | university | research | public | other


@dataclass(frozen=True)
class EligibilityCheck:
    eligible: bool
    missing: tuple[str, ...]  # plain sentences, empty when eligible
    countries: tuple[str, ...]  # distinct eligible countries of the team


def check_team(rule: EligibilityRule, team: Sequence[TeamEntity]) -> EligibilityCheck:
    """Does `team` meet `rule`? When not, each sentence says what is still missing.

    Entities from third countries may take part but do not count towards the minimum (they
    are not eligible for funding by default, Annex B).
    """
    missing: list[str] = []
    counted = [e for e in team if eligible_country(e.country)]
    countries = sorted({normalise_country(e.country) or "" for e in counted} - {""})
    in_member_state = sum(1 for e in counted if normalise_country(e.country) in EU_MEMBER_STATES)
    uncounted = [e for e in team if not eligible_country(e.country)]
    if rule.no_team:
        return EligibilityCheck(True, (), tuple(countries))
    if rule.single_beneficiary:
        if not counted:
            missing.append(
                f"needs one organisation established in an EU member state or associated "
                f"country ({rule.label})"
            )
        return EligibilityCheck(not missing, tuple(missing), tuple(countries))
    if len(counted) < rule.min_entities:
        short = rule.min_entities - len(counted)
        missing.append(
            f"needs {short} more partner{'s' if short > 1 else ''}: a {rule.label} requires "
            f"{rule.note}"
        )
    if len(countries) < rule.min_countries:
        short = rule.min_countries - len(countries)
        if short == 1:
            missing.append("needs a partner from another EU member state or associated country")
        else:
            missing.append(
                f"needs partners from {short} more EU member states or associated countries "
                f"(the team covers {', '.join(countries) or 'none'})"
            )
    if in_member_state < rule.min_member_state:
        missing.append("needs at least one partner established in an EU member state")
    if rule.min_public_buyers:
        buyers = [e for e in counted if e.organisation_type == "public"]
        buyer_countries = {normalise_country(e.country) for e in buyers}
        if len(buyers) < rule.min_public_buyers or len(buyer_countries) < rule.min_public_buyers:
            missing.append(
                f"needs {rule.min_public_buyers} public procurers (buyers) from "
                f"{rule.min_public_buyers} different countries"
            )
    if uncounted and missing:
        names = ", ".join(sorted({e.country or "unknown country" for e in uncounted}))
        missing.append(
            f"partners from {names} do not count: only entities in EU member states or "
            "associated countries are eligible for funding by default"
        )
    return EligibilityCheck(not missing, tuple(missing), tuple(countries))
