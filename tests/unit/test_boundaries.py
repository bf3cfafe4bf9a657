"""The module boundaries of DESIGN.md, checked by scanning imports."""
import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
CORE = SRC / "acme_flow"
PURE = ["models", "errors", "planning", "pki", "config", "report"]
USE_CASE = ["issuance", "renewal", "ports"]
IO_MODULES = {"boto3", "botocore", "requests", "acme", "josepy", "dns", "socket", "http",
              "aws_lambda_powertools", "subprocess", "time"}
ADAPTERS = sorted(p.stem for p in (CORE / "adapters").glob("*.py") if p.stem != "__init__")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.add(base)
            found |= {f"{base}.{a.name}" if base.endswith(".") is False else base + a.name for a in node.names}
    return found


def roots(names: set[str]) -> set[str]:
    """Top-level modules imported; `urllib.request` counts as I/O, `urllib.parse` does not."""
    out = {n.split(".")[0] for n in names if not n.startswith(".") and not n.startswith("urllib")}
    return out | {"http" for n in names if n.startswith("urllib.request")}


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io(module):
    path = CORE / f"{module}.py"
    assert not roots(imports_of(path)) & IO_MODULES
    text = path.read_text()
    assert "datetime.now(" not in text and ".now(dt.timezone" not in text, "pure code takes the time as input"


@pytest.mark.parametrize("module", USE_CASE)
def test_use_case_uses_ports_not_adapters(module):
    names = imports_of(CORE / f"{module}.py")
    assert not roots(names) & IO_MODULES
    assert not any("adapters" in n or "bootstrap" in n for n in names), names


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_adapters_do_not_import_each_other_or_the_use_case(adapter):
    names = imports_of(CORE / "adapters" / f"{adapter}.py")
    forbidden = {f"..{m}" for m in ("renewal", "issuance", "bootstrap", "cli")}
    assert not any(n.split(".")[-1] in ADAPTERS and n.startswith(".") for n in names if n != "."), names
    assert not any(n.startswith(f) for n in names for f in forbidden), names


def test_only_the_composition_roots_import_adapters_and_boto3():
    allowed = {"bootstrap.py", "cli.py"}
    for path in CORE.glob("*.py"):
        names = imports_of(path)
        if path.name in allowed:
            continue
        assert "boto3" not in roots(names), path.name
        assert not any("adapters" in n for n in names), path.name


def test_powertools_only_in_the_handler():
    for path in CORE.rglob("*.py"):
        assert "aws_lambda_powertools" not in roots(imports_of(path)), path


def _time_sleeps(path: Path) -> list[int]:
    """Lines that sleep through the time module: `time.sleep(...)`, or `sleep` imported from it."""
    tree = ast.parse(path.read_text())
    aliases = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
               for a in n.names if a.name == "time"}
    lines = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "time"
             and any(a.name == "sleep" for a in n.names)]
    lines += [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "sleep"
              and isinstance(n.value, ast.Name) and n.value.id in aliases]
    return sorted(lines)


def test_only_the_wait_primitive_sleeps():
    """Every wait goes through Deadline.poll/retry and the injected clock (DESIGN.md)."""
    sleeping = {str(p.relative_to(CORE)): _time_sleeps(p) for p in CORE.rglob("*.py")}
    assert [p for p, lines in sleeping.items() if lines] == ["deadline.py"], sleeping
    assert _time_sleeps(CORE / "deadline.py"), "the check itself finds time.sleep where it is"
