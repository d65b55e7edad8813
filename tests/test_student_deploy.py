"""The deployable student: save/load, padding invariance, ONNX export, and ``scoring-lab score``."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from scoring_lab.cli import main
from scoring_lab.data.tabular import read_table
from scoring_lab.kd.deploy import export_onnx, onnx_max_difference, onnx_predict_proba, onnx_session, score_csv
from scoring_lab.models.latency import latency_per_response
from scoring_lab.kd.student import LSTMStudent, Student, StudentConfig
from scoring_lab.kd.vocab import fit_vocabulary

SENTENCES = [
    "The plant needs sunlight to make food.",
    "Photosynthesis turns light energy into chemical energy.",
    "Water moves up from the roots to the leaves.",
    "The leaves take in carbon dioxide from the air.",
    "Oxygen is released as a by-product.",
    "Chlorophyll makes the leaves green and absorbs light.",
    "Without water the plant cannot grow.",
    "I don't know.",
    "Sugar is stored in the roots and the stem.",
    "The sun gives energy, the plant uses it.",
    "Plants breathe out oxygen at day and carbon dioxide at night.",
    "Roots hold the plant in the soil.",
]
# varied lengths: one word, unknown words, a long response cut at max_words, digits
TEXTS = SENTENCES + ["green", "zebra quantum", "leaves " * 80, "it needs 12 hours of light", "Roots?"] + [
    " ".join(SENTENCES[i % 12].split()[: 1 + i % 9]) for i in range(60)]
CLASSES = ["0", "1", "2"]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread, restored after: on a busy shared machine two spinning threads make this tiny
    LSTM ~100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def student() -> Student:
    torch.manual_seed(0)
    vocab = fit_vocabulary(SENTENCES, size=40, max_words=32)
    model = LSTMStudent(StudentConfig(vocab_size=len(vocab), n_classes=3))
    with torch.no_grad():                       # sharper than an untrained model's near-uniform output
        model.out.weight.mul_(20.0)
    return Student(model, vocab, CLASSES, about={"note": "test"})


@pytest.fixture(scope="module")
def onnx_file(student, tmp_path_factory):
    return export_onnx(student, tmp_path_factory.mktemp("onnx") / "student.onnx")


@pytest.fixture(scope="module")
def session(onnx_file):
    return onnx_session(onnx_file, intra_op_num_threads=1)


def test_the_test_student_is_not_trivial(student):
    p = student.predict_proba(TEXTS)
    assert p.shape == (len(TEXTS), 3) and np.allclose(p.sum(axis=1), 1, atol=1e-6)
    assert len(set(student.predict(TEXTS))) >= 2 and p.max() > 0.6


def test_save_load_round_trip(student, tmp_path):
    folder = student.save(tmp_path / "s")
    assert sorted(f.name for f in folder.iterdir()) == ["student.json", "weights.safetensors"]
    back = Student.load(folder)
    assert back.model.config == student.model.config
    assert back.vocabulary == student.vocabulary and back.class_names == CLASSES
    assert back.about == {"note": "test"}
    assert np.array_equal(back.predict_proba(TEXTS), student.predict_proba(TEXTS))


def test_loading_what_is_not_a_student(tmp_path, student):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="is not a saved student: it needs student.json and weights"):
        Student.load(tmp_path / "empty")
    folder = student.save(tmp_path / "other")
    (folder / "student.json").write_text('{"format": "something-else/2"}', encoding="utf-8")
    with pytest.raises(ValueError, match="format 'something-else/2', expected 'scoring-lab-lstm-student/1'"):
        Student.load(folder)


def test_alone_equals_inside_a_padded_batch(student):
    batch = TEXTS[:32]
    lengths = {int((student.encode([t]) != 0).sum()) for t in batch}
    assert len(lengths) > 5                                   # mixed lengths, so real padding
    together = student.predict_proba(batch)
    alone = np.concatenate([student.predict_proba([t]) for t in batch])
    np.testing.assert_allclose(alone, together, atol=1e-6, rtol=0)


def test_onnx_file_and_session(onnx_file, session):
    import onnx

    m = onnx.load(str(onnx_file))
    (inp,), (out,) = m.graph.input, m.graph.output
    assert (inp.name, out.name) == ("ids", "proba")
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert [d.dim_param for d in inp.type.tensor_type.shape.dim] == ["batch", "words"]
    assert [i.name for i in session.get_inputs()] == ["ids"] and session.get_providers() == ["CPUExecutionProvider"]


@pytest.mark.parametrize("batch_size", [1, 7, 32])
def test_onnx_agrees_with_pytorch(student, session, batch_size):
    for start in (0, 12, 40):                     # different widths T at each batch size
        texts = (TEXTS * 2)[start: start + batch_size]
        ids = student.encode(texts)
        ort_p = onnx_predict_proba(session, ids.numpy())
        assert ort_p.shape == (batch_size, 3) and ort_p.dtype == np.float32
        np.testing.assert_allclose(ort_p, student.model.predict_proba(ids).numpy(), atol=1e-5, rtol=0)


def test_onnx_max_difference(student, onnx_file, session):
    d = onnx_max_difference(student, onnx_file, TEXTS * 2)     # 154 texts: batches of 64, 64, 26
    assert 0 <= d < 1e-5
    assert onnx_max_difference(student, session, TEXTS[:5]) < 1e-5


def test_latency_per_response_takes_any_callable():
    seen = []
    r = latency_per_response(lambda b: seen.append(list(b)), list(range(10)), batch_size=4, repeats=5, warmup=2)
    assert r["batch_size"] == 4 and r["responses_timed"] == 20 and r["seconds_per_response"] > 0
    assert seen[:3] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]] and len(seen) == 7
    with pytest.raises(ValueError):
        latency_per_response(print, [], batch_size=1)


# ----------------------------------------------------------------------------- scoring-lab score
def _write(path, text: str, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


GOOD_CSV = ('id,response,teacher\n'
            's1,The plant needs sunlight,Ms A\n'
            's2,"Water, then light, then sugar",\n'
            's3,"Roots hold the plant\nin the soil",Mr B\n'
            's4,green,Ms A\n'
            's5,   it needs 12 hours of light  ,Ms C\n')


def test_score_cli_keeps_every_row_and_column(student, tmp_path, capsys):
    model = student.save(tmp_path / "student")
    src, out = _write(tmp_path / "in.csv", GOOD_CSV), tmp_path / "scored.csv"
    assert main(["score", "--model", str(model), "--input", str(src), "--output", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"scored 5 rows -> {out}"
    given, scored = read_table(src), read_table(out)
    assert scored.header == ["id", "response", "teacher", "predicted_score", "p_0", "p_1", "p_2"]
    assert [r[:3] for r in scored.rows] == given.rows            # unchanged, in order, quoting kept
    assert scored.rows[1][1] == "Water, then light, then sugar" and scored.rows[1][2] == ""
    assert scored.rows[4][1] == "   it needs 12 hours of light  "
    p = np.array([[float(x) for x in r[4:]] for r in scored.rows])
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(p, student.predict_proba(given.column("response")), atol=1e-6)
    assert [r[3] for r in scored.rows] == [CLASSES[k] for k in student.predict(given.column("response"))]


def test_score_csv_returns_the_frame_and_reads_tsv(student, tmp_path):
    src = _write(tmp_path / "in.tsv", 'id\tanswer\n1\tsome "quoted" text, with comma\n2\tOxygen\n')
    frame = score_csv(student, src, tmp_path / "out" / "scored.csv", text_column="answer")
    assert list(frame.columns) == ["id", "answer", "predicted_score", "p_0", "p_1", "p_2"]
    assert frame["answer"].tolist() == ['some "quoted" text, with comma', "Oxygen"]
    assert frame["id"].tolist() == ["1", "2"]                        # as read: strings
    texts = frame["answer"].tolist()
    np.testing.assert_allclose(frame[["p_0", "p_1", "p_2"]].to_numpy(), student.predict_proba(texts), atol=5e-7)
    with open(tmp_path / "out" / "scored.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[1][:2] == ["1", 'some "quoted" text, with comma'] and len(rows) == 3


BAD = {
    "empty": ("id,response\n1,fine answer\n2,\n3,ok\n", "row 2, column 'response'", "empty response"),
    "whitespace": ("id,response\n1,   \n2,ok\n3,\t\n", "row 1, column 'response'", "2 row(s) of this file"),
    "non-text": ("id,response\n1,ok\n2,???\n3,12.5\n4,-\n5,fine\n", "row 2, column 'response'",
                 "3 row(s) of this file are like this (rows 2, 3, 4)"),
    "missing column": ("id,answer,teacher\n1,ok,A\n", "row 0, column 'response'",
                       "the header has ['id', 'answer', 'teacher']"),
    "not utf-8": (b"id,response\n1,ok\n2,caf\xe9 au lait\n", "row 2, column 'response'", "not valid UTF-8"),
    "output clash": ("id,response,p_1\n1,ok,x\n", "row 0, column 'p_1'", "already has a column 'p_1'"),
    "no rows": ("id,response\n", "row 1", "no data rows"),
}


@pytest.mark.parametrize("case", BAD)
def test_score_cli_bad_input(case, student, tmp_path, capsys):
    text, where, why = BAD[case]
    src, out = tmp_path / "in.csv", tmp_path / "scored.csv"
    src.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    model = student.save(tmp_path / "student")
    assert main(["score", "--model", str(model), "--input", str(src), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scoring-lab: error: ") and f"file {src}, {where}: " in err and why in err, err
    assert not out.exists()


def test_many_bad_rows_are_counted_and_ten_listed(student, tmp_path):
    src = _write(tmp_path / "in.csv", "response\n" + "ok\n" + "?\n" * 14)
    with pytest.raises(Exception, match=r"row 2, column 'response': .*'\?'; 14 row\(s\) .*\(rows 2, 3, 4, 5, 6, "
                                        r"7, 8, 9, 10, 11, \.\.\.\)"):
        score_csv(student, src, tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()


def test_score_cli_model_that_is_not_a_student(tmp_path, capsys):
    src = _write(tmp_path / "in.csv", GOOD_CSV)
    assert main(["score", "--model", str(tmp_path), "--input", str(src), "--output", str(tmp_path / "o.csv")]) == 2
    assert "is not a saved student" in capsys.readouterr().err
