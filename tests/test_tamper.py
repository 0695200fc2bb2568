"""pipeline.grading.tamper: which paths of a patch touch the test runner, and putting them back to base."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from pipeline.grading.tamper import (
    patch_paths,
    plugin_names,
    restore_runner_files,
    runner_paths,
    runner_section,
    splice_test_section,
)

PYPROJECT = textwrap.dedent("""\
    [project]
    name = "pkg"
    dependencies = []

    [tool.pytest.ini_options]
    addopts = "-p no:benchmark"

    [tool.ruff]
    line-length = 100
""")

BASE = {
    "pyproject.toml": PYPROJECT,
    "setup.cfg": "[metadata]\nname = pkg\n",
    "pkg/__init__.py": "",
    "pkg/core.py": "def f():\n    return 1\n",
    "pkg/testing.py": "FIXTURES = 1\n",
    "tests/__init__.py": "",
    "tests/conftest.py": 'pytest_plugins = ["pkg.testing"]\n',
    "tests/test_core.py": "from pkg.core import f\n\ndef test_f():\n    assert f() == 2\n",
}


def git(repo: Path, *args: str) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True, env=env
    ).stdout


@pytest.fixture
def repo(tmp_path) -> tuple[Path, str]:
    root = tmp_path / "repo"
    for rel, text in BASE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    return root, git(root, "rev-parse", "HEAD").strip()


def edit(root: Path, files: dict[str, str | None]) -> str:
    """Change the work tree as a patch would; return that patch."""
    for rel, text in files.items():
        path = root / rel
        if text is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    git(root, "add", "-A", "-f")
    patch = git(root, "diff", "--cached", "--binary")
    git(root, "reset", "-q")
    return patch


def test_patch_paths_reads_headers_not_hunk_lines():
    patch = textwrap.dedent("""\
        diff --git a/old.py b/new.py
        similarity index 90%
        rename from old.py
        rename to new.py
        diff --git a/notes.sql b/notes.sql
        --- a/notes.sql
        +++ b/notes.sql
        @@ -1,2 +1,2 @@
        --- conftest.py
        +++ pytest.ini
         keep
        diff --git "a/t\\303\\251st.py" "b/t\\303\\251st.py"
        new file mode 100644
        --- /dev/null
        +++ "b/t\\303\\251st.py"
        @@ -0,0 +1 @@
        +x
        diff --git a/img.png b/img.png
        GIT binary patch
        literal 1
        --- ctx/a.py\t2024-01-01
        +++ ctx/a.py\t2024-01-01
    """)
    assert patch_paths(patch) == ["ctx/a.py", "img.png", "new.py", "notes.sql", "old.py", "tést.py"]


def test_runner_paths_picks_the_runner_files():
    paths = [
        "conftest.py",
        "a/b/c/conftest.py",
        "pytest.ini",
        "sub/.pytest.ini",
        "tox.ini",
        "pkg/setup.cfg",
        "pyproject.toml",
        "sitecustomize.py",
        "src/usercustomize.py",
        "x.pth",
        "pytest.py",
        "_pytest/__init__.py",
        "pluggy/_hooks.py",
        "tests/__init__.py",
        "tests/unit/__init__.py",
        "pkg/__init__.py",
        "pkg/core.py",
        "docs/conftest.txt",
        "test/lib/ansible_test/_internal/x.py",
    ]
    chosen = runner_paths(
        paths, graded_tests=["tests/unit/test_a.py::test_x"], extra_globs=["test/lib/ansible_test/**"]
    )
    assert chosen == sorted(set(paths) - {"pkg/__init__.py", "pkg/core.py", "docs/conftest.txt"})


def test_plugin_names_from_addopts_and_pytest_plugins():
    assert plugin_names("[pytest]\naddopts = -p a.b -pc --tb=short -p no:cacheprovider\n", "pytest.ini") == [
        "a.b",
        "c",
    ]
    assert plugin_names('[tool.pytest.ini_options]\naddopts = ["-p", "x"]\n', "pyproject.toml") == ["x"]
    assert plugin_names("[tool:pytest]\naddopts = -p y\n", "setup.cfg") == ["y"]
    assert plugin_names('pytest_plugins = ("m.one", "m.two")\n', "conftest.py") == ["m.one", "m.two"]
    assert plugin_names("def broken(:\n", "conftest.py") == []


def test_sections_are_spliced_and_the_rest_kept():
    patched = PYPROJECT.replace("dependencies = []", 'dependencies = ["attrs"]').replace(
        '"-p no:benchmark"', '"-p no:benchmark -p evil"'
    )
    spliced = splice_test_section(patched, PYPROJECT, "pyproject.toml")
    assert spliced is not None and '"attrs"' in spliced and "evil" not in spliced
    assert runner_section(spliced, "pyproject.toml") == runner_section(PYPROJECT, "pyproject.toml")
    dotted = '[tool]\npytest.ini_options.addopts = "-p evil"\n'
    assert splice_test_section(dotted, None, "pyproject.toml") is None  # cannot splice: whole file
    ini = "[metadata]\nname = x\n[tool:pytest]\naddopts = -p evil\n[flake8]\nmax = 1\n"
    assert (
        splice_test_section(ini, "[metadata]\nname = x\n", "setup.cfg")
        == "[metadata]\nname = x\n[flake8]\nmax = 1\n"
    )


def test_an_honest_patch_is_left_alone(repo):
    root, base = repo
    patch = edit(
        root,
        {
            "pkg/core.py": "def f():\n    return 2\n",
            "pyproject.toml": PYPROJECT.replace("[]", '["attrs"]'),
            "tests/test_new.py": "def test_new():\n    pass\n",
        },
    )
    report = restore_runner_files(root, base, patch, graded_tests=["tests/test_core.py"])
    assert not report.tampered and report.reason() == ""
    assert '"attrs"' in (root / "pyproject.toml").read_text()


def test_every_runner_file_goes_back_to_base(repo, tmp_path):
    root, base = repo
    patch = edit(
        root,
        {
            "conftest.py": "def pytest_runtest_makereport(): ...\n",
            "tests/conftest.py": 'pytest_plugins = ["pkg.testing"]\nEVIL = 1\n',
            "tests/deep/er/conftest.py": "EVIL = 2\n",
            "tests/__init__.py": "import evil\n",
            "pytest.ini": "[pytest]\naddopts = -p cb_helpers\n",
            "cb_helpers.py": "EVIL = 3\n",
            "pkg/testing.py": "FIXTURES = 2\n",  # named by the base conftest: a runner plugin
            "tox.ini": "[pytest]\naddopts = -p x\n",
            "setup.cfg": "[metadata]\nname = pkg\n\n[tool:pytest]\npython_files = *.py\n",
            "pyproject.toml": PYPROJECT.replace("[]", '["attrs"]').replace("no:benchmark", "evil"),
            "sitecustomize.py": "EVIL = 4\n",
            "usercustomize.py": "EVIL = 5\n",
            "zz.pth": "import x\n",
            "pytest.py": "EVIL = 6\n",
            "_pytest/__init__.py": "EVIL = 7\n",
            "pkg/core.py": "def f():\n    return 2\n",
        },
    )
    report = restore_runner_files(root, base, patch, graded_tests=["tests/test_core.py"])
    assert report.tampered
    assert sorted(report.removed) == sorted(
        [
            "conftest.py",
            "tests/deep/er/conftest.py",
            "pytest.ini",
            "cb_helpers.py",
            "tox.ini",
            "sitecustomize.py",
            "usercustomize.py",
            "zz.pth",
            "pytest.py",
            "_pytest/__init__.py",
        ]
    )
    assert sorted(report.restored) == ["pkg/testing.py", "tests/__init__.py", "tests/conftest.py"]
    assert sorted(report.sections) == ["pyproject.toml [tool.pytest]", "setup.cfg [tool:pytest]"]
    for rel, text in BASE.items():
        if rel != "pkg/core.py" and rel != "pyproject.toml":
            assert (root / rel).read_text().strip() == text.strip(), rel
    assert (root / "pkg/core.py").read_text().endswith("return 2\n")  # the fix itself stays
    pyproject = (root / "pyproject.toml").read_text()
    assert '"attrs"' in pyproject and "no:benchmark" in pyproject and "evil" not in pyproject
    assert not (root / "_pytest").exists() and not (root / "tests/deep").exists()
    assert "conftest.py" in report.reason()


def test_paths_behind_a_symlink_out_of_the_tree_are_refused(repo, tmp_path):
    root, base = repo
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "conftest.py").write_text("precious\n")
    (root / "escape").symlink_to(outside)
    patch = (
        "diff --git a/escape/conftest.py b/escape/conftest.py\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/escape/conftest.py\n@@ -0,0 +1 @@\n+x\n"
    )
    report = restore_runner_files(root, base, patch)
    assert report.refused == ["escape/conftest.py"] and report.tampered
    assert (outside / "conftest.py").read_text() == "precious\n"


def test_a_conftest_replaced_by_a_symlink_is_restored_as_a_file(repo):
    root, base = repo
    (root / "tests/conftest.py").unlink()
    (root / "tests/conftest.py").symlink_to("../pkg/core.py")
    patch = "diff --git a/tests/conftest.py b/tests/conftest.py\nnew file mode 120000\n"
    report = restore_runner_files(root, base, patch)
    assert report.restored == ["tests/conftest.py"]
    assert not (root / "tests/conftest.py").is_symlink()
    assert (root / "tests/conftest.py").read_text() == BASE["tests/conftest.py"]
