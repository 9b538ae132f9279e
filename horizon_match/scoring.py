"""The one scoring path: member profiles x calls -> features -> scores -> ranked, explained.

`Matcher` is used by `run_matching` (stored members x stored calls) and by the CORDIS
evaluation (organisations' past projects x a call year's topics), so what is measured is
what members get.

Signals, per (profile, call):
- dense: each profile unit (a description passage, the keyword list, a past project's title and
  opening) is compared with the call (its title, destination and call title, plus its scope
  passages); the unit scores are aggregated as mean, mean of the best three and maximum, so
  twenty unrelated projects do not drown a relevant one and one stray sentence does not win
  alone;
- lexical: TF-IDF cosine of the whole profile and of each unit with the call text, so exact
  technical terms count;
- destination profiles (learned from CORDIS outcomes): similarity of the profile with the
  projects funded in the call's work-programme destination and programme part, and how
  broad the call is (its mean and maximum similarity to all destination profiles: a call
  that resembles everything funded is a different bet from one narrow line of work);
- track record: share of the member's past projects in the call's programme part,
  destination, call series and type of action;
- the call's type of action and the member's kind of organisation;
- per-member standardised versions of the similarity signals (what stands out for this
  member).
A `RankerModel` (learned on CORDIS outcomes, `horizon_match.training`) turns them into a score.
Without one, fixed weights on the standardised signals are used.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any

import numpy as np
from scipy import sparse
from threadpoolctl import threadpool_limits

from horizon_match.embedding import (
    EmbedderSet,
    EmbeddingCache,
    EncodeStats,
    MemoryCache,
    split_passages,
)
from horizon_match.features import ORGANISATION_TYPES, TRACK_FEATURES, action_kind, parse_identifier
from horizon_match.lexical import LexicalIndex, shared_terms_of_pairs, shared_terms_of_rows
from horizon_match.progress import NULL_PROGRESS, Progress
from horizon_match.ranker import DestinationProfiles, RankerModel
from horizon_match.translations import STRINGS, reason_line, track_sentence

# a past project is embedded by its first passages: title and the opening of its summary say
# what it is about (measured on CORDIS: as good as the whole text, at a third of the cost)
PROJECT_PASSAGES = 2
DESCRIPTION_PASSAGES = 8
CALL_PASSAGES = 8
CHUNK_PROFILES = 128
CHUNK_UNITS = 4096
SHORT_TEXT_MEMO = 50_000
# profiles prepared at a time by rank_profiles: big enough that a batch's products are large,
# small enough that preparing the first one (which nothing overlaps) is short
PREPARE_BATCH = 1024
PASSAGE_PAIR_BATCH = 2048

DENSE_FEATURES = ("dense_mean", "dense_top3", "dense_max")
LEXICAL_FEATURES = ("lexical", "lexical_unit_mean", "lexical_unit_top3")
DESTINATION_FEATURES = (
    "dest_profile", "part_profile", "dest_profile_max", "call_hub_mean", "call_hub_max",
)
# the track-record signals, computed per member in features.py
TRACK_NAMES = TRACK_FEATURES
CALL_KINDS = ("RIA", "IA", "CSA", "PCP", "COFUND")
CALL_FEATURES = (
    *(f"kind_{k}" for k in CALL_KINDS),
    "kind_other",
    "kind_unknown",
    "two_stage",
    "joint_undertaking",
    "dest_known",
)
ORG_FEATURES = tuple(f"org_{t}" for t in ORGANISATION_TYPES)
ORG_KIND_FEATURES = tuple(f"org_{t}_x_{k}" for t in ORGANISATION_TYPES for k in ("RIA", "IA", "CSA"))
STANDARDISED = DENSE_FEATURES + LEXICAL_FEATURES + DESTINATION_FEATURES
Z_FEATURES = tuple(f"z_{n}" for n in STANDARDISED)
FEATURES: tuple[str, ...] = (
    DENSE_FEATURES
    + LEXICAL_FEATURES
    + DESTINATION_FEATURES
    + TRACK_NAMES
    + CALL_FEATURES
    + ORG_FEATURES
    + ORG_KIND_FEATURES
    + Z_FEATURES
)
_F = {name: i for i, name in enumerate(FEATURES)}

# Used when no learned model is available: the standardised similarities and the track record,
# in the proportions the learned model ended up giving them (see BENCHMARKS.md).
FALLBACK_WEIGHTS = {
    "z_dense_mean": 0.6,
    "z_dense_top3": 0.3,
    "z_lexical": 0.25,
    "z_lexical_unit_top3": 0.2,
    "dest_share": 2.0,
    "part_share": 1.0,
    "call_share": 1.0,
    "kind_share": 0.5,
}


# --- inputs -----------------------------------------------------------------------------------


@dataclass
class PastProject:
    """A project in a member's history (its own file or CORDIS)."""

    title: str
    summary: str = ""
    topic: str | None = None  # topic identifier it was funded under, when known
    funding_scheme: str | None = None  # type of action, e.g. HORIZON-RIA
    keywords: str = ""
    fields: tuple[str, ...] = ()  # EuroSciVoc labels


@dataclass
class Profile:
    """What a member (or an evaluated organisation) is matched on."""

    key: str
    description: str = ""
    keywords: tuple[str, ...] = ()
    projects: list[PastProject] = field(default_factory=list)
    organisation_type: str | None = None  # company | university | research | public | other
    country: str | None = None
    language: str | None = None

    def is_empty(self) -> bool:
        return not (
            self.description.strip()
            or any(k.strip() for k in self.keywords)
            or any((p.title + p.summary).strip() for p in self.projects)
        )


@dataclass
class CallDoc:
    """What a call is matched on."""

    key: str  # topic identifier
    title: str
    destination: str = ""
    call_title: str = ""
    description: str = ""  # scope / expected outcomes, plain text
    type_of_action: str | None = None
    keywords: tuple[str, ...] = ()
    call_identifier: str | None = None
    two_stage: bool = False

    def header(self) -> str:
        parts = [self.title, self.destination, self.call_title]
        return ". ".join(p.strip().rstrip(".") for p in parts if p and p.strip())

    def lexical_text(self) -> str:
        return "\n".join(x for x in (self.header(), self.description, "; ".join(self.keywords)) if x)

    def place(self) -> Any:
        place = parse_identifier(self.key)
        if not place.part and self.call_identifier:
            place = parse_identifier(self.call_identifier)
        return place


@dataclass
class _Unit:
    kind: str  # description | keywords | project
    label: str
    passages: list[str]  # embedded; the unit vector is their normalised mean
    lexical_text: str


@dataclass
class _Group:
    """One embedder: the calls embedded with it and the units of the profiles it serves."""

    name: str
    cache: EmbeddingCache | MemoryCache
    call_vectors: np.ndarray  # (n_calls, dim)
    call_passages: list[list[str]]
    call_passage_vectors: list[np.ndarray]
    unit_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    # built when explanations first need it and shared by every batch of profiles (a batch's
    # group is a copy with its own unit vectors): "block" -> the call passage vectors
    # zero-padded into one (n_calls, longest, dim) block and its mask
    memo: dict[str, Any] = field(default_factory=dict)


@dataclass
class CallSide:
    """Everything about the calls of a run: prepared once, shared by every batch of profiles."""

    calls: list[CallDoc]
    groups: dict[str, _Group]  # per embedder; their unit_vectors are empty
    lexical: LexicalIndex
    call_tfidf: sparse.csr_matrix
    call_tfidf_t: sparse.csr_matrix
    code_position: dict[str, dict[str, int]]  # part/dest/call/kind -> code -> column
    call_codes: dict[str, np.ndarray]
    call_places: list[Any]
    call_static: np.ndarray  # (n_calls, len(CALL_FEATURES) - 1) without dest_known
    call_hubs: dict[str, tuple[DestinationProfiles, np.ndarray, np.ndarray]] = field(
        default_factory=dict
    )


@dataclass
class Prepared:
    """Everything the features need that does not depend on the learned model: the call side
    of the run and one batch of profiles prepared against it."""

    side: CallSide
    profiles: list[Profile]
    groups: dict[str, _Group]  # the side's groups with this batch's unit vectors
    profile_group: list[str]
    profile_units: list[np.ndarray]  # unit ids per profile
    units: list[_Unit]
    unit_row: np.ndarray  # row of each unit in its group's unit_vectors
    unit_tfidf: sparse.csr_matrix
    profile_tfidf: sparse.csr_matrix
    track_counts: dict[str, np.ndarray]  # part/dest/call/kind -> (n_profiles, n_codes + 1)
    track_n: np.ndarray  # projects with a known topic per profile
    kind_n: np.ndarray
    org_onehot: np.ndarray  # (n_profiles, len(ORGANISATION_TYPES))
    stats: EncodeStats

    # the call side, as the features read it
    @property
    def calls(self) -> list[CallDoc]:
        return self.side.calls

    @property
    def lexical(self) -> LexicalIndex:
        return self.side.lexical

    @property
    def call_tfidf(self) -> sparse.csr_matrix:
        return self.side.call_tfidf

    @property
    def call_tfidf_t(self) -> sparse.csr_matrix:
        return self.side.call_tfidf_t

    @property
    def call_codes(self) -> dict[str, np.ndarray]:
        return self.side.call_codes

    @property
    def call_places(self) -> list[Any]:
        return self.side.call_places

    @property
    def call_static(self) -> np.ndarray:
        return self.side.call_static

    @property
    def call_hubs(self) -> dict[str, tuple[DestinationProfiles, np.ndarray, np.ndarray]]:
        return self.side.call_hubs


@dataclass
class RankedCall:
    call_index: int
    score: float
    explanation: dict[str, Any] = field(default_factory=dict)


# --- the matcher ------------------------------------------------------------------------------


class Matcher:
    """Scores profiles against calls; one instance per run (it keeps the vector caches)."""

    def __init__(
        self,
        embedders: EmbedderSet,
        caches: dict[str, EmbeddingCache | MemoryCache] | None = None,
        model: RankerModel | None = None,
        destinations: DestinationProfiles | None = None,
        *,
        threads: int = 2,
        chunk_size: int = CHUNK_PROFILES,
    ) -> None:
        self.embedders = embedders
        self.threads = threads
        self.chunk_size = chunk_size
        self.caches = caches if caches is not None else {
            e.name: MemoryCache(e) for e in embedders.all()
        }
        self.model = model
        # destination profiles: given, else those of the learned model
        self.destinations = destinations or (model.destinations if model is not None else None)
        self._passages: dict[tuple[str, str], list[str]] = {}

    def derive(
        self, model: RankerModel | None = None, destinations: DestinationProfiles | None = None
    ) -> Matcher:
        """Another matcher with the same embedders, vector caches and passage memory."""
        other = Matcher(
            self.embedders, self.caches, model, destinations, threads=self.threads,
            chunk_size=self.chunk_size,
        )
        other._passages = self._passages
        return other

    def split(self, texts: Sequence[str], embedder: Any) -> list[list[str]]:
        """split_passages with a memory: the same text is tokenised once per run."""
        missing = list(dict.fromkeys(t for t in texts if (embedder.name, t) not in self._passages))
        if missing:
            for text, passages in zip(missing, split_passages(missing, embedder), strict=True):
                self._passages[(embedder.name, text)] = passages
        return [self._passages[(embedder.name, t)] for t in texts]

    def project_vectors(self, projects: Sequence[PastProject]) -> np.ndarray:
        """Vectors of past projects as the default embedder sees them in profiles."""
        embedder = self.embedders.default
        passages = [
            ps[:PROJECT_PASSAGES]
            for ps in self.split([_project_text(p) for p in projects], embedder)
        ]
        flat = [p for ps in passages for p in ps]
        vectors = self._cache(embedder.name).encode(flat) if flat else np.zeros((0, embedder.dim), np.float32)
        return _segment_means(vectors, [len(ps) for ps in passages], embedder.dim)

    def _cache(self, name: str) -> EmbeddingCache | MemoryCache:
        if name not in self.caches:
            embedder = next(e for e in self.embedders.all() if e.name == name)
            self.caches[name] = MemoryCache(embedder)
        return self.caches[name]

    # --- preparation ------------------------------------------------------------------------

    def prepare(
        self,
        profiles: Sequence[Profile],
        calls: Sequence[CallDoc],
        progress: Progress = NULL_PROGRESS,
    ) -> Prepared:
        """Split, embed (through the caches) and index every text of `profiles` and `calls`."""
        profiles = list(profiles)
        before = self._stats_snapshot()
        side = self.prepare_calls(calls, self._group_names(profiles), progress)
        prepared = self.prepare_profiles(side, profiles, progress)
        prepared.stats = self._stats_since(before)
        return prepared

    def _group_names(self, profiles: Sequence[Profile]) -> list[str]:
        names = [self.embedders.for_language(p.language).name for p in profiles]
        return list(dict.fromkeys(names or [self.embedders.default.name]))

    def _stats_snapshot(self) -> dict[str, EncodeStats]:
        return {n: _copy_stats(c.stats) for n, c in self.caches.items()}

    def _stats_since(self, before: dict[str, EncodeStats]) -> EncodeStats:
        stats = EncodeStats()
        for name, cache in self.caches.items():
            old = before.get(name, EncodeStats())
            stats.add(
                EncodeStats(
                    cache.stats.requested - old.requested,
                    cache.stats.cached - old.cached,
                    cache.stats.computed - old.computed,
                )
            )
        return stats

    def prepare_calls(
        self, calls: Sequence[CallDoc], group_names: Sequence[str], progress: Progress = NULL_PROGRESS
    ) -> CallSide:
        """The call side of a run: embedded with each embedder of `group_names`, the lexical
        vocabulary and IDF, the codes the track-record signals compare."""
        calls = list(calls)
        groups = {name: self._prepare_calls(name, calls, progress) for name in group_names}
        lexical = LexicalIndex()
        call_tfidf = lexical.weigh(lexical.fit([c.lexical_text() for c in calls]))
        code_position, call_codes, call_places = _call_codes(calls)
        call_static = np.zeros((len(calls), len(CALL_FEATURES) - 1), dtype=np.float32)
        for j, call in enumerate(calls):
            kind = action_kind(call.type_of_action)
            if kind in CALL_KINDS:
                call_static[j, CALL_KINDS.index(kind)] = 1.0
            elif kind:
                call_static[j, len(CALL_KINDS)] = 1.0
            else:
                call_static[j, len(CALL_KINDS) + 1] = 1.0
            call_static[j, len(CALL_KINDS) + 2] = float(
                call.two_stage or "two-stage" in call.key.lower()
            )
            call_static[j, len(CALL_KINDS) + 3] = float(
                call.key.upper().startswith(("HORIZON-JU-", "HORIZON-JTI-"))
            )
        return CallSide(
            calls=calls,
            groups=groups,
            lexical=lexical,
            call_tfidf=call_tfidf,
            call_tfidf_t=call_tfidf.T.tocsr(),
            code_position=code_position,
            call_codes=call_codes,
            call_places=call_places,
            call_static=call_static,
        )

    def prepare_profiles(
        self, side: CallSide, profiles: Sequence[Profile], progress: Progress = NULL_PROGRESS
    ) -> Prepared:
        """`profiles` split, embedded (through the caches) and indexed against `side`. Nothing
        here depends on other profiles, so a big run prepares a batch at a time."""
        profiles = list(profiles)
        before = self._stats_snapshot()
        profile_group = [self.embedders.for_language(p.language).name for p in profiles]
        missing = [n for n in dict.fromkeys(profile_group) if n not in side.groups]
        if missing:
            raise ValueError(f"the calls were not prepared for the embedder(s) {missing}")

        # units, deduplicated across profiles of the same group
        units: list[_Unit] = []
        unit_group: list[str] = []
        seen: dict[tuple[str, tuple[str, ...], str], int] = {}
        profile_units: list[np.ndarray] = []
        embedders = {e.name: e for e in self.embedders.all()}
        for profile, name in zip(profiles, profile_group, strict=True):
            embedder = embedders[name]
            ids = []
            for unit in _profile_units(profile, embedder, self.split):
                key = (name, tuple(unit.passages), unit.lexical_text)
                if key not in seen:
                    seen[key] = len(units)
                    units.append(unit)
                    unit_group.append(name)
                ids.append(seen[key])
            profile_units.append(np.array(ids, dtype=np.int64))

        unit_row = np.zeros(len(units), dtype=np.int64)
        groups: dict[str, _Group] = {}
        for name, call_group in side.groups.items():
            members = [i for i, g in enumerate(unit_group) if g == name]
            unit_row[members] = np.arange(len(members))
            flat = [p for i in members for p in units[i].passages]
            vectors = call_group.cache.encode(flat, progress) if flat else np.zeros((0, 1), np.float32)
            groups[name] = replace(call_group, unit_vectors=_segment_means(
                vectors, [len(units[i].passages) for i in members], call_group.call_vectors.shape[1]
            ))

        lexical = side.lexical
        unit_counts = lexical.count([u.lexical_text for u in units])
        unit_tfidf = lexical.weigh(unit_counts)
        profile_tfidf = lexical.combine(unit_counts, [list(ids) for ids in profile_units])

        track_counts, track_n, kind_n = _track_tables(profiles, side.code_position)
        org_onehot = np.zeros((len(profiles), len(ORGANISATION_TYPES)), dtype=np.float32)
        for i, p in enumerate(profiles):
            if p.organisation_type in ORGANISATION_TYPES:
                org_onehot[i, ORGANISATION_TYPES.index(p.organisation_type)] = 1.0

        return Prepared(
            side=side,
            profiles=profiles,
            groups=groups,
            profile_group=profile_group,
            profile_units=profile_units,
            units=units,
            unit_row=unit_row,
            unit_tfidf=unit_tfidf,
            profile_tfidf=profile_tfidf,
            track_counts=track_counts,
            track_n=track_n,
            kind_n=kind_n,
            org_onehot=org_onehot,
            stats=self._stats_since(before),
        )

    def _prepare_calls(self, name: str, calls: list[CallDoc], progress: Progress) -> _Group:
        cache = self._cache(name)
        embedder = cache.embedder
        headers = [c.header() or c.key for c in calls]
        header_passages = self.split(headers, embedder)
        desc_passages = self.split([c.description for c in calls], embedder)
        passages = [
            ([h[0]] if h else [c.key]) + d[:CALL_PASSAGES]
            for c, h, d in zip(calls, header_passages, desc_passages, strict=True)
        ]
        flat = [p for ps in passages for p in ps]
        vectors = cache.encode(flat, progress) if flat else np.zeros((0, embedder.dim), np.float32)
        per_call: list[np.ndarray] = []
        call_vectors = np.zeros((len(calls), embedder.dim), dtype=np.float32)
        start = 0
        for j, ps in enumerate(passages):
            block = vectors[start : start + len(ps)]
            start += len(ps)
            per_call.append(block)
            # the header says what the call is for; the scope passages add the detail
            vec = block[0] + (block[1:].mean(0) if len(block) > 1 else 0.0)
            norm = np.linalg.norm(vec)
            call_vectors[j] = vec / norm if norm else vec
        return _Group(name, cache, call_vectors, passages, per_call)

    # --- features and scores -------------------------------------------------------------------

    def chunks(self, prepared: Prepared, size: int | None = None) -> Iterator[np.ndarray]:
        """Profile indices in chunks that share one embedder: at most `size` profiles and, past
        the first profile, at most CHUNK_UNITS units (a chunk's unit x call matrices are its
        memory, and a few chunks are in flight at once)."""
        size = size or self.chunk_size
        by_group: dict[str, list[int]] = {}
        for i, g in enumerate(prepared.profile_group):
            by_group.setdefault(g, []).append(i)
        for ids in by_group.values():
            chunk: list[int] = []
            units = 0
            for i in ids:
                n = len(prepared.profile_units[i])
                if chunk and (len(chunk) >= size or units + n > CHUNK_UNITS):
                    yield np.array(chunk, dtype=np.int64)
                    chunk, units = [], 0
                chunk.append(i)
                units += n
            if chunk:
                yield np.array(chunk, dtype=np.int64)

    def features(self, prepared: Prepared, idx: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """(len(idx), n_calls, len(FEATURES)) for profiles `idx` (one embedder group), plus
        what explanations need (unit similarities).

        The array is a view of a feature-major block (one contiguous (len(idx), n_calls) plane
        per feature): every signal is computed for the whole chunk at once, and the learned
        model reads the planes it uses without a transposing copy (`score_planes`)."""
        planes, extra = self.feature_planes(prepared, idx)
        return planes.transpose(1, 2, 0), extra

    def feature_planes(
        self, prepared: Prepared, idx: np.ndarray, *, complete: bool = True
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """(len(FEATURES), len(idx), n_calls): `features`, feature-major.

        With complete=False, planes of the call's kind and the member's kind of organisation
        that the learned model does not read stay 0 (scoring needs only what the model reads;
        training and the evaluation's ablations need all)."""
        n_calls = len(prepared.calls)
        out = np.zeros((len(FEATURES), len(idx), n_calls), dtype=np.float32)
        if n_calls == 0 or len(idx) == 0:
            empty = np.zeros((0, n_calls), np.float32)
            return out, {"dense": empty, "sizes": [0] * len(idx), "units": np.zeros(0, np.int64)}
        group = prepared.groups[prepared.profile_group[idx[0]]]
        unit_lists = [prepared.profile_units[i] for i in idx]
        flat_units = np.concatenate(unit_lists) if unit_lists else np.zeros(0, np.int64)
        sizes = [len(u) for u in unit_lists]
        rows = prepared.unit_row[flat_units]
        unit_vecs = group.unit_vectors[rows] if len(rows) else np.zeros((0, 1), np.float32)
        dense = unit_vecs @ group.call_vectors.T if len(rows) else np.zeros((0, n_calls), np.float32)
        lex_units = (
            (prepared.unit_tfidf[flat_units] @ prepared.call_tfidf_t).toarray().astype(np.float32, copy=False)
            if len(rows)
            else np.zeros((0, n_calls), np.float32)
        )
        out[_F["lexical"]] = (prepared.profile_tfidf[idx] @ prepared.call_tfidf_t).toarray()
        buckets = _size_buckets(sizes)
        _unit_aggregates(dense, buckets, out[_F["dense_mean"]], out[_F["dense_top3"]], out[_F["dense_max"]])
        _unit_aggregates(lex_units, buckets, out[_F["lexical_unit_mean"]], out[_F["lexical_unit_top3"]], None)

        dests = self._destination_model(group.name)
        if dests is not None and len(rows):
            d_index, p_index = dests.index()
            dest_col = np.array([d_index.get(pl.destination, -1) for pl in prepared.call_places])
            part_col = np.array([p_index.get(pl.part, -1) for pl in prepared.call_places])
            n_dest = len(dests.destinations)
            dmax = np.zeros((len(idx), n_dest), dtype=np.float32)
            _unit_aggregates(unit_vecs @ dests.destination_vectors.T, buckets, None, None, dmax)
            mean_vecs = np.zeros((len(idx), unit_vecs.shape[1]), dtype=np.float32)
            _unit_aggregates(unit_vecs, buckets, mean_vecs, None, None)
            norms = np.linalg.norm(mean_vecs, axis=1, keepdims=True)
            mean_vecs = np.where(norms > 0, mean_vecs / np.where(norms > 0, norms, 1.0), mean_vecs)
            dsim = mean_vecs @ dests.destination_vectors.T
            psim = mean_vecs @ dests.part_vectors.T
            has = (np.asarray(sizes) > 0)[:, None]
            known_d, known_p = dest_col >= 0, part_col >= 0
            out[_F["dest_profile"]] = _gather(dsim, dest_col, known_d & has)
            out[_F["part_profile"]] = _gather(psim, part_col, known_p & has)
            out[_F["dest_profile_max"]] = _gather(dmax, dest_col, known_d & has)
            # A call whose destination (or part) has no profile gets the member's average over
            # the calls that have one, not 0: "no evidence" must not look like "unlike this
            # member". It also keeps the evaluation honest: there a destination lacks a
            # profile when all its topics were left out, and the target always is.
            for name, known in (("dest_profile", known_d), ("dest_profile_max", known_d),
                                ("part_profile", known_p)):
                if known.any() and not known.all():
                    plane = out[_F[name]]
                    plane[:, ~known] = plane[:, known].mean(1, keepdims=True)
            hub_mean, hub_max = self._call_hubs(prepared, group, dests, dest_col)
            out[_F["call_hub_mean"]] = hub_mean[None, :]
            out[_F["call_hub_max"]] = hub_max[None, :]
        else:
            dest_col = np.full(n_calls, -1)
        self._track_planes(prepared, idx, out)
        read = self._read_features() if not complete else None
        static = prepared.call_static
        for k in range(static.shape[1]):
            if read is None or FEATURES[_F["kind_RIA"] + k] in read:
                out[_F["kind_RIA"] + k] = static[None, :, k]
        out[_F["dest_known"]] = (dest_col >= 0).astype(np.float32)[None, :]
        org = prepared.org_onehot[idx]
        for t, name in enumerate(ORG_FEATURES):
            if read is None or name in read:
                out[_F[name]] = org[:, t, None]
        for t, org_type in enumerate(ORGANISATION_TYPES):
            for kind in ("RIA", "IA", "CSA"):
                name = f"org_{org_type}_x_{kind}"
                if read is None or name in read:
                    out[_F[name]] = org[:, t, None] * static[None, :, CALL_KINDS.index(kind)]
        # standardised first: a profile embedded by another model (e.g. an Italian one by the
        # multilingual model) keeps the z-scores of its real similarities, only the raw values
        # the ranker cannot read on that model's scale are replaced afterwards
        for name in STANDARDISED:
            x = out[_F[name]]
            mu = x.mean(1, keepdims=True)
            sd = x.std(1, keepdims=True)
            # in place, one pass each: this runs on every (profile, call) pair
            flat = ~(sd[:, 0] > 1e-6)  # also a NaN spread: such a profile's row is 0
            inv = np.where(flat[:, None], 0.0, 1.0 / np.maximum(sd, 1e-6)).astype(np.float32)
            z = out[_F[f"z_{name}"]]
            np.subtract(x, mu, out=z)
            z *= inv
            if flat.any():
                z[flat] = 0.0
        self._fill_unavailable(out, dests is not None, group.name)
        return out, {"dense": dense, "sizes": sizes, "units": flat_units}

    @staticmethod
    def _call_hubs(
        prepared: Prepared, group: _Group, dests: DestinationProfiles, dest_col: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and maximum similarity of each call to the profiles of all destinations but its
        own: how much a call looks like everything that gets funded rather than one line of
        work. Its own destination is left out because a call's own funded projects can only
        sit there: with them, the signal would say whose outcomes went into the profiles.
        Computed once per destination model (the evaluation swaps models on one preparation)."""
        memo = prepared.call_hubs.get(group.name)
        if memo is None or memo[0] is not dests:
            sims = group.call_vectors @ dests.destination_vectors.T
            own = np.zeros(sims.shape, dtype=bool)
            known = np.flatnonzero(dest_col >= 0)
            own[known, dest_col[known]] = True
            count = (~own).sum(1)
            mean = np.zeros(len(sims), dtype=np.float32)
            top = np.zeros(len(sims), dtype=np.float32)
            rows = count > 0  # a model with no destination (or only the call's own) says nothing
            if rows.any():
                mean[rows] = np.where(own, 0.0, sims)[rows].sum(1) / count[rows]
                top[rows] = np.where(own, -np.inf, sims)[rows].max(1)
            memo = (dests, mean, top)
            prepared.call_hubs[group.name] = memo
        return memo[1], memo[2]

    def _read_features(self) -> frozenset[str] | None:
        """The features the learned model reads (None: all of them, or no model)."""
        if self.model is None or self.model.used is None:
            return None
        return frozenset(f for f, u in zip(self.model.features, self.model.used, strict=True) if u > 0)

    def _destination_model(self, group_name: str) -> DestinationProfiles | None:
        if self.destinations is None or self.destinations.model != group_name:
            return None
        return self.destinations

    def _fill_unavailable(self, planes: np.ndarray, has_destinations: bool, group_name: str) -> None:
        """Signals the learned model cannot read for this embedder are set to their average;
        raw similarities of another model are put on the learned model's scale. Runs after the
        z-scores are computed, which must come from the member's real similarities."""
        if self.model is None:
            return
        if not has_destinations:
            for name in DESTINATION_FEATURES:
                planes[_F[name]] = self.model.neutral(name)
        if group_name != self.model.meta.get("model", group_name):
            # Another model's similarities live on another scale (the multilingual model's
            # cosines are not MiniLM's). A call that stands z of the member's standard
            # deviations above the member's average is placed z of the ranker's standard
            # deviations above the ranker's average: with the plain average instead, the
            # ranker lost its strongest signal (Italian test set, BENCHMARKS.md).
            for name in DENSE_FEATURES:
                planes[_F[name]] = self.model.neutral(name) + planes[_F[f"z_{name}"]] * self.model.spread(name)

    def _track_planes(self, prepared: Prepared, idx: np.ndarray, planes: np.ndarray) -> None:
        n = prepared.track_n[idx][:, None]
        has = n > 0
        # a profile without a known topic has no part/destination/call counts either (they are
        # counted from the topic), so only the kind share needs the mask
        inv_n = np.where(has, 1.0 / np.where(has, n, 1.0), 0.0).astype(np.float32)

        def counts(key: str) -> np.ndarray:
            return prepared.track_counts[key][idx][:, prepared.call_codes[key]]

        part, dest, call, kind = counts("part"), counts("dest"), counts("call"), counts("kind")
        planes[_F["history_empty"]] = ~has
        np.multiply(part, inv_n, out=planes[_F["part_share"]])
        np.greater(part, 0, out=planes[_F["part_any"]], casting="unsafe")
        np.multiply(dest, inv_n, out=planes[_F["dest_share"]])
        np.greater(dest, 0, out=planes[_F["dest_any"]], casting="unsafe")
        np.log1p(dest, out=planes[_F["dest_log"]])
        np.multiply(call, inv_n, out=planes[_F["call_share"]])
        np.greater(call, 0, out=planes[_F["call_any"]], casting="unsafe")
        kn = prepared.kind_n[idx][:, None]
        inv_kn = np.where(has & (kn > 0), 1.0 / np.where(kn > 0, kn, 1.0), 0.0).astype(np.float32)
        np.multiply(kind, inv_kn, out=planes[_F["kind_share"]])
        planes[_F["kind_any"]] = has & (kind > 0)

    def score_features(self, features: np.ndarray) -> np.ndarray:
        if self.model is not None:
            if list(self.model.features) != list(FEATURES):
                return self.model.score(_align(features, self.model.features))
            return self.model.score(features)
        total = np.zeros(features.shape[:-1], dtype=np.float32)
        for name, weight in FALLBACK_WEIGHTS.items():
            total += weight * features[..., _F[name]]
        return total

    def score_planes(self, planes: np.ndarray) -> np.ndarray:
        """`score_features` of a feature-major block (len(FEATURES), ...)."""
        if self.model is not None and list(self.model.features) == list(FEATURES):
            return self.model.score_planes(planes)
        return self.score_features(np.moveaxis(planes, 0, -1))

    def scores(
        self,
        prepared: Prepared,
        progress: Progress = NULL_PROGRESS,
        pool: ThreadPoolExecutor | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
        """(profile indices, scores (len, n_calls), explanation material) chunk by chunk, in
        order. With `threads` > 1 (or a `pool`) the next chunks are computed while the caller
        handles this one (NumPy and SciPy release the interpreter lock in the heavy products)."""
        progress.start("scoring", len(prepared.profiles))
        chunks = iter(list(self.chunks(prepared)))
        if pool is None and self.threads <= 1:
            for idx in chunks:
                yield self._score_chunk(prepared, idx)
                progress.advance(len(idx))
        else:
            own = pool is None
            workers = pool or ThreadPoolExecutor(self.threads, thread_name_prefix="matcher")
            limits = _one_blas_thread() if own else None
            try:
                pending = deque(workers.submit(self._score_chunk, prepared, idx)
                                for idx in islice(chunks, max(self.threads, 1)))
                while pending:
                    done = pending.popleft().result()
                    following = next(chunks, None)
                    if following is not None:
                        pending.append(workers.submit(self._score_chunk, prepared, following))
                    yield done
                    progress.advance(len(done[0]))
            finally:
                if own:
                    workers.shutdown(cancel_futures=True)
                if limits is not None:
                    limits.restore_original_limits()
        progress.finish()

    def _score_chunk(
        self, prepared: Prepared, idx: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        planes, extra = self.feature_planes(prepared, idx, complete=False)
        scores = self.score_planes(planes).astype(np.float32, copy=False)
        extra["features"] = planes.transpose(1, 2, 0)
        return idx, scores, extra

    def rank_profiles(
        self,
        profiles: Sequence[Profile],
        calls: Sequence[CallDoc],
        top_k: int,
        allowed: np.ndarray | None = None,
        *,
        explain: bool = True,
        progress: Progress = NULL_PROGRESS,
        batch: int = PREPARE_BATCH,
    ) -> tuple[list[list[RankedCall]], EncodeStats]:
        """`rank` of `profiles` against `calls` from the start: the calls are prepared once,
        then the profiles a batch at a time, the next batch being prepared (split, read from
        the vector cache, counted) while this one is scored and explained, so the
        single-threaded text work overlaps with the products. Returns the ranked calls per
        profile and what the vector caches did."""
        profiles, calls = list(profiles), list(calls)
        before = self._stats_snapshot()
        result: list[list[RankedCall]] = [[] for _ in profiles]
        side = self.prepare_calls(calls, self._group_names(profiles), progress)
        if not calls or not profiles:
            return result, self._stats_since(before)
        memo: dict[tuple[str, int], str] = {}
        batch = max(1, batch)
        starts = iter(range(0, len(profiles), batch))

        def rank_batch(start: int, prepared: Prepared, pool: ThreadPoolExecutor | None) -> None:
            stop = start + len(prepared.profiles)
            result[start:stop] = self._rank_prepared(
                prepared, top_k, None if allowed is None else allowed[start:stop], explain,
                memo, pool,
            )
            progress.advance(stop - start)

        # the first batch in this thread, with progress: on a first run its embedding is
        # most of the work, and nothing is there yet to overlap with it
        first = self.prepare_profiles(side, profiles[:batch], progress)
        next(starts)
        progress.start("matching", len(profiles))
        with _one_blas_thread():
            if self.threads <= 1:
                rank_batch(0, first, None)
                for start in starts:
                    rank_batch(start, self.prepare_profiles(side, profiles[start : start + batch]), None)
            else:
                pool = ThreadPoolExecutor(self.threads, thread_name_prefix="matcher")
                ahead: deque[tuple[int, Any]] = deque()

                def prepare_next() -> None:
                    start = next(starts, None)
                    if start is not None:
                        ahead.append((start, pool.submit(
                            self.prepare_profiles, side, profiles[start : start + batch])))

                try:
                    # the next batch is prepared while this one is scored and explained
                    prepare_next()
                    rank_batch(0, first, pool)
                    while ahead:
                        start, future = ahead.popleft()
                        prepared = future.result()
                        prepare_next()
                        rank_batch(start, prepared, pool)
                except BaseException:
                    # an error or Ctrl-C: do not wait for the batch being prepared
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
                pool.shutdown()
        progress.finish()
        return result, self._stats_since(before)

    def rank(
        self,
        prepared: Prepared,
        top_k: int,
        allowed: np.ndarray | None = None,
        *,
        explain: bool = True,
        progress: Progress = NULL_PROGRESS,
    ) -> list[list[RankedCall]]:
        """The best `top_k` calls per profile (only where `allowed`, shape (n_profiles,
        n_calls)), best first; ties go to the earlier call."""
        return self._rank_prepared(prepared, top_k, allowed, explain, {}, None, progress)

    def _rank_prepared(
        self,
        prepared: Prepared,
        top_k: int,
        allowed: np.ndarray | None,
        explain: bool,
        memo: dict[tuple[str, int], str],  # short texts: call passages recur in every chunk
        pool: ThreadPoolExecutor | None,
        progress: Progress = NULL_PROGRESS,
    ) -> list[list[RankedCall]]:
        result: list[list[RankedCall]] = [[] for _ in prepared.profiles]
        if not prepared.calls:
            return result
        for idx, scores, extra in self.scores(prepared, progress, pool):
            if allowed is not None:
                scores = np.where(allowed[idx], scores, -np.inf)
            chosen: list[tuple[int, int, list[int]]] = []  # (row in chunk, profile, calls)
            orders = top_indices_of_rows(scores, top_k)
            finite = np.isfinite(np.take_along_axis(scores, orders, 1)).tolist()
            for r, (i, order, ok) in enumerate(zip(idx.tolist(), orders.tolist(), finite, strict=True)):
                if prepared.profiles[i].is_empty():
                    continue
                chosen.append((r, i, [j for j, good in zip(order, ok, strict=True) if good]))
            if not explain:
                for r, i, calls in chosen:
                    result[i] = [RankedCall(j, float(scores[r, j])) for j in calls]
                continue
            pair_rows = np.array([r for r, _, js in chosen for _ in js], dtype=np.int64)
            pair_calls = np.array([j for _, _, js in chosen for j in js], dtype=np.int64)
            # the shared terms of the whole chunk's matches in one sparse product
            terms = shared_terms_of_pairs(
                prepared.lexical,
                prepared.profile_tfidf,
                idx[pair_rows],
                prepared.call_tfidf,
                pair_calls,
                k=5,
            )
            best = _best_units(extra, pair_rows, pair_calls)
            passages = self._best_passages(prepared, idx[pair_rows], best, pair_calls)
            pair_scores = scores[pair_rows, pair_calls].tolist()
            # everything read from arrays is read for the whole chunk at once: a NumPy scalar
            # per match and field cost more than the rest of an explanation
            parts = _parts(extra["features"][pair_rows, pair_calls])
            tracks = _track_details(prepared, idx[pair_rows], pair_calls)
            best_list = best.tolist()
            pair = 0
            for _, i, calls in chosen:
                ranked = []
                for j in calls:
                    item = RankedCall(j, pair_scores[pair])
                    item.explanation = self._explanation(
                        prepared, i, j, best_list[pair], parts[pair], terms[pair], memo,
                        passages[pair], tracks[pair],
                    )
                    pair += 1
                    ranked.append(item)
                result[i] = ranked
        return result

    # --- explanations ----------------------------------------------------------------------------

    def _best_passages(
        self, prepared: Prepared, profiles: np.ndarray, units: np.ndarray, calls: np.ndarray
    ) -> list[tuple[int, int]]:
        """For each (profile, its best unit, call): the unit passage and call passage that are
        most similar (first on ties), or (-1, -1) when either side has no passage. One padded
        product for all pairs of an embedder group instead of a small product per match."""
        out = [(-1, -1)] * len(units)
        for name in dict.fromkeys(prepared.profile_group[int(i)] for i in profiles):
            group = prepared.groups[name]
            sel = np.array([k for k, i in enumerate(profiles)
                            if units[k] >= 0 and prepared.profile_group[int(i)] == name], np.int64)
            if len(sel) == 0:
                continue
            if "block" not in group.memo:
                group.memo["block"] = _passage_block(
                    group.call_passage_vectors, group.call_vectors.shape[1]
                )
            call_block, call_mask = group.memo["block"]
            wanted = list(dict.fromkeys(int(u) for u in units[sel]))
            multi = [u for u in wanted if len(prepared.units[u].passages) > 1]
            # a one-passage unit's vector is its passage's: no cache lookup needed
            multi_vecs = group.cache.encode(
                [p for u in multi for p in prepared.units[u].passages], count=False
            ) if multi else np.zeros((0, call_block.shape[2]), np.float32)
            vectors: dict[int, np.ndarray] = {}
            start = 0
            for u in multi:
                n = len(prepared.units[u].passages)
                vectors[u] = multi_vecs[start : start + n]
                start += n
            for u in wanted:
                if u not in vectors:
                    vectors[u] = group.unit_vectors[prepared.unit_row[u]][None, :]
            position = {u: r for r, u in enumerate(wanted)}
            member_block, member_mask = _passage_block([vectors[u] for u in wanted], call_block.shape[2])
            all_rows = np.array([position[int(u)] for u in units[sel]], dtype=np.int64)
            width = call_block.shape[1]
            # in batches: the gathered call passages of every pair are the memory here
            for start in range(0, len(sel), PASSAGE_PAIR_BATCH):
                part = slice(start, start + PASSAGE_PAIR_BATCH)
                rows, cols = all_rows[part], calls[sel[part]]
                sims = np.matmul(member_block[rows], call_block[cols].transpose(0, 2, 1))
                valid = member_mask[rows][:, :, None] & call_mask[cols][:, None, :]
                sims = np.where(valid, sims, -np.inf).reshape(len(rows), -1)
                best = sims.argmax(1)
                ok = np.isfinite(sims[np.arange(len(rows)), best])
                for k, f, good in zip(sel[part].tolist(), best.tolist(), ok.tolist(), strict=True):
                    if good:
                        out[k] = divmod(f, width)
        return out

    def explain(
        self,
        prepared: Prepared,
        i: int,
        j: int,
        units: np.ndarray,
        unit_scores: np.ndarray,
        feats: np.ndarray,
        shared: list[str] | None = None,
    ) -> dict[str, Any]:
        """The member passage and call passage that matched best, shared terms, track record."""
        best = int(units[int(np.argmax(unit_scores))]) if len(units) else -1
        if shared is None:
            shared = shared_terms_of_rows(
                prepared.lexical, prepared.profile_tfidf, i, prepared.call_tfidf, j, k=5
            )
        track = _track_details(prepared, np.array([i]), np.array([j]))[0]
        return self._explanation(prepared, i, j, best, _parts(feats[None, :])[0], shared, {},
                                 None, track)

    def _explanation(
        self,
        prepared: Prepared,
        i: int,
        j: int,
        unit_id: int,
        parts: dict[str, float],
        shared: list[str],
        memo: dict[tuple[str, int], str],
        passages: tuple[int, int] | None,
        track: tuple[int, str, str] | None,
    ) -> dict[str, Any]:
        """`explain` with the best unit (-1: none), the signal parts, the track-record detail
        and possibly the best (member passage, call passage) already known; `memo` keeps short
        texts across the matches of a run (the same call passages recur for every member)."""
        group = prepared.groups[prepared.profile_group[i]]
        explanation: dict[str, Any] = {
            "member_source": "",
            "member_passage": "",
            "call_passage": "",
            "shared_terms": shared,
            "parts": parts,
        }
        if unit_id >= 0:
            unit = prepared.units[unit_id]
            if passages is None:
                passages = self._best_passages(
                    prepared, np.array([i]), np.array([unit_id]), np.array([j])
                )[0]
            if passages[0] >= 0:
                a, b = passages
                explanation["member_passage"] = _short(memo, unit.passages[a], 160)
                explanation["call_passage"] = _short(memo, group.call_passages[j][b], 160)
            explanation["member_source"] = (
                unit.kind if unit.kind != "project" else f"project: {_short(memo, unit.label, 80)}"
            )
        if track:
            projects, level, place = track
            # the parts too, so that an email in another language can word it again
            explanation["track_detail"] = {"projects": projects, "in": level, "place": place}
            explanation["track"] = track_sentence(explanation["track_detail"], STRINGS["en"])
        explanation["reason"] = reason_line(
            explanation, STRINGS["en"], lambda text, limit: _short(memo, text, limit))
        return explanation


def _one_blas_thread() -> threadpool_limits:
    """BLAS on one thread while the matcher runs its own threads: two levels of threads on two
    cores oversubscribe them, and OpenBLAS's waiting threads spin (measured on 30,000 profiles
    x 2,000 calls: 74 s of CPU with BLAS's own threads, 48 s without)."""
    return threadpool_limits(limits=1, user_api="blas")


def _passage_block(vectors: list[np.ndarray], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Variable-length lists of passage vectors as one zero-padded (n, longest, dim) block and
    a (n, longest) mask of the real rows."""
    longest = max((len(v) for v in vectors), default=0)
    block = np.zeros((len(vectors), max(longest, 1), dim), dtype=np.float32)
    mask = np.zeros(block.shape[:2], dtype=bool)
    for r, v in enumerate(vectors):
        if len(v):
            block[r, : len(v)] = v
            mask[r, : len(v)] = True
    return block, mask


def _best_units(extra: dict[str, Any], rows: np.ndarray, calls: np.ndarray) -> np.ndarray:
    """For each (row in the chunk, call) pair, the unit of that profile most similar to the
    call (first on ties), or -1 for a profile without units; pairs grouped by profile size so
    every group is one NumPy gather."""
    sizes = np.asarray(extra["sizes"], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])[:-1]
    best = np.full(len(rows), -1, dtype=np.int64)
    if len(rows) == 0:
        return best
    pair_sizes = sizes[rows]
    for size in np.unique(pair_sizes):
        if size == 0:
            continue
        sel = np.flatnonzero(pair_sizes == size)
        positions = offsets[rows[sel]][:, None] + np.arange(size)[None, :]
        values = extra["dense"][positions, calls[sel][:, None]]
        best[sel] = extra["units"][positions[np.arange(len(sel)), values.argmax(1)]]
    return best


def _short(memo: dict[tuple[str, int], str], text: str, limit: int) -> str:
    key = (text, limit)
    out = memo.get(key)
    if out is None:
        if len(memo) >= SHORT_TEXT_MEMO:  # bounded: member passages rarely recur
            memo.clear()
        out = memo[key] = short_text(text, limit)
    return out


# --- helpers ----------------------------------------------------------------------------------


def _copy_stats(s: EncodeStats) -> EncodeStats:
    return EncodeStats(s.requested, s.cached, s.computed)


def _align(features: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Columns of `features` in the order of a model trained on a different feature list;
    features the matcher no longer computes are zero."""
    out = np.zeros(features.shape[:-1] + (len(names),), dtype=np.float32)
    for k, name in enumerate(names):
        if name in _F:
            out[..., k] = features[..., _F[name]]
    return out


def top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, best first; equal scores keep index order."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
        # argpartition breaks ties arbitrarily: take everything tied with the k-th too
        kth = scores[part].min()
        part = np.flatnonzero(scores >= kth)
    else:
        part = np.arange(len(scores))
    order = part[np.lexsort((part, -scores[part]))]
    return order[:k]



def top_indices_of_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """`top_indices` of every row of a (rows, n) block, as a (rows, min(k, n)) array: one
    partition and one sort for the block, the row-by-row version only for rows whose k-th
    score is tied (a Python call per row cost more than the partition itself)."""
    rows, n = scores.shape
    k = min(k, n)
    if k <= 0 or rows == 0:
        return np.zeros((rows, max(k, 0)), dtype=np.int64)
    if k < n:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(scores, part, 1).min(1)
        # rows with another score equal to their k-th: which of the tied ones are in is
        # decided by position, as top_indices does
        tied = (scores >= kth[:, None]).sum(1) > k
    else:
        part = np.broadcast_to(np.arange(n), (rows, n)).copy()
        tied = np.zeros(rows, dtype=bool)
    values = np.take_along_axis(scores, part, 1)
    order = np.lexsort((part, -values), axis=1)
    out = np.take_along_axis(part, order, 1).astype(np.int64, copy=False)
    for r in np.flatnonzero(tied):
        out[r] = top_indices(scores[r], k)
    return out


def _gather(matrix: np.ndarray, columns: np.ndarray, where: np.ndarray) -> np.ndarray:
    """matrix[:, columns] where `where` (rows x columns) holds, else 0; columns may be -1."""
    if matrix.shape[1] == 0:
        return np.zeros(where.shape, dtype=np.float32)
    return np.where(where, matrix[:, np.maximum(columns, 0)], 0.0)


def _size_buckets(sizes: Sequence[int]) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Profiles grouped by their number of units: (size, rows of the chunk, (n, size) indices of
    their units in the flat unit order). Profiles without units are left out."""
    sizes_arr = np.asarray(sizes, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes_arr)])[:-1]
    buckets = []
    for size in np.unique(sizes_arr):
        if size == 0:
            continue
        rows = np.flatnonzero(sizes_arr == size)
        buckets.append((int(size), rows, offsets[rows][:, None] + np.arange(size)[None, :]))
    return buckets


def _unit_aggregates(
    matrix: np.ndarray,
    buckets: list[tuple[int, np.ndarray, np.ndarray]],
    mean: np.ndarray | None,
    top3: np.ndarray | None,
    maximum: np.ndarray | None,
) -> None:
    """Per profile, the mean, mean of the best three and maximum of its units' rows of
    `matrix` (flat unit order), written into the given (n_profiles, n_cols) arrays.

    One pass over the unit positions with running sums, maxima and a running best three
    (element-wise maximum/minimum): several times faster than gathering a (n, size, n_cols)
    block and partitioning it along its short middle axis."""
    for size, rows, units in buckets:
        total = matrix[units[:, 0]]  # a copy: fancy indexing
        first = total.copy() if (maximum is not None or top3 is not None) else None
        second = third = None
        if top3 is not None and size > 3:
            second = np.full_like(total, -np.inf)
            third = np.full_like(total, -np.inf)
        for k in range(1, size):
            x = matrix[units[:, k]]
            total += x
            if first is None:
                continue
            if second is None:
                np.maximum(first, x, out=first)
                continue
            # insert x into the running best three: first >= second >= third
            low = np.minimum(first, x)
            np.maximum(first, x, out=first)
            low2 = np.minimum(second, low)
            np.maximum(second, low, out=second)
            np.maximum(third, low2, out=third)
        total /= size
        if mean is not None:
            mean[rows] = total
        if maximum is not None:
            maximum[rows] = first
        if top3 is not None:
            if second is None:
                top3[rows] = total
            else:
                first += second
                first += third
                first /= 3
                top3[rows] = first


def _segment_means(vectors: np.ndarray, sizes: list[int], dim: int) -> np.ndarray:
    """L2-normalised mean of each run of `sizes` consecutive rows (zero rows for size 0)."""
    sizes_arr = np.asarray(sizes, dtype=np.int64)
    nonempty = np.flatnonzero(sizes_arr > 0)
    if len(nonempty) == 0:
        return np.zeros((len(sizes), dim), dtype=np.float32)
    starts = np.concatenate([[0], np.cumsum(sizes_arr)[:-1]])[nonempty]
    # in place on the one (units x dim) result: 150,000 units make it a few hundred MB
    means = np.add.reduceat(vectors, starts, axis=0).astype(np.float32, copy=False)
    means /= sizes_arr[nonempty, None].astype(np.float32)
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    means /= norms
    if len(nonempty) == len(sizes):
        return means
    out = np.zeros((len(sizes), dim), dtype=np.float32)
    out[nonempty] = means
    return out


def short_text(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


def _project_text(project: PastProject) -> str:
    title = project.title.strip().rstrip(".")
    return f"{title}. {project.summary}".strip() if title else project.summary.strip()


def _profile_units(profile: Profile, embedder: Any, splitter: Any) -> list[_Unit]:
    units: list[_Unit] = []
    texts = [profile.description] + [_project_text(p) for p in profile.projects]
    split = splitter(texts, embedder)
    for passage in split[0][:DESCRIPTION_PASSAGES]:
        units.append(_Unit("description", "description", [passage], passage))
    keywords = [k.strip() for k in profile.keywords if k and k.strip()]
    if keywords:
        text = "; ".join(keywords)
        units.append(_Unit("keywords", "keywords", [text], text))
    for project, passages in zip(profile.projects, split[1:], strict=True):
        if not passages:
            continue
        lexical = "\n".join(
            x for x in (project.title, project.summary, project.keywords, "; ".join(project.fields)) if x
        )
        units.append(_Unit("project", project.title or passages[0], passages[:PROJECT_PASSAGES], lexical))
    return units


def _call_codes(
    calls: Sequence[CallDoc],
) -> tuple[dict[str, dict[str, int]], dict[str, np.ndarray], list[Any]]:
    """The codes (programme part, destination, call, kind of action) the calls use: each
    code's column in the per-profile count tables, each call's column (-1: unknown code)."""
    call_places = [c.place() for c in calls]
    call_values = {
        "part": [p.part for p in call_places],
        "dest": [p.destination for p in call_places],
        "call": [p.call for p in call_places],
        "kind": [action_kind(c.type_of_action) for c in calls],
    }
    codes = {k: sorted({v for v in vals if v}) for k, vals in call_values.items()}
    position = {k: {v: i for i, v in enumerate(vs)} for k, vs in codes.items()}
    call_codes = {
        k: np.array([position[k].get(v, -1) if v else -1 for v in vals], dtype=np.int64)
        for k, vals in call_values.items()
    }
    return position, call_codes, call_places


def _track_tables(
    profiles: Sequence[Profile], position: dict[str, dict[str, int]]
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Per profile, counts of past projects per code of `position` (`_call_codes`).

    Column -1 (the last) is an always-zero column for calls whose code is unknown.
    """
    counts = {k: np.zeros((len(profiles), len(vs) + 1), dtype=np.float32) for k, vs in position.items()}
    track_n = np.zeros(len(profiles), dtype=np.float32)
    kind_n = np.zeros(len(profiles), dtype=np.float32)
    places: dict[str, Any] = {}  # the same topics recur across profiles
    for i, profile in enumerate(profiles):
        for project in profile.projects:
            kind = action_kind(project.funding_scheme)
            if kind:
                kind_n[i] += 1
                if kind in position["kind"]:
                    counts["kind"][i, position["kind"][kind]] += 1
            if not project.topic:
                continue
            place = places.get(project.topic)
            if place is None:
                place = places[project.topic] = parse_identifier(project.topic)
            if not place.part:
                continue
            track_n[i] += 1
            for key, value in (("part", place.part), ("dest", place.destination), ("call", place.call)):
                if value in position[key]:
                    counts[key][i, position[key][value]] += 1
    return counts, track_n, kind_n


def _track_details(
    prepared: Prepared, profiles: np.ndarray, calls: np.ndarray
) -> list[tuple[int, str, str] | None]:
    """For each (profile, call) pair, the member's past projects in the call's destination
    (else its programme part): (count, "destination" or "part", its name); None when it has
    none. Kept as parts so that emails can word it in the member's language."""
    dest = prepared.track_counts["dest"][profiles, prepared.call_codes["dest"][calls]].tolist()
    part = prepared.track_counts["part"][profiles, prepared.call_codes["part"][calls]].tolist()
    known = (prepared.track_n[profiles] > 0).tolist()
    out: list[tuple[int, str, str] | None] = []
    for has, d, p, j in zip(known, dest, part, calls.tolist(), strict=True):
        if not has:
            out.append(None)
        elif d:
            out.append((int(d), "destination", prepared.call_places[j].destination))
        elif p:
            out.append((int(p), "part", prepared.call_places[j].part))
        else:
            out.append(None)
    return out


_PART_FEATURES = {"dense": "dense_top3", "lexical": "lexical", "destination": "dest_profile",
                  "track": "dest_share"}
_PART_COLUMNS = [_F[name] for name in _PART_FEATURES.values()]


def _parts(feats: np.ndarray) -> list[dict[str, float]]:
    """The signal values an explanation shows, for rows of features (n, len(FEATURES))."""
    # rounded in NumPy: Python's round() per value cost more than the rest of _parts
    values = np.round(feats[:, _PART_COLUMNS].astype(np.float64), 4).tolist()
    names = list(_PART_FEATURES)
    return [dict(zip(names, row, strict=True)) for row in values]
