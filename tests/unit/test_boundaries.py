"""The module boundaries of DESIGN.md, checked by scanning imports."""
import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
CORE = SRC / "acme_flow"
PURE_PACKAGES = ["config"]
PURE = ["models", "deploy_targets", "lambda_template", "errors", "planning", "pki", "pki_crypto", "report", "results", "caa", "persist", "discover"] + [
    f"{package}/{p.stem}" for package in PURE_PACKAGES for p in sorted((CORE / package).glob("*.py"))]
USE_CASE = ["renewal", "survey", "issuance", "settle", "deploy", "deploy_attached", "account", "parallel", "ports", "validation", "ordering",
            "persist_records", "caa_records", "ca_identity", "rehearsal"]
IO_MODULES = {"boto3", "botocore", "requests", "acme", "josepy", "dns", "socket", "http",
              "aws_lambda_powertools", "subprocess", "time"}
# An adapter is a module of adapters/ or a package there (route53/): the modules of a package may
# import each other, never another adapter.
ADAPTERS = sorted([p.stem for p in (CORE / "adapters").glob("*.py") if p.stem != "__init__"]
                  + [p.parent.name for p in (CORE / "adapters").glob("*/__init__.py")])
ADAPTER_MODULES = sorted(p for p in (CORE / "adapters").rglob("*.py")
                         if p.name != "__init__.py" or p.parent != CORE / "adapters")


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


def absolute_imports(path: Path) -> set[str]:
    """The modules `path` imports, relative imports resolved by their level (`from ...errors
    import X` in acme_flow/adapters/route53/calls.py is acme_flow.errors and acme_flow.errors.X)."""
    return resolved_imports(path.read_text(), list(path.relative_to(SRC).with_suffix("").parts[:-1]))


def resolved_imports(text: str, package: list[str]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names}
    return found


def adapter_of(module: str) -> str | None:
    """The adapter (module or package of adapters/) an absolute module name belongs to."""
    parts = module.split(".")
    return parts[2] if parts[:2] == ["acme_flow", "adapters"] and len(parts) > 2 else None


def test_an_adapter_package_is_one_adapter():
    sample = CORE / "adapters" / "route53" / "records.py"
    assert "route53" in ADAPTERS and sample in ADAPTER_MODULES
    assert adapter_of("acme_flow.adapters.route53.calls") == "route53" and adapter_of("acme_flow.errors") is None
    package = ["acme_flow", "adapters", "route53"]
    assert {adapter_of(n) for n in resolved_imports("from .calls import x\nfrom ..dns_check import y\n"
                                                    "from ...errors import E\n", package)} == {
        "route53", "dns_check", None}


@pytest.mark.parametrize("path", ADAPTER_MODULES, ids=lambda p: str(p.relative_to(CORE / "adapters")))
def test_adapters_do_not_import_each_other_or_the_use_case(path):
    names = absolute_imports(path)
    own = path.stem if path.parent == CORE / "adapters" else path.parent.name
    others = {adapter_of(n) for n in names} - {None, own}
    assert not others & set(ADAPTERS), names
    forbidden = {f"acme_flow.{m}" for m in ("renewal", "issuance", "bootstrap", "cli")}
    assert not any(n == f or n.startswith(f + ".") for n in names for f in forbidden), names


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


REPO = SRC.parent
PRODUCT = {"acme_flow", "handler"}


def module_level_imports(tree: ast.Module) -> set[str]:
    """Modules imported when the module itself is imported: everything but function bodies
    (class bodies, `if` and `try` blocks run at import time)."""
    found, todo = set(), list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.add(node.module or "")
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)):
            found.add(str(node.args[0].value))
        todo.extend(ast.iter_child_nodes(node))
    return found


def test_no_module_of_src_imports_the_devstack_at_import_time():
    sample = ast.parse("import os\nif os:\n    import devstack.stack\ndef up():\n    from devstack import demo\n")
    assert module_level_imports(sample) == {"os", "devstack.stack"}, "the scanner sees imports at module level only"
    modules = sorted(p for package in PRODUCT for p in (SRC / package).rglob("*.py"))
    assert len(modules) > 20
    offenders = {str(p.relative_to(SRC)): sorted(n for n in module_level_imports(ast.parse(p.read_text()))
                                                 if n.split(".")[0] == "devstack")
                 for p in modules}
    assert {k: v for k, v in offenders.items() if v} == {}, "the devstack is development tooling: import it lazily"


def private_product_names(tree: ast.Module) -> list[str]:
    """`_name`s of acme_flow/handler that the code imports or reads off an imported product module."""
    found, bound = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PRODUCT:
                    found += [alias.name] * any(part.startswith("_") for part in alias.name.split("."))
                    bound.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PRODUCT and not node.level:
            found += [node.module] * any(part.startswith("_") for part in node.module.split("."))
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
            bound |= {a.asname or a.name for a in node.names}
    found += [f"{n.value.id}.{n.attr}" for n in ast.walk(tree) if isinstance(n, ast.Attribute)
              and isinstance(n.value, ast.Name) and n.value.id in bound and n.attr.startswith("_")
              and not n.attr.startswith("__")]
    return found


def test_the_devstack_uses_only_public_names_of_the_product():
    sample = ast.parse("from acme_flow.cli import LocalContext, _logs_to_stderr\nfrom acme_flow import pki\n"
                       "pki._private(1)\nimport handler._x\n")
    assert sorted(private_product_names(sample)) == ["acme_flow.cli._logs_to_stderr", "handler._x", "pki._private"]
    tooling = sorted((REPO / "devstack").rglob("*.py")) + sorted((REPO / "bench").glob("*.py"))
    offenders = {str(p.relative_to(REPO)): private_product_names(ast.parse(p.read_text())) for p in tooling}
    assert {k: v for k, v in offenders.items() if v} == {}


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
