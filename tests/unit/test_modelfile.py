"""The Modelfile parser, renderer and request builder, and the Go formatting they rely on.

Parse cases follow Ollama's parser/parser_test.go; every malformed input must raise a
ModelfileError that names its line; what the renderer writes must parse back to the
same commands.
"""

from __future__ import annotations

import codecs

import pytest

from pollama.modelfile import Command, ModelfileError, parse, quote, to_request
from pollama.modelfile import params as P
from pollama.modelfile.gofmt import go_g, go_json_float, go_quote, go_value


def cmds(text: str | bytes) -> list[tuple[str, str, str]]:
    return [(c.instruction, c.key, c.value) for c in parse(text).commands]


LLAMA3 = (
    "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
    "{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>"
)


def test_every_instruction_and_triple_quoted_template() -> None:
    text = f'''
FROM model1
ADAPTER adapter1
LICENSE MIT
PARAMETER param1 value1
PARAMETER param2 value2
TEMPLATE """{LLAMA3}"""    
SYSTEM You are a bot.
MESSAGE user Hey there!
REQUIRES 0.14.0
RENDERER r1
PARSER p1
DRAFT ./assistant
'''  # noqa: W291 - trailing spaces after the closing quotes are part of the case
    assert cmds(text) == [
        ("from", "", "model1"),
        ("adapter", "", "adapter1"),
        ("license", "", "MIT"),
        ("parameter", "param1", "value1"),
        ("parameter", "param2", "value2"),
        ("template", "", LLAMA3),
        ("system", "", "You are a bot."),
        ("message", "user", "Hey there!"),
        ("requires", "", "0.14.0"),
        ("renderer", "", "r1"),
        ("parser", "", "p1"),
        ("draft", "", "./assistant"),
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('FROM "FOO  BAR  "', "FOO  BAR  "),
        ("FROM     FOOO BAR    ", "FOOO BAR"),
        ("FROM /what/is/the path ", "/what/is/the path"),
        ("from llama3:7b-instruct-q4_K_M", "llama3:7b-instruct-q4_K_M"),
        ('FROM "     model 1"', "     model 1"),
        ("FROM\tx", "x"),
    ],
)
def test_bare_and_quoted_arguments(text: str, value: str) -> None:
    assert cmds(text) == [("from", "", value)]


@pytest.mark.parametrize(
    ("arg", "value"),
    [
        ('"""\nThis is a\nmultiline system.\n"""', "\nThis is a\nmultiline system.\n"),
        ('"""\nThis is a\nmultiline system."""', "\nThis is a\nmultiline system."),
        ('"""This is a multiline system."""', "This is a multiline system."),
        ('"""\nwith "quotes".\n"""', '\nwith "quotes".\n'),
        ('""""""', ""),
        ('""', ""),
        ('"\'"', "'"),
        ('"""\'\'"\'""\'""\'"\'\'\'\'\'""\'""\'"""', "''\"'\"\"'\"\"'\"'''''\"\"'\"\"'"),
        ('"a"b"', 'a"b'),  # a value ends at a line end where its quotes are complete
        ('"one\ntwo"', "one\ntwo"),
        ("你好👋", "你好👋"),
    ],
)
def test_quoting(arg: str, value: str) -> None:
    assert cmds(f"FROM foo\nSYSTEM {arg}\n") == [("from", "", "foo"), ("system", "", value)]


@pytest.mark.parametrize(
    ("line", "name", "value"),
    [
        ("stop ### User:", "stop", "### User:"),
        ("stop ### User: ", "stop", "### User:"),
        ('stop "### User: "', "stop", "### User: "),
        ('stop """### User:\n"""', "stop", "### User:\n"),
        ("stop <|eot_id|>", "stop", "<|eot_id|>"),
        ("num_ctx 1", "num_ctx", "1"),
        ("top_p 1.0", "top_p", "1.0"),
        ("use_mmap true", "use_mmap", "true"),
        ("  seed   42  ", "seed", "42"),
    ],
)
def test_parameters(line: str, name: str, value: str) -> None:
    assert cmds(f"FROM foo\nPARAMETER {line}\n")[1] == ("parameter", name, value)


def test_comments_blank_lines_case_and_crlf() -> None:
    text = (
        '# a comment\r\n\r\nfrom foo\r\n  # indented comment\r\nsystem """a\r\nb"""\r\nParameter top_k 1\r\n'
    )
    assert cmds(text) == [("from", "", "foo"), ("system", "", "a\r\nb"), ("parameter", "top_k", "1")]
    assert parse(text).commands[2].line == 7


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16-le", "utf-16-be"])
def test_byte_order_marks(codec: str) -> None:
    text = "FROM bob\nPARAMETER param1 1\nSYSTEM You are a utf16 file 你好👋.\n"
    bom = {"utf-8-sig": b"", "utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}[codec]
    assert cmds(bom + text.encode(codec)) == [
        ("from", "", "bob"),
        ("parameter", "param1", "1"),
        ("system", "", "You are a utf16 file 你好👋."),
    ]


def test_unprintable_characters_are_dropped_as_in_go() -> None:
    assert cmds("FROM foo\nSYSTEM a\x00b\u200bc\td\n")[1] == ("system", "", "abc\td")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 0, "no FROM line"),
        ("PARAMETER param1 value1", 0, "no FROM line"),
        ("# only a comment\n", 0, "no FROM line"),
        ("FROM foo\nBADCOMMAND param1 value1\n", 2, 'command must be one of "from", "license"'),
        ("FROM foo\n\n  FROM: bar\n", 3, '(got "FROM:")'),
        ("FROM foo\n1FROM bar\n", 2, "command must be one of"),
        ("FROM\n", 1, "FROM needs an argument"),
        ("FROM foo\nSYSTEM", 2, "SYSTEM needs an argument"),
        ("FROM foo\nPARAMETER param1\n", 2, "PARAMETER param1 needs a value"),
        ("FROM foo\nPARAMETER\n", 2, "PARAMETER needs a name and a value"),
        ("FROM foo\nPARAMETER top-k 40\n", 2, 'invalid parameter name "top-k"'),
        (
            "FROM foo\nMESSAGE badguy I'm a bad guy!\n",
            2,
            'message role must be one of "system", "user", or "assistant"',
        ),
        ("FROM foo\nMESSAGE System hi\n", 2, "message role must be one of"),
        ("FROM foo\nMESSAGE system\n", 2, "MESSAGE system needs a message"),
        ("FROM foo\nMESSAGE system", 2, "MESSAGE system needs a message"),
        (
            'FROM foo\nSYSTEM """This is a multiline system.""\n',
            2,
            'the """ opened on line 2 is never closed',
        ),
        ('FROM foo\nSYSTEM "\n\n', 2, 'the " opened on line 2 is never closed'),
        ('FROM foo\n\nTEMPLATE """{{ .Prompt }}\nmore\n', 3, 'TEMPLATE: the """ opened on line 3'),
    ],
)
def test_malformed_modelfiles_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ModelfileError) as e:
        parse(text)
    assert e.value.line == line
    assert message in str(e.value)
    if line:
        assert str(e.value).startswith(f"(line {line}): ")


# -- rendering ---------------------------------------------------------------------------------

TRICKY = [
    "plain",
    "",
    " leading space",
    "trailing space ",
    "\tleading tab",
    "two\nlines",
    'has "quotes" inside',
    'multi\nline with "quotes"',
    '"starts with a quote',
    'ends with a quote"',
    '"both"',
    "crlf\r\nline",
    "unicode 你好👋 and <|eot_id|>",
    "# not a comment",
]


@pytest.mark.parametrize("value", TRICKY)
def test_rendered_values_parse_back_the_same(value: str) -> None:
    commands = [
        Command("from", "/models/blobs/sha256-" + "a" * 64),
        Command("template", value),
        Command("system", value),
        Command("parameter", value or "x", key="stop"),
        Command("license", value),
        Command("message", value, key="user"),
    ]
    from pollama.modelfile import Modelfile

    text = Modelfile(commands).render()
    again = parse(text).commands
    assert [(c.instruction, c.key, c.value) for c in again] == [
        (c.instruction, c.key, c.value) for c in commands
    ]


def test_quote_matches_ollama_where_ollama_is_unambiguous() -> None:
    assert quote("<|eot_id|>") == "<|eot_id|>"  # no quotes, despite the docs' example
    assert quote("a\nb") == '"a\nb"'
    assert quote(' a"b') == '""" a"b"""'
    assert Command("message", "hi there", key="assistant").render() == "MESSAGE assistant hi there"
    assert Command("parameter", "0.7", key="temperature").render() == "PARAMETER temperature 0.7"


# -- to_request ----------------------------------------------------------------------------------


def no_files(cmd: Command) -> dict[str, str] | None:
    return None


def test_request_fields_and_typed_parameters() -> None:
    mf = parse(
        "FROM test\nPARAMETER temperature 0.1\nPARAMETER top_k 1\nPARAMETER stop <|a|>\n"
        "PARAMETER stop <|b|>\nPARAMETER use_mmap false\nSYSTEM You are a bot.\nLICENSE l1\nLICENSE l2\n"
        "MESSAGE user Hello there!\nMESSAGE assistant Hi!\nREQUIRES v0.14.1\nPARAMETER mirostat 1\n"
    )
    req, warnings = to_request(mf, no_files)
    assert req == {
        "from": "test",
        "system": "You are a bot.",
        "requires": "0.14.1",
        "parameters": {"temperature": 0.1, "top_k": 1, "stop": ["<|a|>", "<|b|>"], "use_mmap": False},
        "license": ["l1", "l2"],
        "messages": [{"role": "user", "content": "Hello there!"}, {"role": "assistant", "content": "Hi!"}],
    }
    assert warnings == ["warning: parameter mirostat is deprecated"]


def test_file_references_become_files_and_adapters() -> None:
    def resolve(cmd: Command) -> dict[str, str] | None:
        return {cmd.value: "sha256:" + cmd.value[0] * 64} if cmd.value.endswith(".gguf") else None

    req, _ = to_request(parse("FROM a.gguf\nFROM b.gguf\nADAPTER c.gguf\n"), resolve)
    assert req == {
        "files": {"a.gguf": "sha256:" + "a" * 64, "b.gguf": "sha256:" + "b" * 64},
        "adapters": {"c.gguf": "sha256:" + "c" * 64},
    }


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("FROM x\nPARAMETER temperature hot\n", 2, "invalid float value [hot]"),
        ("FROM x\n\nPARAMETER num_ctx 2.5\n", 3, "invalid int value [2.5]"),
        ("FROM x\nPARAMETER use_mmap maybe\n", 2, "invalid bool value [maybe]"),
        ("FROM x\nPARAMETER num_gqa 8\n", 2, "unknown parameter 'num_gqa'"),
        ("FROM x\nPARAMETER TOP_K 8\n", 2, "unknown parameter 'TOP_K'"),
        ("FROM x\nPARAMETER temperature 1e40\n", 2, "invalid float value"),
        ("FROM x\nREQUIRES 0.14\n", 0, ""),  # valid: Go's semver accepts v0.14
        ("FROM x\nREQUIRES latest\n", 2, "requires must be a valid semver (e.g. 0.14.0)"),
        ("FROM x\nFROM y\n", 2, 'only one FROM may name a model ("x" and "y")'),
        ("FROM x\nADAPTER ./lora.gguf\n", 2, "ADAPTER ./lora.gguf: no such file"),
        ("FROM x\nDRAFT ./d.gguf\n", 2, "DRAFT (speculative decoding) is not supported"),
    ],
)
def test_bad_values_name_the_line(text: str, line: int, message: str) -> None:
    mf = parse(text)
    if not message:
        to_request(mf, no_files)
        return
    with pytest.raises(ModelfileError) as e:
        to_request(mf, no_files)
    assert e.value.line == line and message in str(e.value)


# -- parameter values and the params layer ------------------------------------------------------


def test_parameter_text_types() -> None:
    assert P.parse_text("temperature", "0.1") == 0.1  # float32 0.1, written as Go writes it
    assert P.parse_text("temperature", "0.123456789") == 0.12345679
    assert P.parse_text("temperature", "1") == 1
    assert P.parse_text("num_ctx", "+4096") == 4096
    assert P.parse_text("seed", "-1") == -1
    assert P.parse_text("use_mmap", "T") is True
    assert P.parse_text("stop", " x ") == [" x "]
    for name, text in [("num_ctx", "1_000"), ("num_ctx", "0x10"), ("temperature", "nan"), ("seed", "")]:
        with pytest.raises(P.ParameterError):
            P.parse_text(name, text)


def test_api_parameters_are_checked() -> None:
    assert P.check({"temperature": 1, "top_k": 40.0, "stop": ["a"], "penalize_newline": True}) == {
        "temperature": 1,
        "top_k": 40,
        "stop": ["a"],
    }
    for bad in [{"temperature": "hot"}, {"top_k": 1.5}, {"stop": "a"}, {"use_mmap": 1}, {"nope": 1}]:
        with pytest.raises(P.ParameterError):
            P.check(bad)


def test_params_layer_is_byte_identical_to_go() -> None:
    params = {"temperature": 0.6, "stop": ["<|eot_id|>", "<|end|>"], "top_k": 40, "min_p": 1e-7, "top_p": 1}
    assert P.layer_bytes(params) == (
        b'{"min_p":1e-7,"stop":["\\u003c|eot_id|\\u003e","\\u003c|end|\\u003e"],'
        b'"temperature":0.6,"top_k":40,"top_p":1}\n'
    )


def test_go_formatting() -> None:
    assert [go_g(v) for v in (1.0, 0.7, 262144.0, 1e6, 1.5e-5, 0.0001, 2.68098176e8)] == [
        "1", "0.7", "262144", "1e+06", "1.5e-05", "0.0001", "2.68098176e+08",
    ]  # fmt: skip
    assert [go_json_float(v) for v in (1.0, 0.7, 1e-7, 1e-5, 1e21)] == [
        "1",
        "0.7",
        "1e-7",
        "0.00001",
        "1e+21",
    ]
    assert go_quote('a"b\n\x00\u00a0é') == '"a\\"b\\n\\x00\\u00a0é"'
    assert go_value("<|eot_id|>", sharp=True) == '"<|eot_id|>"'
    assert go_value(True) == "true" and go_value(4096) == "4096" and go_value(0.5) == "0.5"
