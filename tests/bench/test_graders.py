"""Hand-checked grader cases: every expected number below was worked out by hand."""

from __future__ import annotations

import pytest

from ponder.bench.graders import (
    TableGold,
    exact_match,
    extract_answer,
    grade,
    number_near,
    parse_number,
    parse_table,
    score_table,
)
from ponder.bench.judge import parse_verdict


@pytest.mark.parametrize(
    "text, value",
    [("1,234 km", 1234.0), ("1234", 1234.0), ("$1,234.50", 1234.5), ("about 2.5 million people", 2_500_000.0),
     ("12%", 12.0), ("-7", -7.0), ("1,234,567", 1234567.0), ("none", None), ("1990-1995", None),
     ("born 1990, 5 kids", None)],
)
def test_parse_number(text: str, value: float | None) -> None:
    assert parse_number(text) == value


def test_numbers_with_units_and_commas_match() -> None:
    assert number_near("1,234 km", "1234")
    assert exact_match("1,234 km", "1234")
    assert exact_match("1234.0", "1,234")
    assert not exact_match("1,235 km", "1234")
    assert number_near("105", "100", rel_tol=0.05) and not number_near("106", "100", rel_tol=0.05)


def test_exact_match_normalisation() -> None:
    assert exact_match("The Quessa Dynamics.", "quessa dynamics")
    assert exact_match("Zürich", "zurich")
    assert exact_match("Paris", ["Lyon", "paris"])
    assert not exact_match("Quessa Dynamics Group", "Quessa Dynamics")  # a hard negative is wrong
    assert not exact_match("", "")  # an empty gold never matches
    assert not exact_match("between 1987 and 1988", "1987")  # two numbers are not one answer
    assert not exact_match("1987", "1987 Summit")  # a textual gold is matched as text


def test_extract_answer_forms() -> None:
    assert extract_answer("Reasoning...\nExact Answer: Karsdel\nConfidence: 80%") == "Karsdel"
    assert extract_answer("so the answer: 3\nAnswer: 42") == "42"
    assert extract_answer("we get \\boxed{17}") == "17"
    assert extract_answer("<think>Answer: 1</think>line one\nVelmora") == "Velmora"
    assert extract_answer(None) == ""


GOLD = TableGold(
    columns=["company", "founded", "ceo"],
    key="company",
    rows=[{"company": "Alpha Labs", "founded": "1990", "ceo": "Ann Lee"},
          {"company": "Beta Works", "founded": "2001", "ceo": "Bo Chan"},
          {"company": "Gamma Foods", "founded": "1975", "ceo": "Cy Diaz"},
          {"company": "Delta Motors", "founded": "1930", "ceo": "Di Eng"}],
    matchers={"founded": "number"},
)


def test_table_perfect() -> None:
    s = score_table([dict(r) for r in GOLD.rows], GOLD)
    assert (s.row_f1, s.item_f1, s.success) == (1.0, 1.0, True)


def test_table_missing_extra_and_misspelled_rows() -> None:
    pred = [
        {"company": "Alpha Labs", "founded": "1,990", "ceo": "Ann Lee"},  # right (number with comma)
        {"company": "Beta Wroks", "founded": "2001", "ceo": "Bo Chan"},  # misspelled key: aligned, right
        {"company": "Gamma Foods", "founded": "1976", "ceo": "Cy Diaz"},  # one wrong cell
        {"company": "Omega Mining", "founded": "1950", "ceo": "Oz Ray"},  # extra row
        # Delta Motors missing
    ]
    s = score_table(pred, GOLD)
    # rows: 2 fully right of 4 predicted, of 4 gold -> P = R = 0.5
    assert s.row_precision == pytest.approx(0.5) and s.row_recall == pytest.approx(0.5)
    assert s.row_f1 == pytest.approx(0.5)
    # items: 3 + 3 + 2 = 8 right cells; 12 predicted cells, 12 gold cells -> P = R = F1 = 2/3
    assert s.item_precision == pytest.approx(8 / 12) and s.item_recall == pytest.approx(8 / 12)
    assert s.item_f1 == pytest.approx(2 / 3)
    assert s.aligned == 3 and not s.success


def test_table_only_missing_rows() -> None:
    s = score_table([dict(GOLD.rows[0])], GOLD)
    # 1 of 1 predicted right (P=1), 1 of 4 gold (R=.25) -> F1 = 2*.25/1.25 = 0.4
    assert s.row_f1 == pytest.approx(0.4) and s.item_f1 == pytest.approx(0.4)


def test_table_duplicate_rows_count_as_extra() -> None:
    pred = [dict(GOLD.rows[0]), dict(GOLD.rows[0])] + [dict(r) for r in GOLD.rows[1:]]
    s = score_table(pred, GOLD)
    assert s.row_recall == 1.0 and s.row_precision == pytest.approx(4 / 5) and not s.success


def test_misspelled_value_is_wrong_but_misspelled_key_aligns() -> None:
    pred = [dict(r) for r in GOLD.rows]
    pred[0] = {"company": "Alpah Labs", "founded": "1990", "ceo": "Anne Lee"}
    s = score_table(pred, GOLD)
    assert s.aligned == 4
    assert s.item_precision == pytest.approx(11 / 12)  # only the CEO cell is wrong


def test_parse_table_markdown_json_csv() -> None:
    md = "Here you go:\n| Company | Founded | CEO |\n|---|---|---|\n| Alpha Labs | 1990 | Ann Lee |\n"
    assert parse_table(md, GOLD.columns) == [{"company": "Alpha Labs", "founded": "1990", "ceo": "Ann Lee"}]
    js = 'rows: [{"company": "Alpha Labs", "founded": 1990, "ceo": "Ann Lee"}]'
    assert parse_table(js, GOLD.columns)[0]["founded"] == "1990"
    csv_text = "company,founded,ceo\nAlpha Labs,1990,Ann Lee"
    assert parse_table(csv_text, GOLD.columns)[0]["ceo"] == "Ann Lee"
    g = grade("table", md, GOLD)
    assert g.score == pytest.approx(0.4) and not g.solved


def test_judge_verdict_uses_the_group_not_the_whole_match() -> None:
    reply = ("extracted_final_answer: Karsdel\nreasoning: matches.\ncorrect: yes\nconfidence: 90")
    v = parse_verdict(reply)
    assert v.correct is True and v.extracted == "Karsdel"
    assert parse_verdict("correct: no").correct is False
    assert parse_verdict("no verdict here").correct is None
    # the judge may restate the format first: the last verdict wins
    assert parse_verdict("correct: Answer 'yes' if ...\ncorrect: no").correct is False


def test_unknown_grader_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown grader 'fuzzy'"):
        grade("fuzzy", "x", "x")
