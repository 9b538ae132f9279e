"""tree_model.average: a seed ensemble stored as one tree ensemble."""

from __future__ import annotations

import json

import numpy as np
import pytest

import horizon_match.tree_model as tree_model
from horizon_match.tree_model import CrossFitted, Ensemble, PackedTrees, Tree, average, from_lightgbm


def _stump(feature: int, threshold: float, low: float, high: float) -> dict:
    return {"tree_structure": {
        "split_feature": feature, "threshold": threshold, "decision_type": "<=",
        "missing_type": "None", "left_child": {"leaf_value": low},
        "right_child": {"leaf_value": high}}}


def _model(trees: list[dict], baseline: float = 0.0, topics: tuple[str, ...] = ("T",)) -> Ensemble:
    ens = from_lightgbm({"tree_info": trees}, ["a", "b"], list(topics))
    return Ensemble(ens.features, ens.trees, baseline, ens.train_topics)


def test_the_average_scores_the_mean_of_its_members() -> None:
    members = [
        _model([_stump(0, 0.5, -1.0, 2.0), _stump(1, 0.2, 0.5, -0.25)], baseline=0.3),
        _model([_stump(1, 0.7, 3.0, -3.0)], baseline=-0.6),
        _model([_stump(0, 0.1, 0.125, 1.0), _stump(0, 0.9, 0.0, 4.0), _stump(1, 0.5, 1.0, 0.0)]),
    ]
    X = np.random.default_rng(0).random((200, 2))
    mean = np.mean([m.predict(X) for m in members], axis=0)
    avg = average(members)
    assert len(avg.trees) == 6
    assert avg.train_topics == frozenset({"T"}) and avg.features == ("a", "b")
    assert np.allclose(avg.predict(X), mean, atol=1e-12)
    # and as the JSON file stores it (leaf values rounded to 7 digits)
    again = Ensemble.from_dict(json.loads(json.dumps(avg.to_dict())))
    assert np.allclose(again.predict(X), mean, atol=1e-6)
    # the members are left as they were
    assert np.allclose(members[1].predict(X[:1]), [3.0 - 0.6 if X[0, 1] <= 0.7 else -3.6])


def test_one_member_is_kept_as_it_is_and_mixed_members_are_refused() -> None:
    single = _model([_stump(0, 0.5, -1.0, 2.0)])
    assert average([single]) is single
    with pytest.raises(ValueError):
        average([])
    with pytest.raises(ValueError, match="training topics"):
        average([single, _model([_stump(0, 0.5, -1.0, 2.0)], topics=("U",))])


def test_averaged_lightgbm_rankers_score_like_the_mean_of_lightgbm() -> None:
    lightgbm = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(2)
    X = rng.random((600, 4)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.random(600) * 0.3 > 0.9).astype(int)
    boosters = []
    for seed in range(3):
        params = dict(objective="lambdarank", num_leaves=7, min_data_in_leaf=5, num_threads=1,
                      seed=seed, deterministic=True, verbose=-1, bagging_fraction=0.7,
                      bagging_freq=1)
        boosters.append(lightgbm.train(params, lightgbm.Dataset(X, y, group=[100] * 6),
                                       num_boost_round=20))
    members = [from_lightgbm(b.dump_model(), list("abcd"), []) for b in boosters]
    stored = Ensemble.from_dict(json.loads(json.dumps(average(members).to_dict())))
    mean = np.mean([b.predict(X) for b in boosters], axis=0)
    assert not np.allclose(boosters[0].predict(X), boosters[1].predict(X))  # seeds differ
    assert np.allclose(stored.predict(X), mean, atol=1e-5)


def _walk_one_by_one(tree: Tree, X: np.ndarray) -> np.ndarray:
    """The plain definition: each row from the root, left when x <= threshold."""
    out = np.empty(len(X))
    for r, row in enumerate(X):
        node = 0
        while tree.feature[node] >= 0:
            node = tree.left[node] if row[tree.feature[node]] <= tree.threshold[node] else tree.right[node]
        out[r] = tree.value[node]
    return out


def _random_tree(rng: np.random.Generator, leaves: int, width: int) -> Tree:
    """A random binary tree numbered in pre-order (as LightGBM's dump is read), so children
    are not next to each other; splits on a grid of values so that ties with x happen."""
    feature, threshold, left, right, value = [], [], [], [], []

    def grow(n_leaves: int, level: int) -> tuple[int, int]:
        i = len(feature)
        feature.append(-1), threshold.append(0.0), left.append(-1), right.append(-1)
        value.append(0.0)
        if n_leaves == 1:
            value[i] = float(rng.normal())
            return i, level + 1
        k = int(rng.integers(1, n_leaves))
        feature[i] = int(rng.integers(width))
        threshold[i] = float(rng.integers(0, 8)) / 4
        left[i], dl = grow(k, level + 1)
        right[i], dr = grow(n_leaves - k, level + 1)
        return i, max(dl, dr)

    _, depth = grow(leaves, 0)
    return Tree(np.array(feature), np.array(threshold), np.array(left), np.array(right),
                np.array(value), depth)


def test_packed_walk_scores_like_walking_each_tree_alone() -> None:
    rng = np.random.default_rng(5)
    width = 6
    trees = [_random_tree(rng, int(rng.integers(1, 16)), width) for _ in range(120)]
    assert {t.depth for t in trees} >= {1, 2} and max(t.depth for t in trees) > 6
    X = rng.integers(0, 8, size=(700, width)) / 4  # values equal to thresholds: ties go left
    X[rng.random(X.shape) < 0.05] = np.nan  # NaN goes right, as `x <= threshold` is false
    plain = sum(_walk_one_by_one(t, X) for t in trees)
    for cells in (1, 7 * len(trees), 1 << 15):  # one row per chunk, a ragged last chunk, one
        packed = PackedTrees(trees)
        old, tree_model._CHUNK_CELLS = tree_model._CHUNK_CELLS, cells
        try:
            assert np.allclose(packed.predict(X), plain, rtol=0, atol=1e-12)
        finally:
            tree_model._CHUNK_CELLS = old
    assert PackedTrees(trees).predict(X[:0]).shape == (0,)
    assert np.array_equal(PackedTrees([]).predict(X), np.zeros(len(X)))
    # a stored depth that is too small does not cut the walk short
    short = [Tree(t.feature, t.threshold, t.left, t.right, t.value, 1) for t in trees]
    assert np.allclose(PackedTrees(short).predict(X), plain, rtol=0, atol=1e-12)
    # fewer columns than the trees read: refused, not read from the next row
    with pytest.raises(ValueError, match="6 features"):
        PackedTrees(trees).predict(X[:, :5])


def test_cross_fitted_scores_a_topic_only_with_folds_that_did_not_see_it() -> None:
    a = _model([_stump(0, 0.5, -1.0, 2.0)], baseline=0.25, topics=("T1",))
    b = _model([_stump(1, 0.5, 4.0, 8.0)], baseline=-0.5, topics=("T2",))
    model = CrossFitted("combined", (a, b))
    X = np.array([[0.0, 0.0], [1.0, 1.0]])
    assert np.allclose(model.predict(X, "T1"), b.predict(X))
    assert np.allclose(model.predict(X, "T2"), a.predict(X))
    assert np.allclose(model.predict(X, "new"), (a.predict(X) + b.predict(X)) / 2)
    assert np.allclose(model.predict(X, None), [(-0.75 + 3.5) / 2, (2.25 + 7.5) / 2])
    assert np.allclose(a.predict(X), [-0.75, 2.25]) and np.allclose(b.predict(X), [3.5, 7.5])
