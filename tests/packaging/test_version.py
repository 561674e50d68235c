"""One version number: forkloop/__init__.py's ``__version__``. pyproject.toml reads it from there,
the CLI prints it, and what repeats it for the deployment (the image tag) agrees."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

from pkgbuild import ROOT

import forkloop


def test_pyproject_takes_the_version_from_the_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    attr = pyproject["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "forkloop.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc|\.dev)?\d*", forkloop.__version__)


def test_cli_and_image_tag_agree() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "forkloop", "--version"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert done.stdout.startswith(f"forkloop {forkloop.__version__} (")
    kustomization = (ROOT / "deploy" / "k8s" / "kustomization.yaml").read_text()
    assert re.search(rf"newTag: {re.escape(forkloop.__version__)}\s", kustomization)


def test_changelog_has_the_released_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## {forkloop.__version__}" in changelog
