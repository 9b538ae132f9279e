"""Task b evaluation (consortium partners) on a small CORDIS folder and on the real dev data."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from horizon_match.consortia_eval import evaluate_partner_ranking, ndcg, read_queries
from horizon_match.embedding import FakeEmbedder, MemoryCache
from horizon_match.errors import InputError, ValidationError

SMALL = Path(__file__).parent / "fixtures" / "consortia" / "cordis_small"


def test_small_folder_rankings_are_honest_and_complete() -> None:
    out = io.StringIO()
    report = evaluate_partner_ranking(SMALL, MemoryCache(FakeEmbedder()), rankings=out)
    assert report.queries == 2
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["query_id"] for line in lines] == ["B-101000008", "B-101000011"]
    robot = lines[0]["ranked"]
    # every candidate is ranked (the pool is smaller than 50), the coordinator is not, and
    # CLUJ VISION, known only from the target project, is not a candidate at all
    assert "100000001" not in robot and "100000011" not in robot
    assert len(robot) == len(set(robot)) == 9
    # the lead's earlier partners (the real partners) are all in the top 5 of the suggester
    assert {"100000002", "100000003", "100000007"} <= set(robot[:5])
    for method, targets in report.methods.items():
        for metrics in targets.values():
            assert all(0.0 <= v <= 1.0 for v in metrics.values()), method
    text = report.as_text()
    assert "baseline: most active" in text and "suggester (combined)" in text


def test_leaving_out_the_topic_or_only_the_project(tmp_path: Path) -> None:
    """The sibling project of the target's topic counts only with scope=project."""
    topic = evaluate_partner_ranking(SMALL, MemoryCache(FakeEmbedder()), scope="topic",
                                     variants=("collaboration",))
    project = evaluate_partner_ranking(SMALL, MemoryCache(FakeEmbedder()), scope="project",
                                       variants=("collaboration",))
    assert topic.scope == "topic" and project.scope == "project"
    # with the sibling (Munich, Warsaw, Lyon together again) the lead's partners baseline
    # cannot do worse
    key = "baseline: coordinator's"
    assert (project.methods[key]["partners_with_history"]["recall@10"]
            >= topic.methods[key]["partners_with_history"]["recall@10"])


def test_the_folder_may_lack_the_target_projects(tmp_path: Path) -> None:
    folder = tmp_path / "no_target"
    folder.mkdir()
    for name in ("topics.csv", "task_b_consortium.jsonl"):
        shutil.copy(SMALL / name, folder / name)
    for name in ("projects.csv", "organizations.csv"):
        lines = (SMALL / name).read_text().splitlines()
        keep = [lines[0], *(x for x in lines[1:] if not x.startswith("101000008,"))]
        (folder / name).write_text("\n".join(keep) + "\n")
    without, with_target = io.StringIO(), io.StringIO()
    evaluate_partner_ranking(folder, MemoryCache(FakeEmbedder()), rankings=without)
    evaluate_partner_ranking(SMALL, MemoryCache(FakeEmbedder()), rankings=with_target)
    # for the query whose target is missing, leaving the target out is the same as never
    # having it: the same ranking, to the last organisation
    first = [json.loads(x) for x in without.getvalue().splitlines()][0]
    again = [json.loads(x) for x in with_target.getvalue().splitlines()][0]
    assert first["query_id"] == again["query_id"] == "B-101000008"
    assert first["ranked"] == again["ranked"]


def test_a_coordinator_outside_the_pool_is_ranked_not_fatal(tmp_path: Path) -> None:
    """A lead the folder does not know (no project, no PIC match) gets a ranking from the call
    alone; the report counts it."""
    folder = tmp_path / "unknown_lead"
    shutil.copytree(SMALL, folder)
    task = folder / "task_b_consortium.jsonl"
    rows = [json.loads(x) for x in task.read_text().splitlines()]
    rows[0]["coordinator_id"] = "999999999"
    task.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = io.StringIO()
    report = evaluate_partner_ranking(folder, MemoryCache(FakeEmbedder()), rankings=out)
    assert report.queries == 2 and report.coordinators_without_history == 1
    first = json.loads(out.getvalue().splitlines()[0])
    assert first["query_id"] == "B-101000008"
    # the real coordinator is now an ordinary candidate; still nothing of the target's topic
    assert "100000001" in first["ranked"] and "100000011" not in first["ranked"]
    assert len(first["ranked"]) == len(set(first["ranked"])) == 10
    assert "1 coordinator(s) have no other project" in report.as_text()


def test_bad_task_files_are_reported_whole(tmp_path: Path) -> None:
    path = tmp_path / "task_b_consortium.jsonl"
    path.write_text('{"query_id": "q1", "topic": "T"}\nnot json\n[1]\n'
                    '{"query_id": "q2", "topic": "T", "coordinator_id": "1", "true_partner_ids": 5}\n')
    with pytest.raises(ValidationError) as err:
        read_queries(path)
    text = str(err.value)
    assert ":1: coordinator_id: missing or empty" in text
    assert ":2: not JSON" in text and ":3: expected a JSON object" in text
    assert ":4: true_partner_ids: expected a list of PICs" in text
    with pytest.raises(InputError, match="task_b_consortium.jsonl"):
        read_queries(tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match="unknown scope"):
        evaluate_partner_ranking(SMALL, MemoryCache(FakeEmbedder()), scope="year")


def test_ndcg() -> None:
    assert ndcg(["a", "b"], {"a", "b"}, 20) == pytest.approx(1.0)
    assert ndcg(["x", "a"], {"a"}, 20) == pytest.approx(1 / 1.5849625, rel=1e-6)
    assert ndcg(["x"], {"a"}, 20) == 0.0


@pytest.mark.integration
def test_dev_split_sample_beats_both_baselines(cordis_dev: Path, tmp_path: Path) -> None:
    """The first 60 dev queries with the shipped model (real vectors would take minutes to
    compute here, so the fake embedder stands in; the collaboration and programme features
    carry the ranking). The suggester must beat both baselines on history partners."""
    report = evaluate_partner_ranking(cordis_dev, MemoryCache(FakeEmbedder(dim=128)),
                                      variants=("combined",), limit=60)
    hist = {m: t["partners_with_history"]["recall@20"] for m, t in report.methods.items()}
    assert hist["suggester (combined)"] > hist["baseline: coordinator's"]
    assert hist["suggester (combined)"] > hist["baseline: most active"]


@pytest.mark.integration
def test_cli_evaluate_task_b(tmp_path: Path) -> None:
    from click.testing import CliRunner

    import cli

    rankings = tmp_path / "ranked.jsonl"
    db = f"sqlite:///{tmp_path / 'eval.db'}"
    result = CliRunner().invoke(cli.main, ["--db", db, "evaluate", "cordis", str(SMALL),
                                           "--task", "b", "--rankings", str(rankings), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert report["task"] == "b" and report["queries"] == 2
    assert set(report["methods"]) >= {"suggester (combined)", "baseline: most active",
                                      "baseline: coordinator's"}
    lines = [json.loads(x) for x in rankings.read_text().splitlines()]
    assert [x["query_id"] for x in lines] == ["B-101000008", "B-101000011"]
    result = CliRunner().invoke(cli.main, ["--db", db, "evaluate", "cordis", str(SMALL),
                                           "--task", "b", "--folds", "2"])
    assert result.exit_code == 2 and "applies to task a" in result.output
    # --ranker: the given partner ranking model is scored instead of the shipped one
    from importlib import resources

    shipped = resources.files("horizon_match").joinpath("artefacts/partner_ranker.json")
    copy = tmp_path / "ranker.json"
    copy.write_text(shipped.read_text(encoding="utf-8"), encoding="utf-8")
    result = CliRunner().invoke(cli.main, ["--db", db, "evaluate", "cordis", str(SMALL),
                                           "--task", "b", "--ranker", str(copy), "--json"])
    assert result.exit_code == 0, result.output
    again = json.loads(result.output[result.output.index("{"):])
    assert again["methods"] == report["methods"]
    # a different model changes the numbers, and only the feature sets it holds are scored
    model = json.loads(copy.read_text(encoding="utf-8"))
    model["models"] = {"combined": model["models"]["combined"]}
    for fold in model["models"]["combined"]:
        for tree in fold["trees"]:
            tree["value"] = [-v for v in tree["value"]]  # every preference reversed
    reversed_model = tmp_path / "reversed.json"
    reversed_model.write_text(json.dumps(model), encoding="utf-8")
    result = CliRunner().invoke(cli.main, ["--db", db, "evaluate", "cordis", str(SMALL), "--task",
                                           "b", "--ranker", str(reversed_model), "--json"])
    assert result.exit_code == 0, result.output
    other = json.loads(result.output[result.output.index("{"):])["methods"]
    assert other != again["methods"]
    assert "ablation: text fit only" in again["methods"]
    assert "ablation: text fit only" not in other
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    result = CliRunner().invoke(cli.main, ["--db", db, "evaluate", "cordis", str(SMALL),
                                           "--task", "b", "--ranker", str(bad)])
    assert result.exit_code != 0 and "partner ranking model" in result.output
