"""The scripted model over HTTP, as the CLIs speak to it; tests/test_real_clis.py runs the CLIs themselves."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from pipeline.agents import scripted_model as sm

CLAUDE_TOOLS = [{"name": name, "input_schema": {}} for name in ("Bash", "Read", "Edit", "Write")]
CODEX_TOOLS = [
    {"type": "function", "name": "exec_command", "parameters": {}},
    {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}},
]
PROMPT = "<system-reminder>\n - Primary working directory: /work/repo\n</system-reminder>\nFix the bug"
DIFF = """diff --git a/pkg/mod.py b/pkg/mod.py
--- a/pkg/mod.py
+++ b/pkg/mod.py
@@ -1,3 +1,3 @@
 a = 1
-b = 2
+b = 3
 c = 4
@@ -10,2 +10,3 @@ def f():
     return x
+    # done
diff --git a/NEW.md b/NEW.md
new file mode 100644
--- /dev/null
+++ b/NEW.md
@@ -0,0 +1,2 @@
+hello
+world
"""


def post(url: str, body: dict, key: str = "sk-test") -> tuple[int, dict, bytes]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json", "x-api-key": key, "authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def events(data: bytes) -> list[tuple[str, dict]]:
    out = []
    for block in data.decode().strip().split("\n\n"):
        name, payload = (line.split(": ", 1)[1] for line in block.splitlines())
        out.append((name, json.loads(payload)))
    return out


def claude_history(calls: int, result: str = "ok") -> list[dict]:
    """A Messages conversation after `calls` tool calls, each answered by `result`."""
    messages = [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}]
    for n in range(calls):
        messages.append(
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": f"t{n}", "name": "Bash", "input": {}}],
            }
        )
        messages.append(
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"t{n}", "content": result}]}
        )
    return messages


def test_messages_api_plays_the_script_step_by_step(tmp_path):
    script = sm.parse_script(
        {
            "usage": {"input_tokens": 700, "output_tokens": 30, "cache_read": 5},
            "steps": [{"shell": "ls", "say": "Looking."}, {"patch": DIFF}, {"finish": "Done here."}],
        }
    )
    with sm.ScriptedModel(script) as server:
        url = server.url + "/v1/messages?beta=true"
        steps = []
        for calls in range(6):
            status, _, body = post(
                url,
                {"model": "claude-x", "tools": CLAUDE_TOOLS, "messages": claude_history(calls)},
                key="sk-ant-key",
            )
            assert status == 200
            steps.append(json.loads(body))
    blocks = [m["content"][-1] for m in steps]
    assert steps[0]["content"][0] == {"type": "text", "text": "Looking."}
    assert blocks[0] == {
        "type": "tool_use",
        "id": blocks[0]["id"],
        "name": "Bash",
        "input": {"command": "ls", "description": "Run a shell command"},
    }
    assert blocks[1]["name"] == "Read" and blocks[1]["input"] == {"file_path": "/work/repo/pkg/mod.py"}
    assert [b["input"]["old_string"] for b in blocks[2:4]] == ["a = 1\nb = 2\nc = 4\n", "    return x\n"]
    assert [b["input"]["new_string"] for b in blocks[2:4]] == [
        "a = 1\nb = 3\nc = 4\n",
        "    return x\n    # done\n",
    ]
    assert blocks[4]["name"] == "Write" and blocks[4]["input"] == {
        "file_path": "/work/repo/NEW.md",
        "content": "hello\nworld\n",
    }
    assert steps[5]["content"] == [{"type": "text", "text": "Done here."}]
    assert [m["stop_reason"] for m in steps] == ["tool_use"] * 5 + ["end_turn"]
    assert steps[0]["usage"] == {
        "input_tokens": 700,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 5,
        "output_tokens": 30,
    }
    assert server.usage() == sm.Usage(4200, 180, 30, 0)
    assert {e.headers["x-api-key"] for e in server.exchanges} == {"sk-ant-key"}
    assert [e.tool for e in server.played()] == ["Bash", "Read", "Edit", "Edit", "Write", ""]


def test_messages_stream_is_the_apis_event_sequence():
    with sm.ScriptedModel(
        sm.parse_script([{"edit": {"path": "a.py", "old": "x\n", "new": "y\n"}, "say": "Editing."}])
    ) as server:
        status, headers, body = post(
            server.url + "/v1/messages",
            {"model": "m", "stream": True, "tools": CLAUDE_TOOLS, "messages": claude_history(0)},
        )
    assert status == 200 and headers["content-type"] == "text/event-stream"
    stream = events(body)
    assert [name for name, _ in stream] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert stream[0][1]["message"]["usage"]["output_tokens"] == 1
    tool_input = "".join(
        e["delta"]["partial_json"]
        for name, e in stream
        if name == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    )
    assert json.loads(tool_input) == {
        "file_path": "/work/repo/a.py",
        "old_string": "x\n",
        "new_string": "y\n",
    }
    assert stream[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert stream[-2][1]["usage"]["output_tokens"] == 100


def test_responses_api_streams_codex_tools():
    script = sm.parse_script([{"read": "pkg/mod.py"}, {"patch": DIFF, "say": "Patching."}, {"finish": "ok"}])
    with sm.ScriptedModel(script) as server:
        url = server.url + "/v1/responses"
        opening = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Fix it"}]}]
        _, _, first = post(url, {"model": "gpt-5.5", "stream": True, "tools": CODEX_TOOLS, "input": opening})
        call = {"type": "function_call", "call_id": "c0", "name": "exec_command", "arguments": "{}"}
        output = {"type": "function_call_output", "call_id": "c0", "output": "a = 1"}
        _, _, second = post(
            url, {"model": "gpt-5.5", "stream": True, "tools": CODEX_TOOLS, "input": [*opening, call, output]}
        )
        patched = [
            {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": ""},
            {"type": "custom_tool_call_output", "call_id": "c1", "output": "Success."},
        ]
        _, _, last = post(
            url, {"model": "gpt-5.5", "tools": CODEX_TOOLS, "input": [*opening, call, output, *patched]}
        )
    first_events = events(first)
    assert [name for name, _ in first_events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = first_events[-1][1]["response"]
    assert json.loads(done["output"][0]["arguments"]) == {"cmd": "cat -- pkg/mod.py", "login": False}
    assert done["usage"]["input_tokens"] == 1000
    assert done["usage"]["input_tokens_details"]["cached_tokens"] == 0
    assert [e["sequence_number"] for _, e in first_events] == list(range(len(first_events)))
    items = events(second)[-1][1]["response"]["output"]
    assert items[0]["content"][0]["text"] == "Patching."
    assert items[1]["type"] == "custom_tool_call" and items[1]["name"] == "apply_patch"
    assert items[1]["input"] == (
        "*** Begin Patch\n*** Update File: pkg/mod.py\n@@\n a = 1\n-b = 2\n+b = 3\n c = 4\n"
        "@@\n     return x\n+    # done\n*** Add File: NEW.md\n+hello\n+world\n*** End Patch\n"
    )
    assert json.loads(last)["output"][0]["content"][0]["text"] == "ok"  # not streamed: the object


def test_thinking_is_a_thinking_block_and_a_reasoning_summary():
    script = sm.parse_script([{"shell": "ls", "think": "Look around first.", "say": "Looking."}])
    with sm.ScriptedModel(script) as server:
        _, _, claude = post(
            server.url + "/v1/messages",
            {"model": "m", "stream": True, "tools": CLAUDE_TOOLS, "messages": claude_history(0)},
        )
        opening = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Fix it"}]}]
        _, _, codex = post(
            server.url + "/v1/responses",
            {"model": "gpt-5.5", "stream": True, "tools": CODEX_TOOLS, "input": opening},
        )
    stream = events(claude)
    starts = [e["content_block"]["type"] for name, e in stream if name == "content_block_start"]
    assert starts == ["thinking", "text", "tool_use"]
    deltas = [e["delta"] for name, e in stream if name == "content_block_delta" and e["index"] == 0]
    assert "".join(d.get("thinking", "") for d in deltas) == "Look around first."
    assert deltas[-1]["type"] == "signature_delta" and deltas[-1]["signature"]
    responses = events(codex)
    reasoning = responses[-1][1]["response"]["output"][0]
    assert reasoning["type"] == "reasoning"
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Look around first."}]
    text = "".join(e["delta"] for name, e in responses if name == "response.reasoning_summary_text.delta")
    assert text == "Look around first."
    assert [e.tool for e in server.played()] == ["Bash", "exec_command"]


def test_failures_errors_refusals_and_expectations():
    script = sm.parse_script(
        [
            {"error": 529, "times": 2, "retry_after_ms": 1500},
            {"shell": "ls", "expect": "^a"},
            {"refuse": "No."},
        ]
    )
    with sm.ScriptedModel(script) as server:
        url = server.url + "/v1/messages"
        opening = {"model": "m", "tools": CLAUDE_TOOLS, "messages": claude_history(0)}
        answers = [post(url, opening) for _ in range(3)]
        assert [status for status, _, _ in answers] == [529, 529, 200]
        assert json.loads(answers[0][2])["error"]["type"] == "overloaded_error"
        assert answers[0][1]["retry-after-ms"] == "1500" and "x-should-retry" not in answers[0][1]
        _, _, refusal = post(url, {**opening, "messages": claude_history(1, "a.txt")})
        assert json.loads(refusal)["stop_reason"] == "refusal"
        _, _, mismatch = post(url, {**opening, "messages": claude_history(1, "zzz")})
        assert "expected /^a/" in json.loads(mismatch)["content"][0]["text"]
        assert len(server.mismatches) == 1 and server.exchanges[-1].action == "mismatch"
    with sm.ScriptedModel(sm.parse_script([{"error": 500, "retry": False}])) as server:
        statuses = [
            post(server.url + "/v1/responses", {"model": "m", "tools": CODEX_TOOLS, "input": "x"})
            for _ in range(3)
        ]
        assert [s for s, _, _ in statuses] == [500] * 3 and statuses[0][1]["x-should-retry"] == "false"
        assert json.loads(statuses[0][2])["error"]["type"] == "server_error"
    with sm.ScriptedModel(sm.parse_script([{"refuse": "No."}])) as server:
        _, _, body = post(
            server.url + "/v1/responses", {"model": "m", "stream": True, "tools": CODEX_TOOLS, "input": "x"}
        )
        assert events(body)[-1][1]["response"]["incomplete_details"] == {"reason": "content_filter"}
    with sm.ScriptedModel(sm.parse_script([{"error": 500, "in_stream": True, "times": 1}])) as server:
        _, _, body = post(
            server.url + "/v1/messages",
            {"model": "m", "stream": True, "tools": CLAUDE_TOOLS, "messages": claude_history(0)},
        )
        assert events(body)[-1][0] == "error"


def test_side_requests_unknown_routes_and_unmatched_prompts():
    scripts = [
        sm.Script("one", (sm.Step("finish", text="one"),), match="first task"),
        sm.Script("two", (sm.Step("finish", text="two"),), match="second task"),
    ]
    with sm.ScriptedModel(scripts) as server:
        _, _, side = post(server.url + "/v1/messages", {"model": "haiku", "messages": claude_history(0)})
        assert json.loads(side)["content"][0]["text"] == "OK."  # no tools: a title or summary request
        status, _, _ = post(
            server.url + "/v1/messages", {"model": "m", "tools": CLAUDE_TOOLS, "messages": claude_history(0)}
        )
        assert status == 400  # "Fix the bug" matches no script
        _, _, picked = post(
            server.url + "/v1/messages",
            {
                "model": "m",
                "tools": CLAUDE_TOOLS,
                "messages": [{"role": "user", "content": "please do the second task"}],
            },
        )
        assert json.loads(picked)["content"][0]["text"] == "two"
        assert post(server.url + "/v2/other", {})[0] == 404


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"steps": []}, "a script is a mapping with a non-empty 'steps' list"),
        ([{"shell": "ls", "read": "a"}], "step 1: a step has exactly one of"),
        ([{"shel": "ls"}], "step 1: a step has exactly one of"),
        ([{"edit": {"path": "a"}}], "step 1: edit takes {path, old, new}"),
        ([{"finish": "x"}, {"error": 200}], "step 2: error takes an HTTP status"),
        ([{"shell": "ls", "usage": {"tokens": 3}}], "step 1: usage takes input_tokens"),
        ({"steps": [{"finish": "x"}], "model": "m"}, "unknown field 'model'"),
    ],
)
def test_malformed_scripts_are_named(raw, message):
    with pytest.raises(sm.ScriptError, match=message.replace("{", r"\{").replace("}", r"\}")):
        sm.parse_script(raw, "demo")


def test_every_demo_task_has_a_play(suite):
    tasks = suite.tasks()
    scripts = {s.name: s for s in sm.suite_scripts(tasks)}
    assert len(scripts) == len(tasks) and all(s.match for s in scripts.values())
    shipped = scripts["demo__calcexpr-001"]
    assert [s.action for s in shipped.steps] == ["shell", "read", "edit", "test", "finish"]
    assert shipped.usage == sm.Usage(1500, 120, 500, 0)
    generated = scripts["demo__textkit-008"]
    assert [s.action for s in generated.steps] == ["shell", "read", "patch", "test", "finish"]
    plays = [t.step.action for t in sm.turns(generated, "anthropic")]
    assert plays == ["shell", "read", "edit", "edit", "edit", "test", "finish"]  # one Edit per hunk
    assert [t.step.action for t in sm.turns(generated, "responses")] == [
        "shell",
        "read",
        "patch",
        "test",
        "finish",
    ]
