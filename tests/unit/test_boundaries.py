"""The module boundaries of DESIGN.md, checked by scanning imports."""
import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
CORE = SRC / "acme_flow"
PURE_PACKAGES = ["config"]
PURE = ["models", "errors", "planning", "pki", "report"] + [
    f"{package}/{p.stem}" for package in PURE_PACKAGES for p in sorted((CORE / package).glob("*.py"))]
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
