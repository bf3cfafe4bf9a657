"""A function's configuration as template.yaml gives it: `certrenew invoke --function NAME`.

`sam local invoke` configures a function from the template (Handler, Timeout, MemorySize and the
Environment, Globals.Function merged under the function's own Properties); so does this module,
without Docker and without the SAM CLI, so a local invoke runs with the settings the deployed
function has (a threshold, a log level, a config location) rather than the caller's.

- `CfnLoader`: a yaml SafeLoader that reads the CloudFormation short tags (`!Ref X` ->
  `{"Ref": "X"}`, `!Sub s` -> `{"Fn::Sub": s}`, `!GetAtt A.B` -> `{"Fn::GetAtt": ["A", "B"]}`).
- `Evaluator`: the intrinsics the template uses (Ref, GetAtt, Sub, If, Equals, Not, And, Or,
  Condition, Join, Select, Split), with parameters from `--parameter-overrides` or their defaults.
  A reference to a stack resource (or a parameter without default, or AWS::AccountId) raises
  `Unresolved`: only a deployed stack knows it.
- `function_config(...)`: per environment variable, the `--env-vars` file's value (SAM's JSON
  format: `{"FunctionName": {...}, "Parameters": {...}}`, for variables the template declares,
  as SAM does), else the template's value, else, for a value that refers to a stack resource,
  the caller's own value of the same variable (`CERTRENEW_STATE_BUCKET` for `!Ref StateBucket`:
  on the devstack, what `certrenew devstack env` and `certrenew demo --keep` export). Anything
  else unresolved is an `InputError` naming the variable and how to give it.

No I/O beyond reading the template and the env-vars file the caller names; no clock, no AWS.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from .errors import InputError, Problem

TEMPLATE_NAME = "template.yaml"
REPO_ROOT = Path(__file__).resolve().parents[2]  # a source checkout: <repo>/src/acme_flow/this.py
NO_VALUE = object()  # AWS::NoValue
_FN_TAGS = ("And", "Base64", "Cidr", "Equals", "FindInMap", "GetAZs", "If", "ImportValue", "Join",
            "Length", "Not", "Or", "Select", "Split", "Sub", "ToJsonString", "Transform")


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that expands CloudFormation's short-form tags into their long form."""


def _node(loader: yaml.Loader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _tag(key: str):
    def construct(loader: yaml.Loader, node: yaml.Node) -> dict:
        value = _node(loader, node)
        if key == "Fn::GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {key: value}

    return construct


for _name in _FN_TAGS:
    CfnLoader.add_constructor(f"!{_name}", _tag(f"Fn::{_name}"))
CfnLoader.add_constructor("!GetAtt", _tag("Fn::GetAtt"))
CfnLoader.add_constructor("!Ref", _tag("Ref"))
CfnLoader.add_constructor("!Condition", _tag("Condition"))


def find_template(explicit: str | None = None, cwd: Path | None = None, repo_root: Path = REPO_ROOT) -> Path:
    """`explicit`, else template.yaml in the working directory, else in the source checkout."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise InputError(f"--template {explicit}: no such file")
        return path
    candidates = [(cwd or Path.cwd()) / TEMPLATE_NAME, repo_root / TEMPLATE_NAME]
    for path in candidates:
        if path.is_file():
            return path
    raise InputError(
        f"{TEMPLATE_NAME} not found in {candidates[0].parent} nor in {candidates[1].parent}: --function reads "
        "the function's settings from the SAM template, which a source checkout of certrenew has and an "
        "installed package does not; run from the checkout or give --template PATH")


def load_template(path: Path) -> dict:
    """The template as plain data, short tags in their long form."""
    try:
        with open(path, encoding="utf-8") as handle:
            doc = yaml.load(handle, Loader=CfnLoader)  # noqa: S506 - a SafeLoader subclass
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read the template {path}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("Resources"), dict):
        raise InputError(f"{path} is not a CloudFormation/SAM template (no Resources)")
    return doc


# ------------------------------------------------------------------------------ caller's input

def parse_parameter_overrides(items: Sequence[str]) -> dict[str, str]:
    """SAM's `--parameter-overrides`: `Key=Value Key2=Value2` (as words or one quoted string,
    values may be quoted) or `ParameterKey=Key,ParameterValue=Value`."""
    out: dict[str, str] = {}
    for item in items:
        try:
            words = shlex.split(item)
        except ValueError as exc:
            raise InputError(f"--parameter-overrides {item!r}: {exc}") from None
        for word in words:
            long_form = re.fullmatch(r"ParameterKey=([^,]+),ParameterValue=(.*)", word)
            key, sep, value = (long_form.group(1), "=", long_form.group(2)) if long_form else word.partition("=")
            if not sep or not key:
                raise InputError(f"--parameter-overrides: {word!r} is not Key=Value")
            out[key] = value
    return out


def parse_env_vars(text: str, source: str) -> dict[str, dict[str, str]]:
    """SAM's `--env-vars` JSON: {"<Function>": {"VAR": "value"}, "Parameters": {...every function}}."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc}", source) from None
    if not isinstance(doc, dict):
        raise InputError('must be an object: {"RenewerFunction": {"VAR": "value"}, "Parameters": {...}}', source)
    problems, out = [], {}
    for section, variables in doc.items():
        if not isinstance(variables, dict):
            problems.append(Problem(section, "must be an object of VAR: value"))
            continue
        for name, value in variables.items():
            if isinstance(value, (dict, list)) or value is None:
                problems.append(Problem(f"{section}.{name}", f"must be a string, number or boolean, got {value!r}"))
        out[section] = {name: _text(value) for name, value in variables.items()}
    if problems:
        raise InputError(problems, source)
    return out


# ------------------------------------------------------------------------------ the evaluator

class Unresolved(Exception):
    """A value only a deployed stack knows (`what` says which), or one the caller must give."""

    def __init__(self, what: str, *, resource: bool) -> None:
        super().__init__(what)
        self.what = what
        self.resource = resource


def _text(value: Any) -> str:
    """A scalar as CloudFormation passes it to an environment variable."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _partition(region: str) -> tuple[str, str]:
    if region.startswith("cn-"):
        return "aws-cn", "amazonaws.com.cn"
    return ("aws-us-gov" if region.startswith("us-gov-") else "aws"), "amazonaws.com"


class Evaluator:
    """Evaluates the template's intrinsics with the given parameter values (else the defaults)."""

    def __init__(self, template: Mapping[str, Any], overrides: Mapping[str, str] | None = None,
                 region: str = "us-east-1") -> None:
        self.template = template
        self.declared: dict[str, dict] = template.get("Parameters") or {}
        self.resources = template.get("Resources") or {}
        self.overrides = dict(overrides or {})
        check_overrides(self.declared, self.overrides)
        partition, suffix = _partition(region)
        self.pseudo = {"AWS::Region": region, "AWS::Partition": partition, "AWS::URLSuffix": suffix}
        self._conditions: dict[str, bool] = {}

    def parameter(self, name: str) -> Any:
        spec = self.declared[name]
        if name in self.overrides:
            value: Any = self.overrides[name]
        elif "Default" in spec:
            value = spec["Default"]
        else:
            raise Unresolved(f"parameter {name} (no Default): give --parameter-overrides {name}=VALUE",
                             resource=False)
        if spec.get("Type") == "CommaDelimitedList":
            return value if isinstance(value, list) else [item.strip() for item in str(value).split(",")]
        return _text(value)

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise InputError(f"the template has no condition {name!r}")
            self._conditions[name] = bool(self.eval(conditions[name]))
        return self._conditions[name]

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.declared:
            return self.parameter(name)
        if name in self.resources:
            raise Unresolved(f"!Ref {name} (a resource of the deployed stack)", resource=True)
        if name.startswith("AWS::"):
            raise Unresolved(f"the pseudo parameter {name} (known to a deployed stack only)", resource=True)
        raise InputError(f"the template refers to {name!r}, which is no parameter or resource")

    def eval(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.eval(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref" or key == "Condition" or key.startswith("Fn::"):
                return self._intrinsic(key, arg)
        evaluated = {k: self.eval(v) for k, v in value.items()}
        return {k: v for k, v in evaluated.items() if v is not NO_VALUE}

    def _intrinsic(self, key: str, arg: Any) -> Any:  # noqa: C901 - one branch per intrinsic
        if key == "Ref":
            return self.ref(arg)
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::GetAtt":
            raise Unresolved(f"!GetAtt {'.'.join(arg)} (a resource of the deployed stack)", resource=True)
        if key == "Fn::If":
            name, when_true, when_false = arg
            return self.eval(when_true if self.condition(name) else when_false)
        if key == "Fn::Equals":
            left, right = (self.eval(item) for item in arg)
            return _comparable(left) == _comparable(right)
        if key == "Fn::Not":
            return not self.eval(arg[0])
        if key == "Fn::And":
            return all(self.eval(item) for item in arg)
        if key == "Fn::Or":
            return any(self.eval(item) for item in arg)
        if key == "Fn::Join":
            return arg[0].join(_text(item) for item in self.eval(arg[1]))
        if key == "Fn::Split":
            return _text(self.eval(arg[1])).split(arg[0])
        if key == "Fn::Select":
            return self.eval(arg[1])[int(self.eval(arg[0]))]
        if key == "Fn::Sub":
            return self._sub(arg)
        raise InputError(f"{key} is not evaluated locally by certrenew invoke")

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], {k: self.eval(v) for k, v in arg[1].items()})

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _text(variables[name])
            if "." in name:
                raise Unresolved(f"${{{name}}} (an attribute of a resource of the deployed stack)", resource=True)
            resolved = self.ref(name)
            if isinstance(resolved, list):
                raise InputError(f"Fn::Sub cannot insert the list parameter {name}")
            return _text(resolved)

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def _comparable(value: Any) -> Any:
    return [_text(v) for v in value] if isinstance(value, list) else _text(value)


def check_overrides(declared: Mapping[str, dict], overrides: Mapping[str, str]) -> None:
    """Every override names a parameter and meets its AllowedValues, AllowedPattern and Number bounds."""
    problems = []
    for name, value in overrides.items():
        spec = declared.get(name)
        if spec is None:
            problems.append(Problem(name, f"no such template parameter (there are: {', '.join(sorted(declared))})"))
            continue
        allowed = [_text(v) for v in spec.get("AllowedValues") or []]
        if allowed and value not in allowed:
            problems.append(Problem(name, f"{value!r} is not one of {allowed}"))
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            problems.append(Problem(name, f"{value!r} does not match {spec['AllowedPattern']}"))
        if spec.get("Type") == "Number":
            problems += _number_problems(name, value, spec)
    if problems:
        raise InputError(problems, "--parameter-overrides")


def _number_problems(name: str, value: str, spec: Mapping[str, Any]) -> list[Problem]:
    try:
        number = float(value)
    except ValueError:
        return [Problem(name, f"{value!r} is not a number")]
    if "MinValue" in spec and number < float(spec["MinValue"]):
        return [Problem(name, f"{value} is below MinValue {spec['MinValue']}")]
    if "MaxValue" in spec and number > float(spec["MaxValue"]):
        return [Problem(name, f"{value} is above MaxValue {spec['MaxValue']}")]
    return []


# ------------------------------------------------------------------------------ a function

@dataclass(frozen=True)
class FunctionConfig:
    """What Lambda runs a function with; `sources` says where each resolved resource value came from."""

    name: str
    handler: str
    code_dir: Path
    runtime: str
    timeout: float
    memory_mb: int
    variables: dict[str, str]
    sources: dict[str, str] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()


def merged_properties(template: Mapping[str, Any], name: str) -> dict:
    """The function's Properties with Globals.Function merged under them, as SAM merges them."""
    resources = template.get("Resources") or {}
    functions = sorted(n for n, r in resources.items() if isinstance(r, dict)
                       and r.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function"))
    if name not in functions:
        raise InputError(f"--function {name}: the template has no such function (it has: {', '.join(functions)})")
    return _merge((template.get("Globals") or {}).get("Function") or {}, resources[name].get("Properties") or {})


def _merge(base: Any, local: Any) -> Any:
    """SAM's rule: maps merge key by key (the function's value wins), lists append, scalars are replaced."""
    if isinstance(base, dict) and isinstance(local, dict):
        return {**base, **{k: _merge(base[k], v) if k in base else v for k, v in local.items()}}
    if isinstance(base, list) and isinstance(local, list):
        return base + local
    return local


def function_config(template: Mapping[str, Any], name: str, *, template_dir: Path,
                    overrides: Mapping[str, str] | None = None,
                    env_vars: Mapping[str, Mapping[str, str]] | None = None,
                    caller_env: Mapping[str, str] | None = None) -> FunctionConfig:
    """`name`'s Handler, code directory, Timeout, MemorySize and environment variables, resolved."""
    caller_env = caller_env or {}
    props = merged_properties(template, name)
    region = caller_env.get("AWS_REGION") or caller_env.get("AWS_DEFAULT_REGION") or "us-east-1"
    evaluator = Evaluator(template, overrides, region)
    problems: list[Problem] = []

    def setting(key: str, default: Any = None) -> Any:
        try:
            return evaluator.eval(props.get(key, default))
        except Unresolved as exc:
            problems.append(Problem(f"{name}.{key}", f"{exc.what} cannot be resolved locally"))
            return default

    handler, code_uri = setting("Handler"), setting("CodeUri", ".")
    timeout, memory = setting("Timeout", 3), setting("MemorySize", 128)
    declared = ((props.get("Environment") or {}).get("Variables") or {})
    given = {**(env_vars or {}).get("Parameters", {}), **(env_vars or {}).get(name, {})}
    outputs = {json.dumps(o.get("Value"), sort_keys=True): key for key, o in (template.get("Outputs") or {}).items()
               if isinstance(o, dict)}
    variables, sources = _variables(name, declared, evaluator, given, caller_env, problems, outputs)
    if problems:
        raise InputError(problems, f"template.yaml ({name})")
    if not isinstance(handler, str) or not handler:
        raise InputError(f"{name} has no Handler in the template")
    return FunctionConfig(name=name, handler=handler, code_dir=(template_dir / str(code_uri)).resolve(),
                          runtime=_text(evaluator.eval(props.get("Runtime", ""))), timeout=float(timeout),
                          memory_mb=int(float(memory)), variables=variables, sources=sources,
                          ignored=tuple(sorted(set(given) - set(declared))))


def _variables(name: str, declared: Mapping[str, Any], evaluator: Evaluator, given: Mapping[str, str],
               caller_env: Mapping[str, str], problems: list[Problem],
               outputs: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    variables: dict[str, str] = {}
    sources: dict[str, str] = {}
    for var, raw in declared.items():
        if var in given:
            variables[var], sources[var] = given[var], "--env-vars"
            continue
        try:
            value = evaluator.eval(raw)
        except Unresolved as exc:
            if exc.resource and var in caller_env:
                variables[var], sources[var] = caller_env[var], f"{exc.what}: your environment's {var}"
            else:
                output = outputs.get(json.dumps(raw, sort_keys=True))
                problems.append(Problem(f"Environment.Variables.{var}", _how_to_give(name, var, exc, output)))
            continue
        if value is NO_VALUE:
            continue
        if isinstance(value, (list, dict)):
            problems.append(Problem(f"Environment.Variables.{var}", f"evaluates to {value!r}, not a string"))
            continue
        variables[var] = _text(value)
    return variables, sources


def _how_to_give(function: str, var: str, exc: Unresolved, output: str | None) -> str:
    if not exc.resource:
        return exc.what
    where = f"the stack's output {output}" if output else "its value in your stack"
    return (f"{exc.what} cannot be resolved locally: export {var}=... ({where}; on the devstack, what "
            f"`certrenew demo --keep` prints) or give it in --env-vars FILE as "
            f"{{\"{function}\": {{\"{var}\": \"...\"}}}}")
