"""pyproject.toml's metadata stays buildable: the `project.license` table is deprecated (setuptools
stops accepting it on 2027-02-18); PEP 639's SPDX string needs setuptools >= 77."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_license_is_an_spdx_expression_with_a_setuptools_that_reads_it():
    data = tomllib.loads(PYPROJECT.read_text())
    assert data["project"]["license"] == "Apache-2.0"
    (setuptools,) = [r for r in data["build-system"]["requires"] if r.startswith("setuptools")]
    floor = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", setuptools)
    assert floor and int(floor.group(1)) >= 77, setuptools
    assert "License ::" not in " ".join(data["project"].get("classifiers", [])), "PEP 639: no license classifiers"
