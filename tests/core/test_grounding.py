"""Grounding: the numbers and proper names of an answer, checked against what the run saw."""

from __future__ import annotations

from ponder.core.events import ToolResult
from ponder.core.grounding import Evidence, check, ground_run, grounding_reward, names_in, numbers_in


def _result(content: str, ok: bool = True, agent: str = "main") -> ToolResult:
    return ToolResult(call_id="c", name="lookup", ok=ok, content=content, agent=agent)


def test_claims_are_numbers_and_names_not_list_markers_or_sentence_openers() -> None:
    text = "Based on the results:\n1. Mencond Pharma was founded in 1,954.\n2. Noskquath: 1510\nThe CEO is Dana Brix."
    assert numbers_in(text) == ["1,954", "1510"]
    assert names_in(text) == ["Mencond Pharma", "Noskquath", "Dana Brix"]
    assert names_in("Unfortunately I could not find it. Answer: Karsdel, Orvania") == ["Karsdel", "Orvania"]
    assert numbers_in("Answer: 1404") == ["1404"] and names_in("Answer: 1404") == []


def test_grounded_fraction_against_tool_results_and_the_task() -> None:
    events = [_result("Mencond Pharma was founded in 1954"), _result("ERROR: Dana Brix is unknown", ok=False),
              _result("Noskquath: founded 1510", agent="sub-1")]  # a sub-agent's result counts too
    g = ground_run("Mencond Pharma: 1954\nNoskquath: 1510\nDana Brix: 1999\nVelmora: 1954", events,
                   task="Find the year for Velmora.")
    assert g.total == 8 and g.grounded == 6 and g.fraction == 0.75
    assert sorted(g.ungrounded) == ["1999", "Dana Brix"]  # an error message is not evidence
    assert grounding_reward("Mencond Pharma: 1954", events) == 1.0
    assert grounding_reward("Mencond Pharma: 1955", events) == 0.5
    assert ground_run("I do not know.", events).fraction is None  # no claims: no fraction ...
    assert grounding_reward("I do not know.", events) == 1.0  # ... and no penalty


def test_numbers_match_by_value_and_names_by_words() -> None:
    ev = Evidence(["population 2,480,090 (Karsdel, Orvania)", "Éclair Holdings"])
    assert check("2480090", ev).fraction == 1.0 and check("2,480,091", ev).fraction == 0.0
    assert check("Eclair Holdings and KARSDEL", ev).grounded == 1  # accents folded; all-caps skipped
    assert check("Karsdel Orvania", ev).fraction == 1.0
    assert check("Karsdel Heights", ev).fraction == 0.0  # a run of words must appear as such
