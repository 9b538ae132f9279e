"""Track-record features: where in the work programme a member has won before.

A Horizon Europe topic identifier encodes its place in the work programme:
`HORIZON-CL5-2022-D3-01-02` is programme part CL5 (cluster 5), destination D3, call 01, topic 02.
A member's CORDIS history gives the identifiers of the topics its past projects won; comparing
their year-free structure (part, part/destination, part/destination/call) and their types of
action with a candidate call's own identifier and type of action tells how familiar the call's
corner of the programme is to the member. Topic identity is never compared: past topics never
recur in later calls.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_YEAR = re.compile(r"^(19|20)\d\d$")
_PROGRAMME_PREFIXES = ("HORIZON", "EURATOM", "H2020", "ERC", "DIGITAL", "LIFE", "EDF", "CEF")


@dataclass(frozen=True)
class Place:
    """The year-free position of a topic or call in the work programme ('' when unknown)."""

    part: str = ""  # CL5, JU-SNS, MISS, HLTH, ...
    destination: str = ""  # CL5/D3
    call: str = ""  # CL5/D3/01


def parse_identifier(identifier: str | None) -> Place:
    """Year-free programme part, destination and call of a topic or call identifier."""
    if not identifier:
        return Place()
    tokens = [t for t in identifier.strip().upper().split("-") if t]
    if tokens and tokens[0] in _PROGRAMME_PREFIXES:
        head = tokens[0]
        tokens = tokens[1:]
    else:
        head = ""
    year_at = next((i for i, t in enumerate(tokens) if _YEAR.match(t)), None)
    if year_at is None:
        # e.g. "ERC-2022-ADG" has its year right after the prefix; others have none at all
        if head and tokens:
            return Place(part=f"{head}-{tokens[0]}" if head != "HORIZON" else tokens[0])
        return Place()
    part = "-".join(tokens[:year_at]) or head
    rest = tokens[year_at + 1 :]
    dest_tokens: list[str] = []
    for token in rest:
        if token.isdigit():
            break
        dest_tokens.append(token)
    number = next((t for t in rest if t.isdigit()), "")
    destination = f"{part}/{'-'.join(dest_tokens)}"
    return Place(part=part, destination=destination, call=f"{destination}/{number}")


_ACTION_KINDS = (
    ("COFUND", "COFUND"),
    ("PCP", "PCP"),
    ("PPI", "PCP"),
    ("CSA", "CSA"),
    ("COORDINATION AND SUPPORT", "CSA"),
    ("RIA", "RIA"),
    ("RESEARCH AND INNOVATION", "RIA"),
    ("IA", "IA"),
    ("INNOVATION ACTION", "IA"),
    ("ERC", "ERC"),
    ("MSCA", "MSCA"),
    ("EIC", "EIC"),
    ("PRIZE", "PRIZE"),
)
ACTION_KINDS = ("RIA", "IA", "CSA", "PCP", "COFUND", "ERC", "MSCA", "EIC", "PRIZE", "OTHER")


def action_kind(type_of_action: str | None) -> str:
    """RIA / IA / CSA / ... from a type of action code or name ('HORIZON-JU-RIA', 'HORIZON
    Research and Innovation Actions'); '' when unknown."""
    if not type_of_action:
        return ""
    text = type_of_action.upper().replace("_", "-")
    tokens = set(re.split(r"[^A-Z0-9]+", text))
    for needle, kind in _ACTION_KINDS:
        if (" " in needle and needle in text) or needle in tokens:
            return kind
    if "TMA" in tokens:
        return "MSCA"
    return "OTHER"


ORGANISATION_TYPES = ("company", "university", "research", "public", "other")


@dataclass(frozen=True)
class TrackRecord:
    """Counts of a member's past projects per programme place and type of action."""

    n: int
    parts: Counter[str]
    destinations: Counter[str]
    calls: Counter[str]
    kinds: Counter[str]

    @classmethod
    def of(cls, topics: Sequence[str | None], funding_schemes: Sequence[str | None]) -> TrackRecord:
        places = [parse_identifier(t) for t in topics]
        return cls(
            n=len(places),
            parts=Counter(p.part for p in places if p.part),
            destinations=Counter(p.destination for p in places if p.destination),
            calls=Counter(p.call for p in places if p.call),
            kinds=Counter(k for k in map(action_kind, funding_schemes) if k),
        )


TRACK_FEATURES = (
    "part_share",
    "part_any",
    "dest_share",
    "dest_any",
    "dest_log",
    "call_share",
    "call_any",
    "kind_share",
    "kind_any",
    "history_empty",
)


def track_features(record: TrackRecord, calls: Sequence[tuple[Place, str]]) -> np.ndarray:
    """(len(calls), len(TRACK_FEATURES)) for one member against candidate calls (place, kind)."""
    out = np.zeros((len(calls), len(TRACK_FEATURES)), dtype=np.float32)
    if record.n == 0:
        out[:, TRACK_FEATURES.index("history_empty")] = 1.0
        return out
    n = float(record.n)
    n_kinds = float(sum(record.kinds.values())) or 1.0
    for j, (place, kind) in enumerate(calls):
        part = record.parts.get(place.part, 0) if place.part else 0
        dest = record.destinations.get(place.destination, 0) if place.destination else 0
        call = record.calls.get(place.call, 0) if place.call else 0
        same_kind = record.kinds.get(kind, 0) if kind else 0
        out[j] = (
            part / n,
            1.0 if part else 0.0,
            dest / n,
            1.0 if dest else 0.0,
            math.log1p(dest),
            call / n,
            1.0 if call else 0.0,
            same_kind / n_kinds,
            1.0 if same_kind else 0.0,
            0.0,
        )
    return out
