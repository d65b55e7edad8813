"""`scoring-lab data summary`: the table, --json, and bad input on stderr with a non-zero exit."""
import json
import subprocess
import sys

import pytest

from scoring_lab.cli import main


def _write_pasta(d):
    d.mkdir()
    (d / "gas_train.csv").write_text("response,E1,E2\n" + "".join(f"answer {i},{i % 2},{(i // 2) % 2}\n" for i in range(40)))
    (d / "gas_test.csv").write_text("response,E1,E2\n" + "".join(f"test {i},{i % 2},0\n" for i in range(10)))
    return d


def test_summary_json_for_pasta_csv(tmp_path, capsys):
    d = _write_pasta(tmp_path / "pasta")
    assert main(["data", "summary", "--source", "pasta-csv", str(d), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1
    r = rows[0]
    assert r["name"] == "gas" and r["n_labels"] == 2
    assert r["n_train"] + r["n_val"] == 40 and r["n_test"] == 10
    assert r["prevalence"][0] == pytest.approx(0.5, abs=0.05)


def test_summary_table_for_synthetic_smoke(capsys):
    assert main(["data", "summary", "--source", "synthetic", "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "layers_in_test_tube" in out and "n_train" in out
    assert len(out.strip().splitlines()) == 10  # header + nine tasks


def test_summary_json_keys_for_synthetic(capsys):
    assert main(["data", "summary", "--profile", "smoke", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["n_labels"] for r in rows] == [4, 4, 5, 3, 3, 10, 5, 6, 5]
    assert all({"name", "n_labels", "n_train", "n_val", "n_test"} <= set(r) for r in rows)


@pytest.mark.parametrize("argv, fragment", [
    (["--source", "pasta-csv"], "needs exactly one PATH"),
    (["--source", "synthetic", "x"], "takes no path"),
    (["--source", "web"], "unknown data source 'web'"),
    (["--profile", "nope"], "unknown profile 'nope'"),
])
def test_bad_arguments_exit_non_zero_with_a_message(argv, fragment, capsys):
    assert main(["data", "summary", *argv]) == 2
    assert fragment in capsys.readouterr().err


def test_bad_file_exits_non_zero_naming_file_row_and_column(tmp_path):
    d = _write_pasta(tmp_path / "pasta")
    (d / "gas_test.csv").write_text("response,E1,E2\nfine,1,0\nbad,1,2\n")
    proc = subprocess.run([sys.executable, "-m", "scoring_lab.cli", "data", "summary", "--source", "pasta-csv", str(d)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "gas_test.csv" in proc.stderr and "row 2" in proc.stderr and "'E2'" in proc.stderr
    assert proc.stdout == ""


def test_parameter_values_read_like_papermill_and_yaml_for_mappings():
    from scoring_lab.cli import parameter_value
    from scoring_lab.data import DataError

    assert parameter_value("3") == 3 and parameter_value("0.5") == 0.5 and parameter_value("None") is None
    assert parameter_value("asap-sas") == "asap-sas"
    assert parameter_value("{view: holistic}") == {"view": "holistic"}
    assert parameter_value("{text_column: answer, label_columns: [a, b]}") == {"text_column": "answer",
                                                                              "label_columns": ["a", "b"]}
    with pytest.raises(DataError, match="starts like YAML"):
        parameter_value("{view: [holistic")


def test_run_passes_source_and_data_options_to_the_chapter(monkeypatch, tmp_path):
    """`scoring-lab run CHAPTER -p source ... -p data_options {...}` reaches execute_chapter's parameters
    (the notebook argument once shared the name `source` and the call failed)."""
    from scoring_lab.book import chapters

    seen = {}

    def fake_execute(notebook, output_dir, **kwargs):
        seen.update(kwargs, notebook=notebook)
        return output_dir

    monkeypatch.setattr(chapters, "execute_chapter", fake_execute)
    status = main(["run", "01_scorers", "--profile", "smoke", "--output", str(tmp_path), "-p", "source", "synthetic",
                   "-p", "data_options", "{view: holistic}"])
    assert status == 0
    assert seen["source"] == "synthetic" and seen["data_options"] == {"view": "holistic"}
    assert seen["notebook"].name == "01_scorers.md"
