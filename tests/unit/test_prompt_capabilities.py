"""Capabilities, thinking tags and tool-call tags read from templates.

The parametrised cases of test_parse_tag and test_infer_thinking_tags are Ollama's own
(tools/template_test.go TestParseTag, thinking/template_test.go TestInferThinkingTags).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pollama.prompt.capabilities import (
    go_template_capabilities,
    infer_thinking_tags,
    jinja_template_capabilities,
    tool_call_tag,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "templates"


def tmpl(name: str) -> str:
    return (FIXTURES / f"{name}.gotmpl").read_text()


@pytest.mark.parametrize(
    ("template", "want"),
    [
        ("", "{"),
        ("{{if .ToolCalls}}{{end}}", "{"),
        ("{{if .ToolCalls}}{{range .ToolCalls}}{{ . }}{{end}}{{end}}", "{"),
        ("{{if .ToolCalls}}```json\n{{end}}", "```json"),
        ("{{if .ToolCalls}}[{{range .ToolCalls}}{{ . }}{{end}}]{{end}}", "["),
        ("{{if .ToolCalls}}\n [ {{range .ToolCalls}}{{ . }}{{end}}]{{end}}", "["),
        ("{{if .ToolCalls}}{{range .ToolCalls}}{{ . }}{{end}}]{{end}}", "{"),
        ("{{if .ToolCalls}} {{range .ToolCalls}}{{ . }}{{end}}{{end}}", "{"),
        ("{{if .ToolCalls}}{{range .ToolCalls}}\n{{ . }}\n{{end}}{{end}}", "{"),
        (
            '{{if .ToolCalls}}{{range .ToolCalls}}{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}{{end}}{{end}}',
            "{",
        ),
        (
            '{{if .ToolCalls}}{{range .ToolCalls}}\n{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}{{end}}{{end}}',
            "{",
        ),
        (
            '{{if .ToolCalls}}{{range .ToolCalls}}\r\n{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}{{end}}{{end}}',
            "{",
        ),
        (
            '{{if .ToolCalls}}\n{{range .ToolCalls}}\n{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}\r\n{{end}}\r\n{{end}}',
            "{",
        ),
        (
            "{{if .ToolCalls}}<|tool▁calls▁begin|>{{range .ToolCalls}}<|tool▁call▁begin|>functionget_current_weather\n"
            '```json\n{"location": "Tokyo"}\n```<|tool▁call▁end|>\n{{end}}<|tool▁calls▁end|>{{end}}',
            "<|tool▁calls▁begin|>",
        ),
        (
            '{{if .ToolCalls}}{{range .ToolCalls}}<tool_call>{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}</tool_call>{{end}}{{end}}',
            "<tool_call>",
        ),
        (
            '{{if .ToolCalls}}\n{{range .ToolCalls}}<tool_call>{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}</tool_call>{{end}}{{end}}',
            "<tool_call>",
        ),
        (
            '{{if .ToolCalls}}{{range .ToolCalls}}<tool_call>{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}<tool_call>{{end}}{{end}}',
            "<tool_call>",
        ),
        ("{{if .ToolCalls}}First text{{if .Something}}inner{{end}}Second text{{end}}", "First text"),
        ("{{if .ToolCalls}}Action: ```json{{end}}", "Action: ```json"),
        ("{{if .ToolCalls}}functools[{{end}}", "functools["),
        ("{{if .ToolCalls}}[TOOL_CALL] [{{end}}", "[TOOL_CALL] ["),
        ("{{if .ToolCalls}}[TOOL_CALL][{{end}}", "[TOOL_CALL]["),
    ],
)
def test_parse_tag(template: str, want: str) -> None:
    assert tool_call_tag(template) == want


THINK_BASIC = """
			{{ if .Thinking}}
				/think
			{{ end }}
			{{- range $i, $_ := .Messages }}
				{{- $last := eq (len (slice $.Messages $i)) 1 -}}
				{{ if and $last .Thinking }}
					<think>{{ .Thinking }}</think>
				{{ end }}
			{{ end }}
		"""
THINK_NESTED = """
			{{ if .Thinking}}
				/think
			{{ end }}
			{{- range $i, $_ := .Messages }}
				{{- range $j, $_ := .NotMessages }}
					{{- $last := eq (len (slice $.Messages $i)) 1 -}}
					{{ if and $last .Thinking }}
						<think>{{ .Thinking }}</think>
					{{ end }}
				{{ end }}
			{{ end }}
		"""
THINK_TRIM = """
			{{ if .Thinking}}
				/think
			{{ end }}
			{{- range $i, $_ := .Messages }}
				{{- $last := eq (len (slice $.Messages $i)) 1 -}}
				{{ if and $last .Thinking }}
					Some text before   {{ .Thinking }}    Some text after
				{{ end }}
			{{ end }}
		"""


@pytest.mark.parametrize(
    ("template", "want"),
    [
        (THINK_BASIC, ("<think>", "</think>")),
        (THINK_NESTED, ("", "")),
        (THINK_TRIM, ("Some text before", "Some text after")),
        (tmpl("gemma3-thinking"), ("<unused94>", "<unused95>")),
        (tmpl("qwen3"), ("<think>", "</think>")),
        (tmpl("llama3-instruct"), ("", "")),
    ],
)
def test_infer_thinking_tags(template: str, want: tuple[str, str]) -> None:
    assert infer_thinking_tags(template) == want


@pytest.mark.parametrize(
    ("name", "tools", "insert", "thinking", "tags", "tool_tag"),
    [
        ("qwen2.5", True, True, False, ("", ""), "<tool_call>"),
        ("qwen3", True, False, True, ("<think>", "</think>"), "<tool_call>"),
        ("gemma3-thinking", False, False, True, ("<unused94>", "<unused95>"), "{"),
        ("llama3-instruct", False, False, False, ("", ""), "{"),
        ("llama3-groq-tool-use", True, False, False, ("", ""), "<tool_call>"),
        ("command-r", True, False, False, ("", ""), "Action: ```json\n["),
    ],
)
def test_go_template_capabilities(
    name: str, tools: bool, insert: bool, thinking: bool, tags: tuple[str, str], tool_tag: str
) -> None:
    caps = go_template_capabilities(tmpl(name))
    assert (caps.tools, caps.insert, caps.thinking) == (tools, insert, thinking)
    assert (caps.think_open, caps.think_close) == tags
    assert caps.tool_tag == tool_tag


def test_capability_names() -> None:
    assert go_template_capabilities(tmpl("qwen2.5")).names() == ["tools", "insert"]
    assert go_template_capabilities(tmpl("qwen3")).names() == ["tools", "thinking"]
    assert go_template_capabilities("{{ .Prompt }}").names() == []


def test_jinja_capabilities() -> None:
    src = "{% if tools %}{{ tools|tojson }}{% endif %}{% for m in messages %}<think>{{ m.content }}{% endfor %}<tool_call>"
    caps = jinja_template_capabilities(src)
    assert (caps.tools, caps.insert, caps.thinking) == (True, False, True)
    assert (caps.think_open, caps.think_close, caps.tool_tag) == ("<think>", "</think>", "<tool_call>")
    plain = jinja_template_capabilities((FIXTURES / "aya-expanse.jinja").read_text())
    assert (plain.tools, plain.thinking, plain.tool_tag) == (False, False, "{")
