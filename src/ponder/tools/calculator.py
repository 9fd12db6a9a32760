"""Safe arithmetic for models: an `ast` walk over a whitelist, never `eval`.

Limits exist because "2**2**2**30" is a valid expression that would pin a core for
minutes; a model should get an error it can act on instead.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Annotated, Any

from pydantic import Field

from .base import Tool, ToolFailure, tool

MAX_EXPONENT = 10_000
MAX_INT_DIGITS = 4_000
MAX_EXPR_CHARS = 2_000

_BIN = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
FUNCTIONS: dict[str, Any] = {
    "sqrt": math.sqrt, "exp": math.exp, "log": math.log, "log2": math.log2, "log10": math.log10,
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin, "acos": math.acos,
    "atan": math.atan, "atan2": math.atan2, "abs": abs, "round": round, "floor": math.floor,
    "ceil": math.ceil, "factorial": math.factorial, "gcd": math.gcd, "min": min, "max": max,
    "hypot": math.hypot,
}
CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf}


class CalcError(ValueError):
    pass


def _check_size(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > MAX_INT_DIGITS * 3.33:
        raise CalcError(f"result too large (more than {MAX_INT_DIGITS} digits)")
    return v


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            if abs(right) > MAX_EXPONENT:
                raise CalcError(f"exponent {right} is too large (limit {MAX_EXPONENT})")
            if isinstance(left, int) and isinstance(right, int) and right > 0 and left.bit_length() * right > MAX_INT_DIGITS * 3.33:
                raise CalcError(f"result too large (more than {MAX_INT_DIGITS} digits)")
        if isinstance(node.op, ast.Mult) and isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_INT_DIGITS * 3.33:
                raise CalcError(f"result too large (more than {MAX_INT_DIGITS} digits)")
        try:
            return _check_size(_BIN[type(node.op)](left, right))
        except ZeroDivisionError:
            raise CalcError("division by zero") from None
        except OverflowError:
            raise CalcError("numeric overflow: the result is too large for a float") from None
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise CalcError(f"unknown name {node.id!r}; constants: {', '.join(CONSTANTS)}")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fn = FUNCTIONS.get(node.func.id)
        if fn is None:
            raise CalcError(f"unknown function {node.func.id!r}; available: {', '.join(FUNCTIONS)}")
        args = [_eval(a) for a in node.args]
        if fn is math.factorial and args and isinstance(args[0], int | float) and args[0] > 1000:
            raise CalcError("factorial argument too large (limit 1000)")
        try:
            return _check_size(fn(*args))
        except (ValueError, TypeError, OverflowError) as e:
            raise CalcError(f"{node.func.id}: {e}") from None
    raise CalcError(f"unsupported syntax: {ast.unparse(node) if hasattr(ast, 'unparse') else type(node).__name__!s}; "
                    "use numbers, + - * / // % **, parentheses and the listed functions")


def calculate(expression: str) -> int | float:
    """Evaluate an arithmetic expression safely; raises CalcError with a readable reason."""
    if len(expression) > MAX_EXPR_CHARS:
        raise CalcError(f"expression too long ({len(expression)} characters, limit {MAX_EXPR_CHARS})")
    try:
        tree = ast.parse(expression.strip(" ,\n\t").replace("^", "**"), mode="eval")  # stray edge commas are not intent
    except SyntaxError as e:
        raise CalcError(f"not a valid expression: {e.msg}") from None
    return _eval(tree)


# Only characters an arithmetic expression can hold. It is in the tool's JSON schema, so a
# backend with constrained decoding (the embedded model) cannot even write `{17} * {23}`.
EXPRESSION_PATTERN = (
    r"^([0-9+*/%^(). ,-]|sqrt|log|exp|sin|cos|tan|floor|ceil|round|abs|factorial|gcd|min|max|pi|e){1,80}$"
)


def calculator_tool() -> Tool:
    @tool(name="calculator", timeout_s=5.0, idempotent=True)
    def calculator(expression: Annotated[str, Field(pattern=EXPRESSION_PATTERN)]) -> str:
        """Evaluate an arithmetic expression exactly (integers) or in floating point.
        Supports + - * / // % ** (or ^), parentheses, pi, e, and sqrt, log, exp, sin, cos,
        tan, floor, ceil, round, abs, factorial, gcd, min, max.

        Args:
            expression: e.g. "(3 + 4) * 2 ** 10 / sqrt(2)".
        """
        try:
            value = calculate(expression)
        except CalcError as e:
            raise ToolFailure(f"calculator: {e}") from None
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            return repr(value)
        return str(value)

    return calculator
