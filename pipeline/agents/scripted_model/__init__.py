"""A scripted model: the Anthropic Messages and OpenAI Responses APIs, played from a script per task.

It lets the real agent CLIs run a full agent loop with no key and no vendor: `claude -p` pointed at
it by `ANTHROPIC_BASE_URL`, `codex exec` by a `model_providers.<name>` entry with
`wire_api = "responses"`. Users try the pipeline with it; tests assert on what the CLIs did.

A script is a list of neutral steps (YAML or JSON, see `parse_script`):

    match: "Numbers written with a leading dot"   # text of the task's prompt that picks this script
    usage: {input_tokens: 1000, output_tokens: 100} # per response; cache_read/cache_write too
    steps:
      - shell: git status --short && ls           # the CLI's shell tool
      - read: calcexpr/tokens.py                  # Claude's Read; `cat` through Codex's shell
      - edit: {path: calcexpr/tokens.py, old: "...", new: "..."}   # whole lines
      - patch: "diff --git ..."                   # a unified diff, through the CLI's edit tool
      - write: {path: NOTES.md, content: "..."}   # a new file
      - test: python3 -m pytest -q tests          # a shell step that runs the tests
        expect: "passed"                          # regex this step's tool result must match
      - finish: Fixed the tokenizer.              # the final message
    failures: {error: 529, times: 2} (an HTTP error before the next step; no `times`: always;
              `retry: false` sends x-should-retry: false, as an API does for 4xx but 408/409/429,
              and the CLI gives up at once; `retry_after_ms` sends retry-after(-ms)),
              {error: 500, in_stream: true} (a 200 whose stream then fails),
              {refuse: "..."} (Messages: stop_reason "refusal"; Responses: a response left
              incomplete by the content filter). A turn limit is a script longer than --max-turns,
              a budget limit a script whose `usage` costs more than the budget.

Each step is one model response; `say` adds text before a step's tool call, `think` thinking
before it (a Messages `thinking` block, a Responses `reasoning` item with its summary) and `usage`
overrides the script's usage for that response. The step a request gets is the number of tool calls already
in its conversation, so the server keeps no conversation state beyond the count of errors served,
and a step is only sent after the previous tool result arrived. Neutral steps become each CLI's
own tools, found in the request's `tools` list:

- Claude Code 2.1.328 (tools Agent, Bash, Edit, Read, Write, ... ; no MultiEdit any more):
  shell/test -> `Bash {command, description}`, read -> `Read {file_path}`,
  edit -> `Edit {file_path, old_string, new_string}` (Claude refuses an edit of a file it has not
  read, so a `patch` step reads its files first), write -> `Write {file_path, content}`; paths
  absolute, under the "Primary working directory" the CLI announces.
- Codex 0.171.0 (model gpt-5.5; a model it has no metadata for gets no apply_patch): shell/test/read
  -> the function `exec_command {cmd, login: false}` (older builds: `shell
  {command: [..]}` or `shell_command {command}`), edit/write/patch -> the freeform custom tool
  `apply_patch` (a function `apply_patch {input}` in some builds), in Codex's own patch format.

Every request is recorded with its headers, so tests can assert which key arrived. Usage is the
script's, so the tokens, cost and turns a CLI reports are known in advance.
"""

from pipeline.agents.scripted_model.plays import (
    FileDiff,
    Hunk,
    Turn,
    codex_patch,
    edit_as_diff,
    parse_diff,
    script_for_task,
    suite_scripts,
    test_command,
    turns,
    write_as_diff,
)
from pipeline.agents.scripted_model.script import (
    SCRIPTS,
    Script,
    ScriptError,
    Step,
    Usage,
    load_script,
    parse_script,
)
from pipeline.agents.scripted_model.server import Exchange, ScriptedModel

__all__ = [
    "SCRIPTS",
    "Exchange",
    "FileDiff",
    "Hunk",
    "Script",
    "ScriptError",
    "ScriptedModel",
    "Step",
    "Turn",
    "Usage",
    "codex_patch",
    "edit_as_diff",
    "load_script",
    "parse_diff",
    "parse_script",
    "script_for_task",
    "suite_scripts",
    "test_command",
    "turns",
    "write_as_diff",
]
