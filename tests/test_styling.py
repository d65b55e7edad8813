"""The book's table styles (scoring_lab.book.styling): which columns wrap and how. Whether the result
fits a page is measured in a browser (test_book_in_browser.py)."""
from __future__ import annotations

import re

import pandas as pd

from scoring_lab.book.styling import column_styles, density, soft_breaks, styled_table


def _rules(html: str) -> dict[str, dict[str, str]]:
    """``selector -> {property: value}`` from a Styler's <style> block (the table id left out)."""
    rules: dict[str, dict[str, str]] = {}
    for selectors, body in re.findall(r"#T_\w+\s*([^{}]*)\{([^}]*)\}", html):
        props = dict(p.split(":", 1) for p in body.replace("\n", "").split(";") if ":" in p)
        for sel in selectors.split(","):
            rules.setdefault(sel.strip(), {}).update({k.strip(): v.strip() for k, v in props.items()})
    return rules


def test_numbers_stay_on_one_line_and_text_wraps_inside_long_words_only_where_needed():
    df = pd.DataFrame({"task": ["breaking_down_hydrogen_peroxide", "natural_sugar"], "n": [1200, 3],
                       "micro_f1": [0.5, 0.25], "why": ["the paper says so", "a short reason"], "ok": [True, False],
                       "model": ["teacher", "student"]})
    html = styled_table(df, wide=("why",)).to_html()
    rules = _rules(html)
    assert rules[""] == {"max-width": "100%", "font-size": "90%", "border-collapse": "collapse"}
    assert rules["td"]["overflow-wrap"] == "normal" and rules["td"]["padding"] == "2px 6px"
    assert rules["th"]["overflow-wrap"] == "anywhere"                       # a long name over numbers
    assert rules["td.col0"] == {"white-space": "normal", "text-align": "left", "overflow-wrap": "anywhere",
                                "min-width": "5em"}                        # a 31-letter word
    assert rules["td.col1"] == rules["td.col2"] == {"white-space": "nowrap", "text-align": "right"}
    assert "th.col1" not in rules and rules["th.col0"] == {"overflow-wrap": "normal"}
    assert rules["td.col3"] == {"white-space": "normal", "text-align": "left", "overflow-wrap": "anywhere",
                                "min-width": "8em"}                        # wide
    assert rules["td.col4"]["text-align"] == "left"                         # booleans are not numbers
    assert rules["td.col5"] == {"white-space": "normal", "text-align": "left"}
    assert ">breaking_<wbr>down_<wbr>hydrogen_<wbr>peroxide<" in html and ">natural_sugar<" in html
    assert ">micro_<wbr>f1<" in html and ">0.500<" in html and ">1,200<" in html    # headers break at every part


def test_soft_breaks_only_in_long_words_and_never_in_markup_or_numbers():
    assert soft_breaks("set kd.teacher.weight_decay to 0.01") == "set kd.<wbr>teacher.<wbr>weight_<wbr>decay to 0.01"
    assert soft_breaks("results/default/moe/variants.csv") == "results/<wbr>default/<wbr>moe/<wbr>variants.<wbr>csv"
    assert soft_breaks("natural_sugar 3.14159265358979323") == "natural_sugar 3.14159265358979323"
    assert soft_breaks("<b>breaking_down_hydrogen</b>") == "<b>breaking_down_hydrogen</b>" and soft_breaks(0.5) == 0.5


def test_a_crowded_table_is_set_smaller_and_tighter():
    def table(numbers: int, texts: int) -> pd.DataFrame:
        return pd.DataFrame([[0.5] * numbers + ["a model"] * texts],
                            columns=[f"val_metric_{i}" for i in range(numbers)] + [f"t{i}" for i in range(texts)])

    assert [density(table(9, 1)), density(table(4, 6)), density(table(1, 7)), density(table(10, 1)),
            density(table(14, 1)), density(table(3, 3), index=True)] == [
        "roomy", "roomy", "compact", "compact", "dense", "roomy"]
    rules = _rules(styled_table(table(12, 1), wide=("t0",)).to_html())
    assert rules[""]["font-size"] == "80%" and rules["td"]["padding"] == "2px 4px"
    assert rules["td.col12"]["min-width"] == "6em"
    assert _rules(styled_table(table(15, 1)).to_html())[""]["font-size"] == "75%"


def test_nowrap_wins_and_repeated_column_labels_are_styled_by_position():
    df = pd.DataFrame([["00_data", "papermill notebooks/00_data.ipynb out.ipynb", 1.5, 2.5]],
                      columns=["chapter", "command", "x", "x"])
    assert [r["selector"] for r in column_styles(df)] == ["td.col0", "th.col0", "td.col1", "th.col1", "td.col2",
                                                          "td.col3"]
    rules = _rules(styled_table(df, nowrap=("chapter",), index=True).to_html())
    assert rules["td.col0"] == {"white-space": "nowrap", "text-align": "left"}
    assert rules["td.col3"] == {"white-space": "nowrap", "text-align": "right"}
    assert ">command<" in styled_table(df, nowrap=("chapter",)).to_html()
