"""The real SWE-Bench-Pro instance in ../shared/fixtures/swe-bench-pro: its image, built offline
from its Dockerfiles (pipeline/pro_images.py), and Pro's own harness on it (tests/pro_reference.py):
gold resolves with all 36 tests PASSED, the empty patch and a wrong one do not.

Tests that need the fixture, Docker or the built image skip with the reason printed, except under
CI=true, where .ci/run builds the image (.ci/pro.sh) and a skip would hide a broken build: they fail.
"""

from __future__ import annotations

import ast
import csv
import json
import time
from pathlib import Path

import pytest
from needs import unavailable  # tests/ is on sys.path
from pro_reference import entry_script, run_pro_harness, strip_binary_hunks  # tests/ is on sys.path

from pipeline.cli import main
from pipeline.sandbox import DEMO_IMAGE
from pipeline.sandbox.dockerfile import DockerfileError, Instruction, Stage, parse_dockerfile, parse_env
from pipeline.tasks.pro import pro_image
from pipeline.tasks.pro_images import (
    INPUTS_LABEL,
    Fixture,
    ProImageError,
    _clone_replacement,
    build_pro_image,
    dockerhub_tag,
    inputs_digest,
    load_fixtures,
    pro_image_name,
)
from pipeline.tasks.rows import load_rows

FIXTURE = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "swe-bench-pro"
COMMITS = "942424e10b2095a173dbd78e7128f52f7995849b-v30a923fb5c164d6cd18280c02422f75e611e8fb2"
IID = f"instance_ansible__ansible-{COMMITS}"
TAG = f"ansible.ansible-ansible__ansible-{COMMITS}"  # the row's dockerhub_tag
F2P = "test/units/plugins/connection/test_winrm.py::TestWinRMKerbAuth::test_exec_command_get_output_timeout"
WRONG_PATCH = Path(__file__).parent / "pro_patches" / "wrong_winrm.diff"
BROKEN_PATCH = Path(__file__).parent / "pro_patches" / "broken_winrm.diff"  # winrm.py no longer parses


# Pro's image names, without any fixture
def test_dockerhub_tag_is_the_fixtures_known_tag():
    assert dockerhub_tag(IID, "ansible/ansible") == TAG
    assert pro_image_name({"instance_id": IID, "repo": "ansible/ansible"}) == f"jefzda/sweap-images:{TAG}"
    assert (
        pro_image_name({"instance_id": IID, "repo": "ansible/ansible", "dockerhub_tag": "given"})
        == "jefzda/sweap-images:given"
    )


def test_dockerhub_tag_follows_pros_special_cases():
    assert (
        dockerhub_tag("instance_NodeBB__NodeBB-abc-vnan", "NodeBB/NodeBB")
        == "nodebb.nodebb-NodeBB__NodeBB-abc"
    )
    assert (
        dockerhub_tag("instance_element-hq__element-web-123-vnan", "element-hq/element-web")
        == "element-hq.element-element-hq__element-web-123"
    )
    kept = "instance_element-hq__element-web-ec0f940ef0e8e3b61078f145f34dc40d1938e6c5-vnan"
    assert (
        dockerhub_tag(kept, "element-hq/element-web")
        == "element-hq.element-web-element-hq__element-web-ec0f940ef0e8e3b61078f145f34dc40d1938e6c5-vnan"
    )
    assert len(dockerhub_tag("instance_" + "x" * 200, "a/b")) == 128
    with pytest.raises(ProImageError, match="owner"):
        dockerhub_tag(IID, "ansible")


# the Dockerfile reader
def test_parse_dockerfile_keeps_heredocs_and_joins_continuations():
    text = (
        "# comment\nFROM base AS x\nRUN apt-get install -y \\\n    git \\\n# inside\n    make\n"
        "ENV A=\"1 2\" B=3\nRUN cat <<'EOF' > /s.sh\n#!/bin/bash\n\necho $HOME\nEOF\nRUN /s.sh"
    )
    found = [(i.keyword, i.value, i.line) for i in parse_dockerfile(text)]
    assert found == [
        ("FROM", "base AS x", 2),
        ("RUN", "apt-get install -y     git     make", 3),
        ("ENV", 'A="1 2" B=3', 7),
        ("RUN", "cat <<'EOF' > /s.sh\n#!/bin/bash\n\necho $HOME\nEOF", 8),
        ("RUN", "/s.sh", 13),
    ]
    with pytest.raises(DockerfileError, match="never closed"):
        parse_dockerfile("FROM x\nRUN cat <<EOF\nno end\n")


def test_parse_env_forms():
    assert parse_env('PYTEST_ADDOPTS="--tb=short -v"') == [("PYTEST_ADDOPTS", "--tb=short -v")]
    assert parse_env("A=1 B='two words'") == [("A", "1"), ("B", "two words")]
    assert parse_env("LEGACY some value") == [("LEGACY", "some value")]
    with pytest.raises(DockerfileError, match="variable"):
        parse_env("PATH=$PATH:/x")


def test_stage_applies_config_instructions_as_docker_does():
    stage = Stage("img", {"PATH": "/bin"}, "/", [], ["python3"], {})
    for keyword, value in (
        ("WORKDIR", "/app"),
        ("WORKDIR", "sub/.."),
        ("ENV", "A=1"),
        ("ENTRYPOINT", '["/bin/bash"]'),
    ):
        stage.apply(Instruction(keyword, value, 1))
    assert stage.workdir == "/app" and stage.env == {"PATH": "/bin", "A": "1"}
    assert stage.entrypoint == ["/bin/bash"] and stage.cmd is None  # an inherited CMD is reset
    stage.apply(Instruction("CMD", "echo hi", 2))
    stage.apply(Instruction("ENTRYPOINT", "run me", 3))
    assert stage.cmd == ["/bin/sh", "-c", "echo hi"] and stage.entrypoint == ["/bin/sh", "-c", "run me"]
    assert stage.config()["Env"] == ["PATH=/bin", "A=1"] and stage.config({"k": "v"})["Labels"] == {"k": "v"}


def test_only_the_rows_own_repository_is_cloned_from_the_bundle(tmp_path):
    row = {"instance_id": "i", "repo": "ansible/ansible", "base_commit": "b"}
    paths = (tmp_path / name for name in ("base", "instance", "ansible.bundle", "ansible.shallow"))
    fixture = Fixture(tmp_path, row, *paths)
    clone = Instruction("RUN", "git clone https://github.com/ansible/ansible.git .", 9)
    script, note = _clone_replacement(clone, fixture)
    assert "ansible.bundle" in note
    assert "git init -q ." in script and "fetch -q /mnt/ansible.bundle" in script
    assert _clone_replacement(Instruction("RUN", "git checkout x", 10), fixture) is None
    with pytest.raises(ProImageError, match="not the row's repository"):
        _clone_replacement(Instruction("RUN", "git clone https://github.com/other/repo.git", 11), fixture)


def test_bad_fixture_folders_are_refused_with_the_file_named(tmp_path, capsys):
    with pytest.raises(ProImageError, match="no such folder"):
        load_fixtures(tmp_path / "missing")
    with pytest.raises(ProImageError, match="no rows.jsonl"):
        load_fixtures(tmp_path)
    (tmp_path / "rows.jsonl").write_text("{not json\n")
    with pytest.raises(ProImageError, match=r"rows.jsonl:1: not JSON"):
        load_fixtures(tmp_path)
    (tmp_path / "rows.jsonl").write_text(
        json.dumps({"instance_id": IID, "repo": "ansible/ansible", "base_commit": "dd44449b"}) + "\n"
    )
    with pytest.raises(ProImageError, match="base Dockerfile is missing"):
        load_fixtures(tmp_path)
    assert main(["build-pro-image", str(tmp_path)]) == 2
    assert "base Dockerfile is missing" in capsys.readouterr().err


# the fixture itself
@pytest.fixture(scope="module")
def fixture():
    if not (FIXTURE / "rows.jsonl").is_file():
        unavailable(f"SWE-Bench-Pro fixture not found at {FIXTURE}")
    return load_fixtures(FIXTURE)[0]


def test_fixture_reads_and_its_entry_script_is_pros(fixture):
    assert fixture.instance_id == IID and fixture.image == f"jefzda/sweap-images:{TAG}"
    keywords = [i.keyword for i in parse_dockerfile(fixture.instance_dockerfile.read_text())]
    assert keywords == ["FROM", "ENV", "ENV", "RUN", "RUN", "RUN", "RUN", "RUN", "RUN"]
    script = entry_script(
        fixture.row, [fixture.base_dockerfile.read_text(), fixture.instance_dockerfile.read_text()]
    )
    assert 'export PYTEST_ADDOPTS="--tb=short -v --continue-on-collection-errors --reruns=3"' in script
    assert "export UV_HTTP_TIMEOUT=60" in script
    assert (
        "git checkout 942424e10b2095a173dbd78e7128f52f7995849b -- "
        "test/units/plugins/connection/test_winrm.py\n"
    ) in script
    assert "git clean" not in script  # only the last line of before_repo_set_cmd runs
    assert "bash /workspace/run_script.sh test/units/plugins/connection/test_winrm.py > " in script


def test_binary_hunks_are_stripped_as_pro_strips_them():
    text = "diff --git a/t.txt b/t.txt\n--- a/t.txt\n+++ b/t.txt\n@@ -1 +1 @@\n-Binary files x\n+y\n"
    binary = "diff --git a/i.png b/i.png\nindex 1..2 100644\nGIT binary patch\nliteral 1\n"
    assert strip_binary_hunks(text + binary) == text


# the image
@pytest.fixture(scope="module")
def daemon(fixture):
    try:
        from pipeline.sandbox.daemon import DockerDaemon

        found = DockerDaemon(timeout=120)
    except Exception as err:  # no daemon, or docker-py missing
        unavailable(str(err) if "Docker" in str(err) else f"Docker daemon not reachable: {err}")
    present = found.image_id(fixture.image) is not None
    labels = (found.image_config(fixture.image).get("Labels") or {}) if present else {}
    if labels.get(INPUTS_LABEL) != inputs_digest(fixture):
        unavailable(
            f"image {fixture.image} is missing or stale: build it with "
            f"`candlebench build-pro-image {FIXTURE}`"
        )
    return found


def test_the_image_is_reused_when_its_inputs_are_unchanged(fixture, daemon):
    started = time.monotonic()
    built = build_pro_image(fixture, daemon, log=lambda _: None)
    assert built.reused and time.monotonic() - started < 30
    assert built.tag == f"jefzda/sweap-images:{TAG}" and built.image_id == daemon.image_id(built.tag)
    config = daemon.image_config(built.tag)
    assert config["Entrypoint"] == ["/bin/bash"] and config["WorkingDir"] == "/app"
    assert "PYTEST_ADDOPTS=--tb=short -v --continue-on-collection-errors --reruns=3" in config["Env"]
    assert config["Labels"][INPUTS_LABEL] == inputs_digest(fixture)


def _graded(fixture) -> set[str]:
    row = fixture.row
    return set(ast.literal_eval(row["fail_to_pass"])) | set(ast.literal_eval(row["pass_to_pass"]))


_PRO_RESULTS: dict[str, object] = {}  # patch -> Pro's result: each patch runs once per session


def _pro(fixture, daemon, patch: str):
    if patch not in _PRO_RESULTS:
        _PRO_RESULTS[patch] = run_pro_harness(
            fixture.image, fixture.row, FIXTURE / "run_scripts", patch, daemon=daemon, timeout_s=1200
        )
    result = _PRO_RESULTS[patch]
    print(
        f"Pro's harness: resolved={result.resolved} in {result.seconds:.1f}s, "
        f"{len(result.passed)}/{len(result.statuses)} passed"
    )
    assert result.output_found, (result.entry_output[-2000:], result.stdout_log[-2000:])
    return result


def test_pro_harness_resolves_the_gold_patch(fixture, daemon):
    result = _pro(fixture, daemon, fixture.row["patch"])
    assert result.resolved
    assert len(result.statuses) == 36 and set(result.statuses.values()) == {"PASSED"}
    assert set(result.statuses) == _graded(fixture)


def test_pro_harness_rejects_the_empty_patch(fixture, daemon):
    result = _pro(fixture, daemon, "")
    assert not result.resolved
    assert result.statuses[F2P] == "FAILED"
    assert sorted(result.statuses.values()).count("PASSED") == 35 and len(result.statuses) == 36
    assert "ValueError: not enough values to unpack (expected 3, got 0)" in result.stdout_log


def test_pro_harness_rejects_a_wrong_patch(fixture, daemon):
    result = _pro(fixture, daemon, WRONG_PATCH.read_text())
    assert "Applied patch lib/ansible/plugins/connection/winrm.py cleanly." in result.entry_output
    assert not result.resolved and result.statuses[F2P] == "FAILED"


# candlebench's grader against Pro's harness, test by test
@pytest.fixture(scope="module")
def grader(fixture, daemon, tmp_path_factory):
    from pipeline.grading import Grader
    from pipeline.sandbox import Limits
    from pipeline.sandbox.docker import DockerSandbox
    from pipeline.tasks.pro import RowSuite

    home = tmp_path_factory.mktemp("cb-pro-home")
    suite = RowSuite(FIXTURE / "rows.jsonl", home, daemon=daemon)
    sandbox = DockerSandbox(daemon=daemon)
    suite.bind(sandbox, suite.tasks())
    return Grader(
        suite.checkout,
        sandbox,
        home / "artifacts",
        Limits(timeout_s=1200),
        runner=suite.runner,
        image_of=suite.image,
        apply_rule=suite.apply_rule,
        release=suite.release,
    )


@pytest.mark.parametrize("patch_class", ["gold", "empty", "wrong", "broken"])
def test_candlebench_grades_as_pros_harness_does(fixture, daemon, grader, patch_class):
    """Same per-test statuses and the same resolution; the empty patch graded as a control. A patch
    that breaks the module the tests import is the patch's failure, never a harness error."""
    patch = {
        "gold": fixture.row["patch"],
        "empty": "",
        "wrong": WRONG_PATCH.read_text(),
        "broken": BROKEN_PATCH.read_text(),
    }[patch_class]
    pro = _pro(fixture, daemon, patch)
    (task,) = load_rows(FIXTURE / "rows.jsonl")
    started = time.monotonic()
    verdict = grader.grade(task, patch, trusted=False, run_empty=patch_class == "empty", use_cache=False)
    print(f"candlebench: {verdict.outcome} in {time.monotonic() - started:.1f}s ({verdict.reason[:200]})")
    assert verdict.outcome in ("resolved", "unresolved"), verdict.reason
    assert verdict.resolved == pro.resolved
    assert verdict.tests == pro.statuses
    assert verdict.apply_rule == "git_apply" and verdict.apply_step == (
        "none" if patch_class == "empty" else "git_apply"
    )
    assert verdict.image_digest == daemon.image_id(fixture.image)  # the id, not the tag
    assert verdict.dataset_revision == task.revision and len(verdict.run_scripts_revision) == 12
    assert not verdict.tampered


def test_a_pro_rows_grade_needs_no_demo_image(fixture, daemon, grader):
    """Only the task's image is asked for: the sandbox's own (the demo image) never is."""
    (task,) = load_rows(FIXTURE / "rows.jsonl")
    assert grader.environment(task) == daemon.image_id(fixture.image).removeprefix("sha256:")[:16]
    assert grader.not_run(task, "skipped", "not launched").env_fingerprint == grader.environment(task)
    assert grader._fingerprint is None and DEMO_IMAGE not in grader.sandbox._ids


# rows as the public exports ship them
def test_rows_without_dockerhub_tag_derive_pros_image(tmp_path):
    if not (FIXTURE / "rows.jsonl").is_file():
        unavailable(f"SWE-Bench-Pro fixture not found at {FIXTURE}")
    row = json.loads((FIXTURE / "rows.jsonl").read_text().splitlines()[0])
    del row["dockerhub_tag"]  # two public exports of the dataset have these 15 columns
    (tmp_path / "rows.jsonl").write_text(json.dumps(row) + "\n")
    (task,) = load_rows(tmp_path / "rows.jsonl")
    assert pro_image(task) == f"jefzda/sweap-images:{TAG}"
    with (tmp_path / "rows.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    (from_csv,) = load_rows(tmp_path / "rows.csv")
    assert from_csv == task


def test_bad_rows_are_refused_in_one_line_naming_the_file(tmp_path, capsys):
    (tmp_path / "rows.csv").write_text("repo,instance_id\nansible/ansible,x\n")
    (tmp_path / "preds.jsonl").write_text("")
    code = main(
        [
            "grade",
            "--tasks",
            str(tmp_path / "rows.csv"),
            "--predictions",
            str(tmp_path / "preds.jsonl"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "rows.csv:2" in err and "missing field" in err
