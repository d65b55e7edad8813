"""The plain scored-CSV source (``source="csv"``): one CSV/TSV file, one row per response.

Every fixture file is written here, into ``tmp_path``.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from scoring_lab.cli import main, option_value, parse_options
from scoring_lab.data import SOURCES, load_tasks
from scoring_lab.data.scored_csv import load_scored_csv
from scoring_lab.data.tabular import DroppedRowsWarning
from scoring_lab.errors import DataError
from test_loaders import expect, write_csv, write_tsv  # the shared fixture writers and error check

# --------------------------------------------------------------------------- helpers


# --------------------------------------------------------------------------- fixtures

MC_HEADER = ["id", "task", "split", "response", "score"]


def mc_rows():
    """Two multi-class tasks with a split column.

    gas (rows 1-27): scores 1..4 (lowest 1); train 16, val 3 (spelt dev/Validation/VAL), test 8.
    ice (rows 28-47): scores 0..2; train 15, test 5, no val rows (val is carved).
    """
    rows = []
    for i in range(16):
        rows.append([f"g{i:02d}", "gas", "train", f"gas answer {i}, with a comma", 1 + i % 4])
    for i, spelling in enumerate(["dev", " Validation ", "VAL"]):
        rows.append([f"gv{i}", "gas", spelling, f"gas val {i}", 1 + i])
    for i in range(8):
        rows.append([f"gt{i}", " gas ", "test", f'gas test {i} "quoted"', 1 + i % 4])
    for i in range(15):
        rows.append([f"i{i:02d}", "ice", "Train", f"ice answer {i}", i % 3])
    for i in range(5):
        rows.append([f"it{i}", "ice", "TEST", f"ice test {i}", ["2", " 0 ", "1.0", "2", "0"][i]])
    return rows


@pytest.fixture
def mc_file(tmp_path) -> Path:
    return write_csv(tmp_path / "scores.csv", MC_HEADER, mc_rows())


ML_HEADER = ["task", "response", "E1", "E2", "E3", "E4"]


def ml_rows():
    """Two multi-label tasks with different rubrics, no split column, no id column.

    gas (rows 1-20): E1, E2, E3 (E4 empty for all its rows).
    ice (rows 21-40): E1, E4 (E2 and E3 empty for all its rows).
    """
    rows = []
    for i in range(20):
        rows.append(["gas", f"gas answer {i}", i % 2, (i // 2) % 2, "1.0" if i % 5 == 0 else " 0 ", ""])
    for i in range(20):
        rows.append(["ice", f"ice answer {i}", "0.0" if i % 3 else "1", "", " ", i % 2])
    return rows


@pytest.fixture
def ml_file(tmp_path) -> Path:
    return write_csv(tmp_path / "labels.csv", ML_HEADER, ml_rows())


def carve_rows(n_per_class=25):
    """One multi-class task without a split column: classes 0 and 1, ``n_per_class`` each, interleaved."""
    return [["t", f"answer {i}", i % 2] for i in range(2 * n_per_class)]


# --------------------------------------------------------------------------- multi-class


def test_multiclass_with_split_column(mc_file):
    tasks = load_scored_csv(mc_file, seed=0)
    assert list(tasks) == ["gas", "ice"]  # order of first appearance
    gas, ice = tasks["gas"], tasks["ice"]

    assert gas.kind == "multiclass" and gas.label_names == [] and gas.n_classes == 4 and gas.n_labels == 4
    assert gas.meta["lowest_score"] == 1 and gas.meta["score_range"] == (1, 4)
    assert gas.train.labels is None and gas.train.scores.dtype == np.int64
    # val from the column, in file order, with the scores shifted by the lowest score (1)
    assert list(gas.val.ids) == ["gv0", "gv1", "gv2"]
    np.testing.assert_array_equal(gas.val.scores, [0, 1, 2])
    assert gas.meta["val_from"] == "column" and gas.meta["splits_from"] == "column"
    assert gas.meta["val_fraction"] is None and gas.meta["test_fraction"] is None
    assert list(gas.train.ids) == [f"g{i:02d}" for i in range(16)]
    np.testing.assert_array_equal(gas.train.scores, [i % 4 for i in range(16)])
    assert gas.train.texts[3] == "gas answer 3, with a comma"
    assert list(gas.test.ids) == [f"gt{i}" for i in range(8)]
    assert gas.test.texts[0] == 'gas test 0 "quoted"'
    np.testing.assert_array_equal(gas.prevalence("train"), [0.25, 0.25, 0.25, 0.25])

    assert ice.n_classes == 3 and ice.meta["lowest_score"] == 0 and ice.meta["score_range"] == (0, 2)
    np.testing.assert_array_equal(ice.test.scores, [2, 0, 1, 2, 0])  # " 0 " and "1.0" accepted
    # no val rows in the column: carved from train (15 rows, 10% -> 2), stratified, nothing lost
    assert ice.meta["val_from"] == "carved" and ice.meta["val_fraction"] == 0.1
    assert len(ice.val) == 2 and len(ice.train) == 13
    assert set(ice.train.ids) | set(ice.val.ids) == {f"i{i:02d}" for i in range(15)}
    assert set(ice.train.ids).isdisjoint(ice.val.ids)
    for split in (ice.train, ice.val):
        for k, i in enumerate(split.ids):
            assert split.scores[k] == int(i[1:]) % 3
            assert split.texts[k] == f"ice answer {int(i[1:])}"

    m = gas.meta
    assert m["source"] == "csv" and m["file"] == str(mc_file) and m["rows"] == 27 and ice.meta["rows"] == 20
    assert m["text_column"] == "response" and m["seed"] == 0 and m["dropped"] == []
    assert m["kind_from"] == "score_column" and m["score_column"] == "score"
    assert m["id_column"] == "id" and m["split_column"] == "split" and m["prompt_column"] is None
    assert m["ignored_columns"] == [] and m["unused_label_columns"] == [] and m["delimiter"] == ","


def test_multiclass_val_carve_depends_on_the_seed(mc_file):
    a = load_scored_csv(mc_file, seed=3, tasks="ice")["ice"]
    b = load_scored_csv(mc_file, seed=3, tasks=["ice"])["ice"]
    assert list(a.val.ids) == list(b.val.ids)
    vals = {tuple(load_scored_csv(mc_file, seed=s, tasks="ice")["ice"].val.ids) for s in range(6)}
    assert len(vals) > 1


def test_tasks_selection_keeps_file_order(mc_file):
    assert list(load_scored_csv(mc_file, tasks=["ice", "gas"])) == ["gas", "ice"]
    assert list(load_scored_csv(mc_file, tasks="ice")) == ["ice"]


# --------------------------------------------------------------------------- multi-label


def test_multilabel_auto_with_two_rubrics(ml_file):
    tasks = load_scored_csv(ml_file, seed=0)
    gas, ice = tasks["gas"], tasks["ice"]
    assert gas.kind == "multilabel" and gas.n_classes is None and gas.meta["kind_from"] == "auto"
    assert gas.meta["label_columns"] == ["E1", "E2", "E3", "E4"]
    assert gas.label_names == ["E1", "E2", "E3"] and gas.meta["unused_label_columns"] == ["E4"]
    assert ice.label_names == ["E1", "E4"] and ice.meta["unused_label_columns"] == ["E2", "E3"]
    assert gas.train.scores is None and gas.train.labels.dtype == np.int8
    # no id column: ids point back to their 1-based data row
    rows = ml_rows()
    for t in (gas, ice):
        for split in t.splits().values():
            for k, i in enumerate(split.ids):
                task, r = i.split("-row")
                assert task == t.name and len(r) == 5
                r = int(r)
                assert split.texts[k] == rows[r - 1][1]
                raw = [rows[r - 1][2 + ML_HEADER[2:].index(c)] for c in t.label_names]
                np.testing.assert_array_equal(split.labels[k], [int(float(str(v))) for v in raw])
    assert gas.splits()["train"].labels.shape[1] == 3 and ice.test.labels.shape[1] == 2
    assert sorted(list(gas.train.ids) + list(gas.val.ids) + list(gas.test.ids)) == \
        [f"gas-row{r:05d}" for r in range(1, 21)]
    assert ice.meta["splits_from"] == "carved" and ice.meta["test_fraction"] == 0.2


def test_multilabel_explicit_label_columns(tmp_path):
    header = ["task", "response", "notes", "a", "b", "c"]
    rows = [["t", f"r{i}", f"note {i}", i % 2, 1, (i // 2) % 2] for i in range(20)]
    f = write_csv(tmp_path / "x.csv", header, rows)
    t = load_scored_csv(f, label_columns="c, a", ignore_columns=["notes", "b"])["t"]
    assert t.kind == "multilabel" and t.label_names == ["c", "a"]  # the given order
    assert t.meta["kind_from"] == "label_columns" and t.meta["ignored_columns"] == ["notes", "b"]
    all_ids = np.concatenate([s.ids for s in t.splits().values()])
    all_labels = np.vstack([s.labels for s in t.splits().values()])
    for i, lab in zip(all_ids, all_labels):
        r = int(i.split("-row")[1]) - 1
        assert list(lab) == [(r // 2) % 2, r % 2]
    # label_columns wins over a score column, which must then be ignored explicitly
    g = write_csv(tmp_path / "y.csv", header + ["score"], [r + [3] for r in rows])
    with pytest.raises(DataError, match="column not used: label_columns is given") as ei:
        load_scored_csv(g, label_columns=["a", "c"], ignore_columns="notes,b")
    expect(ei, file=g, row=0, column="score")
    t = load_scored_csv(g, label_columns=["a", "c"], ignore_columns="notes,b,score")["t"]
    assert t.label_names == ["a", "c"]


# --------------------------------------------------------------------------- carving


def test_carved_splits_add_up_are_deterministic_and_stratified(tmp_path):
    f = write_csv(tmp_path / "c.csv", ["task", "response", "score"], carve_rows(25))
    t = load_scored_csv(f, seed=5)["t"]
    assert t.meta["splits_from"] == "carved" and t.meta["val_from"] == "carved"
    assert t.meta["test_fraction"] == 0.2 and t.meta["val_fraction"] == 0.1
    assert (len(t.train), len(t.val), len(t.test)) == (36, 4, 10)
    ids = [i for s in t.splits().values() for i in s.ids]
    assert sorted(ids) == [f"t-row{r:05d}" for r in range(1, 51)]
    np.testing.assert_array_equal(np.bincount(t.test.scores), [5, 5])  # stratified by class
    np.testing.assert_array_equal(np.bincount(t.val.scores), [2, 2])
    again = load_scored_csv(f, seed=5)["t"]
    for part in ("train", "val", "test"):
        assert list(again.splits()[part].ids) == list(t.splits()[part].ids)
    tests = {tuple(load_scored_csv(f, seed=s)["t"].test.ids) for s in range(5)}
    assert len(tests) > 1  # the seed matters
    u = load_scored_csv(f, test_fraction=0.5, val_fraction=0.0)["t"]
    assert (len(u.train), len(u.val), len(u.test)) == (25, 0, 25)


def test_carve_fractions_are_checked(tmp_path):
    f = write_csv(tmp_path / "c.csv", ["task", "response", "score"], carve_rows(5))
    with pytest.raises(ValueError, match="test_fraction"):
        load_scored_csv(f, test_fraction=0.0)
    with pytest.raises(ValueError, match="val_fraction"):
        load_scored_csv(f, val_fraction=1.0)


# --------------------------------------------------------------------------- delimiters, prompt, names


def test_tsv_by_extension_and_explicit_delimiter(tmp_path, mc_file):
    rows = [[c.replace(",", "") if isinstance(c, str) else c for c in r] for r in mc_rows()]
    expected = load_scored_csv(write_csv(tmp_path / "plain.csv", MC_HEADER, rows))
    for name in ("scores.tsv", "scores.TAB"):
        f = write_tsv(tmp_path / name, MC_HEADER, rows)
        t = load_scored_csv(f)
        assert t["gas"].meta["delimiter"] == "\t"
        assert list(t["gas"].train.ids) == list(expected["gas"].train.ids)
        assert t["gas"].test.texts[0] == 'gas test 0 "quoted"'  # TSV: quotes are text
    txt = write_tsv(tmp_path / "scores.txt", MC_HEADER, rows)
    for d in ("\t", "tab", "\\t"):
        t = load_scored_csv(txt, delimiter=d)
        np.testing.assert_array_equal(t["ice"].test.scores, expected["ice"].test.scores)
    semi = write_csv(tmp_path / "scores.dat", MC_HEADER, mc_rows(), delimiter=";")
    t = load_scored_csv(semi, delimiter=";")
    assert t["gas"].train.texts[0] == "gas answer 0, with a comma" and t["gas"].meta["delimiter"] == ";"
    with pytest.raises(ValueError, match="one character"):
        load_scored_csv(semi, delimiter=";;")


def test_prompt_column_builds_the_text(tmp_path):
    header = ["task", "question", "response", "score", "split"]
    rows = [["q", "What is ice?", "  Frozen water. ", 1, "train"],
            ["q", "", "No question here", 0, "train"],
            ["q", " Why? ", "Because", 1, "test"]]
    f = write_csv(tmp_path / "p.csv", header, rows)
    t = load_scored_csv(f, prompt_column="question", val_fraction=0.0)["q"]
    assert t.train.texts == ["Question: What is ice? Answer: Frozen water.", "No question here"]
    assert t.test.texts == ["Question: Why? Answer: Because"]
    assert t.meta["prompt_column"] == "question"
    # without prompt_column, the question column is an unknown extra column (multi-class)
    with pytest.raises(DataError, match="ignore_columns") as ei:
        load_scored_csv(f)
    expect(ei, file=f, row=0, column="question")


def test_custom_column_names(tmp_path):
    header = ["Student", "Item", "Fold", "Answer", "Grade", "Q"]
    rows = [[f"s{i}", "item 1", "test" if i < 3 else "train", f"ans {i}", 2 + i % 2, "Q?"] for i in range(12)]
    f = write_csv(tmp_path / "c.csv", header, rows)
    t = load_scored_csv(f, text_column="Answer", task_column="Item", score_column="Grade", id_column="Student",
                        split_column="Fold", prompt_column="Q", val_fraction=0.0)
    item = t["item 1"]
    assert item.n_classes == 2 and item.meta["score_range"] == (2, 3)
    assert list(item.test.ids) == ["s0", "s1", "s2"] and item.test.texts[0] == "Question: Q? Answer: ans 0"
    np.testing.assert_array_equal(item.test.scores, [0, 1, 0])
    assert item.meta["text_column"] == "Answer" and item.meta["split_column"] == "Fold"
    # a default-named column can be turned off
    g = write_csv(tmp_path / "d.csv", ["id", "task", "response", "score"],
                  [[f"x{i}", "t", f"r{i}", i % 2] for i in range(10)])
    assert load_scored_csv(g, id_column=None, ignore_columns="id")["t"].test.ids[0].startswith("t-row")


def test_drop_policy_counts_and_warns(tmp_path):
    rows = [["t", "ok 1", 1, "train"], ["t", "", 0, "train"], ["t", "ok 3", 1, "train"],
            ["t", "   ", 2, "test"], ["t", "ok 5", 0, "test"]]
    f = write_csv(tmp_path / "e.csv", ["task", "response", "score", "split"], rows)
    with pytest.raises(DataError, match="empty response text.*1 more row") as ei:
        load_scored_csv(f)
    expect(ei, file=f, row=2, column="response")
    with pytest.warns(DroppedRowsWarning, match="dropped 2 row"):
        t = load_scored_csv(f, on_empty="drop", val_fraction=0.0)["t"]
    assert t.meta["dropped"] == [
        {"file": str(f), "row": 2, "column": "response", "reason": "empty text"},
        {"file": str(f), "row": 4, "column": "response", "reason": "empty text"},
    ]
    assert list(t.train.ids) == ["t-row00001", "t-row00003"] and list(t.test.ids) == ["t-row00005"]
    # the score range is that of the task's rows in the file, dropped rows included
    assert t.meta["score_range"] == (0, 2) and t.n_classes == 3 and t.meta["rows"] == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_scored_csv(write_csv(tmp_path / "ok.csv", ["task", "response", "score"], carve_rows(5)),
                        on_empty="drop")
    with pytest.raises(ValueError, match="on_empty"):
        load_scored_csv(f, on_empty="skip")


def test_all_rows_dropped_is_an_error(tmp_path):
    f = write_csv(tmp_path / "e.csv", ["task", "response", "score", "split"],
                  [["t", "ok", 1, "train"], ["t", " ", 0, "test"]])
    with pytest.warns(DroppedRowsWarning), pytest.raises(DataError, match="no test rows left") as ei:
        load_scored_csv(f, on_empty="drop")
    expect(ei, file=f, row=None, column="response")


# --------------------------------------------------------------------------- bad input


def test_missing_required_column(tmp_path):
    f = write_csv(tmp_path / "m.csv", ["task", "answer", "score"], [["t", "x", 1]])
    with pytest.raises(DataError, match=r"missing column\(s\) \['response'\]") as ei:
        load_scored_csv(f)
    expect(ei, file=f, row=0, column="response")
    g = write_csv(tmp_path / "n.csv", ["item", "response", "score"], [["t", "x", 1]])
    with pytest.raises(DataError, match=r"missing column\(s\) \['task'\]") as ei:
        load_scored_csv(g)
    expect(ei, file=g, row=0, column="task")


@pytest.mark.parametrize("option, name", [
    ("id_column", "Id"), ("split_column", "fold"), ("prompt_column", "question"), ("score_column", "grade"),
])
def test_explicit_optional_column_must_exist(tmp_path, option, name):
    f = write_csv(tmp_path / "o.csv", ["task", "response", "score"], carve_rows(5))
    with pytest.raises(DataError, match=f"{option}='{name}' is not in the header") as ei:
        load_scored_csv(f, **{option: name})
    expect(ei, file=f, row=0, column=name)


def test_unknown_extra_column_in_multiclass(tmp_path):
    f = write_csv(tmp_path / "x.csv", ["task", "response", "score", "rater", "notes"],
                  [["t", "x", 1, "A", "n"]])
    with pytest.raises(DataError, match=r"multi-class.*ignore_columns.*label_columns.*\['rater', 'notes'\]") as ei:
        load_scored_csv(f)
    expect(ei, file=f, row=0, column="rater")


def test_ignore_and_label_columns_must_exist_and_not_clash(tmp_path):
    f = write_csv(tmp_path / "x.csv", ["task", "response", "a"], [["t", "x", 1]])
    with pytest.raises(DataError, match=r"missing column\(s\) \['nope'\]") as ei:
        load_scored_csv(f, ignore_columns="nope")
    expect(ei, file=f, row=0, column="nope")
    with pytest.raises(DataError, match=r"missing column\(s\) \['b'\]") as ei:
        load_scored_csv(f, label_columns=["a", "b"])
    expect(ei, file=f, row=0, column="b")
    with pytest.raises(DataError, match="given both as text_column and as label_columns") as ei:
        load_scored_csv(f, label_columns="response")
    expect(ei, file=f, row=0, column="response")
    with pytest.raises(ValueError, match="more than once"):
        load_scored_csv(f, label_columns="a,a")
    with pytest.raises(ValueError, match="not both"):
        load_scored_csv(f, label_columns="a", score_column="grade")


def test_no_label_columns_left(tmp_path):
    f = write_csv(tmp_path / "x.csv", ["task", "response", "notes"], [["t", "x", "n"]])
    with pytest.raises(DataError, match="no label columns") as ei:
        load_scored_csv(f, ignore_columns="notes")
    expect(ei, file=f, row=0, column=None)


@pytest.mark.parametrize("value, pattern", [
    ("two", r"expected an integer, got 'two'"),
    ("1.5", r"expected an integer, got '1.5'"),
    ("-1", r"non-negative integer, got '-1'"),
    ("  ", "empty score"),
])
def test_bad_score(mc_file, value, pattern):
    rows = mc_rows()
    rows[30][4] = value  # row 31: ice train
    write_csv(mc_file, MC_HEADER, rows)
    with pytest.raises(DataError, match=pattern) as ei:
        load_scored_csv(mc_file)
    expect(ei, file=mc_file, row=31, column="score")
    assert list(load_scored_csv(mc_file, tasks="gas")) == ["gas"]  # scores are checked per selected task


@pytest.mark.parametrize("bad", ["2", "yes", "0.5", "-1", "true"])
def test_bad_label(ml_file, bad):
    rows = ml_rows()
    rows[6][3] = bad  # row 7 (gas), E2
    write_csv(ml_file, ML_HEADER, rows)
    with pytest.raises(DataError, match="label must be 0 or 1") as ei:
        load_scored_csv(ml_file)
    err = expect(ei, file=ml_file, row=7, column="E2")
    assert repr(bad) in str(err)


def test_partly_empty_label_column(ml_file):
    rows = ml_rows()
    rows[24][5] = " "  # row 25 (ice), E4: filled for the task's other rows
    write_csv(ml_file, ML_HEADER, rows)
    with pytest.raises(DataError, match=r"empty label: column 'E4' holds labels for other rows of task 'ice'") as ei:
        load_scored_csv(ml_file)
    expect(ei, file=ml_file, row=25, column="E4")


def test_task_with_no_label_column(ml_file):
    rows = ml_rows()
    for r in rows[20:]:
        r[2] = r[5] = ""
    write_csv(ml_file, ML_HEADER, rows)
    with pytest.raises(DataError, match="task 'ice' has no label column") as ei:
        load_scored_csv(ml_file)
    expect(ei, file=ml_file, row=21, column=None)


def test_empty_task(mc_file):
    rows = mc_rows()
    rows[4][1] = "  "
    write_csv(mc_file, MC_HEADER, rows)
    with pytest.raises(DataError, match="empty task name") as ei:
        load_scored_csv(mc_file)
    expect(ei, file=mc_file, row=5, column="task")


def test_duplicate_and_empty_id(mc_file):
    rows = mc_rows()
    rows[40][0] = " g03 "  # row 41 (ice) repeats row 4's id (gas): unique over the whole file
    write_csv(mc_file, MC_HEADER, rows)
    with pytest.raises(DataError, match="duplicate id 'g03': rows 4 and 41") as ei:
        load_scored_csv(mc_file)
    expect(ei, file=mc_file, row=41, column="id")
    rows[40][0] = ""
    write_csv(mc_file, MC_HEADER, rows)
    with pytest.raises(DataError, match="empty id") as ei:
        load_scored_csv(mc_file)
    expect(ei, file=mc_file, row=41, column="id")


def test_bad_split_value(mc_file):
    rows = mc_rows()
    rows[9][2] = "holdout"
    write_csv(mc_file, MC_HEADER, rows)
    with pytest.raises(DataError, match="unknown split 'holdout'; expected train, val") as ei:
        load_scored_csv(mc_file)
    expect(ei, file=mc_file, row=10, column="split")


def test_task_without_test_or_train_rows(mc_file):
    rows = [r for r in mc_rows() if not (r[1] == "ice" and r[2] == "TEST")]
    write_csv(mc_file, MC_HEADER, rows)
    with pytest.raises(DataError, match=r"task 'ice' has no test rows \(its 15 rows are train 15, val 0, test 0\)") \
            as ei:
        load_scored_csv(mc_file)
    expect(ei, file=mc_file, row=None, column="split")
    assert list(load_scored_csv(mc_file, tasks="gas")) == ["gas"]
    rows = [r for r in mc_rows() if not (r[1] == "ice" and r[2] == "Train")]
    write_csv(mc_file, MC_HEADER, rows)
    with pytest.raises(DataError, match="task 'ice' has no train rows") as ei:
        load_scored_csv(mc_file)
    expect(ei, file=mc_file, row=None, column="split")


def test_too_few_rows_to_carve(tmp_path):
    f = write_csv(tmp_path / "one.csv", ["task", "response", "score"], carve_rows(5) + [["lone", "x", 1]])
    with pytest.raises(DataError, match="task 'lone' has 1 row") as ei:
        load_scored_csv(f)
    expect(ei, file=f, row=11, column="task")


def test_unknown_task_selection(mc_file):
    with pytest.raises(DataError, match=r"unknown task\(s\) \['steam'\]; available: \['gas', 'ice'\]") as ei:
        load_scored_csv(mc_file, tasks=["gas", "steam"])
    expect(ei, file=mc_file, row=None, column=None)


@pytest.mark.parametrize("name", ["scores.txt", "scores", "scores.xlsx"])
def test_wrong_extension(tmp_path, name):
    f = write_csv(tmp_path / name, MC_HEADER, mc_rows())
    with pytest.raises(DataError, match="cannot tell the delimiter.*pass delimiter") as ei:
        load_scored_csv(f)
    expect(ei, file=f, row=None, column=None)


def test_directory_and_missing_path(tmp_path):
    with pytest.raises(DataError, match="got a directory") as ei:
        load_scored_csv(tmp_path)
    expect(ei, file=tmp_path, row=None, column=None)
    missing = tmp_path / "absent.csv"
    with pytest.raises(DataError, match="file not found") as ei:
        load_scored_csv(missing)
    expect(ei, file=missing, row=None, column=None)


def test_shared_reading_rules_apply(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("task,response,score\nt,x,1\nt,y\n")
    with pytest.raises(DataError, match="2 fields but the header has 3") as ei:
        load_scored_csv(f)
    expect(ei, file=f, row=2, column="score")


# --------------------------------------------------------------------------- load_tasks and the command line


def test_load_tasks_routes_csv_with_options(tmp_path):
    assert "csv" in SOURCES
    header = ["task", "answer", "score"]
    f = write_csv(tmp_path / "a.csv", header, carve_rows(25) + [["u", f"u {i}", i % 3] for i in range(30)])
    tasks = load_tasks("csv", f, text_column="answer", seed=2, val_fraction=0.25, tasks=["u"], scale=0.5,
                       difficulty=0.9, test_fraction=0.1)
    u = tasks["u"]
    assert list(tasks) == ["u"] and u.meta["source"] == "csv" and u.meta["seed"] == 2
    assert u.meta["val_fraction"] == 0.25 and u.meta["test_fraction"] == 0.1 and u.meta["text_column"] == "answer"
    assert (len(u.train), len(u.val), len(u.test)) == (20, 7, 3)
    direct = load_scored_csv(f, text_column="answer", seed=2, val_fraction=0.25, test_fraction=0.1, tasks="u")["u"]
    assert list(direct.val.ids) == list(u.val.ids)
    with pytest.raises(DataError, match="needs a path to the data file"):
        load_tasks("csv", None)


def test_cli_summary_for_csv(tmp_path, capsys):
    f = write_csv(tmp_path / "a.csv", ["task", "answer", "score"],
                  carve_rows(25) + [["u", f"u {i}", 1 + i % 3] for i in range(30)])
    assert main(["data", "summary", "--source", "csv", str(f), "--profile", "smoke", "-o", "text_column=answer"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].split()[:6] == ["name", "kind", "n_labels", "n_train", "n_val", "n_test"]
    assert lines[1].split()[:6] == ["t", "multiclass", "2", "36", "4", "10"]
    assert lines[2].split()[:6] == ["u", "multiclass", "3", "22", "2", "6"]
    assert main(["data", "summary", "--source", "csv", str(f), "--profile", "smoke", "--json",
                 "-o", "text_column=answer", "--option", "tasks=u", "-o", "test_fraction=0.5"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["u"] and rows[0]["n_test"] == 15
    assert rows[0]["label_names"] == ["0", "1", "2"] and rows[0]["n_train"] + rows[0]["n_val"] == 15
    counts = np.array(rows[0]["prevalence"]) * rows[0]["n_train"]  # 5 per class minus the 2 val rows
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)
    assert sum(np.round(counts)) == 13 and all(4 <= c <= 5 for c in np.round(counts))


def test_cli_label_columns_list_option(tmp_path, capsys):
    f = write_csv(tmp_path / "l.csv", ["task", "response", "a", "b", "c"],
                  [["t", f"r{i}", i % 2, 1, 0] for i in range(20)])
    assert main(["data", "summary", "--source", "csv", str(f), "--profile", "smoke", "--json",
                 "-o", "label_columns=b,a", "-o", "ignore_columns=c"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["kind"] == "multilabel" and rows[0]["label_names"] == ["b", "a"]
    assert rows[0]["prevalence"][0] == 1.0


@pytest.mark.parametrize("argv, fragment", [
    (["-o", "text_column"], "expects KEY=VALUE"),
    (["-o", "=answer"], "expects KEY=VALUE"),
    (["-o", "seed=3"], "--seed"),
    (["-o", "val_fraction=0.3"], "from the profile"),
    (["-o", "text_column=a", "-o", "text_column=b"], "given twice"),
    (["-o", "bogus=1"], "bogus"),
    ([], "needs exactly one PATH (the data file)"),
])
def test_cli_bad_options_exit_2(tmp_path, capsys, argv, fragment):
    f = write_csv(tmp_path / "a.csv", ["task", "response", "score"], carve_rows(5))
    source = ["--source", "csv"] if not argv else ["--source", "csv", str(f)]
    assert main(["data", "summary", *source, "--profile", "smoke", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scoring-lab: error:") and fragment in err


def test_cli_bad_file_names_row_and_column(tmp_path, capsys):
    f = write_csv(tmp_path / "a.csv", ["task", "response", "score"], carve_rows(5) + [["t", "x", "n/a"]])
    assert main(["data", "summary", "--source", "csv", str(f), "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert str(f) in err and "row 11" in err and "'score'" in err


def test_option_values():
    assert option_value("None") is None and option_value("true") is True and option_value("3") == 3
    assert option_value("0.5") == 0.5 and option_value("answer") == "answer"
    assert option_value("a, b,") == ["a", "b"] and option_value(",") == ","
    assert parse_options(["text_column=answer", "label_columns=a,b", "prompt_column=None"]) == \
        {"text_column": "answer", "label_columns": ["a", "b"], "prompt_column": None}
    assert parse_options(None) == {}
