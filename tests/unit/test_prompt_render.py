"""Ollama's rendering semantics on real Ollama templates (tests/fixtures/templates).

Expected strings are derived by hand from Go's text/template semantics and Ollama's
Execute/collate/chatPrompt; the ones marked "ollama testdata" are also byte-identical to
Ollama's own expected outputs (template/testdata, tools/testdata).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pollama.prompt.errors import TemplateError
from pollama.prompt.render import (
    collate,
    fit_chat,
    parse_template,
    render_chat,
    render_generate,
    think_values,
    validate_template,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "templates"


def tmpl(name: str) -> str:
    return (FIXTURES / f"{name}.gotmpl").read_text()


SYS = {"role": "system", "content": "You are a helpful assistant."}
U1 = {"role": "user", "content": "Hello, how are you?"}
A1 = {"role": "assistant", "content": "I'm doing great. How can I help you today?"}
U2 = {"role": "user", "content": "I'd like to show off how chat templating works!"}
SUA = [SYS, U1, A1, U2]


# -- real templates, messages mode ---------------------------------------------------------------
CURRENT = {
    # ollama testdata: template/testdata/<name>/system-user-assistant-user
    "llama3-instruct": (
        "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nI'm doing great. How can I help you today?<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nI'd like to show off how chat templating works!<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
    "mistral-instruct": (
        "[INST] You are a helpful assistant.\n\nHello, how are you?[/INST] I'm doing great. How can I help "
        "you today?</s>[INST] I'd like to show off how chat templating works![/INST]"
    ),
    "llama2-chat": (
        "[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nHello, how are you? [/INST] I'm doing "
        "great. How can I help you today?</s><s>[INST] <<SYS>><</SYS>>\n\nI'd like to show off how chat "
        "templating works! [/INST]"
    ),
    "alpaca": (
        "You are a helpful assistant.\n\n### Instruction:\nHello, how are you?\n\n### Response:\nI'm doing "
        "great. How can I help you today?\n\n### Instruction:\nI'd like to show off how chat templating "
        "works!\n\n### Response:\n"
    ),
    "vicuna": (
        "You are a helpful assistant.\n\nUSER: Hello, how are you?\nASSISTANT: I'm doing great. How can I "
        "help you today?</s>\nUSER: I'd like to show off how chat templating works!\nASSISTANT:"
    ),
    "phi-3": (
        "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nHello, how are you?<|end|>\n"
        "<|assistant|>\nI'm doing great. How can I help you today?<|end|>\n<|user|>\nI'd like to show off "
        "how chat templating works!<|end|>\n<|assistant|>\n"
    ),
    "granite-instruct": (
        "System:\nYou are a helpful assistant.\n\nQuestion:\nHello, how are you?\n\nAnswer:\nI'm doing great. "
        "How can I help you today?\n\nQuestion:\nI'd like to show off how chat templating works!\n\nAnswer:\n"
    ),
    # derived by hand
    "chatml": (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello, how are you?"
        "<|im_end|>\n<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n"
        "<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n<|im_start|>assistant\n"
    ),
    "zephyr": (
        "<|system|>\nYou are a helpful assistant.</s>\n<|user|>\nHello, how are you?</s>\n<|assistant|>\n"
        "I'm doing great. How can I help you today?</s>\n<|user|>\nI'd like to show off how chat templating "
        "works!</s>\n<|assistant|>\n"
    ),
    "gemma3-instruct": (
        "<start_of_turn>user\nYou are a helpful assistant.\nHello, how are you?<end_of_turn>\n"
        "<start_of_turn>model\nI'm doing great. How can I help you today?<end_of_turn>\n"
        "<start_of_turn>user\nI'd like to show off how chat templating works!<end_of_turn>\n"
        "<start_of_turn>model\n\n"
    ),
    "command-r": (
        "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are a helpful assistant.<|END_OF_TURN_TOKEN|>"
        "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hello, how are you?<|END_OF_TURN_TOKEN|>"
        "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>I'm doing great. How can I help you today?"
        "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>I'd like to show off how chat "
        "templating works!<|END_OF_TURN_TOKEN|><|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>\n"
    ),
    # the 2024 llama3 template prints .System and then the system message again
    "llama3-instruct.2024": (
        "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
        "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nI'm doing great. How can I help you today?<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nI'd like to show off how chat templating works!<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
    # system only on the last user turn, joined with a single newline
    "mistral-instruct.2024": (
        "[INST] Hello, how are you?[/INST] I'm doing great. How can I help you today?</s>"
        "[INST] You are a helpful assistant.\nI'd like to show off how chat templating works![/INST]"
    ),
    # the system message falls in the template's "else" branch
    "llama2-chat.2024": (
        " [/INST] You are a helpful assistant.</s><s>[INST] Hello, how are you? [/INST] I'm doing great. "
        "How can I help you today?</s><s>[INST] I'd like to show off how chat templating works! [/INST]"
    ),
    "qwen2.5": (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello, how are you?"
        "<|im_end|>\n<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n"
        "<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n<|im_start|>assistant\n"
    ),
}


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_system_user_assistant_user(name: str) -> None:
    assert render_chat(tmpl(name), SUA) == CURRENT[name]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "llama3-instruct",
            "<|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        ),
        (
            "gemma3-instruct",
            "<start_of_turn>user\nHello, how are you?<end_of_turn>\n<start_of_turn>model\n\n",
        ),
        ("mistral-instruct", "[INST] Hello, how are you?[/INST]"),
        ("llama2-chat", "[INST] <<SYS>><</SYS>>\n\nHello, how are you? [/INST]"),
        ("alpaca", "### Instruction:\nHello, how are you?\n\n### Response:\n"),
        ("vicuna", "USER: Hello, how are you?\nASSISTANT:"),
        (
            "command-r",
            "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hello, how are you?<|END_OF_TURN_TOKEN|><|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>\n",
        ),
    ],
)
def test_single_user_message(name: str, expected: str) -> None:
    assert render_chat(tmpl(name), [U1]) == expected


def test_gemma3_without_system() -> None:
    assert render_chat(tmpl("gemma3-instruct"), [U1, A1, U2]) == (
        "<start_of_turn>user\nHello, how are you?<end_of_turn>\n<start_of_turn>model\nI'm doing great. "
        "How can I help you today?<end_of_turn>\n<start_of_turn>user\nI'd like to show off how chat "
        "templating works!<end_of_turn>\n<start_of_turn>model\n\n"
    )


# -- legacy mode ---------------------------------------------------------------------------------------
LEGACY = {
    "phi-3.legacy": (
        "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nHello, how are you?<|end|>\n<|assistant|>\n"
        "I'm doing great. How can I help you today?<|end|><|user|>\nI'd like to show off how chat templating "
        "works!<|end|>\n<|assistant|>\n"
    ),
    "vicuna.legacy": (
        "You are a helpful assistant.\n\nUSER: Hello, how are you?\nASSISTANT: I'm doing great. How can I "
        "help you today?</s>\nUSER: I'd like to show off how chat templating works!\nASSISTANT: "
    ),
    "granite-instruct.legacy": (
        "\nSystem:\nYou are a helpful assistant.\n\nQuestion:\nHello, how are you?\n\nAnswer:\nI'm doing "
        "great. How can I help you today?Question:\nI'd like to show off how chat templating works!\n\nAnswer:\n"
    ),
}


@pytest.mark.parametrize("name", sorted(LEGACY))
def test_legacy_templates(name: str) -> None:
    assert not parse_template(tmpl(name)).uses_messages
    assert render_chat(tmpl(name), SUA) == LEGACY[name]


def test_legacy_system_in_the_middle_starts_a_new_turn() -> None:
    msgs = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "system", "content": "s"},
        {"role": "user", "content": "c"},
    ]
    assert render_chat(tmpl("vicuna.legacy"), msgs) == "USER: a\nASSISTANT: b</s>\ns\n\nUSER: c\nASSISTANT: "


def test_legacy_ends_with_assistant_prefill() -> None:
    msgs = [U1, {"role": "assistant", "content": "Partial ans"}]
    assert (
        render_chat(tmpl("phi-3.legacy"), msgs)
        == "<|user|>\nHello, how are you?<|end|>\n<|assistant|>\nPartial ans"
    )


def test_response_is_appended_when_missing() -> None:
    msgs = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    assert render_chat("{{ .Prompt }}", msgs) == "abc"
    assert render_chat("{{ .System }}|{{ .Prompt }}", [{"role": "system", "content": "s"}, msgs[0]]) == "s|a"
    # present already: not appended, and the final turn is cut after it
    assert render_chat("{{ .Prompt }}{{ .Response }}<end>", msgs) == "ab<end>c"


# Ollama's template_test.go TestExecuteWithMessages: legacy and messages forms agree.
MISTRAL_FORMS = {
    "no response": "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST] ",
    "response": "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST] {{ .Response }}",
    "messages": (
        '[INST] {{ if .System }}{{ .System }}\n\n{{ end }}\n{{- range .Messages }}\n{{- if eq .Role "user" }}'
        '{{ .Content }}[/INST] {{ else if eq .Role "assistant" }}{{ .Content }}[INST] {{ end }}\n{{- end }}'
    ),
}
FRIEND = [
    {"role": "user", "content": "Hello friend!"},
    {"role": "assistant", "content": "Hello human!"},
    {"role": "user", "content": "What is your name?"},
]


@pytest.mark.parametrize("form", sorted(MISTRAL_FORMS))
def test_ollama_execute_with_messages_mistral(form: str) -> None:
    assert render_chat(MISTRAL_FORMS[form], FRIEND) == (
        "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] "
    )
    with_system = [{"role": "system", "content": "You are a helpful assistant!"}, *FRIEND]
    assert render_chat(MISTRAL_FORMS[form], with_system) == (
        "[INST] You are a helpful assistant!\n\nHello friend![/INST] Hello human![INST] What is your name?[/INST] "
    )


@pytest.mark.parametrize(
    "template",
    [
        "[INST] {{ .Prompt }}[/INST] ",
        "[INST] {{ .Prompt }}[/INST] {{ .Response }}",
        '\n{{- range $i, $m := .Messages }}\n{{- if eq .Role "user" }}[INST] {{ .Content }}[/INST] '
        '{{ else if eq .Role "assistant" }}{{ .Content }}{{ end }}\n{{- end }}',
    ],
)
def test_ollama_execute_with_messages_assistant_prefill(template: str) -> None:
    msgs = [*FRIEND, {"role": "assistant", "content": "My name is Ollama and I"}]
    assert render_chat(template, msgs) == (
        "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] My name is Ollama and I"
    )


def test_ollama_execute_with_messages_chatml_legacy() -> None:
    legacy = (
        "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ if .Prompt }}<|im_start|>user\n"
        "{{ .Prompt }}<|im_end|>\n{{ end }}<|im_start|>assistant\n{{ .Response }}<|im_end|>\n"
    )
    msgs = [{"role": "system", "content": "You are a helpful assistant!"}, *FRIEND]
    expected = (
        "<|im_start|>system\nYou are a helpful assistant!<|im_end|>\n<|im_start|>user\nHello friend!<|im_end|>\n"
        "<|im_start|>assistant\nHello human!<|im_end|>\n<|im_start|>user\nWhat is your name?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert render_chat(legacy, msgs) == expected
    # the 2024 chatml template prints .System, then every message including the system one
    assert render_chat(tmpl("chatml.2024"), msgs) == (
        "<|im_start|>system\nYou are a helpful assistant!<|im_end|>\n" + expected
    )


# -- suffix (fill in the middle) and generate ------------------------------------------------------------
SUFFIX_TMPL = (
    "{{- if .Suffix }}<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>\n{{- else }}{{ .Prompt }}\n{{- end }}"
)


def test_ollama_execute_with_suffix() -> None:
    assert render_generate(SUFFIX_TMPL, prompt="hello") == "hello"
    assert (
        render_generate(SUFFIX_TMPL, prompt="def add(", suffix="return x")
        == "<PRE> def add( <SUF>return x <MID>"
    )


def test_qwen25_fim_and_chat() -> None:
    t = tmpl("qwen2.5")
    assert render_generate(t, prompt="def add(", suffix="return x") == (
        "<|fim_prefix|>def add(<|fim_suffix|>return x<|fim_middle|>"
    )
    assert render_generate(t, prompt="hi", system="sys") == (
        "<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_suffix_without_prompt_is_not_fim() -> None:
    # Ollama takes FIM mode only when both are set; otherwise the template runs with no messages.
    assert render_generate(SUFFIX_TMPL, prompt="", suffix="return x") == ""


def test_generate_with_system_history_images() -> None:
    t = tmpl("chatml")
    history = [{"role": "user", "content": "h1"}, {"role": "assistant", "content": "h2"}]
    assert render_generate(t, prompt="P", system="S", history=history, images=["aW1n"]) == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nh1<|im_end|>\n<|im_start|>assistant\nh2<|im_end|>\n"
        "<|im_start|>user\n[img-0]P<|im_end|>\n<|im_start|>assistant\n"
    )
    assert render_generate(tmpl("vicuna.legacy"), prompt="P", system="S") == "S\n\nUSER: P\nASSISTANT: "
    assert render_generate("{{ .Prompt }}", prompt="raw text", system="S") == "raw text"


# -- collate, images ------------------------------------------------------------------------------------
def test_collate() -> None:
    msgs = [
        {"role": "system", "content": "s1"},
        {"role": "system", "content": "s2"},
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "tool", "content": "r1"},
        {"role": "tool", "content": "r2"},
    ]
    system, out = collate(msgs)
    assert system == "s1\n\ns2"
    assert [(m["role"], m["content"]) for m in out] == [
        ("system", "s1\n\ns2"),
        ("user", "a\n\nb"),
        ("tool", "r1"),
        ("tool", "r2"),
    ]
    assert msgs[0]["content"] == "s1"  # inputs are not modified


def test_collate_in_templates() -> None:
    msgs = [{"role": "user", "content": "a"}, {"role": "USER", "content": "b"}]
    assert render_chat(tmpl("zephyr"), msgs) == "<|user|>\na\n\nb</s>\n<|assistant|>\n"
    tools = [
        {"role": "user", "content": "q"},
        {"role": "tool", "content": "r1"},
        {"role": "tool", "content": "r2"},
    ]
    assert render_chat(tmpl("chatml"), tools) == (
        "<|im_start|>user\nq<|im_end|>\n<|im_start|>tool\nr1<|im_end|>\n<|im_start|>tool\nr2<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    two_systems = [{"role": "system", "content": "s1"}, U1, {"role": "system", "content": "s2"}]
    out = render_chat("{{ .System }}|{{ range .Messages }}{{ .Role }};{{ end }}", two_systems)
    assert out == "s1\n\ns2|system;user;system;"


def test_image_markers() -> None:
    t = "{{ range .Messages }}{{ .Content }}|{{ len .Images }};{{ end }}"
    msgs = [
        {"role": "user", "content": "what is this?", "images": ["aW1n"]},
        {"role": "assistant", "content": "a cat"},
        {"role": "user", "content": "compare [img] and [img]", "images": ["a", "b"]},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "[img] x", "images": ["c", "d"]},
    ]
    assert render_chat(t, msgs) == (
        "[img-0]what is this?|1;a cat|0;compare [img-1] and [img-2]|2;ok|0;[img-4][img-3] x|2;"
    )


# -- tools and tool calls ------------------------------------------------------------------------------
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather",
        "parameters": {
            "type": "object",
            "required": ["location", "format"],
            "properties": {
                "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                "format": {
                    "type": "string",
                    "description": "The temperature unit to use. Infer this from the user's location.",
                    "enum": ["celsius", "fahrenheit"],
                },
            },
        },
    },
}

TOOL_CONVERSATION = [
    {
        "role": "system",
        "content": "You are a knowledgeable assistant. You can answer questions and perform tasks.",
    },
    {"role": "user", "content": "What's the weather like today in Paris?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "function": {
                    "name": "get_current_weather",
                    "arguments": {"location": "Paris, France", "format": "celsius"},
                }
            }
        ],
    },
    {"role": "tool", "content": "22"},
    {"role": "assistant", "content": "The current temperature in Paris, France is 22 degrees Celsius."},
    {"role": "user", "content": "What's the weather like today in San Francisco and Toronto?"},
]

# ollama testdata: tools/testdata/qwen3.out (same template text as qwen2.5 for chat)
QWEN_TOOLS_OUT = (
    "<|im_start|>system\nYou are a knowledgeable assistant. You can answer questions and perform tasks.\n\n"
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with "
    "function signatures within <tools></tools> XML tags:\n<tools>\n"
    '{"type": "function", "function": {"name":"get_current_weather","description":"Get the current weather",'
    '"parameters":{"type":"object","required":["location","format"],"properties":{"format":{"type":"string",'
    '"description":"The temperature unit to use. Infer this from the user\'s location.","enum":["celsius",'
    '"fahrenheit"]},"location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"}}}}}\n'
    "</tools>\n\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n'
    "</tool_call><|im_end|>\n<|im_start|>user\nWhat's the weather like today in Paris?<|im_end|>\n"
    '<|im_start|>assistant\n<tool_call>\n{"name": "get_current_weather", "arguments": {"format":"celsius",'
    '"location":"Paris, France"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n22\n'
    "</tool_response><|im_end|>\n<|im_start|>assistant\nThe current temperature in Paris, France is 22 degrees "
    "Celsius.<|im_end|>\n<|im_start|>user\nWhat's the weather like today in San Francisco and Toronto?<|im_end|>\n"
    "<|im_start|>assistant\n"
)


def test_qwen_tools_and_tool_calls() -> None:
    assert render_chat(tmpl("qwen2.5"), TOOL_CONVERSATION, tools=[WEATHER_TOOL]) == QWEN_TOOLS_OUT


def test_tool_call_arguments_as_json_string() -> None:
    conv = [dict(m) for m in TOOL_CONVERSATION]
    conv[2] = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "function": {
                    "name": "get_current_weather",
                    "arguments": '{"location": "Paris, France", "format": "celsius"}',
                }
            }
        ],
    }
    assert render_chat(tmpl("qwen2.5"), conv, tools=[WEATHER_TOOL]) == QWEN_TOOLS_OUT


def test_command_r_tool_call() -> None:
    # ollama testdata: template/testdata/command-r.gotmpl/tools-single-call
    msgs = [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"location": "San Francisco, CA"}}}
            ],
        }
    ]
    assert render_chat(tmpl("command-r"), msgs) == (
        '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>\nAction: ```json\n[\n    {\n        "tool_name": "get_weather",'
        '\n        "parameters": {"location":"San Francisco, CA"}\n    }\n]```<|END_OF_TURN_TOKEN|>'
        "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>\n"
    )


def test_command_r_tool_definitions() -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string", "description": "The city and state"}},
            },
        },
    }
    out = render_chat(tmpl("command-r"), [{"role": "user", "content": "Weather?"}], tools=[tool])
    assert out.startswith("<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|># Safety Preamble\n")
    assert (
        "\n\n```python\ndef get_weather(location: string, ) -> List[Dict]:\n    '''Get the weather\n\n    Args:\n"
        "        location (string): The city and state\n    '''\n    pass\n```<|END_OF_TURN_TOKEN|>"
    ) in out
    assert (
        "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>Weather?<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>Write 'Action:'"
        in out
    )


def test_tools_print_as_json() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "f",
                "description": "d <&>",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "b": {"type": ["string", "null"], "default": "dropped"},
                        "a": {"type": "integer", "description": "n"},
                    },
                },
            },
        }
    ]
    fn = (
        '{"name":"f","description":"d \\u003c\\u0026\\u003e","parameters":{"type":"object",'
        '"properties":{"a":{"type":"integer","description":"n"},"b":{"type":["string","null"]}}}}'
    )
    tool = '{"type":"function","function":' + fn + "}"
    t = "{{ .Tools }}|{{ json .Tools }}|{{ range .Tools }}{{ . }}|{{ .Function }}|{{ .Function.Parameters.Properties }}{{ end }}{{ range .Messages }}{{ end }}"
    props = '{"a":{"type":"integer","description":"n"},"b":{"type":["string","null"]}}'
    assert render_chat(t, [U1], tools=tools) == f"[{tool}]|[{tool}]|{tool}|{fn}|{props}"
    assert render_chat("{{ .Tools }}{{ if .Tools }}x{{ end }}{{ .Messages }}", [], tools=None) == "null[]"


def test_tool_property_types() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "f",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "a": {"type": "string"},
                        "b": {"type": "integer"},
                        "c": {"type": ["array", "null"]},
                        "d": {"anyOf": [{"type": "boolean"}, {"type": "object"}]},
                        "e": {},
                    },
                },
            },
        }
    ]
    t = (
        "{{ range .Tools }}{{ range $k, $v := .Function.Parameters.Properties }}{{ $k }}={{ toTypeScriptType $v }}"
        "/{{ $v.ToTypeScriptType }}/{{ $v.Type }};{{ end }}{{ end }}{{ toTypeScriptType 1 }}{{ range .Messages }}{{ end }}"
    )
    assert render_chat(t, [U1], tools=tools) == (
        "a=string/string/string;b=number/number/integer;c=any[] | null/any[] | null/[array null];"
        "d=boolean | Record<string, any>/boolean | Record<string, any>/;e=any/any/;any"
    )


def test_message_view_fields_and_json() -> None:
    msgs = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": "",
            "thinking": "hmm",
            "tool_calls": [
                {"id": "call_1", "function": {"index": 3, "name": "f", "arguments": {"b": 1, "a": [2]}}}
            ],
        },
        {"role": "tool", "content": "42", "tool_name": "f", "tool_call_id": "call_1"},
    ]
    t = (
        "{{ range .Messages }}{{ .Role }}:{{ .Thinking }}:{{ range .ToolCalls }}{{ .ID }}/{{ .Function.Index }}/"
        "{{ .Function.Name }}/{{ .Function.Arguments }}/{{ .Function.Arguments.b }}{{ end }}:{{ .ToolName }}:"
        "{{ .ToolCallID }};{{ end }}"
    )
    assert render_chat(t, msgs) == 'user::::;assistant:hmm:call_1/3/f/{"a":[2],"b":1}/1::;tool:::f:call_1;'
    assert render_chat("{{ json (index .Messages 0) }}", msgs) == (
        '{"Role":"user","Content":"hi","Thinking":"","Images":null,"ToolCalls":null,"ToolName":"","ToolCallID":""}'
    )
    with pytest.raises(TemplateError, match=r"can't evaluate field role in type \*template.templateMessage"):
        render_chat("{{ range .Messages }}{{ .role }}{{ end }}", msgs)


# -- think values -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("think", "out"),
    [
        (None, "false||false"),
        (True, "true|medium|true"),
        (False, "false||true"),
        ("high", "true|high|true"),
        ("max", "true|max|true"),
    ],
)
def test_think_values(think: object, out: str) -> None:
    messages_mode = "{{ .Think }}|{{ .ThinkLevel }}|{{ .IsThinkSet }}{{ range .Messages }}{{ end }}"
    legacy_mode = "{{ .Think }}|{{ .ThinkLevel }}|{{ .IsThinkSet }}{{ .Prompt }}"
    assert render_chat(messages_mode, [U1], think=think) == out  # type: ignore[arg-type]
    assert render_chat(legacy_mode, [{"role": "user", "content": ""}], think=think) == out  # type: ignore[arg-type]
    assert (
        render_generate(
            "{{ .Think }}|{{ .ThinkLevel }}|{{ .IsThinkSet }}{{ .Suffix }}",
            prompt="p",
            suffix="s",
            think=think,
        )
        == out + "s"
    )  # type: ignore[arg-type]
    assert think_values(think).think == out.startswith("true")  # type: ignore[arg-type]


def test_gemma3_thinking_template() -> None:
    t = tmpl("gemma3-thinking")
    user = [{"role": "user", "content": "hi"}]
    assert (
        render_chat(t, user, think=True)
        == "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model<unused94>\n"
    )
    assert render_chat(t, user, think=False) == "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"
    prefill = [*user, {"role": "assistant", "content": "ok", "thinking": "hmm"}]
    assert render_chat(t, prefill) == (
        "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model<unused94>hmm<unused95>\n\nok<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


# -- truncation -------------------------------------------------------------------------------------
def chatml(*turns: tuple[str, str]) -> str:
    return "".join(f"<|im_start|>{r}\n{c}<|im_end|>\n" for r, c in turns) + "<|im_start|>assistant\n"


HISTORY = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "u1"},
    {"role": "assistant", "content": "a1"},
    {"role": "user", "content": "u2"},
    {"role": "assistant", "content": "a2"},
    {"role": "user", "content": "u3"},
]


def test_fit_chat_keeps_everything_when_it_fits() -> None:
    full = chatml(
        ("system", "S"),
        ("user", "u1"),
        ("assistant", "a1"),
        ("user", "u2"),
        ("assistant", "a2"),
        ("user", "u3"),
    )
    assert fit_chat(tmpl("chatml"), HISTORY, len, len(full))[:2] == (full, 0)


def test_fit_chat_drops_oldest_but_keeps_system() -> None:
    expected = chatml(("system", "S"), ("user", "u2"), ("assistant", "a2"), ("user", "u3"))
    assert fit_chat(tmpl("chatml"), HISTORY, len, len(expected))[:2] == (expected, 2)
    # one character less and the next oldest goes too
    expected2 = chatml(("system", "S"), ("assistant", "a2"), ("user", "u3"))
    assert fit_chat(tmpl("chatml"), HISTORY, len, len(expected) - 1)[:2] == (expected2, 3)


def test_fit_chat_always_keeps_the_last_message() -> None:
    assert fit_chat(tmpl("chatml"), HISTORY, len, 1)[:2] == (chatml(("system", "S"), ("user", "u3")), 4)
    assert fit_chat(tmpl("chatml"), [HISTORY[1]], len, 1)[:2] == (chatml(("user", "u1")), 0)
    assert fit_chat(tmpl("chatml"), [], len, 1)[:2] == (chatml(), 0)


def test_fit_chat_never_orphans_tool_results() -> None:
    msgs = [
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]},
        {"role": "tool", "content": "r1"},
        {"role": "tool", "content": "r2"},
        {"role": "user", "content": "u2"},
    ]
    # Room for "r2 + u2" but not for the assistant call before it: the tool block goes as a whole.
    budget = len(chatml(("tool", "r2"), ("user", "u2")))
    assert fit_chat(tmpl("chatml"), msgs, len, budget)[:2] == (chatml(("user", "u2")), 4)
    whole_block = chatml(("assistant", ""), ("tool", "r1"), ("tool", "r2"), ("user", "u2"))
    assert fit_chat(tmpl("chatml"), msgs, len, len(whole_block))[:2] == (whole_block, 1)


def test_fit_chat_counts_images() -> None:
    msgs = [
        {"role": "user", "content": "a", "images": ["aW1n"]},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    assert fit_chat(tmpl("chatml"), msgs, len, 500)[:2] == (
        chatml(("user", "[img-0]a"), ("assistant", "b"), ("user", "c")),
        0,
    )
    assert fit_chat(tmpl("chatml"), msgs, len, 500, image_tokens=768)[:2] == (
        chatml(("assistant", "b"), ("user", "c")),
        1,
    )


def test_fit_chat_images_are_those_of_the_messages_sent() -> None:
    msgs = [
        {"role": "user", "content": "a", "images": ["b2xk"]},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "[img] vs [img]", "images": ["bmV3MQ==", "bmV3Mg=="]},
    ]
    sent = chatml(("user", "[img-0]a"), ("assistant", "b"), ("user", "[img-1] vs [img-2]"))
    assert fit_chat(tmpl("chatml"), msgs, len, 5000) == (sent, 0, ["b2xk", "bmV3MQ==", "bmV3Mg=="])
    # the oldest message goes with its image, and the markers are numbered over what is sent
    kept = chatml(("assistant", "b"), ("user", "[img-0] vs [img-1]"))
    assert fit_chat(tmpl("chatml"), msgs, len, len(kept) + 2 * 768, image_tokens=768) == (
        kept,
        1,
        ["bmV3MQ==", "bmV3Mg=="],
    )


def test_fit_chat_uses_few_renders() -> None:
    calls = []

    def count(s: str) -> int:
        calls.append(s)
        return len(s)

    msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"} for i in range(201)]
    prompt, dropped, _ = fit_chat(tmpl("chatml"), msgs, count, 200)
    assert prompt.endswith("<|im_start|>user\nm200<|im_end|>\n<|im_start|>assistant\n")
    assert count(prompt) <= 200 and dropped > 150
    assert len(calls) < 20  # binary search, not one render per message


# -- errors ---------------------------------------------------------------------------------------------
def test_template_errors_surface() -> None:
    with pytest.raises(TemplateError, match=r"^template: :1: function \"nope\" not defined$"):
        validate_template("{{ nope }}")
    with pytest.raises(TemplateError, match="unexpected EOF"):
        render_chat("{{ range .Messages }}", [U1])
    with pytest.raises(TemplateError, match="error calling index"):
        render_chat("{{ index .Messages 5 }}", [U1])


def test_fit_messages_with_any_renderer() -> None:
    from pollama.prompt.render import fit_messages

    def render(msgs: list[dict]) -> str:
        return "".join(f"{m['role']}:{m['content']};" for m in msgs)

    system, tail, dropped = fit_messages(HISTORY, render, len, len("system:S;user:u3;"))
    assert (render(system + tail), dropped) == ("system:S;user:u3;", 4)
    system, tail, dropped = fit_messages(HISTORY, render, len, 10_000)
    assert (system, dropped) == ([], 0) and [m["content"] for m in tail] == [
        "S",
        "u1",
        "a1",
        "u2",
        "a2",
        "u3",
    ]
