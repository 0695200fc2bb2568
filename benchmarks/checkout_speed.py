"""Per-evaluation cost of a task image's /app work tree: a whole copy against pipeline.tasks.checkout_cache.

    python benchmarks/checkout_speed.py [--runs 5] [--quick] [--history-mb 300]
        [--out benchmarks/results/checkout_speed.json]

Two sources, side by side: the real SWE-Bench-Pro image of ../shared/fixtures/swe-bench-pro
(skipped when it is not built) and a synthetic repository with `--history-mb` of incompressible
history plus an ignored node_modules-like folder. Per evaluation, each method makes the work
tree, hands it to the sandbox uid (1000, as DockerSandbox runs), writes one file as a patch
would, and removes the work tree; the median of `--runs`, the one-time export apart:

- copy (before): the old ImageCheckout, `cp -a --reflink=auto` of the cached /app, then
  `git reset --hard <base>; git checkout <base>`, removed with the scratch folder;
- copy of the base tree: the cache's prepared tree (already at base) copied, no git;
- overlay: checkout_cache.AppCache, an overlay mount on the base tree (already the sandbox
  uid's; metacopy when the kernel has it), handed over by a chown of every entry (every file
  is copied up) and as sandbox.supervisor.hand_over does (checkout_cache.chown_unowned: only
  entries not owned yet), released after;
- shared clone: `git clone --shared --no-checkout` + checkout + copy of the untracked files, for
  reference only (its .git points at a host path the sandbox does not have).
Results are checked once per source: in the overlay tree HEAD is the base and the tree is clean.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from record import result_path, write_result  # benchmarks/record.py (its folder is on sys.path)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.tasks.checkout_cache import SANDBOX_UID, AppCache, _chown_tree, _git, chown_unowned  # noqa: E402
from pipeline.tasks.rows import load_rows  # noqa: E402

FIXTURE = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "swe-bench-pro"


class CopyCheckout:
    """The checkout before the cache: /app exported once per tag, copied whole per evaluation."""

    def __init__(self, source, cache: Path) -> None:
        self.images, self.cache = source, cache

    def source(self, image: str) -> Path:
        folder = self.cache / "app"
        if not folder.is_dir():
            self.images.export_dir(image, "/app", folder)
        return folder

    def __call__(self, task, dest: Path) -> None:
        subprocess.run(
            ["cp", "-a", "--reflink=auto", f"{self.source(task.dockerhub_tag)}/.", str(dest)],
            check=True,
            capture_output=True,
        )
        for args in (("reset", "-q", "--hard", task.base_commit), ("checkout", "-q", task.base_commit)):
            _git(dest, *args)


class FolderSource:
    """An ImageSource whose only 'image' is a folder on disk (the synthetic repository)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def ensure_image(self, tag: str, pull: bool = True) -> str:
        return "sha256:synthetic-" + self.folder.name

    def image_id(self, tag: str) -> str:
        return self.ensure_image(tag)

    def export_dir(self, image: str, path: str, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)  # the cache folder does not exist yet
        subprocess.run(["cp", "-a", f"{self.folder}/.", str(dest)], check=True)


def synthetic_repo(dest: Path, history_mb: int, files: int = 2000, untracked: int = 3000) -> str:
    """A repository with `history_mb` of incompressible history; returns its HEAD (the base).

    The first commit adds `files` files of 10 KiB; each later one rewrites random ones of them.
    """
    dest.mkdir(parents=True)
    _git(dest, "init", "-q")
    rng = random.Random(7)
    commits = max(history_mb // 2, 2)
    per_commit = max((history_mb << 20) // commits // 10_240, 1)
    importer = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=dest, stdin=subprocess.PIPE)
    for number in range(commits):
        importer.stdin.write(
            f"commit refs/heads/main\nmark :{number + 1}\ncommitter cb <cb@invalid> "
            f"{1_700_000_000 + number} +0000\ndata 3\nc{number % 10}\n".encode()
        )
        if number:
            importer.stdin.write(f"from :{number}\n".encode())
        paths = range(files) if number == 0 else (rng.randrange(files) for _ in range(per_commit))
        for index in paths:
            blob = rng.randbytes(10_240)
            header = f"M 100644 inline src/m{index}.bin\ndata {len(blob)}\n"
            importer.stdin.write(header.encode() + blob + b"\n")
    importer.stdin.close()
    if importer.wait() != 0:
        raise RuntimeError("git fast-import failed")
    _git(dest, "checkout", "-q", "-f", "main")
    (dest / ".gitignore").write_text("node_modules/\n")
    for number in range(untracked):
        path = dest / "node_modules" / f"p{number % 100}" / f"f{number}.js"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(4096))
    return _git(dest, "rev-parse", "HEAD").stdout.strip()


def size_mb(folder: Path) -> tuple[float, float]:
    def total(root: Path) -> int:
        return sum(p.lstat().st_size for p in root.rglob("*") if not p.is_symlink() and p.is_file())

    return round(total(folder) / 2**20, 1), round(total(folder / ".git") / 2**20, 1)


def evaluate(
    make: Callable[[Path], None], drop: Callable[[Path], None], hand_over: Callable[[Path, int], object]
) -> float:
    """One evaluation's worth of work-tree cost: make, hand to uid 1000, write a file, remove."""
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="cb-co-"))
    dest = scratch / "app"
    make(dest)
    hand_over(dest.resolve(), SANDBOX_UID)
    (dest / "PATCHED.txt").write_text("x\n")
    drop(dest)
    shutil.rmtree(scratch)
    return time.monotonic() - started


def shared_clone(source: Path, base: str) -> Callable[[Path], None]:
    def make(dest: Path) -> None:
        done = _git(Path.cwd(), "clone", "-q", "--shared", "--no-checkout", str(source), str(dest))
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        _git(dest, "checkout", "-q", base)
        listed = _git(source, "ls-files", "-z", "--others")
        subprocess.run(
            ["cp", "-a", "--parents", *[p for p in listed.stdout.split("\0") if p], str(dest)],
            cwd=source,
            check=False,
            capture_output=True,
        )

    return make


def measure(name: str, source, image: str, base: str, runs: int, scratch: Path) -> dict:
    """Every method on one source, interleaved run by run; medians in seconds."""
    cache = AppCache(source, scratch / "overlay-cache")
    copy_cache = AppCache(source, scratch / "copy-cache", overlay=False)
    today = CopyCheckout(source, scratch / "today-cache")
    task = type("T", (), {"dockerhub_tag": image, "base_commit": base, "instance_id": name})()
    started = time.monotonic()
    cache.base_tree(image, base)
    export_s = time.monotonic() - started
    copy_cache.base_tree(image, base)
    today.source(image)
    lower = cache.base_tree(image, base)
    methods = {  # (make, remove, hand the tree to the sandbox uid)
        "copy (before)": (lambda d: today(task, d), lambda d: None, _chown_tree),
        "copy of the base tree": (lambda d: copy_cache.checkout(image, base, d), lambda d: None, _chown_tree),
        "overlay, chown every entry": (lambda d: cache.checkout(image, base, d), cache.release, _chown_tree),
        "overlay, chown unowned (hand_over)": (
            lambda d: cache.checkout(image, base, d),
            cache.release,
            chown_unowned,
        ),
        "shared clone (reference)": (shared_clone(today.source(image), base), lambda d: None, _chown_tree),
    }
    times: dict[str, list[float]] = {m: [] for m in methods}
    for _ in range(runs):
        for method, (make, drop, hand_over) in methods.items():
            times[method].append(evaluate(make, drop, hand_over))
    check = Path(tempfile.mkdtemp(prefix="cb-co-check-")) / "app"
    cache.checkout(image, base, check)
    head = _git(check, "rev-parse", "HEAD").stdout.strip()
    dirty = _git(check, "status", "--porcelain", "--untracked-files=no").stdout.strip()
    cache.release(check)
    shutil.rmtree(check.parent)
    total, git = size_mb(lower)
    return {
        "source": name,
        "app_mb": total,
        "git_mb": git,
        "overlay": cache.overlay,
        "export_once_s": round(export_s, 2),
        "head_is_base": head == base,
        "clean": dirty == "",
        "median_s": {m: round(statistics.median(t), 3) for m, t in times.items()},
        "runs_s": {m: [round(x, 3) for x in t] for m, t in times.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--history-mb", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="2 runs, 20 MB of synthetic history")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    args.out = result_path("checkout_speed", args.quick, args.out)
    runs, history = (2, 20) if args.quick else (args.runs, args.history_mb)
    results = []
    with tempfile.TemporaryDirectory(prefix="cb-checkout-bench-") as scratch:
        scratch = Path(scratch)
        rows = FIXTURE / "rows.jsonl"
        if rows.is_file():
            from pipeline.sandbox import SandboxUnavailable
            from pipeline.sandbox.daemon import DockerDaemon
            from pipeline.tasks.pro import pro_image

            task = load_rows(rows)[0]
            try:
                daemon = DockerDaemon()
                if daemon.image_id(pro_image(task)) is None:
                    raise SandboxUnavailable(f"{pro_image(task)} is not built")
                results.append(measure("pro", daemon, pro_image(task), task.base_commit, runs, scratch))
            except SandboxUnavailable as err:
                print(f"real Pro image skipped: {err}")
        repo = scratch / "synthetic"
        base = synthetic_repo(repo, history)
        name = f"synthetic-{history}mb"
        results.append(measure(name, FolderSource(repo), "synthetic", base, runs, scratch))
    print(f"{'source':16} {'/app MB':>8} {'.git MB':>8}  method" + " " * 36 + "median s")
    for result in results:
        for method, seconds in result["median_s"].items():
            print(
                f"{result['source']:16} {result['app_mb']:8} {result['git_mb']:8}  {method:43} {seconds:7.3f}"
            )
        print(
            f"{'':34}export once: {result['export_once_s']} s; overlay used: {result['overlay']}; "
            f"HEAD is base: {result['head_is_base']}; clean: {result['clean']}"
        )
    path = write_result(
        args.out, {"runs": runs, "history_mb": history, "load": os.getloadavg(), "results": results}
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
