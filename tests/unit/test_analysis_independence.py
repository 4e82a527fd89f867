"""The analysis never takes anything from the simulator: no import, no file, no number.

import-linter's contract (``pyproject.toml``) forbids ``insitu.analysis`` to import
``insitu.sim``; this test checks the contract is there and kept, that it would catch an import
that slips in, and that no analysis module reads the simulator's files by path or name.
"""

from __future__ import annotations

import ast
import pathlib
import shutil
import subprocess
import sys
import tomllib

import insitu.analysis

ANALYSIS = pathlib.Path(insitu.analysis.__file__).parent
ROOT = ANALYSIS.parents[2]


def analysis_sources() -> list[pathlib.Path]:
    return sorted(ANALYSIS.rglob("*.py"))


def test_the_contract_forbids_analysis_to_import_sim():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    assert any(
        c["type"] == "forbidden"
        and "insitu.analysis" in c["source_modules"]
        and "insitu.sim" in c["forbidden_modules"]
        for c in contracts
    )


def test_no_analysis_module_imports_or_names_the_simulator():
    for path in analysis_sources():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("insitu.sim"), (path, node.module)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("insitu.sim") for a in node.names), path
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                # a path into the simulator's package or its band table, read at run time
                assert "insitu/sim" not in node.value and "raman_bands" not in node.value, (
                    path,
                    node.value,
                )
                assert "importlib" not in node.value


def test_the_analysis_data_files_hold_no_simulator_parameters():
    for path in (ANALYSIS / "data").glob("*.yaml"):
        text = path.read_text()
        assert "fwhm" not in text and "intensity" not in text, path


def test_import_linter_fails_when_analysis_imports_sim(tmp_path):
    lint = shutil.which("lint-imports", path=str(pathlib.Path(sys.executable).parent))
    assert lint, "import-linter's lint-imports is installed with the test extras"
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "insitu", copy / "insitu")
    (copy / "insitu" / "analysis" / "leak.py").write_text(
        '"""A module that must not exist."""\n\nfrom insitu.sim import raman_bands  # noqa\n'
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    result = subprocess.run(
        [lint],
        cwd=tmp_path,
        env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "analysis is pure" in result.stdout and "BROKEN" in result.stdout
