"""Grading without Dagster (`candlebench grade`, both harnesses' reports) and building the images
grading runs in, with no registry (`build-image`, `build-pro-image`)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from pipeline.grading import Grader
from pipeline.grading.outcomes import Outcome
from pipeline.grading.reports import write_reports
from pipeline.sandbox import BACKENDS, Limits, SandboxUnavailable, open_sandbox
from pipeline.tasks import open_suite
from pipeline.tasks.rows import read_predictions


def _build_image(args: argparse.Namespace) -> int:
    from pipeline.sandbox.images import build_demo_image

    image = build_demo_image(tag=args.tag, mirror=args.mirror, force=args.force)
    print(image)
    return 0


def _build_pro_image(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipeline.tasks.pro_images import ProImageError, build_pro_image, load_fixtures

    try:
        for fixture in load_fixtures(Path(args.fixture), args.instance):
            built = build_pro_image(fixture, mirror=args.mirror, force=args.force)
            print(
                f"{built.tag} {built.image_id} ({'reused' if built.reused else 'built'} in "
                f"{built.seconds:.0f}s, {built.size_bytes / 1e6:.0f} MB)"
            )
    except (ProImageError, OSError) as err:
        print(f"candlebench build-pro-image: {err}", file=sys.stderr)
        return 2
    return 0


def add_grade_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tasks",
        required=True,
        help="SWE-Bench-Pro rows (.jsonl, .json, .parquet, .csv), or `demo` (the built-in suite)",
    )
    parser.add_argument(
        "--predictions",
        required=True,
        help="SWE-bench predictions (.jsonl, JSON list, or JSON object keyed by instance_id)",
    )
    parser.add_argument("--sandbox", choices=tuple(BACKENDS), default="docker")
    parser.add_argument("--out", required=True, help="folder for the reports and per-instance logs")
    parser.add_argument(
        "--run-scripts",
        help="SWE-Bench-Pro run_scripts/ folder "
        "(default: run_scripts/ next to the tasks file, when there is one)",
    )
    parser.add_argument("--run-id", default="candlebench", help="names the SWE-bench run report")
    parser.add_argument("--workers", type=int, default=2, help="evaluations running at once")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per evaluation")
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=Limits.memory_mb,
        help="memory per evaluation, MiB; docker counts /tmp in it (default %(default)s)",
    )
    parser.add_argument(
        "--tmp-mb",
        type=int,
        default=Limits.tmp_mb,
        help="size of the sandbox's private /tmp in MiB (default %(default)s)",
    )
    parser.add_argument(
        "--apply-rule",
        choices=("git_apply", "lenient"),
        help="how patches are applied: plain `git apply` (SWE-Bench-Pro's; the default for "
        "rows files) or SWE-bench's fallback chain (lenient; the demo suite's default)",
    )
    parser.add_argument(
        "--allow-untrusted-patches-without-sandbox",
        action="store_true",
        help="let --sandbox process run these untrusted patches (only for patches you trust)",
    )


def grade_command(args: argparse.Namespace) -> int:
    """`candlebench grade`: grade a predictions file without Dagster; write both report formats.

    Exit status: 0 every evaluation graded, 1 some were harness errors (reports still written),
    2 bad input."""
    from pipeline.config import home

    def fail(message: str) -> int:
        print(f"candlebench grade: {message}", file=sys.stderr)
        return 2

    if args.memory_mb < 64 or args.tmp_mb < 1 or args.timeout <= 0 or args.workers < 1:
        return fail("--memory-mb must be at least 64, --tmp-mb and --workers at least 1, --timeout positive")
    try:
        suite = open_suite(args.tasks, home(), Path(args.run_scripts) if args.run_scripts else None)
        tasks = suite.tasks()
        predictions = read_predictions(Path(args.predictions))
    except (OSError, ValueError) as err:
        return fail(str(err))
    by_id = {t.instance_id: t for t in tasks}
    if not predictions:
        return fail(f"{args.predictions}: no predictions in the file")
    unknown = [p.instance_id for p in predictions if p.instance_id not in by_id]
    if len(unknown) == len(predictions):
        return fail(
            f"{args.predictions}: no prediction names a task of {args.tasks} (instance_id "
            f"{', '.join(repr(i) for i in unknown[:3])}{' ...' if len(unknown) > 3 else ''})"
        )
    if unknown:
        print(f"skipping {len(unknown)} prediction(s) for unknown tasks: {unknown[:5]}")
    predictions = [p for p in predictions if p.instance_id in by_id]
    if args.sandbox == "process" and not args.allow_untrusted_patches_without_sandbox:
        return fail(
            "predictions are untrusted code; --sandbox process runs them unsandboxed. Use "
            "docker or bubblewrap, or pass --allow-untrusted-patches-without-sandbox"
        )
    try:
        sandbox = open_sandbox(args.sandbox)
        suite.bind(sandbox, [by_id[p.instance_id] for p in predictions])
    except SandboxUnavailable as err:
        return fail(str(err))

    out = Path(args.out)
    limits = Limits(timeout_s=args.timeout, memory_mb=args.memory_mb, tmp_mb=args.tmp_mb)
    grader = Grader(
        suite.checkout,
        sandbox,
        out / "artifacts",
        limits,
        allow_untrusted_unsandboxed=args.allow_untrusted_patches_without_sandbox,
        runner=suite.runner,
        image_of=suite.image,
        apply_rule=args.apply_rule or suite.apply_rule,
        release=getattr(suite, "release", None),
    )
    pairs = [(by_id[p.instance_id], p.model_patch or "") for p in predictions]
    print(f"grading {len(pairs)} prediction(s) in the {sandbox.name} sandbox, {args.workers} at a time")
    graded = grader.grade_many(pairs, workers=args.workers, trusted=False)
    verdicts = {p.instance_id: v for p, v in zip(predictions, graded, strict=True)}
    files = write_reports(out, args.run_id, tasks, predictions, verdicts)
    counts = Counter(v.outcome for v in verdicts.values())
    for verdict in sorted(verdicts.values(), key=lambda v: v.instance_id):
        flag = " [tampered]" if verdict.tampered else ""
        print(f"  {verdict.instance_id:40} {verdict.outcome:13}{flag} {verdict.reason[:70]}")
    print(
        f"{counts['resolved']}/{len(verdicts)} resolved; "
        + ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
    )
    for name, path in files.items():
        print(f"{name}: {path}")
    broken = [v for v in verdicts.values() if v.outcome == Outcome.HARNESS_ERROR]
    if broken:  # the reports are written, but some numbers are missing: scripts must not read 0
        print(
            f"candlebench grade: {len(broken)} of {len(verdicts)} evaluations failed in the harness "
            f"(first: {broken[0].reason[:120]}); exit status 1",
            file=sys.stderr,
        )
        return 1
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    from pipeline.sandbox import DEMO_IMAGE

    build = commands.add_parser(
        "build-image", help="build the Docker sandbox image locally (debootstrap, no registry)"
    )
    build.add_argument("--tag", default=DEMO_IMAGE, help="image tag (default: %(default)s)")
    build.add_argument("--mirror", help="Debian mirror (default: the one apt uses here)")
    build.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    build.set_defaults(handler=_build_image)
    pro = commands.add_parser(
        "build-pro-image",
        help="build a SWE-Bench-Pro task's image offline from its Dockerfiles and git "
        "bundle, tagged jefzda/sweap-images:<dockerhub_tag>; reused while its inputs are unchanged",
    )
    pro.add_argument("fixture", help="folder with rows.jsonl, dockerfiles/, <repo>.bundle and <repo>.shallow")
    pro.add_argument("--instance", help="only this instance_id (default: every row)")
    pro.add_argument("--mirror", help="Debian mirror (default: the one apt uses here)")
    pro.add_argument("--force", action="store_true", help="rebuild every step even if the image exists")
    pro.set_defaults(handler=_build_pro_image)
    grade = commands.add_parser(
        "grade",
        help="grade a predictions file in a sandbox, without Dagster; writes SWE-bench and "
        "SWE-Bench-Pro reports",
    )
    add_grade_arguments(grade)
    grade.set_defaults(handler=grade_command)
