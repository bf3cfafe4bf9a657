"""The devstack: Pebble (ACME CA), moto server (AWS), an AWS proxy in front of moto, and a DNS
bridge that serves moto's Route53 zones (Pebble validates DNS-01 through it). All on 127.0.0.1.

`up()` starts everything detached (the processes outlive the caller) and records it in
`state_dir/stack.json`; `down()` stops what that file lists; `load()` reads it back.

A second Pebble, the fallback CA, starts only on demand (`make test` stays fast):
`start_fallback_pebble(stack) -> FallbackCa` starts (or restarts) it next to the stack. It
requires External Account Binding (kid and base64url HMAC on the `FallbackCa`), advertises its
own `caaIdentities` (fallback.pebble.test), makes its own root CA (tell the issuers apart with
`pebble_client.root_pem(fallback)`), validates through the same DNS bridge and serves the same
TLS certificate as the first Pebble, so the one bundle in CERTRENEW_ACME_CA_BUNDLE trusts both.
It is recorded in stack.json: `down()` stops it with the rest, `stop_fallback_pebble()` alone.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from devstack import procs
from devstack.procs import StackError
from devstack.tls import write_tls_files

__all__ = ["Stack", "StackError", "up", "down", "load", "restart_pebble", "pebble_binary",
           "FallbackCa", "start_fallback_pebble", "stop_fallback_pebble", "load_fallback"]

REPO_ROOT = Path(__file__).resolve().parent.parent
STATE_FILE = "stack.json"
SERVICES = ("moto", "aws_proxy", "dns_bridge", "pebble")  # start order; stopped in reverse
READY_TIMEOUT = 20.0
MIN_PEBBLE = (2, 7)

DEFAULT_PEBBLE_ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
PEBBLE_PROFILES = {
    "default": {"description": "90 days", "validityPeriod": 7776000},
    "shortlived": {"description": "6 days", "validityPeriod": 518400},
}


@dataclass
class Stack:
    state_dir: Path
    acme_directory: str  # https://127.0.0.1:PORT/dir
    pebble_management: str  # https://127.0.0.1:PORT (roots/0, intermediates/0, set-renewal-info, ...)
    ca_bundle: str  # PEM of the CA that signed Pebble's own TLS certificate
    moto_url: str  # http://127.0.0.1:PORT, moto server direct
    aws_endpoint_url: str  # http://127.0.0.1:PORT, the recording AWS proxy in front of moto
    dns_host: str
    dns_port: int
    pids: dict[str, int] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """Environment variables that point boto3, the ACME client and DNS checks at this stack."""
        no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY") or os.environ.get("no_proxy"),
                                          "127.0.0.1", "localhost"]))
        return {
            "AWS_ENDPOINT_URL": self.aws_endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "CERTRENEW_ACME_CA_BUNDLE": self.ca_bundle,
            "CERTRENEW_DNS_RESOLVERS": f"{self.dns_host}:{self.dns_port}",
            "CERTRENEW_ACME_DIRECTORY": self.acme_directory,
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }


# ---------------------------------------------------------------------------- pebble binary

def pebble_binary() -> str:
    """$CERTRENEW_PEBBLE, else <repo>/.devstack/bin/pebble, else a `pebble` >= 2.7 on PATH."""
    explicit = os.environ.get("CERTRENEW_PEBBLE")
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise StackError(f"CERTRENEW_PEBBLE={explicit} is not an executable file; run `make pebble`")
        _require_recent(explicit)
        return explicit
    local = REPO_ROOT / ".devstack" / "bin" / "pebble"
    if local.is_file() and os.access(local, os.X_OK):
        _require_recent(str(local))
        return str(local)
    on_path = shutil.which("pebble")
    if on_path and pebble_is_recent(on_path):
        return on_path
    raise StackError("no Pebble >= 2.7 found (CERTRENEW_PEBBLE, ./.devstack/bin/pebble, PATH): run `make pebble` "
                     "(bash devstack/install-pebble.sh .devstack)")


def _require_recent(path: str) -> None:
    if not pebble_is_recent(path):
        raise StackError(f"{path} is older than Pebble 2.7 (no profiles / ARI replaces): run `make pebble`")


def pebble_is_recent(path: str) -> bool:
    """Version >= 2.7 from `pebble -version`; builds that say "dev" (Debian's) are judged by the
    2.7 features compiled in, as devstack/install-pebble.sh does."""
    try:
        out = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    match = re.search(r"(\d+)\.(\d+)", out.stdout + out.stderr)
    if match:
        return (int(match.group(1)), int(match.group(2))) >= MIN_PEBBLE
    data = Path(path).read_bytes()
    markers = (b'json:"profile,omitempty"', b'json:"replaces', b"urn:ietf:params:acme:error:alreadyReplaced")
    return all(marker in data for marker in markers)


# ---------------------------------------------------------------------------- state file

def _state_path(state_dir: Path) -> Path:
    return Path(state_dir) / STATE_FILE


def _read_state(state_dir: Path) -> dict | None:
    try:
        return json.loads(_state_path(state_dir).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StackError(f"cannot read {_state_path(state_dir)}: {exc}") from exc


def _write_state(state_dir: Path, state: dict) -> None:
    path = _state_path(state_dir)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2, default=str))
    tmp.replace(path)


def _stack_from_state(state: dict) -> Stack:
    fields = {k: state[k] for k in Stack.__dataclass_fields__}
    fields["state_dir"] = Path(fields["state_dir"])
    return Stack(**fields)


def _processes(state: dict) -> dict[str, tuple[int, list[str] | None]]:
    commands = state.get("commands", {})
    return {name: (pid, commands.get(name)) for name, pid in state.get("pids", {}).items()}


def load(state_dir: Path) -> Stack | None:
    """The stack recorded in state_dir/stack.json if all its processes still run, else None."""
    state = _read_state(state_dir)
    if state is None:
        return None
    if not all(procs.is_running(pid, argv) for pid, argv in _processes(state).values()):
        return None
    return _stack_from_state(state)


def down(state_dir: Path) -> bool:
    """Stop every process recorded in state_dir/stack.json; returns whether anything was running."""
    state = _read_state(state_dir)
    if state is None:
        return False
    ordered = dict(reversed(list(_processes(state).items())))
    ran = procs.stop(ordered)
    _state_path(state_dir).unlink(missing_ok=True)
    return ran


# ---------------------------------------------------------------------------- pebble config

def _deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def pebble_config_document(ports: dict[str, int], tls_cert: Path, tls_key: Path, overrides: dict | None) -> dict:
    """Pebble's config file; `overrides` is deep-merged into the "pebble" object
    (or over the whole document when it has a single top-level "pebble" key)."""
    base = {"pebble": {
        "listenAddress": f"127.0.0.1:{ports['pebble']}",
        "managementListenAddress": f"127.0.0.1:{ports['pebble_management']}",
        "certificate": str(tls_cert),
        "privateKey": str(tls_key),
        "httpPort": ports["pebble_http"],
        "tlsPort": ports["pebble_tls"],
        "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
        "retryAfter": {"authz": 1, "order": 1},
        "profiles": copy.deepcopy(PEBBLE_PROFILES),
    }}
    overrides = overrides or {}
    if set(overrides) == {"pebble"}:
        return _deep_merge(base, overrides)
    return _deep_merge(base, {"pebble": overrides})


def _pebble_env(overrides: dict[str, str] | None) -> dict[str, str]:
    return {**DEFAULT_PEBBLE_ENV, **{k: str(v) for k, v in (overrides or {}).items()}}


# ---------------------------------------------------------------------------- readiness probes

def _no_proxy_opener(context: ssl.SSLContext | None = None) -> urllib.request.OpenerDirector:
    handlers: list = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers)


def _http_ok(url: str, context: ssl.SSLContext | None = None, method: str = "GET") -> bool:
    request = urllib.request.Request(url, method=method)
    with _no_proxy_opener(context).open(request, timeout=2) as response:
        return 200 <= response.status < 300


def _pebble_context(ca_bundle: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_bundle)


def _dns_answers(port: int) -> bool:
    """The bridge answers over UDP and TCP (REFUSED for a name in no zone is an answer)."""
    from dnslib import DNSRecord  # imported lazily: only the stack's owner needs it

    query = DNSRecord.question("devstack-readiness.invalid.", "TXT")
    for tcp in (False, True):
        DNSRecord.parse(query.send("127.0.0.1", port, tcp=tcp, timeout=1))
    return True


# ---------------------------------------------------------------------------- starting

def _python_command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _python_env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return procs.child_env({"PYTHONPATH": path, "PYTHONUNBUFFERED": "1"})


def _start_pebble(state: dict, binary: str, pebble_env: dict | None, pebble_config: dict | None) -> None:
    state_dir = Path(state["state_dir"])
    tls = state["tls"]
    document = pebble_config_document(state["ports"], Path(tls["cert"]), Path(tls["key"]), pebble_config)
    config_path = state_dir / "pebble-config.json"
    config_path.write_text(json.dumps(document, indent=2))
    argv = [binary, "-config", str(config_path), "-dnsserver", f"127.0.0.1:{state['dns_port']}"]
    env = procs.child_env(_pebble_env(pebble_env))
    state["pids"]["pebble"] = procs.start("pebble", argv, state_dir, env)
    state["commands"]["pebble"] = argv
    state["pebble"] = {"env": pebble_env or {}, "config": pebble_config or {}}


def _wait_pebble(state: dict) -> None:
    context = _pebble_context(state["ca_bundle"])
    state_dir, pid = Path(state["state_dir"]), state["pids"]["pebble"]
    procs.wait_until("pebble", lambda: _http_ok(state["acme_directory"], context), state_dir, pid, READY_TIMEOUT)
    procs.wait_until("pebble", lambda: _http_ok(state["pebble_management"] + "/roots/0", context),
                     state_dir, pid, READY_TIMEOUT)


def _initial_state(state_dir: Path, route53_delay: float) -> dict:
    tcp = procs.free_tcp_ports(6)
    ports = dict(zip(["moto", "aws_proxy", "pebble", "pebble_management", "pebble_http", "pebble_tls"], tcp))
    dns_port = procs.free_udp_tcp_port(avoid=set(tcp))
    tls = write_tls_files(state_dir / "tls")
    return {
        "state_dir": str(state_dir),
        "acme_directory": f"https://127.0.0.1:{ports['pebble']}/dir",
        "pebble_management": f"https://127.0.0.1:{ports['pebble_management']}",
        "ca_bundle": str(tls.ca_cert),
        "moto_url": f"http://127.0.0.1:{ports['moto']}",
        "aws_endpoint_url": f"http://127.0.0.1:{ports['aws_proxy']}",
        "dns_host": "127.0.0.1",
        "dns_port": dns_port,
        "pids": {},
        "commands": {},
        "ports": ports,
        "tls": {"ca": str(tls.ca_cert), "cert": str(tls.cert), "key": str(tls.key)},
        "route53_delay": route53_delay,
    }


def _start_all(state: dict, binary: str, pebble_env: dict | None, pebble_config: dict | None) -> None:
    state_dir, ports = Path(state["state_dir"]), state["ports"]
    commands = {
        "moto": _python_command("devstack.moto_server", "-H", "127.0.0.1", "-p", str(ports["moto"])),
        "aws_proxy": _python_command("devstack.aws_proxy", "--port", str(ports["aws_proxy"]),
                                     "--moto-url", state["moto_url"],
                                     "--route53-delay", str(state["route53_delay"])),
        "dns_bridge": _python_command("devstack.dns_bridge", "--port", str(state["dns_port"]),
                                      "--moto-url", state["moto_url"]),
    }
    for name, argv in commands.items():
        state["pids"][name] = procs.start(name, argv, state_dir, _python_env())
        state["commands"][name] = argv
    _start_pebble(state, binary, pebble_env, pebble_config)


def _wait_all(state: dict) -> None:
    state_dir, pids = Path(state["state_dir"]), state["pids"]
    procs.wait_until("moto", lambda: _http_ok(state["moto_url"] + "/moto-api/"), state_dir, pids["moto"],
                     READY_TIMEOUT)
    procs.wait_until("aws_proxy", lambda: _http_ok(state["aws_endpoint_url"] + "/_devstack/health"),
                     state_dir, pids["aws_proxy"], READY_TIMEOUT)
    procs.wait_until("dns_bridge", lambda: _dns_answers(state["dns_port"]), state_dir, pids["dns_bridge"],
                     READY_TIMEOUT)
    _wait_pebble(state)


def up(state_dir: Path, *, route53_delay: float = 0.0, pebble_env: dict[str, str] | None = None,
       pebble_config: dict | None = None) -> Stack:
    """Start the whole stack in `state_dir` and wait until every service answers.

    pebble_env extends/overrides DEFAULT_PEBBLE_ENV; pebble_config is deep-merged into Pebble's
    config. On any failure everything already started is stopped and StackError raised.
    """
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    running = load(state_dir)
    if running is not None:
        raise StackError(f"a devstack is already running from {state_dir} (pids {running.pids}); "
                         "stop it first (`certrenew devstack down`)")
    down(state_dir)  # a stale stack.json from processes that died
    binary = pebble_binary()
    state = _initial_state(state_dir, route53_delay)
    try:
        _start_all(state, binary, pebble_env, pebble_config)
        _write_state(state_dir, state)  # written early so `down` can clean up an interrupted start
        _wait_all(state)
    except BaseException:
        procs.stop(dict(reversed(list(_processes(state).items()))))
        _state_path(state_dir).unlink(missing_ok=True)
        raise
    return _stack_from_state(state)


def restart_pebble(stack: Stack, *, pebble_env: dict[str, str] | None = None,
                   pebble_config: dict | None = None) -> Stack:
    """Restart Pebble alone with new settings (relative to the defaults, not cumulative).

    Pebble forgets every account and makes a new root on restart. Keeps its ports when they are
    still free, else picks new ones; rewrites stack.json, updates `stack` in place and returns it.
    """
    state = _read_state(stack.state_dir)
    if state is None:
        raise StackError(f"no devstack recorded in {stack.state_dir}")
    procs.stop({"pebble": (state["pids"]["pebble"], state["commands"].get("pebble"))})
    _pick_pebble_ports(state)
    try:
        _start_pebble(state, pebble_binary(), pebble_env, pebble_config)
        _write_state(Path(state["state_dir"]), state)
        _wait_pebble(state)
    except BaseException:
        procs.stop({"pebble": (state["pids"]["pebble"], state["commands"].get("pebble"))})
        raise
    restarted = _stack_from_state(state)
    for name in Stack.__dataclass_fields__:
        setattr(stack, name, getattr(restarted, name))
    return stack


def _pick_pebble_ports(state: dict) -> None:
    ports = state["ports"]
    if all(procs.tcp_port_free(ports[name]) for name in ("pebble", "pebble_management")):
        return
    ports["pebble"], ports["pebble_management"] = procs.free_tcp_ports(2)
    state["acme_directory"] = f"https://127.0.0.1:{ports['pebble']}/dir"
    state["pebble_management"] = f"https://127.0.0.1:{ports['pebble_management']}"


def describe(stack: Stack) -> dict:
    """A JSON-friendly view of the stack (for `certrenew devstack up` output)."""
    data = asdict(stack)
    data["state_dir"] = str(stack.state_dir)
    return data


# ---------------------------------------------------------------------------- the fallback CA

FALLBACK = "pebble_fallback"  # its name in stack.json (pids, commands) and its log file
FALLBACK_EAB_KID = "fallback-kid-1"
FALLBACK_CAA_IDENTITY = "fallback.pebble.test"


@dataclass(frozen=True)
class FallbackCa:
    """The second Pebble. Named like the `Stack` fields pebble_client reads (acme_directory,
    pebble_management, ca_bundle), so `pebble_client.root_pem(fallback)` works on it too."""
    acme_directory: str  # https://127.0.0.1:PORT/dir
    pebble_management: str  # https://127.0.0.1:PORT (roots/0, intermediates/0, ...)
    ca_bundle: str  # the stack's bundle: both Pebbles serve a certificate it trusts
    eab_kid: str
    eab_hmac: str = field(repr=False)  # base64url (no padding), as a CA hands it out; kept out of reprs
    caa_identity: str
    pid: int

    def put_eab_hmac(self, ssm, name: str = "/certrenew/fallback-eab-hmac") -> str:
        """Store the HMAC in (moto's) SSM as a SecureString with the given boto3 SSM client, as
        the EAB tests do; returns the reference the product's config takes ("ssm:/name")."""
        ssm.put_parameter(Name=name, Value=self.eab_hmac, Type="SecureString", Overwrite=True)
        return f"ssm:{name}"

    def acme_settings(self, hmac_key: str, email: str | None = None) -> dict:
        """One entry of the config's `acme.fallback` list: {directory, email, eab: {kid, hmac_key}}."""
        entry: dict = {"directory": self.acme_directory, "eab": {"kid": self.eab_kid, "hmac_key": hmac_key}}
        if email:
            entry["email"] = email
        return entry


def _fallback_from_state(state: dict) -> FallbackCa:
    return FallbackCa(pid=state["pids"][FALLBACK], **state["fallback"])


def load_fallback(state_dir: Path) -> FallbackCa | None:
    """The fallback CA recorded in state_dir/stack.json if it still runs, else None."""
    state = _read_state(state_dir)
    if state is None or FALLBACK not in state.get("pids", {}):
        return None
    if not procs.is_running(state["pids"][FALLBACK], state["commands"].get(FALLBACK)):
        return None
    return _fallback_from_state(state)


def _forget_fallback(state: dict) -> bool:
    pid, argv = state["pids"].pop(FALLBACK, None), state["commands"].pop(FALLBACK, None)
    state.pop("fallback", None)
    return pid is not None and procs.stop({FALLBACK: (pid, argv)})


def stop_fallback_pebble(stack: Stack) -> bool:
    """Stop the fallback CA alone (the rest runs on); returns whether it was running."""
    state = _read_state(stack.state_dir)
    if state is None:
        return False
    ran = _forget_fallback(state)
    _write_state(stack.state_dir, state)
    return ran


def _fallback_config(ports: dict, tls: dict, eab_kid: str, eab_hmac: str, caa_identity: str,
                     overrides: dict | None) -> dict:
    mine = {"externalAccountBindingRequired": True, "externalAccountMACKeys": {eab_kid: eab_hmac},
            "caaIdentities": [caa_identity]}
    document = pebble_config_document(ports, Path(tls["cert"]), Path(tls["key"]), mine)
    overrides = overrides or {}
    return _deep_merge(document, overrides if set(overrides) == {"pebble"} else {"pebble": overrides})


def _launch_fallback(state: dict, document: dict, pebble_env: dict | None) -> None:
    state_dir = Path(state["state_dir"])
    config_path = state_dir / "pebble-fallback-config.json"
    config_path.write_text(json.dumps(document, indent=2))
    argv = [pebble_binary(), "-config", str(config_path), "-dnsserver", f"127.0.0.1:{state['dns_port']}"]
    state["pids"][FALLBACK] = procs.start(FALLBACK, argv, state_dir, procs.child_env(_pebble_env(pebble_env)))
    state["commands"][FALLBACK] = argv


def start_fallback_pebble(stack: Stack, *, eab_kid: str = FALLBACK_EAB_KID, eab_hmac: str | None = None,
                          caa_identity: str = FALLBACK_CAA_IDENTITY, pebble_env: dict[str, str] | None = None,
                          pebble_config: dict | None = None) -> FallbackCa:
    """Start the fallback CA (a running one is stopped first: a fresh CA, new root, no accounts).

    eab_hmac defaults to a new random key; pebble_env and pebble_config work as for `up()`.
    Waits until its directory and management port answer (about a second).
    """
    state = _read_state(stack.state_dir)
    if state is None:
        raise StackError(f"no devstack recorded in {stack.state_dir}")
    _forget_fallback(state)
    names = ("pebble", "pebble_management", "pebble_http", "pebble_tls")
    ports = dict(zip(names, procs.free_tcp_ports(4)))
    hmac = eab_hmac or base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    state["ports"].update({f"fallback_{name}": port for name, port in ports.items()})
    state["fallback"] = {"acme_directory": f"https://127.0.0.1:{ports['pebble']}/dir",
                         "pebble_management": f"https://127.0.0.1:{ports['pebble_management']}",
                         "ca_bundle": state["ca_bundle"], "eab_kid": eab_kid, "eab_hmac": hmac,
                         "caa_identity": caa_identity}
    try:
        _launch_fallback(state, _fallback_config(ports, state["tls"], eab_kid, hmac, caa_identity, pebble_config),
                         pebble_env)
        _write_state(stack.state_dir, state)
        fallback = _fallback_from_state(state)
        context, state_dir = _pebble_context(fallback.ca_bundle), Path(state["state_dir"])
        for url in (fallback.acme_directory, fallback.pebble_management + "/roots/0"):
            procs.wait_until(FALLBACK, lambda u=url: _http_ok(u, context), state_dir, fallback.pid, READY_TIMEOUT)
    except BaseException:
        _forget_fallback(state)
        _write_state(stack.state_dir, state)
        raise
    return fallback
