"""A small gradient-boosted tree ensemble, stored as JSON and evaluated with numpy.

The partner ranker is trained offline (benchmarks/consortia_train_ranker.py: LightGBM's
LambdaRank objective, or scikit-learn's HistGradientBoostingClassifier) and shipped as plain
numbers: per tree, the arrays `feature`,
`threshold`, `left`, `right`, `value` and `leaf`. Evaluating needs no scikit-learn pickle, so
a scikit-learn or LightGBM upgrade cannot break a shipped model.

One file holds several ensembles: per feature set ("combined", "text", "collaboration") one
model per cross-fitting fold, each listing the topics it was trained on. A query about a topic
a model saw in training is scored only by the other fold's model, so evaluating on the
training folder stays honest; any other topic gets the mean of all folds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from horizon_match.errors import ModelUnavailableError


@dataclass(frozen=True)
class Tree:
    feature: np.ndarray  # int, -1 at leaves
    threshold: np.ndarray  # go left when x <= threshold (NaN goes right)
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray  # leaf values
    depth: int  # levels of nodes, leaves included (a stump has 2)


# Rows walked at once: about this many (tree, row) cells per array, so that every array of a
# level stays in the CPU cache (2**15 was the fastest of 2**12..2**16 for 300 and 900 trees).
_CHUNK_CELLS = 1 << 15


class PackedTrees:
    """Many trees walked together, level by level, as a handful of numpy operations per level
    instead of a dozen per tree and level (scoring ~2,000 candidates with a 900-tree model
    is most of a consortium suggestion's time).

    Nodes are renumbered breadth first with both children of a node next to each other, so
    "go left" is `right - 1`; a leaf points to itself with a NaN threshold, so once reached it
    stays. Trees are sorted deepest first: after each level the trees already at their leaves
    drop off the end of the active block."""

    def __init__(self, trees: Sequence[Tree]) -> None:
        # splits on the longest path, counted here rather than trusted from the stored depth:
        # a tree walked one level short would end on an inner node and score 0 there
        packed = [_breadth_first(t) for t in trees]
        order = sorted(range(len(trees)), key=lambda i: -packed[i][4])
        feature: list[np.ndarray] = []
        threshold: list[np.ndarray] = []
        right: list[np.ndarray] = []
        value: list[np.ndarray] = []
        roots = np.empty(len(trees), dtype=np.int64)
        offset = 0
        for slot, i in enumerate(order):
            f, t, r, v, _ = packed[i]
            feature.append(f)
            threshold.append(t)
            right.append(np.where(f >= 0, r + offset, np.arange(len(f)) + offset))
            value.append(v)
            roots[slot] = offset
            offset += len(f)
        self._feature = np.concatenate(feature).clip(min=0) if trees else np.zeros(0, np.int64)
        self._threshold = np.concatenate(threshold) if trees else np.zeros(0)
        self._right = np.concatenate(right) if trees else np.zeros(0, np.int64)
        self._value = np.concatenate(value) if trees else np.zeros(0)
        self._roots = roots
        self._width = int(self._feature.max(initial=-1)) + 1  # columns X must have at least
        # The walk of level k touches only the trees that still split there: a prefix of the
        # deepest-first order, so the block it updates is a contiguous slice.
        steps = np.array([packed[i][4] for i in order], dtype=np.int64)
        self._active = [int((steps > k).sum()) for k in range(int(steps.max(initial=0)))]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The sum of the trees' leaf values for each row of `X`."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        n, width = X.shape
        if width < self._width:
            # reading past a row's end would silently take the next row's values
            raise ValueError(f"the trees split on {self._width} features; X has {width} columns")
        out = np.zeros(n, dtype=np.float64)
        if not len(self._roots) or not n:
            return out
        flat = X.ravel()
        chunk = max(1, _CHUNK_CELLS // len(self._roots))
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            node = np.repeat(self._roots[:, None], stop - start, axis=1)  # trees x rows
            base = np.arange(start * width, stop * width, width)
            for active in self._active:
                block = node[:active]  # a view: trees already at a leaf are left as they are
                x = flat[self._feature[block] + base]
                block[...] = self._right[block] - (x <= self._threshold[block])
            out[start:stop] = self._value[node].sum(axis=0)
        return out


def _breadth_first(tree: Tree) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The tree's nodes renumbered so that each node's children are consecutive (left, then
    right): its feature, threshold (NaN at leaves), right child and value arrays, and the
    number of splits on its longest path."""
    new_of = np.full(len(tree.feature), -1, dtype=np.int64)
    queue = [0]
    level = [0]
    new_of[0] = 0
    nxt = 1
    order: list[int] = []
    for at, old in enumerate(queue):
        order.append(old)
        if tree.feature[old] >= 0:
            for child in (int(tree.left[old]), int(tree.right[old])):
                new_of[child] = nxt
                nxt += 1
                queue.append(child)
                level.append(level[at] + 1)
    old_ids = np.asarray(order, dtype=np.int64)
    feature = tree.feature[old_ids].astype(np.int64)
    inner = feature >= 0
    threshold = np.where(inner, tree.threshold[old_ids], np.nan)
    right = np.where(inner, new_of[np.where(inner, tree.right[old_ids], 0)], -1)
    value = np.where(inner, 0.0, tree.value[old_ids])
    return feature, threshold, right, value, max(level)


@dataclass(frozen=True)
class Ensemble:
    features: tuple[str, ...]
    trees: tuple[Tree, ...]
    baseline: float
    train_topics: frozenset[str]

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.packed().predict(X) + self.baseline

    def packed(self) -> PackedTrees:
        # built once per model: packing is a Python loop over every node. Two threads may both
        # build it; either result is complete and the same, so no lock is needed
        cached = self.__dict__.get("_packed")
        if cached is None:
            cached = PackedTrees(self.trees)
            object.__setattr__(self, "_packed", cached)
        return cached

    @classmethod
    def from_dict(cls, data: dict) -> Ensemble:
        trees = []
        for t in data["trees"]:
            feature = np.asarray(t["feature"], dtype=np.int64)
            trees.append(Tree(
                feature=feature,
                threshold=np.asarray(t["threshold"], dtype=np.float64),
                left=np.asarray(t["left"], dtype=np.int64),
                right=np.asarray(t["right"], dtype=np.int64),
                value=np.asarray(t["value"], dtype=np.float64),
                depth=int(t["depth"]),
            ))
        return cls(
            features=tuple(data["features"]),
            trees=tuple(trees),
            baseline=float(data.get("baseline", 0.0)),
            train_topics=frozenset(data.get("train_topics", [])),
        )

    def to_dict(self) -> dict:
        return {
            "features": list(self.features),
            "baseline": self.baseline,
            "train_topics": sorted(self.train_topics),
            "trees": [
                {
                    "feature": t.feature.tolist(),
                    # thresholds exact (a rounded one can send a value the other way)
                    "threshold": [float(v) for v in t.threshold],
                    "left": t.left.tolist(),
                    "right": t.right.tolist(),
                    "value": [round(float(v), 7) for v in t.value],
                    "depth": t.depth,
                }
                for t in self.trees
            ],
        }


@dataclass(frozen=True)
class CrossFitted:
    """The fold models of one feature set."""

    name: str
    folds: tuple[Ensemble, ...]
    meta: dict = field(default_factory=dict, compare=False)  # the file's "meta" (training run)

    @property
    def features(self) -> tuple[str, ...]:
        return self.folds[0].features

    def predict(self, X: np.ndarray, topic: str | None) -> np.ndarray:
        usable = tuple(i for i, m in enumerate(self.folds) if not topic or topic not in m.train_topics)
        if not usable:  # cannot happen with disjoint folds; never score with a model that saw it
            usable = tuple(range(len(self.folds)))
        return self._mean_of(usable).predict(X)

    def _mean_of(self, usable: tuple[int, ...]) -> Ensemble:
        # the mean of fold models is one ensemble of all their trees: walked together, built
        # once (as for `Ensemble.packed`, a race between threads only builds it twice)
        cache = self.__dict__.setdefault("_means", {})
        if usable not in cache:
            cache[usable] = average([self.folds[i] for i in usable], same_topics=False)
        return cache[usable]


def from_sklearn(model: object, features: Sequence[str], train_topics: Sequence[str]) -> Ensemble:
    """Convert a fitted binary HistGradientBoostingClassifier (no categorical features)."""
    trees = []
    for (predictor,) in model._predictors:  # type: ignore[attr-defined]
        nodes = predictor.nodes
        leaf = nodes["is_leaf"].astype(bool)
        trees.append(Tree(
            feature=np.where(leaf, -1, nodes["feature_idx"].astype(np.int64)),
            threshold=nodes["num_threshold"].astype(np.float64),
            left=nodes["left"].astype(np.int64),
            right=nodes["right"].astype(np.int64),
            value=np.where(leaf, nodes["value"], 0.0).astype(np.float64),
            depth=int(nodes["depth"].max()) + 1,
        ))
    baseline = float(np.ravel(model._baseline_prediction)[0])  # type: ignore[attr-defined]
    return Ensemble(tuple(features), tuple(trees), baseline, frozenset(train_topics))


def from_lightgbm(dump: dict, features: Sequence[str], train_topics: Sequence[str]) -> Ensemble:
    """Convert a LightGBM model (the dict of `Booster.dump_model()`; numerical splits only,
    no missing values) without importing LightGBM: LightGBM is needed to train, never to
    score."""
    trees = []
    for info in dump["tree_info"]:
        feature: list[int] = []
        threshold: list[float] = []
        left: list[int] = []
        right: list[int] = []
        value: list[float] = []
        depth = 0
        stack: list[tuple[dict, int, int, bool]] = [(info["tree_structure"], 0, -1, False)]
        while stack:  # pre-order, iteratively (no recursion limit on deep trees)
            node, level, parent, is_right = stack.pop()
            i = len(feature)
            if parent >= 0:
                (right if is_right else left)[parent] = i
            depth = max(depth, level + 1)
            feature.append(-1)
            threshold.append(0.0)
            left.append(-1)
            right.append(-1)
            value.append(0.0)
            if "split_feature" not in node:
                value[i] = float(node["leaf_value"])
                continue
            if node.get("decision_type", "<=") != "<=" or node.get("missing_type", "None") == "Zero":
                raise ValueError("only numerical splits without zero-as-missing are supported")
            feature[i] = int(node["split_feature"])
            threshold[i] = float(node["threshold"])
            stack.append((node["right_child"], level + 1, i, True))
            stack.append((node["left_child"], level + 1, i, False))
        trees.append(Tree(
            feature=np.asarray(feature, dtype=np.int64),
            threshold=np.asarray(threshold, dtype=np.float64),
            left=np.asarray(left, dtype=np.int64),
            right=np.asarray(right, dtype=np.int64),
            value=np.asarray(value, dtype=np.float64),
            depth=depth,
        ))
    return Ensemble(tuple(features), tuple(trees), 0.0, frozenset(train_topics))


def average(models: Sequence[Ensemble], *, same_topics: bool = True) -> Ensemble:
    """The mean of several ensembles as one (a seed ensemble: the same setting trained with
    different seeds): every member's trees, each leaf value divided by the number of members,
    and the mean of the baselines. Members must read the same features and, unless
    `same_topics` is false (the folds of a cross-fitted model, averaged to score a topic none
    of them saw), have seen the same topics; the result then lists every member's topics.
    One member is returned as it is."""
    if not models:
        raise ValueError("nothing to average")
    if len(models) == 1:
        return models[0]
    first = models[0]
    for m in models[1:]:
        if m.features != first.features:
            raise ValueError("averaged models must read the same features")
        if same_topics and m.train_topics != first.train_topics:
            raise ValueError("averaged models must share their training topics")
    k = len(models)
    trees = tuple(
        Tree(t.feature, t.threshold, t.left, t.right, t.value / k, t.depth)
        for m in models for t in m.trees
    )
    baseline = float(sum(m.baseline for m in models) / k)
    topics = frozenset().union(*(m.train_topics for m in models))
    return Ensemble(first.features, trees, baseline, topics)


def save_models(path: Path, models: dict[str, list[Ensemble]], meta: dict) -> None:
    data = {"meta": meta, "models": {k: [m.to_dict() for m in v] for k, v in models.items()}}
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")


def load_models(path: Path | None = None) -> dict[str, CrossFitted]:
    """The ranker file (default: the one shipped with horizon-match)."""
    try:
        text = (
            path.read_text(encoding="utf-8")
            if path is not None
            else resources.files("horizon_match").joinpath("artefacts/partner_ranker.json").read_text(
                encoding="utf-8"
            )
        )
        data = json.loads(text)
        meta = dict(data.get("meta") or {})
        return {
            name: CrossFitted(name, tuple(Ensemble.from_dict(m) for m in folds), meta)
            for name, folds in data["models"].items()
        }
    except (OSError, ValueError, KeyError) as exc:
        raise ModelUnavailableError(
            f"cannot read the partner ranking model ({exc}); reinstall horizon-match, or "
            "retrain it with `python benchmarks/consortia_train_ranker.py`"
        ) from exc


@cache
def shipped_models() -> dict[str, CrossFitted]:
    return load_models()
