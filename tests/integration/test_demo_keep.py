"""`certrenew demo --keep` prints the commands that use the kept stack; pasted into a shell as
printed, they work: the environment, `status`, a forced `run`, `invoke --function`, and `down`."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def certrenew_env() -> dict[str, str]:
    """The test's environment without the devstack's or a deployment's settings: only what the
    printed commands set counts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CERTRENEW_")) or k == "CERTRENEW_PEBBLE"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.timeout(600)
def test_the_commands_demo_keep_prints_use_the_kept_stack(tmp_path):
    demo = subprocess.run([str(BIN / "certrenew"), "demo", "--keep"], capture_output=True, text=True,
                          timeout=400, env=certrenew_env(), cwd=tmp_path)
    state_dir = re.search(r"== starting the devstack .* in (\S+)", demo.stdout).group(1)
    try:
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        printed = demo.stdout.split("== the devstack is still running; to use it from this shell:\n", 1)[1]
        commands = [line for line in printed.splitlines() if line and not line.startswith("#")]
        assert commands[0] == f'eval "$(certrenew devstack env --dir {state_dir})"'
        assert "export CERTRENEW_STATE_BUCKET=certrenew-demo-state" in commands
        assert any(c.startswith("export CERTRENEW_CONFIG=") for c in commands)
        assert commands[-1] == f"certrenew devstack down --dir {state_dir}"
        script = "set -e\n" + "\n".join(
            f"echo '>>> {c.split()[1] if c.startswith('certrenew') else 'env'}'; {c}" for c in commands[:-1])
        used = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300,
                              env=certrenew_env(), cwd=tmp_path)
        assert used.returncode == 0, used.stdout[-3000:] + used.stderr[-3000:]
        out = used.stdout
        status = out.split(">>> status", 1)[1].split(">>> run", 1)[0]
        assert "example-site" in status and "shop" in status
        run = out.split(">>> run", 1)[1].split(">>> invoke", 1)[0]
        assert "shop  renewed" in run and "run ok: 1 renewed" in run, run
        invoked = out.split(">>> invoke", 1)[1]
        assert '"outcome": "planned"' in invoked or '"outcome": "skipped"' in invoked, invoked
        assert "REPORT RequestId:" in used.stderr
    finally:
        stopped = subprocess.run(["bash", "-c", f"certrenew devstack down --dir {state_dir}"], capture_output=True,
                                 text=True, timeout=120, env=certrenew_env())
    assert stopped.returncode == 0 and "devstack stopped" in stopped.stderr, stopped.stderr
