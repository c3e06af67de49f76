"""GGUF chat templates (jinja) rendered the way transformers does, inside a sandbox."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from pollama.prompt.errors import TemplateError
from pollama.prompt.jinja import JinjaTemplateError, render_jinja_chat

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "templates"
AYA = (FIXTURES / "aya-expanse.jinja").read_text()


def test_real_template_with_bos_and_system() -> None:
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "  hi  "}]
    assert render_jinja_chat(AYA, msgs, bos_token="<BOS>") == (
        "<BOS><|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>S<|END_OF_TURN_TOKEN|>"
        "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>hi<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>"
    )
    msgs = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    assert render_jinja_chat(AYA, msgs, add_generation_prompt=False) == (
        "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>a<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>b"
        "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>c<|END_OF_TURN_TOKEN|>"
    )


def test_raise_exception_becomes_a_template_error() -> None:
    msgs = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    with pytest.raises(JinjaTemplateError, match="Conversation roles must alternate") as e:
        render_jinja_chat(AYA, msgs)
    assert isinstance(e.value, TemplateError)


def test_trim_and_lstrip_blocks() -> None:
    src = "{% for m in messages %}\n  {% if m.role == 'user' %}\n  {{ m.role }}: {{ m.content }}\n  {% endif %}\n{% endfor %}"
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    assert render_jinja_chat(src, msgs) == "  user: hi\n"


def test_tojson_like_transformers() -> None:
    tools = [{"type": "function", "function": {"name": "f", "description": "<x> & é"}}]
    src = "{% for t in tools %}{{ t | tojson }}\n{{ t.function | tojson(indent=2) }}{% endfor %}"
    assert render_jinja_chat(src, [], tools=tools) == (
        '{"type": "function", "function": {"name": "f", "description": "<x> & é"}}\n'
        '{\n  "name": "f",\n  "description": "<x> & é"\n}'
    )
    assert render_jinja_chat("{{ tools is none }}", [], tools=None) == "True"


def test_tool_calls_and_thinking_fields() -> None:
    msgs = [
        {
            "role": "assistant",
            "content": "",
            "thinking": "hmm",
            "tool_calls": [{"function": {"name": "get", "arguments": {"city": "Paris"}}}],
        }
    ]
    src = (
        "{% for m in messages %}[{{ m.reasoning_content }}]{% for tc in m.tool_calls %}"
        "{{ tc.function.name }}{{ tc.function.arguments | tojson }}{% endfor %}{% endfor %}"
    )
    assert render_jinja_chat(src, msgs) == '[hmm]get{"city": "Paris"}'


@pytest.mark.parametrize(
    ("think", "out"),
    [
        (None, "undefined|undefined"),
        (True, "True|undefined"),
        (False, "False|undefined"),
        ("high", "True|high"),
    ],
)
def test_think_variables(think: object, out: str) -> None:
    src = (
        "{% if enable_thinking is defined %}{{ enable_thinking }}{% else %}undefined{% endif %}|"
        "{% if reasoning_effort is defined %}{{ reasoning_effort }}{% else %}undefined{% endif %}"
    )
    assert render_jinja_chat(src, [], think=think) == out  # type: ignore[arg-type]


def test_helpers() -> None:
    assert (
        render_jinja_chat("{% generation %}X{{ eos_token }}{% endgeneration %}", [], eos_token="</s>")
        == "X</s>"
    )
    assert render_jinja_chat("{{ strftime_now('%Y-%m-%d') }}", []) == datetime.date.today().isoformat()
    loops = "{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}"
    assert render_jinja_chat(loops, []) == "02"
    assert render_jinja_chat("{{ extra_var }}", [], extra={"extra_var": "x"}) == "x"


def test_syntax_errors() -> None:
    with pytest.raises(JinjaTemplateError, match="syntax error"):
        render_jinja_chat("{% for %}", [])
    with pytest.raises(JinjaTemplateError, match="TypeError"):
        render_jinja_chat("{{ 'a' + 1 }}", [])


@pytest.mark.parametrize(
    "src",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ messages.__class__.__name__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{% set x = [] %}{{ x.append(1) }}",
        "{{ 'a' * 100000000 }}",
        "{{ [1] * 100000000 }}",
        "{{ 2 ** 100000 }}",
        "{{ 'a' | center(1000000000) }}",
        "{{ 'a'.ljust(1000000000) }}",
        "{{ '{:>999999999}'.format('a') }}",
        "{{ '%999999999s' % 'a' }}",
        "{{ '%999999999s' | format('a') }}",
        "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    ],
)
def test_sandbox_rejects_escapes_and_bombs(src: str) -> None:
    with pytest.raises(JinjaTemplateError):
        render_jinja_chat(src, [{"role": "user", "content": "x"}])


def test_unsafe_attributes_are_undefined() -> None:
    assert (
        render_jinja_chat("[{{ messages.__class__ }}][{{ messages[0].__dict__ }}]", [{"role": "user"}])
        == "[][]"
    )


def test_output_is_bounded() -> None:
    src = "{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}"
    with pytest.raises(JinjaTemplateError, match="output exceeds 100000"):
        render_jinja_chat(src, [], max_output=100_000)
