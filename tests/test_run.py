import json

import matplotlib.pyplot as plt
import pandas as pd

from scoring_lab.book.run import setup


def test_results_go_under_profile_and_chapter_with_provenance(tmp_path, monkeypatch):
    monkeypatch.setenv("SCORING_LAB_RESULTS", str(tmp_path))
    run = setup("data", profile="smoke", seed=7)
    assert run.results_dir == tmp_path / "smoke" / "data"
    run.save_table("t", pd.DataFrame({"a": [1, 2]}))
    fig, ax = plt.subplots(); ax.plot([0, 1]); ax.set_title("x")
    run.save_figure("f", fig)
    assert pd.read_csv(tmp_path / "smoke" / "data" / "t.csv")["a"].tolist() == [1, 2]
    assert (tmp_path / "smoke" / "data" / "f.png").stat().st_size > 1000
    prov = json.loads((tmp_path / "smoke" / "data" / "run.json").read_text())
    assert prov["seed"] == 7 and prov["source"] == "synthetic" and prov["profile"]["data"]["scale"] == 0.05


def test_another_source_never_overwrites_the_profile_results(tmp_path, monkeypatch):
    monkeypatch.setenv("SCORING_LAB_RESULTS", str(tmp_path))
    run = setup("data", profile="default", source="pasta-csv", path="/data/pasta")
    assert run.results_dir == tmp_path / "default-pasta-csv" / "data"


def test_tasks_load_once_with_the_profile_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("SCORING_LAB_RESULTS", str(tmp_path))
    run = setup("data", profile="smoke")
    assert run.tasks is run.tasks
    assert len(run.tasks) == 9
    t = run.tasks["gas_filled_balloons"]
    assert len(t.train) + len(t.val) < 100  # smoke scale


def test_setup_passes_loader_options_and_keeps_their_results_apart():
    run = setup("scorers", profile="smoke", options={"view": "holistic"})
    assert {t.kind for t in run.tasks.values()} == {"multiclass"}
    assert {t.n_classes for t in run.tasks.values()} == {4}
    assert run.results_dir.parent.name == "smoke-view-holistic"
    assert run.provenance()["options"] == {"view": "holistic"}
    plain = setup("scorers", profile="smoke")
    assert plain.results_dir.parent.name == "smoke" and plain.options == {}


def test_scorers_with_changed_settings_leave_the_profile_scorers_alone(monkeypatch):
    import scoring_lab.models.per_task as per_task

    calls = []
    monkeypatch.setattr(per_task, "get_scorers",
                        lambda tasks, settings, seed, cache, progress: calls.append(settings) or {"s": settings})
    run = setup("scorers", profile="smoke")
    monkeypatch.setattr(type(run), "tasks", {})
    own = run.scorers()
    other = run.scorers(multiclass_head="cumulative")
    assert own["s"] == run.profile.train and other["s"].multiclass_head == "cumulative"
    assert run.scorers() is own and run.scorers(multiclass_head=run.profile.train.multiclass_head) is own
    assert len(calls) == 2
