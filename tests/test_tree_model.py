"""tree_model.average: a seed ensemble stored as one tree ensemble."""

from __future__ import annotations

import json

import numpy as np
import pytest

from horizon_match.tree_model import Ensemble, average, from_lightgbm


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
