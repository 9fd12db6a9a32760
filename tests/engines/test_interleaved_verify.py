"""Verify before execute: policy and self-check gate the python tool; rejected code is fixed and run."""

from __future__ import annotations

import json

from ponder.core.events import ToolResult, VerificationEvent
from ponder.engines.interleaved import Interleaved
from ponder.engines.verify import CodePolicy, check_code, parse_self_check, suggest_fix
from ponder.testing import Reply, ScriptedModel
from ponder.tools.sandbox import python_tool


def test_policy_rejects_forbidden_imports_calls_and_attributes():
    assert not check_code("import os\nprint(os.getcwd())").ok
    assert "forbidden module 'os.path'" in check_code("import os.path").reason
    assert "forbidden module 'subprocess'" in check_code("from subprocess import run").reason
    assert "'eval'" in check_code("eval('1+1')").reason
    assert "'__subclasses__'" in check_code("().__class__.__bases__[0].__subclasses__()").reason
    assert check_code("import math\nprint(math.sqrt(2))").ok
    assert check_code("import os", CodePolicy.permissive()).ok


def test_policy_reports_syntax_errors_with_line_and_column():
    chk = check_code("x = 1\nprint(x +)\n")
    assert not chk.ok and "SyntaxError at line 2, column" in chk.reason
    assert not check_code("").ok and not check_code(None).ok


def test_a_stated_result_written_as_code_gets_the_program_that_computes_it():
    chk = check_code("17*23 = 312")
    assert not chk.ok and chk.fix == "print(17*23)"
    assert suggest_fix("x = 3") is None  # a real assignment: not this mistake
    assert suggest_fix("a == b") is None and suggest_fix("x = 1\ny = 2") is None
    assert suggest_fix("(2 + 3) * 4 = ") == "print((2 + 3) * 4)"


def test_self_check_answer_parsing_fails_open():
    assert parse_self_check('{"ok": false, "reason": "divides by zero"}').ok is False
    assert parse_self_check('sure! {"ok": true, "reason": "fine"}').ok is True
    v = parse_self_check("I think it is fine")
    assert v.ok and "fail-open" in v.reason


async def test_forbidden_import_is_rejected_then_fixed_code_runs_in_the_real_sandbox():
    m = ScriptedModel([
        Reply(reasoning="use os to compute", tool_calls=[("python", {"code": "import os\nprint(17*23)"})]),
        Reply(reasoning="os is forbidden; plain arithmetic", tool_calls=[("python", {"code": "print(17*23)"})]),
        Reply(reasoning="it printed 391", content="391"),
    ])
    res = await Interleaved(m, [python_tool()], thinking="on").run("compute 17*23 with python")
    assert res.status == "ok" and res.answer == "391"
    assert (res.metrics.verifications, res.metrics.rejections, res.metrics.fixes) == (2, 1, 1)
    ver = [e for e in res.events if isinstance(e, VerificationEvent)]
    assert [v.ok for v in ver] == [False, True] and "'os'" in ver[0].reason
    results = [e for e in res.events if isinstance(e, ToolResult)]
    assert results[0].ok is False and "rejected before running" in results[0].content
    assert results[1].ok is True and "391" in results[1].content
    tool_msgs = [x.content for x in res.messages if x.role == "tool"]
    assert tool_msgs[0].startswith("ERROR: code rejected") and "391" in tool_msgs[1]


async def test_syntax_error_goes_back_to_the_model_without_running():
    m = ScriptedModel([
        Reply(reasoning="r", tool_calls=[("python", {"code": "print(17*"})]),
        Reply(reasoning="fix", content="gave up"),
    ])
    res = await Interleaved(m, [python_tool()], thinking="on").run("compute")
    tool_msg = [x for x in res.messages if x.role == "tool"][0]
    assert "SyntaxError at line 1" in tool_msg.content and res.metrics.rejections == 1 and res.metrics.fixes == 0


async def test_self_check_rejection_and_acceptance():
    def script(req, n):
        if req.response_schema is not None:  # the self-check call
            code = req.messages[-1].content
            bad = "17+23" in code
            return Reply(content=json.dumps({"ok": not bad, "reason": "adds instead of multiplying" if bad else "ok"}))
        step = sum(1 for x in req.messages if x.role == "tool")
        if step == 0:
            return Reply(reasoning="r", tool_calls=[("python", {"code": "print(17+23)"})])
        if step == 1:
            return Reply(reasoning="r", tool_calls=[("python", {"code": "print(17*23)"})])
        return Reply(reasoning="r", content="391")

    m = ScriptedModel(script)
    res = await Interleaved(m, [python_tool()], thinking="on", self_check=True).run("multiply 17 by 23")
    assert res.status == "ok" and res.answer == "391"
    stages = [(v.stage, v.ok) for v in res.events if isinstance(v, VerificationEvent)]
    assert stages == [("policy", True), ("self_check", False), ("policy", True), ("self_check", True)]
    assert (res.metrics.rejections, res.metrics.fixes) == (1, 1)
    assert res.metrics.self_check_calls == 2 and res.metrics.model_calls == 5
    assert "adds instead of multiplying" in [x for x in res.messages if x.role == "tool"][0].content


async def test_verification_can_be_switched_off():
    m = ScriptedModel([Reply(reasoning="r", tool_calls=[("python", {"code": "eval('2+2')"})]),
                       Reply(reasoning="r", content="done")])
    res = await Interleaved(m, [python_tool()], thinking="on", verify_code=False).run("x")
    assert res.metrics.verifications == 0 and not any(isinstance(e, VerificationEvent) for e in res.events)
