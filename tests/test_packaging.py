"""A newcomer's first steps outside the app: `pip install -e .` finds the packages in the flat
layout, and a Tokens object prints as a line, not as its tensors."""

import tomllib
from pathlib import Path

import torch

import vle_core

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_names_the_packages_so_an_editable_install_works():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]  # setuptools refuses to guess beside assets/ and checkpoints/
    assert "vle_core" in packages and project["build-system"]["build-backend"]
    for name in packages:
        assert (ROOT / name / "__init__.py").is_file(), name
    assert not any((ROOT / name / "__init__.py").is_file() for name in ("assets", "checkpoints", "docs"))


def test_tokens_repr_is_short():
    tokens = vle_core.Tokens(torch.randn(12, 4, 32, 32), torch.zeros(12, 3), torch.ones(12, 3), (256, 256))
    text = repr(tokens)
    assert "12" in text and "(4, 32, 32)" in text and "256x256" in text and "1..12" in text
    assert "tensor" not in text and len(text) < 120
    assert "[3, 1]" in repr(tokens[[2, 0]])  # reordered tokens show their stages


def test_the_project_asks_for_what_requirements_txt_pins():
    """`pip install -e ".[app]"` installs what `pip install -r requirements.txt` does: the same torch
    (an open "torch" would fetch a CUDA build of several GB) and every package the app imports."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {d.replace(" ", "") for d in project["dependencies"] + project["optional-dependencies"]["app"]}
    pinned = {
        line.split("#")[0].strip().replace(" ", "") for line in (ROOT / "requirements.txt").read_text().splitlines()
    }
    assert pinned - {""} == declared
