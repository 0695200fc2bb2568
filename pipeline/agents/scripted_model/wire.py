"""The vendors' wire formats: Messages and Responses objects, their server-sent event streams and errors."""

from __future__ import annotations

import json
from collections.abc import Iterable

from pipeline.agents.scripted_model.replies import Reply
from pipeline.agents.scripted_model.script import ANTHROPIC_ERRORS, OPENAI_ERRORS, Step, Usage


def _sse(events: Iterable[tuple[str, dict]]) -> bytes:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


def anthropic_message(reply: Reply, usage: Usage, model: str, ident: str) -> dict:
    content: list[dict] = []
    if reply.thinking:  # the signature is the API's proof of origin; a CLI only passes it back
        content.append({"type": "thinking", "thinking": reply.thinking, "signature": f"scripted-{ident}"})
    if reply.text or not reply.call:
        content.append({"type": "text", "text": reply.text})
    if reply.call:
        content.append(
            {"type": "tool_use", "id": f"toolu_{ident}", "name": reply.call.name, "input": reply.call.input}
        )
    stop = "refusal" if reply.refusal else "tool_use" if reply.call else "end_turn"
    return {
        "id": f"msg_{ident}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": _anthropic_usage(usage),
    }


def _anthropic_usage(usage: Usage) -> dict:
    return {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_write,
        "cache_read_input_tokens": usage.cache_read,
        "output_tokens": usage.output_tokens,
    }


def anthropic_stream(message: dict, fail: Step | None = None) -> bytes:
    """The message as SSE, the way the Messages API streams it (tool input in JSON fragments)."""
    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 1}}
    events = [("message_start", {"type": "message_start", "message": start}), ("ping", {"type": "ping"})]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            deltas = [{"type": "text_delta", "text": part} for part in _halves(block["text"])]
        elif block["type"] == "thinking":
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                    },
                )
            )
            deltas = [{"type": "thinking_delta", "thinking": part} for part in _halves(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            events.append(
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}},
                )
            )
            deltas = [
                {"type": "input_json_delta", "partial_json": part}
                for part in _halves(json.dumps(block["input"]))
            ]
        events += [
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        ]
        if fail is not None:  # the stream breaks off in the middle of the first block
            events.append(("error", {"type": "error", "error": _anthropic_error(fail)}))
            return _sse(events)
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "usage": message["usage"],
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return _sse(events)


def _halves(text: str) -> list[str]:
    """Text in two deltas, as a streaming API splits it (one when it is too short to split)."""
    middle = len(text) // 2
    return [text[:middle], text[middle:]] if middle else [text]


def _anthropic_error(step: Step) -> dict:
    kind = ANTHROPIC_ERRORS.get(step.status, "api_error")
    message = {"overloaded_error": "Overloaded", "rate_limit_error": "Rate limited (scripted)"}.get(
        kind, f"scripted error {step.status}"
    )
    return {"type": kind, "message": message}


def responses_object(reply: Reply, usage: Usage, model: str, ident: str, number: int) -> dict:
    output: list[dict] = []
    if reply.thinking:  # a reasoning item with its summary, as reasoning models send it
        summary = [{"type": "summary_text", "text": reply.thinking}]
        output.append({"type": "reasoning", "id": f"rs_{ident}", "summary": summary})
    if reply.text or reply.refusal or not reply.call:
        part = (
            {"type": "refusal", "refusal": reply.text}
            if reply.refusal
            else {"type": "output_text", "text": reply.text, "annotations": []}
        )
        output.append(
            {
                "type": "message",
                "id": f"msg_{ident}",
                "role": "assistant",
                "status": "completed",
                "content": [part],
            }
        )
    if reply.call:
        call_id = f"call_{number}_{ident}"
        if reply.call.kind == "custom":
            output.append(
                {
                    "type": "custom_tool_call",
                    "id": f"ctc_{ident}",
                    "call_id": call_id,
                    "name": reply.call.name,
                    "input": reply.call.input,
                    "status": "completed",
                }
            )
        else:
            output.append(
                {
                    "type": "function_call",
                    "id": f"fc_{ident}",
                    "call_id": call_id,
                    "name": reply.call.name,
                    "arguments": json.dumps(reply.call.input),
                    "status": "completed",
                }
            )
    fresh = usage.input_tokens + usage.cache_read + usage.cache_write
    # a refusal is stopped by the content filter, as the API does it for models that refuse in-line
    status = (
        {"status": "incomplete", "incomplete_details": {"reason": "content_filter"}}
        if reply.refusal
        else {"status": "completed"}
    )
    return {
        "id": f"resp_{ident}",
        "object": "response",
        "created_at": 0,
        **status,
        "model": model,
        "output": output,
        "usage": {
            "input_tokens": fresh,
            "input_tokens_details": {"cached_tokens": usage.cache_read},
            "output_tokens": usage.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": fresh + usage.output_tokens,
        },
    }


def responses_stream(response: dict, fail: Step | None = None) -> bytes:
    """The response as the Responses API streams it: items added, deltas, items done, completed."""
    shell = {**response, "status": "in_progress", "output": [], "usage": None}
    events: list[dict] = [
        {"type": "response.created", "response": shell},
        {"type": "response.in_progress", "response": shell},
    ]
    for index, item in enumerate(response["output"]):
        base = {"output_index": index, "item_id": item["id"]}
        if item["type"] == "message":
            part = item["content"][0]
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "status": "in_progress", "content": []},
                }
            )
            empty = (
                {"type": "refusal", "refusal": ""}
                if part["type"] == "refusal"
                else {"type": "output_text", "text": "", "annotations": []}
            )
            events.append({"type": "response.content_part.added", **base, "content_index": 0, "part": empty})
            if part["type"] == "refusal":
                events += [
                    {"type": "response.refusal.delta", **base, "content_index": 0, "delta": d}
                    for d in _halves(part["refusal"])
                ]
                events.append(
                    {"type": "response.refusal.done", **base, "content_index": 0, "refusal": part["refusal"]}
                )
            else:
                events += [
                    {"type": "response.output_text.delta", **base, "content_index": 0, "delta": d}
                    for d in _halves(part["text"])
                ]
                events.append(
                    {"type": "response.output_text.done", **base, "content_index": 0, "text": part["text"]}
                )
            events.append({"type": "response.content_part.done", **base, "content_index": 0, "part": part})
        elif item["type"] == "reasoning":
            part, text = {**base, "summary_index": 0}, item["summary"][0]["text"]
            events.append(
                {"type": "response.output_item.added", "output_index": index, "item": {**item, "summary": []}}
            )
            events.append(
                {
                    "type": "response.reasoning_summary_part.added",
                    **part,
                    "part": {"type": "summary_text", "text": ""},
                }
            )
            events += [
                {"type": "response.reasoning_summary_text.delta", **part, "delta": d} for d in _halves(text)
            ]
            events.append({"type": "response.reasoning_summary_text.done", **part, "text": text})
            events.append(
                {"type": "response.reasoning_summary_part.done", **part, "part": item["summary"][0]}
            )
        else:
            custom = item["type"] == "custom_tool_call"
            key, kind = (
                ("input", "custom_tool_call_input") if custom else ("arguments", "function_call_arguments")
            )
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, key: "", "status": "in_progress"},
                }
            )
            events += [{"type": f"response.{kind}.delta", **base, "delta": d} for d in _halves(item[key])]
            events.append({"type": f"response.{kind}.done", **base, key: item[key]})
        if response.get("status") == "incomplete":
            break
        if fail is not None:
            events.append(
                {
                    "type": "response.failed",
                    "response": {
                        **shell,
                        "status": "failed",
                        "error": {
                            "code": OPENAI_ERRORS.get(fail.status, "server_error"),
                            "message": f"scripted error {fail.status}",
                        },
                    },
                }
            )
            break
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    else:
        events.append({"type": "response.completed", "response": response})
    if response.get("status") == "incomplete":
        events.append({"type": "response.incomplete", "response": response})
    return _sse((event["type"], {**event, "sequence_number": n}) for n, event in enumerate(events))


# --- the server -------------------------------------------------------------------------------
