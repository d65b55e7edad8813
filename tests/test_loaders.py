"""Real-data loaders: PASTA CSV directories and ASAP-SAS files.

Every fixture file is written here, into ``tmp_path``; nothing binary is committed.
"""
from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import numpy as np
import pytest

from scoring_lab.data.asap_sas import SCORE_RANGE, load_asap_sas, ordinal_labels
from scoring_lab.data.pasta_csv import available_pasta_tasks, load_pasta_csv
from scoring_lab.data.tabular import DroppedRowsWarning, read_table
from scoring_lab.errors import DataError

# --------------------------------------------------------------------------- fixtures


def write_csv(path: Path, header, rows, *, delimiter=",", encoding="utf-8") -> Path:
    """Write a delimited file with the csv module (quoting as needed)."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def write_tsv(path: Path, header, rows) -> Path:
    """Plain TSV: one line per row, no quoting."""
    lines = ["\t".join(map(str, header))] + ["\t".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# alpha: 3 labels + trailing Group; train combos 100 x20, 011 x16, 111 x4 (rare)
ALPHA_COMBOS = [(1, 0, 0)] * 20 + [(0, 1, 1)] * 16 + [(1, 1, 1)] * 4
ALPHA_TEST = [(1, 0, 0), (0, 1, 1), (1, 1, 1), (0, 0, 0), (1, 0, 1)]
# beta: 2 labels, no Group; combos 10 x15, 01 x15
BETA_COMBOS = [(1, 0)] * 15 + [(0, 1)] * 15
BETA_TEST = [(1, 0), (0, 1), (1, 1)]


def alpha_rows(combos, prefix):
    return [[f"{prefix} answer {i}, with a comma", *c, f"G{i % 3}"] for i, c in enumerate(combos)]


def beta_rows(combos, prefix):
    return [[f'{prefix} reply {i} "quoted"', *c] for i, c in enumerate(combos)]


@pytest.fixture
def pasta_dir(tmp_path) -> Path:
    d = tmp_path / "pasta"
    d.mkdir()
    alpha_header = ["response", "energy", "matter", "cause", "Group"]
    write_csv(d / "alpha_train.csv", alpha_header, alpha_rows(ALPHA_COMBOS, "train"))
    write_csv(d / "alpha_test.csv", alpha_header, alpha_rows(ALPHA_TEST, "test"))
    write_csv(d / "beta_train.csv", ["Text", "claim", "evidence"], beta_rows(BETA_COMBOS, "train"))
    write_csv(d / "beta_test.csv", ["text", "claim", "evidence"], beta_rows(BETA_TEST, "test"))
    (d / "README.txt").write_text("not a task")
    return d


def pasta_task(tmp_path, train_header, train_rows, test_header=None, test_rows=None, name="t"):
    """Write one PASTA task; test defaults to a copy of train's header with two good rows."""
    d = tmp_path / "one"
    d.mkdir(exist_ok=True)
    test_header = train_header if test_header is None else test_header
    if test_rows is None:
        n_labels = len(test_header) - 1 - (test_header[-1] == "Group")
        test_rows = [["t1", *[1] * n_labels], ["t2", *[0] * n_labels]]
        if test_header[-1] == "Group":
            test_rows = [r + ["g"] for r in test_rows]
    train = write_csv(d / f"{name}_train.csv", train_header, train_rows)
    test = write_csv(d / f"{name}_test.csv", test_header, test_rows)
    return d, train, test


GOOD_ROWS = [["a b c", 1, 0], ["d e f", 0, 1], ["g h", 1, 1]]


def expect(exc_info, *, file, row, column):
    err = exc_info.value
    assert isinstance(err, DataError)
    assert err.file == str(file)
    assert err.row == row
    assert err.column == column
    text = str(err)
    assert f"file {file}" in text
    if row is not None:
        assert f"row {row}" in text
    if column is not None:
        assert repr(column) in text
    return err


# --------------------------------------------------------------------------- PASTA: good input


def test_pasta_loads_two_tasks(pasta_dir):
    tasks = load_pasta_csv(pasta_dir, val_fraction=0.1, seed=0)
    assert list(tasks) == ["alpha", "beta"]
    assert available_pasta_tasks(pasta_dir) == ["alpha", "beta"]

    a = tasks["alpha"]
    assert a.kind == "multilabel" and a.n_classes is None
    assert a.label_names == ["energy", "matter", "cause"]  # trailing Group ignored
    assert a.meta["ignored_columns"] == ["Group"]
    assert a.meta["source"] == "pasta-csv"
    assert a.meta["rows"] == {"train": 40, "test": 5}
    assert a.meta["files"] == {"train": str(pasta_dir / "alpha_train.csv"), "test": str(pasta_dir / "alpha_test.csv")}
    assert a.meta["dropped"] == []
    assert len(a.train) + len(a.val) == 40 and len(a.val) == 4
    assert a.train.labels.dtype == np.int8 and a.train.labels.shape == (36, 3)
    assert a.train.scores is None and a.test.scores is None
    np.testing.assert_array_equal(a.test.labels, np.array(ALPHA_TEST, dtype=np.int8))
    assert list(a.test.ids) == [f"alpha-test-{r:05d}" for r in range(1, 6)]
    assert a.test.texts[0] == "test answer 0, with a comma"

    # an id points back to its data row (1-based) and its labels and text
    for split in (a.train, a.val):
        for k, i in enumerate(split.ids):
            r = int(i.rsplit("-", 1)[1])
            assert split.texts[k] == f"train answer {r - 1}, with a comma"
            np.testing.assert_array_equal(split.labels[k], ALPHA_COMBOS[r - 1])
    ids = list(a.train.ids) + list(a.val.ids) + list(a.test.ids)
    assert len(set(ids)) == len(ids) == 45

    b = tasks["beta"]
    assert b.label_names == ["claim", "evidence"]
    assert b.meta["ignored_columns"] == []
    assert b.meta["text_column"] == {"train": "Text", "test": "text"}
    assert len(b.train) + len(b.val) + len(b.test) == 30 + 3
    assert b.test.texts[0] == 'test reply 0 "quoted"'


def test_pasta_validation_is_deterministic_and_stratified(pasta_dir):
    a1 = load_pasta_csv(pasta_dir, tasks=["alpha"], seed=7)["alpha"]
    a2 = load_pasta_csv(pasta_dir, tasks="alpha", seed=7)["alpha"]
    assert list(a1.val.ids) == list(a2.val.ids)
    combos = sorted("".join(map(str, row)) for row in a1.val.labels)
    assert combos == ["011", "011", "100", "100"]  # 20:16 of 36 common rows -> 2 and 2
    # the rare combination (4 rows < ceil(1/0.1)) stays in train
    assert sum("".join(map(str, r)) == "111" for r in a1.train.labels) == 4
    others = {tuple(load_pasta_csv(pasta_dir, tasks=["alpha"], seed=s)["alpha"].val.ids) for s in range(5)}
    assert len(others) > 1  # the seed matters
    none = load_pasta_csv(pasta_dir, tasks=["beta"], val_fraction=0.0)["beta"]
    assert len(none.val) == 0 and len(none.train) == 30


def test_pasta_accepts_label_spellings_bom_and_stripped_headers(tmp_path):
    rows = [["x", " 1 ", "0.0"], ["y", "1.0", " 0"], ["z", "0", "1"]]
    d, train, _ = pasta_task(tmp_path, ["text", " c1 ", "c2"], rows, test_header=["text", "c1", "c2"])
    train.write_bytes(b"\xef\xbb\xbf" + train.read_bytes())
    t = load_pasta_csv(d)["t"]
    assert t.label_names == ["c1", "c2"]
    np.testing.assert_array_equal(np.vstack([t.train.labels, t.val.labels]), [[1, 0], [1, 0], [0, 1]])


def test_pasta_lowercase_group_is_a_label(tmp_path):
    d, _, _ = pasta_task(tmp_path, ["text", "a", "group"], GOOD_ROWS)
    assert load_pasta_csv(d)["t"].label_names == ["a", "group"]


def test_pasta_drop_policy_counts_and_warns(tmp_path):
    rows = [["ok 1", 1, 0], ["", 0, 1], ["ok 3", 1, 1], ["   ", 0, 0], ["ok 5", 0, 1]]
    test_rows = [["t1", 1, 0], ["\t", 0, 0]]
    d, train, test = pasta_task(tmp_path, ["text", "a", "b"], rows, test_rows=test_rows)
    with pytest.warns(DroppedRowsWarning) as rec:
        t = load_pasta_csv(d, on_empty="drop", val_fraction=0.0)["t"]
    msgs = [str(w.message) for w in rec]
    assert any(str(train) in m and "dropped 2 row(s)" in m and "rows 2, 4" in m for m in msgs)
    assert any(str(test) in m and "dropped 1 row(s)" in m for m in msgs)
    assert t.meta["dropped"] == [
        {"file": str(train), "row": 2, "column": "text", "reason": "empty text"},
        {"file": str(train), "row": 4, "column": "text", "reason": "empty text"},
        {"file": str(test), "row": 2, "column": "text", "reason": "empty text"},
    ]
    assert list(t.train.ids) == ["t-train-00001", "t-train-00003", "t-train-00005"]
    np.testing.assert_array_equal(t.train.labels, [[1, 0], [1, 1], [0, 1]])
    assert list(t.test.ids) == ["t-test-00001"]
    assert t.meta["rows"] == {"train": 5, "test": 2}
    assert len(t.train) + len(t.val) + len(t.test) + len(t.meta["dropped"]) == 7


def test_pasta_default_policy_raises_on_empty_text(tmp_path):
    d, train, _ = pasta_task(tmp_path, ["answer", "a", "b"], [["x", 1, 0], ["  ", 0, 1], ["", 1, 1]])
    with pytest.raises(DataError, match="empty response text") as ei:
        load_pasta_csv(d)
    err = expect(ei, file=train, row=2, column="answer")
    assert "1 more row" in str(err) and "on_empty='drop'" in str(err)
    with pytest.raises(ValueError, match="on_empty"):
        load_pasta_csv(d, on_empty="skip")


# --------------------------------------------------------------------------- PASTA: bad input


def test_pasta_missing_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match="no such directory") as ei:
        load_pasta_csv(missing)
    expect(ei, file=missing, row=None, column=None)


def test_pasta_path_is_a_file(tmp_path):
    f = tmp_path / "x_train.csv"
    f.write_text("text,a\nx,1\n")
    with pytest.raises(DataError, match="expected a directory") as ei:
        load_pasta_csv(f)
    expect(ei, file=f, row=None, column=None)


def test_pasta_directory_without_train_files(tmp_path):
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"no '\*_train.csv' file found.*first column the response text"):
        load_pasta_csv(tmp_path)


def test_pasta_unknown_task(pasta_dir):
    with pytest.raises(DataError, match=r"unknown task\(s\) \['gamma'\]; available: \['alpha', 'beta'\]"):
        load_pasta_csv(pasta_dir, tasks=["alpha", "gamma"])


@pytest.mark.parametrize("remove", ["alpha_test.csv", "alpha_train.csv"])
def test_pasta_train_without_test_and_vice_versa(pasta_dir, remove):
    (pasta_dir / remove).unlink()
    with pytest.raises(DataError, match=f"not {remove}") as ei:
        load_pasta_csv(pasta_dir)
    expect(ei, file=pasta_dir / remove, row=None, column=None)
    load_pasta_csv(pasta_dir, tasks=["beta"])  # the complete task still loads


@pytest.mark.parametrize(
    "test_header, column, pattern",
    [
        (["text", "a"], "b", r"missing \['b'\]"),
        (["text", "a", "b", "c"], "c", r"extra \['c'\]"),
        (["text", "a", "x"], "b", r"missing \['b'\]; extra \['x'\]"),
        (["text", "b", "a"], "b", "same columns in a different order"),
    ],
)
def test_pasta_test_label_columns_must_match_train(tmp_path, test_header, column, pattern):
    d, _, test = pasta_task(tmp_path, ["text", "a", "b"], GOOD_ROWS, test_header=test_header)
    with pytest.raises(DataError, match=pattern) as ei:
        load_pasta_csv(d)
    expect(ei, file=test, row=0, column=column)


def test_pasta_duplicated_column(tmp_path):
    d, train, _ = pasta_task(tmp_path, ["text", "a", "b", "a"], [["x", 1, 0, 1]],
                             test_header=["text", "a", "b"])
    with pytest.raises(DataError, match="used twice in the header: at positions 2 and 4") as ei:
        load_pasta_csv(d)
    expect(ei, file=train, row=0, column="a")


def test_pasta_empty_header_cell(tmp_path):
    d, train, _ = pasta_task(tmp_path, ["text", "a", " "], [["x", 1, 0]], test_header=["text", "a", "b"])
    with pytest.raises(DataError, match=r"header cell 3 \(of 3\) is empty") as ei:
        load_pasta_csv(d)
    expect(ei, file=train, row=0, column=None)


def test_pasta_no_label_columns(tmp_path):
    d, train, _ = pasta_task(tmp_path, ["text", "Group"], [["x", "g"]], test_header=["text", "a"])
    with pytest.raises(DataError, match="no label columns") as ei:
        load_pasta_csv(d)
    expect(ei, file=train, row=0, column=None)


@pytest.mark.parametrize("bad", ["", "2", "yes", "0.5", "-1", "true"])
def test_pasta_label_not_binary(tmp_path, bad):
    rows = [["x", 1, 0], ["y", 0, bad], ["z", 1, 1]]
    d, train, _ = pasta_task(tmp_path, ["text", "a", "b"], rows)
    with pytest.raises(DataError, match="label must be 0 or 1") as ei:
        load_pasta_csv(d)
    err = expect(ei, file=train, row=2, column="b")
    assert repr(bad) in str(err)


def test_pasta_group_not_last_is_a_label(tmp_path):
    d, train, _ = pasta_task(tmp_path, ["text", "Group", "a"], [["x", "G1", 1]])
    with pytest.raises(DataError, match="ignored only as the last column") as ei:
        load_pasta_csv(d)
    expect(ei, file=train, row=1, column="Group")


def test_pasta_label_error_in_test_file(tmp_path):
    d, _, test = pasta_task(tmp_path, ["text", "a", "b"], GOOD_ROWS, test_rows=[["t", 1, 0], ["u", 1, "x"]])
    with pytest.raises(DataError) as ei:
        load_pasta_csv(d)
    expect(ei, file=test, row=2, column="b")


def test_pasta_non_utf8(tmp_path):
    d, train, _ = pasta_task(tmp_path, ["text", "a", "b"], GOOD_ROWS)
    raw = train.read_bytes().replace(b"d e f", "d é f".encode("latin-1"))
    train.write_bytes(raw)
    with pytest.raises(DataError, match=r"not valid UTF-8 \(0xE9\).*iconv -f latin1 -t utf-8") as ei:
        load_pasta_csv(d)
    err = expect(ei, file=train, row=2, column="text")
    assert "d \\xe9 f" in str(err)


def test_pasta_non_utf8_in_header(tmp_path):
    d, train, _ = pasta_task(tmp_path, ["text", "a", "b"], GOOD_ROWS)
    train.write_bytes(train.read_bytes().replace(b"text", b"t\xffxt", 1))
    with pytest.raises(DataError, match="not valid UTF-8") as ei:
        load_pasta_csv(d)
    expect(ei, file=train, row=0, column="#1")


def test_pasta_header_but_no_rows(tmp_path):
    d, _, test = pasta_task(tmp_path, ["text", "a", "b"], GOOD_ROWS, test_rows=[])
    with pytest.raises(DataError, match="header but no data rows") as ei:
        load_pasta_csv(d)
    expect(ei, file=test, row=1, column=None)


def test_pasta_empty_file(tmp_path):
    d, train, _ = pasta_task(tmp_path, ["text", "a", "b"], GOOD_ROWS)
    train.write_bytes(b"")
    with pytest.raises(DataError, match="the file is empty") as ei:
        load_pasta_csv(d)
    expect(ei, file=train, row=None, column=None)


def test_pasta_wrong_number_of_fields(tmp_path):
    d, train, _ = pasta_task(tmp_path, ["text", "a", "b"], GOOD_ROWS)
    train.write_text("text,a,b\nx,1,0\ny,1\n")
    with pytest.raises(DataError, match=r"2 fields but the header has 3: columns \['b'\] are missing") as ei:
        load_pasta_csv(d)
    expect(ei, file=train, row=2, column="b")
    train.write_text("text,a,b\nx,1,0\ny,1,0\nan, unquoted comma,1,0\n")
    with pytest.raises(DataError, match="1 extra field.*unquoted delimiter") as ei:
        load_pasta_csv(d)
    expect(ei, file=train, row=3, column=None)


def test_pasta_bad_quoting_and_blank_line(tmp_path):
    d, train, _ = pasta_task(tmp_path, ["text", "a", "b"], GOOD_ROWS)
    train.write_text('text,a,b\nx,1,0\n"quoted" tail,1,0\n')
    with pytest.raises(DataError, match="cannot parse line 3 as CSV") as ei:
        load_pasta_csv(d)
    expect(ei, file=train, row=2, column=None)
    train.write_text("text,a,b\nx,1,0\n\ny,0,1\n\n\n")
    with pytest.raises(DataError, match="blank line") as ei:
        load_pasta_csv(d)
    expect(ei, file=train, row=2, column=None)
    train.write_text("text,a,b\nx,1,0\ny,0,1\n\n\n")  # trailing blank lines are fine
    t = load_pasta_csv(d, val_fraction=0.0)["t"]
    assert len(t.train) == 2


def test_read_table_multiline_record_numbering(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text('text,a\n"line one\nline two",1\nz,2\n')
    t = read_table(f)
    assert t.header == ["text", "a"] and len(t) == 2
    assert t.rows[0] == ["line one\nline two", "1"]
    assert t.column("a") == ["1", "2"]
    with pytest.raises(DataError, match="missing column 'b'") as ei:
        t.index("b")
    expect(ei, file=f, row=0, column="b")


# --------------------------------------------------------------------------- ASAP-SAS fixtures

TRAIN_HEADER = ["Id", "EssaySet", "Score1", "Score2", "EssayText"]
TEST_HEADER = ["Id", "EssaySet", "EssayText"]
SOL_HEADER = ["id", "essay_set", "essay_weight", "essay_score", "Usage"]


def asap_train_rows():
    rows = []
    for i in range(40):  # set 1: scores 0..3, 10 each
        rows.append([i + 1, 1, i % 4, (i + 1) % 4, f"set one answer {i} with \"quotes\""])
    for i in range(30):  # set 3: scores 0..2, 10 each
        rows.append([i + 41, 3, i % 3, i % 3, f"set three answer {i}"])
    return rows


TEST_SCORES = {1001: (1, 3), 1002: (1, 0), 1003: (3, 2), 1004: (1, 1), 1005: (3, 0), 1006: (1, 2)}


def asap_test_rows():
    return [[i, s, f"test answer {i}"] for i, (s, _) in TEST_SCORES.items()]


def asap_solution_rows():
    rows = [[i, s, 1, score, "Public"] for i, (s, score) in TEST_SCORES.items()]
    return rows[::-1]  # another order than the test file: alignment is by id


@pytest.fixture
def asap_dir(tmp_path) -> Path:
    d = tmp_path / "asap"
    d.mkdir()
    write_tsv(d / "train_rel_2.tsv", TRAIN_HEADER, asap_train_rows())
    write_tsv(d / "public_leaderboard_rel_2.tsv", TEST_HEADER, asap_test_rows())
    write_csv(d / "public_leaderboard_solution.csv", SOL_HEADER, asap_solution_rows())
    return d


def asap_files(d):
    return d / "train_rel_2.tsv", d / "public_leaderboard_rel_2.tsv", d / "public_leaderboard_solution.csv"


# --------------------------------------------------------------------------- ASAP-SAS: good input


def test_asap_multiclass(asap_dir):
    tasks = load_asap_sas(asap_dir, seed=0)
    assert list(tasks) == ["asap_set_01", "asap_set_03"]
    s1, s3 = tasks["asap_set_01"], tasks["asap_set_03"]
    assert s1.kind == "multiclass" and s3.kind == "multiclass"
    assert s1.n_classes == 4 and s3.n_classes == 3 and s1.label_names == [] and s1.n_labels == 4
    assert s1.train.labels is None and s1.train.scores.dtype == np.int64
    assert len(s1.train) + len(s1.val) == 40 and len(s1.val) == 4
    assert len(s3.train) + len(s3.val) == 30 and len(s3.val) == 3
    np.testing.assert_array_equal(np.bincount(s1.val.scores, minlength=4), [1, 1, 1, 1])  # stratified
    np.testing.assert_array_equal(np.bincount(s3.val.scores, minlength=3), [1, 1, 1])
    # ids are the dataset's own Ids; scores and texts follow them
    for split in (s1.train, s1.val):
        for k, i in enumerate(split.ids):
            n = int(i)
            assert split.scores[k] == (n - 1) % 4
            assert split.texts[k] == f'set one answer {n - 1} with "quotes"'
    assert list(s1.test.ids) == ["1001", "1002", "1004", "1006"]
    np.testing.assert_array_equal(s1.test.scores, [3, 0, 1, 2])
    assert list(s3.test.ids) == ["1003", "1005"]
    np.testing.assert_array_equal(s3.test.scores, [2, 0])
    assert s3.test.texts == ["test answer 1003", "test answer 1005"]
    m = s1.meta
    train, test, sol = asap_files(asap_dir)
    assert m["source"] == "asap-sas" and m["essay_set"] == 1 and m["score_range"] == (0, 3)
    assert m["files"] == {"train": str(train), "test": str(test), "solution": str(sol)}
    assert m["rows"] == {"train": 40, "test": 4} and m["dropped"] == []
    assert m["score2"]["1"] == 1 and m["score2"]["2"] == 2 and m["score2"]["40"] == 0 and len(m["score2"]) == 40
    assert SCORE_RANGE[3] == (0, 2) and s3.meta["score_range"] == (0, 2)


def test_asap_validation_deterministic(asap_dir):
    a = load_asap_sas(asap_dir, sets=[1], seed=3)["asap_set_01"]
    b = load_asap_sas(asap_dir, sets=["asap_set_01"], seed=3)["asap_set_01"]
    assert list(a.val.ids) == list(b.val.ids)
    assert set(a.val.ids).isdisjoint(a.train.ids)


def test_asap_ordinal_view(asap_dir):
    tasks = load_asap_sas(asap_dir, view="ordinal")
    s1, s3 = tasks["asap_set_01"], tasks["asap_set_03"]
    assert s1.kind == "multilabel" and s1.label_names == ["score>=1", "score>=2", "score>=3"]
    assert s3.label_names == ["score>=1", "score>=2"] and s3.n_classes == 3
    np.testing.assert_array_equal(s1.test.scores, [3, 0, 1, 2])
    np.testing.assert_array_equal(s1.test.labels, [[1, 1, 1], [0, 0, 0], [1, 0, 0], [1, 1, 0]])
    np.testing.assert_array_equal(s1.train.labels.sum(axis=1), s1.train.scores)
    np.testing.assert_array_equal(ordinal_labels([0, 2], 2), [[0, 0], [1, 1]])
    assert len(s1.val) == 4 and sorted(s1.val.scores) == [0, 1, 2, 3]


def test_asap_alternative_names_and_overrides(tmp_path):
    d = tmp_path / "alt"
    d.mkdir()
    write_tsv(d / "train.tsv", TRAIN_HEADER, asap_train_rows())
    write_tsv(d / "test.tsv", TEST_HEADER, asap_test_rows())
    write_csv(d / "solution.csv", SOL_HEADER, asap_solution_rows())
    assert load_asap_sas(d, sets=3)["asap_set_03"].meta["files"]["test"] == str(d / "test.tsv")
    write_tsv(d / "mine.tsv", TRAIN_HEADER, asap_train_rows()[::-1])
    t = load_asap_sas(d, train_file="mine.tsv", test_file=d / "test.tsv", sets=[3])
    assert t["asap_set_03"].meta["files"]["train"] == str(d / "mine.tsv")
    with pytest.raises(DataError, match="training TSV not found") as ei:
        load_asap_sas(d, train_file="absent.tsv")
    expect(ei, file=d / "absent.tsv", row=None, column=None)


def test_asap_drop_policy(asap_dir):
    train, test, _ = asap_files(asap_dir)
    rows = asap_train_rows()
    rows[4][4] = " "
    rows[50][4] = ""
    write_tsv(train, TRAIN_HEADER, rows)
    with pytest.raises(DataError, match="empty response text") as ei:
        load_asap_sas(asap_dir)
    expect(ei, file=train, row=5, column="EssayText")
    with pytest.warns(DroppedRowsWarning, match="dropped 1 row"):
        tasks = load_asap_sas(asap_dir, on_empty="drop")
    s1, s3 = tasks["asap_set_01"], tasks["asap_set_03"]
    assert s1.meta["dropped"] == [{"file": str(train), "row": 5, "column": "EssayText", "reason": "empty text"}]
    assert s3.meta["dropped"] == [{"file": str(train), "row": 51, "column": "EssayText", "reason": "empty text"}]
    assert "5" not in set(s1.train.ids) | set(s1.val.ids)
    assert len(s1.train) + len(s1.val) == 39 and s1.meta["rows"]["train"] == 40
    assert len(s3.train) + len(s3.val) == 29


# --------------------------------------------------------------------------- ASAP-SAS: bad input


def test_asap_missing_files(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match="no such directory") as ei:
        load_asap_sas(missing)
    expect(ei, file=missing, row=None, column=None)
    with pytest.raises(DataError, match=r"no training TSV found; tried \['train_rel_2.tsv', 'train.tsv'\]"):
        load_asap_sas(tmp_path)
    write_tsv(tmp_path / "train.tsv", TRAIN_HEADER, asap_train_rows())
    with pytest.raises(DataError, match=r"tried \['public_leaderboard_rel_2.tsv', 'public_leaderboard.tsv', 'test.tsv'\]"):
        load_asap_sas(tmp_path)
    write_tsv(tmp_path / "test.tsv", TEST_HEADER, asap_test_rows())
    with pytest.raises(DataError, match=r"tried \['public_leaderboard_solution.csv', 'solution.csv'\]"):
        load_asap_sas(tmp_path)


def test_asap_unknown_set_and_bad_view(asap_dir):
    with pytest.raises(DataError, match=r"unknown essay set 2; available: \[1, 3\]"):
        load_asap_sas(asap_dir, sets=[1, 2])
    with pytest.raises(DataError, match="unknown essay set 'asap_set_7'"):
        load_asap_sas(asap_dir, sets=["asap_set_7"])
    with pytest.raises(ValueError, match="view"):
        load_asap_sas(asap_dir, view="binary")


def test_asap_missing_column(asap_dir):
    train, _, _ = asap_files(asap_dir)
    write_tsv(train, ["Id", "EssaySet", "Score2", "EssayText"], [r[:2] + r[3:] for r in asap_train_rows()])
    with pytest.raises(DataError, match=r"missing column\(s\) \['Score1'\]") as ei:
        load_asap_sas(asap_dir)
    expect(ei, file=train, row=0, column="Score1")


@pytest.mark.parametrize(
    "row, col, value, pattern",
    [
        (3, 2, 4, r"score 4 is outside 0..3, the range of essay set 1"),
        (45, 2, 3, r"score 3 is outside 0..2, the range of essay set 3"),
        (7, 3, 9, r"score 9 is outside 0..3"),
        (7, 2, "two", r"expected an integer, got 'two'"),
        (7, 2, "1.5", r"expected an integer, got '1.5'"),
        (8, 1, "one", r"expected an integer, got 'one'"),
        (8, 1, 11, r"unknown essay set 11"),
    ],
)
def test_asap_bad_train_values(asap_dir, row, col, value, pattern):
    train, _, _ = asap_files(asap_dir)
    rows = asap_train_rows()
    rows[row - 1][col] = value
    write_tsv(train, TRAIN_HEADER, rows)
    with pytest.raises(DataError, match=pattern) as ei:
        load_asap_sas(asap_dir)
    expect(ei, file=train, row=row, column=TRAIN_HEADER[col])


def test_asap_duplicate_id(asap_dir):
    train, test, _ = asap_files(asap_dir)
    rows = asap_train_rows()
    rows[9][0] = 3
    write_tsv(train, TRAIN_HEADER, rows)
    with pytest.raises(DataError, match="duplicate id '3': rows 3 and 10") as ei:
        load_asap_sas(asap_dir)
    expect(ei, file=train, row=10, column="Id")


def test_asap_id_in_train_and_test(asap_dir):
    _, test, _ = asap_files(asap_dir)
    rows = asap_test_rows()
    rows[1][0] = 7
    write_tsv(test, TEST_HEADER, rows)
    with pytest.raises(DataError, match=r"Id '7' is also in the training file .*row 7") as ei:
        load_asap_sas(asap_dir)
    expect(ei, file=test, row=2, column="Id")


def test_asap_test_id_missing_from_solution(asap_dir):
    _, test, sol = asap_files(asap_dir)
    write_csv(sol, SOL_HEADER, [r for r in asap_solution_rows() if r[0] != 1004])
    with pytest.raises(DataError, match="Id '1004' has no score in the solution file") as ei:
        load_asap_sas(asap_dir)
    expect(ei, file=test, row=4, column="Id")


def test_asap_solution_id_not_in_test(asap_dir):
    _, _, sol = asap_files(asap_dir)
    write_csv(sol, SOL_HEADER, asap_solution_rows() + [[2000, 1, 1, 0, "Public"]])
    with pytest.raises(DataError, match="id '2000' is not in the test file") as ei:
        load_asap_sas(asap_dir)
    expect(ei, file=sol, row=7, column="id")


def test_asap_solution_set_mismatch_and_score_range(asap_dir):
    _, _, sol = asap_files(asap_dir)
    rows = asap_solution_rows()  # reversed: row 1 is id 1006 (set 1), row 4 is id 1003 (set 3)
    rows[0][1] = 3
    write_csv(sol, SOL_HEADER, rows)
    with pytest.raises(DataError, match="essay_set 3 for id '1006' disagrees with EssaySet 1") as ei:
        load_asap_sas(asap_dir)
    expect(ei, file=sol, row=1, column="essay_set")
    rows = asap_solution_rows()
    rows[3][3] = 3
    write_csv(sol, SOL_HEADER, rows)
    with pytest.raises(DataError, match="score 3 is outside 0..2") as ei:
        load_asap_sas(asap_dir)
    expect(ei, file=sol, row=4, column="essay_score")
    rows[3][3] = "n/a"
    write_csv(sol, SOL_HEADER, rows)
    with pytest.raises(DataError, match="expected an integer") as ei:
        load_asap_sas(asap_dir)
    expect(ei, file=sol, row=4, column="essay_score")


def test_asap_test_set_not_in_train(asap_dir):
    _, test, sol = asap_files(asap_dir)
    rows = asap_test_rows()
    rows[2][1] = 4
    write_tsv(test, TEST_HEADER, rows)
    with pytest.raises(DataError, match="essay set 4 has no responses in the training file") as ei:
        load_asap_sas(asap_dir)
    expect(ei, file=test, row=3, column="EssaySet")


def test_asap_non_utf8_text(asap_dir):
    train, _, _ = asap_files(asap_dir)
    raw = train.read_bytes().replace(b"set three answer 3", b"set three \x93answer\x94 3")
    train.write_bytes(raw)
    with pytest.raises(DataError, match=r"not valid UTF-8 \(0x93, 0x94\).*iconv -f windows-1252 -t utf-8.*-f latin1") as ei:
        load_asap_sas(asap_dir)
    expect(ei, file=train, row=44, column="EssayText")


def test_asap_header_only_test_file(asap_dir):
    _, test, _ = asap_files(asap_dir)
    write_tsv(test, TEST_HEADER, [])
    with pytest.raises(DataError, match="header but no data rows") as ei:
        load_asap_sas(asap_dir)
    expect(ei, file=test, row=1, column=None)


def test_asap_tsv_keeps_quotes_and_rejects_ragged_rows(asap_dir):
    train, _, _ = asap_files(asap_dir)
    t = read_table(train, delimiter="\t")
    assert t.rows[0][4] == 'set one answer 0 with "quotes"'
    with train.open("a") as f:
        f.write("999\t1\t0\t0\ttext\twith a tab\n")
    with pytest.raises(DataError, match="6 fields but the header has 5") as ei:
        load_asap_sas(asap_dir)
    expect(ei, file=train, row=71, column=None)


def test_warnings_do_not_fire_without_drops(asap_dir, pasta_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_asap_sas(asap_dir, on_empty="drop")
        load_pasta_csv(pasta_dir, on_empty="drop")
