"""pipeline.tasks.checkout_cache: base trees keyed by image id, overlay work trees, in docker and
bubblewrap."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.sandbox import Limits, SandboxUnavailable
from pipeline.sandbox.bubblewrap import BubblewrapSandbox
from pipeline.sandbox.docker import DockerSandbox
from pipeline.tasks.checkout_cache import AppCache, _git, chown_unowned


class Source:
    """A fake image registry: tag -> (id, folder holding its /app)."""

    def __init__(self) -> None:
        self.images: dict[str, tuple[str, Path]] = {}
        self.exports = 0

    def ensure_image(self, tag: str, pull: bool = True) -> str:
        return self.images[tag][0]

    def export_dir(self, image: str, path: str, dest: Path) -> None:
        self.exports += 1
        shutil.copytree(self.images[image][1], dest, symlinks=True)


def repo(folder: Path, text: str) -> str:
    folder.mkdir(parents=True)
    (folder / "code.py").write_text(text)
    (folder / ".gitignore").write_text("node_modules/\n")
    (folder / "node_modules").mkdir()
    (folder / "node_modules" / "dep.js").write_text("installed\n")
    commit = ("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "b")
    for args in (("init", "-q"), ("add", "-A"), commit):
        assert _git(folder, *args).returncode == 0
    (folder / "code.py").write_text("dirty in the image\n")  # /app is not always clean at base
    return _git(folder, "rev-parse", "HEAD").stdout.strip()


@pytest.fixture
def cache(tmp_path) -> tuple[AppCache, Source, str]:
    source = Source()
    base = repo(tmp_path / "v1", "one\n")
    source.images["img:1"] = ("sha256:aaa", tmp_path / "v1")
    return AppCache(source, tmp_path / "cache"), source, base


def test_the_base_tree_is_exported_once_per_image_id_and_reset(cache, tmp_path):
    app, source, base = cache
    tree = app.base_tree("img:1", base)
    assert app.base_tree("img:1", base) == tree and source.exports == 1
    assert (tree / "code.py").read_text() == "one\n"  # reset to base, as Pro's entry script does
    assert (tree / "node_modules" / "dep.js").is_file()  # untracked installed files kept
    second = repo(tmp_path / "v2", "two\n")
    source.images["img:1"] = ("sha256:bbb", tmp_path / "v2")  # the same tag, a rebuilt image
    assert app.base_tree("img:1", second) != tree and source.exports == 2


def test_work_trees_are_private_and_released(cache, tmp_path):
    app, _, base = cache
    first, second = tmp_path / "e1" / "app", tmp_path / "e2" / "app"
    for dest in (first, second):
        dest.parent.mkdir()
        app.checkout("img:1", base, dest)
    (first / "code.py").write_text("patched\n")
    assert (second / "code.py").read_text() == "one\n"
    assert (app.base_tree("img:1", base) / "code.py").read_text() == "one\n"
    assert _git(first, "rev-parse", "HEAD").stdout.strip() == base
    mounts = app.root / "mounts"
    app.release(first)
    assert not first.exists()
    shutil.rmtree(second.parent)  # a caller that only deletes its scratch folder...
    app.sweep()  # ...leaves nothing mounted after the next sweep
    assert [p.name for p in mounts.iterdir() if not p.name.startswith(".")] == []


@pytest.mark.skipif(os.geteuid() != 0, reason="overlay mounts need root")
def test_overlay_trees_work_in_docker_and_bubblewrap(cache, tmp_path):
    app, _, base = cache
    assert app.overlay
    ran = []
    for name, make in (("docker", DockerSandbox), ("bubblewrap", BubblewrapSandbox)):
        try:
            sandbox = make()
        except SandboxUnavailable as err:
            print(f"{name} skipped: {err}")
            continue
        dest = tmp_path / name / "app"
        dest.parent.mkdir()
        app.checkout("img:1", base, dest)
        run = sandbox.run(
            dest, "cat code.py node_modules/dep.js && echo written > new.txt", Limits(timeout_s=60)
        )
        assert run.exit_code == 0 and "one\ninstalled" in run.output, run.output
        assert (dest / "new.txt").read_text() == "written\n"
        assert not (app.base_tree("img:1", base) / "new.txt").exists()
        app.release(dest)
        ran.append(name)
    if not ran:
        pytest.skip("neither docker nor bubblewrap is available")


def test_chown_unowned_changes_only_what_it_must(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_text("x")
    os.symlink("/etc/passwd", tmp_path / "a" / "link")
    assert chown_unowned(tmp_path / "a", 1000) == 3
    assert chown_unowned(tmp_path / "a", 1000) == 0
    assert Path("/etc/passwd").stat().st_uid == 0
    subprocess.run(["chown", "-R", "0:0", str(tmp_path / "a")], check=True)
