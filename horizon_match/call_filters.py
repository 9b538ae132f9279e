"""Which calls a member sees before any ranking: open dates, preferences, stated conditions.

Every call left out is counted by reason, so a member can be told "12 calls hidden by your
preferences". Reasons that hide a call:
- `closed`: no deadline ahead of the matching date (and not open or forthcoming);
- `programme`, `type of action`, `budget`: the member's preferences;
- `eligibility`: the call's own text restricts who may apply and the member is not one of them
  (e.g. SMEs only, and the member is a university).
Conditions that only may exclude the member (a coordinator from a Widening country, a topic
restricted to member states for a member in an associated country, a member outside the
countries funded by default) do not hide the call; they become `flags` shown with the match.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np

from horizon_match.countries import EU_MEMBER_STATES, HORIZON_ASSOCIATED_COUNTRIES, normalise_country
from horizon_match.features import action_kind

# Horizon Europe "Widening countries" (Regulation (EU) 2021/695 art. 2(25) and the Work
# Programme General Annexes): the member states with a low R&I performance and the associated
# countries with equivalent performance.
WIDENING_COUNTRIES = frozenset(
    "BG HR CY CZ EE EL HU LV LT MT PL PT RO SK SI AL AM BA FO GE XK MD ME MK RS TN TR UA".split()
)

REASONS = ("closed", "programme", "type of action", "budget", "eligibility")


@dataclass
class CallFacts:
    """What filtering needs to know about a call."""

    identifier: str
    programme: str | None = None
    type_of_action: str | None = None
    budget: float | None = None
    status: str | None = None
    opening_date: datetime | None = None
    deadlines: list[datetime] = field(default_factory=list)
    text: str = ""  # conditions + description, for the eligibility phrases


@dataclass
class MemberFacts:
    organisation_type: str | None = None
    size: str | None = None
    sme: bool | None = None
    country: str | None = None
    preferences: dict = field(default_factory=dict)


def next_deadline(call: CallFacts, as_of: datetime) -> datetime | None:
    ahead = sorted(d for d in call.deadlines if d > as_of)
    return ahead[0] if ahead else None


def is_open(call: CallFacts, as_of: datetime) -> bool:
    """Open or forthcoming with a deadline ahead; a call listing no deadline at all counts
    when its stored status says open or forthcoming (continuously open calls)."""
    if call.deadlines:
        return next_deadline(call, as_of) is not None
    return (call.status or "").lower() in ("open", "forthcoming")


def _preferences(member: MemberFacts) -> tuple[tuple[str, ...], tuple[str, ...], Any, Any]:
    """The member's preferences as the filters compare them: programmes (upper case), kinds
    of action, lowest and highest budget."""
    prefs = member.preferences or {}
    programmes = {str(p).strip().upper() for p in prefs.get("programmes") or [] if str(p).strip()}
    kinds = {action_kind(t) for t in prefs.get("types_of_action") or [] if t} - {""}
    return (tuple(sorted(programmes)), tuple(sorted(kinds)), prefs.get("budget_min"),
            prefs.get("budget_max"))


def preference_reason(call: CallFacts, member: MemberFacts) -> str | None:
    programmes, wanted, low, high = _preferences(member)
    if programmes:
        programme = (call.programme or "").upper()
        prefix = call.identifier.split("-", 1)[0].upper()
        if programme not in programmes and prefix not in programmes:
            return "programme"
    if wanted:
        kind = action_kind(call.type_of_action)
        # a call of unknown type stays visible (flagged): hiding it could hide the one to apply to
        if kind and kind not in wanted:
            return "type of action"
    if call.budget is not None:
        if low is not None and call.budget < float(low):
            return "budget"
        if high is not None and call.budget > float(high):
            return "budget"
    return None


_SME_ONLY = re.compile(
    r"(?:only|exclusively)\s+(?:open\s+to\s+|for\s+|to\s+)?(?:single\s+)?(?:start-?ups?\s+(?:and|or)\s+)?SMEs"
    r"|applicants?\s+must\s+be\s+(?:an?\s+)?(?:start-?ups?\s+(?:or|and)\s+)?SMEs?"
    r"|(?:open|restricted)\s+(?:only\s+)?to\s+(?:single\s+)?(?:start-?ups?\s+(?:and|or)\s+)?SMEs",
    re.IGNORECASE,
)
_MEMBER_STATES_ONLY = re.compile(
    r"(?:limited|restricted)\s+to\s+(?:legal\s+entities\s+established\s+in\s+)?(?:EU\s+)?Member\s+States"
    r"|only\s+legal\s+entities\s+established\s+in\s+(?:EU\s+)?Member\s+States"
    r"|Article\s+22\(5\)",
    re.IGNORECASE,
)
_WIDENING_COORDINATOR = re.compile(
    r"coordinator\s+(?:must|shall)\s+be\s+(?:established\s+)?in\s+(?:a\s+)?Widening\s+countr"
    r"|(?:only|exclusively)\s+(?:legal\s+entities\s+)?(?:established\s+)?in\s+Widening\s+countries",
    re.IGNORECASE,
)


@lru_cache(maxsize=8192)
def _text_says(text: str) -> tuple[bool, bool, bool]:
    """(SME only, member states only, Widening coordinator) of a call text, computed once per
    text: the same call is checked against every member."""
    return (
        bool(_SME_ONLY.search(text)),
        bool(_MEMBER_STATES_ONLY.search(text)),
        bool(_WIDENING_COORDINATOR.search(text)),
    )


def _is_sme(member: MemberFacts) -> bool | None:
    if member.sme is not None:
        return member.sme
    if member.size in ("sme", "micro", "startup"):
        return True
    if member.size == "large" or member.organisation_type in ("university", "research", "public"):
        return False
    return None


def condition_reason(call: CallFacts, member: MemberFacts) -> str | None:
    """'eligibility' when the call's text clearly excludes this kind of member."""
    if call.text and _text_says(call.text)[0] and _is_sme(member) is False:
        return "eligibility"
    return None


def condition_flags(call: CallFacts, member: MemberFacts) -> list[str]:
    """Sentences about conditions that may exclude the member (shown, not hidden)."""
    flags: list[str] = []
    country = normalise_country(member.country) if member.country else None
    text = call.text or ""
    if country and country not in EU_MEMBER_STATES and country not in HORIZON_ASSOCIATED_COUNTRIES:
        flags.append(
            f"organisations in {country} are not funded by default in Horizon Europe "
            "(only EU member states and associated countries are); check Annex B"
        )
    elif country and country not in EU_MEMBER_STATES and _text_says(text)[1]:
        flags.append("the call restricts participation to EU member states; check its conditions")
    if _text_says(text)[2] and country not in WIDENING_COUNTRIES:
        flags.append("the coordinator (or participants) must come from a Widening country")
    if text and _text_says(text)[0] and _is_sme(member) is None:
        flags.append("the call is for SMEs only; check that your organisation qualifies")
    if not action_kind(call.type_of_action) and (member.preferences or {}).get("types_of_action"):
        flags.append("type of action not stated; check it against your preferences")
    return flags


def hidden_reason(call: CallFacts, member: MemberFacts, as_of: datetime) -> str | None:
    """Why `call` is not shown to `member` on `as_of`, or None when it is shown."""
    if not is_open(call, as_of):
        return "closed"
    return preference_reason(call, member) or condition_reason(call, member)


# what `_filter_key` returns: programmes, kinds of action, budget bounds, SME status
FilterKey = tuple[tuple[str, ...], tuple[str, ...], object, object, bool | None]


def _filter_key(member: MemberFacts) -> FilterKey | None:
    """Everything of a member that `hidden_reason` reads: members with the same key see the
    same calls hidden for the same reasons. None when a preference is not a plain value (a
    list as a budget, say: the importer refuses it, a hand-edited database may not), so that
    member is filtered on its own, as `hidden_reason` would do it."""
    key = (*_preferences(member), _is_sme(member))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def visible_calls(
    calls: Sequence[CallFacts], members: Sequence[MemberFacts], as_of: datetime
) -> tuple[np.ndarray, list[dict[str, int]]]:
    """`hidden_reason` of every (member, call): which calls each member sees (a boolean
    members x calls array) and, per member, how many calls each reason hid. Members alike in
    everything the reasons read share one pass over the calls, so a club of thousands of
    members with a few kinds of preferences costs a few passes, not one per member."""
    closed = [not is_open(c, as_of) for c in calls]
    allowed = np.zeros((len(members), len(calls)), dtype=bool)
    hidden: list[dict[str, int]] = []
    seen: dict[FilterKey | int, tuple[np.ndarray, dict[str, int]]] = {}
    for i, member in enumerate(members):
        key: FilterKey | int = _filter_key(member) or i  # an int: this member's own pass
        if key not in seen:
            reasons = [
                "closed" if shut else preference_reason(c, member) or condition_reason(c, member)
                for c, shut in zip(calls, closed, strict=True)
            ]
            seen[key] = (np.array([r is None for r in reasons], dtype=bool),
                         dict(Counter(r for r in reasons if r)))
        row, counts = seen[key]
        allowed[i] = row
        hidden.append(dict(counts))
    return allowed, hidden
