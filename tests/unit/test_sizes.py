"""Sizes that keep the code readable (issue 10): small modules, short functions, and a use case
that reads as a short list of steps."""
import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
MODULES = sorted(SRC.rglob("*.py"))
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 50
MAX_USE_CASE_LINES = 150


def _lines(node: ast.AST) -> int:
    return node.end_lineno - node.lineno + 1


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_is_over_500_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_function_is_over_50_lines(path):
    long = [(node.name, _lines(node)) for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _lines(node) > MAX_FUNCTION_LINES]
    assert not long, f"{path.name}: {long}"


def test_the_use_case_class_is_at_most_150_lines():
    tree = ast.parse((SRC / "acme_flow" / "renewal.py").read_text())
    (renewer,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Renewer"]
    assert _lines(renewer) <= MAX_USE_CASE_LINES
