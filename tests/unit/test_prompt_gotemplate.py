"""The Go text/template interpreter: syntax, semantics, functions, errors and limits.

Expected outputs are what Go's text/template (with missingkey=zero) produces.
"""

from __future__ import annotations

import datetime

import pytest

from pollama.prompt.errors import TemplateError
from pollama.prompt.gotemplate import Template


def run(src: str, data: object = None, **kw: object) -> str:
    return Template.parse(src).execute({} if data is None else data, **kw)  # type: ignore[arg-type]


def err(src: str, data: object = None, **kw: object) -> str:
    with pytest.raises(TemplateError) as e:
        run(src, data, **kw)
    return str(e.value)


# -- text, actions, trim markers, comments ------------------------------------------------------
def test_text_and_fields() -> None:
    assert run("hello {{ .Name }}!", {"Name": "world"}) == "hello world!"
    assert run("{{.A.B.C}}", {"A": {"B": {"C": "deep"}}}) == "deep"
    assert run("no actions at all\n") == "no actions at all\n"
    assert run("") == ""


def test_trim_markers() -> None:
    assert run("a  {{- .X -}}  b", {"X": "x"}) == "axb"
    assert run("line1\n{{- .X }}\nline2", {"X": "x"}) == "line1x\nline2"
    assert run("a {{ .X -}}\n\n\t b", {"X": "x"}) == "a xb"
    # "{{-3}}" is the number -3, not a trim marker (the dash must be followed by a space)
    assert run("a {{-3}} b") == "a -3 b"
    assert run("a {{3 -}} b") == "a 3b"


def test_comments() -> None:
    assert run("a{{/* a comment */}}b") == "ab"
    assert run("a {{- /* trimmed */ -}} b") == "ab"
    assert run("a{{/* spans\nlines */}}b") == "ab"


def test_newlines_inside_actions() -> None:
    assert run('{{ printf\n  "%s-%s"\n  .A\n  .B }}', {"A": "1", "B": "2"}) == "1-2"


# -- pipelines, variables, scopes ------------------------------------------------------------------
def test_pipelines() -> None:
    assert run('{{ .X | printf "%s!" }}', {"X": "x"}) == "x!"
    assert run('{{ "a" | printf "%s-%s" "b" }}', {}) == "b-a"
    assert run('{{ "x" | print "y" | printf "[%s]" }}') == "[yx]"
    assert run("{{ len (slice .L 1) }}", {"L": [1, 2, 3]}) == "2"


def test_variables_declare_assign_and_dollar() -> None:
    assert run("{{ $x := 1 }}{{ $x }}{{ $x = 2 }}{{ $x }}") == "12"
    assert run("{{ range .L }}{{ $.Sep }}{{ . }}{{ end }}", {"L": ["a", "b"], "Sep": "-"}) == "-a-b"
    assert run("{{ $ }}", {"b": 2, "a": 1}) == "map[a:1 b:2]"


def test_variable_scopes() -> None:
    # a declaration inside a block ends with it; an assignment changes the outer variable
    assert run('{{ $x := "outer" }}{{ if true }}{{ $x := "inner" }}{{ $x }}{{ end }}{{ $x }}') == "innerouter"
    assert run('{{ $x := "a" }}{{ if true }}{{ $x = "b" }}{{ end }}{{ $x }}') == "b"
    acc = '{{ $s := "" }}{{ range .L }}{{ $s = printf "%s%s" $s . }}{{ end }}{{ $s }}'
    assert run(acc, {"L": ["a", "b", "c"]}) == "abc"
    assert run("{{ if $x := .X }}{{ $x }}{{ end }}", {"X": "v"}) == "v"


# -- control structures -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "truthy"),
    [
        (0, False),
        (1, True),
        (-1, True),
        (0.0, False),
        (0.5, True),
        ("", False),
        ("a", True),
        ([], False),
        ([0], True),
        ({}, False),
        ({"a": 0}, True),
        (None, False),
        (False, False),
        (True, True),
    ],
)
def test_truthiness(value: object, truthy: bool) -> None:
    assert run("{{ if .V }}T{{ else }}F{{ end }}", {"V": value}) == ("T" if truthy else "F")


def test_missing_key_is_falsy() -> None:
    assert run("{{ if .Nope }}T{{ else }}F{{ end }}", {}) == "F"


def test_if_else_if_chain() -> None:
    src = '{{ if eq .R "a" }}A{{ else if eq .R "b" }}B{{ else if eq .R "c" }}C{{ else }}Z{{ end }}'
    assert [run(src, {"R": r}) for r in "abcd"] == ["A", "B", "C", "Z"]


def test_range_lists_maps_ints() -> None:
    assert run("{{ range $i, $v := .L }}{{ $i }}={{ $v }};{{ end }}", {"L": ["a", "b"]}) == "0=a;1=b;"
    # one variable gets the element
    assert run("{{ range $v := .L }}{{ $v }}{{ end }}", {"L": ["a", "b"]}) == "ab"
    # maps are visited in key order
    assert (
        run("{{ range $k, $v := . }}{{ $k }}:{{ $v }} {{ end }}", {"b": 2, "c": 3, "a": 1}) == "a:1 b:2 c:3 "
    )
    assert run("{{ range 3 }}{{ . }}{{ end }}") == "012"
    assert run("{{ range .L }}x{{ else }}empty{{ end }}", {"L": []}) == "empty"
    assert run("{{ range .Missing }}x{{ else }}none{{ end }}", {}) == "none"


def test_range_variables_do_not_escape() -> None:
    assert "undefined variable" in err("{{ range $i, $v := .L }}{{ end }}{{ $v }}", {"L": [1]})


def test_range_break_continue() -> None:
    src = "{{ range .L }}{{ if eq . 3 }}{{ break }}{{ end }}{{ if eq . 1 }}{{ continue }}{{ end }}{{ . }}{{ end }}"
    assert run(src, {"L": [0, 1, 2, 3, 4]}) == "02"


def test_range_can_assign_outer_variables() -> None:
    src = '{{ $last := "" }}{{ range .L }}{{ $last = . }}{{ end }}{{ $last }}'
    assert run(src, {"L": ["x", "y"]}) == "y"


def test_with_and_else_with() -> None:
    assert run("{{ with .A }}[{{ . }}]{{ else }}none{{ end }}", {"A": "a"}) == "[a]"
    assert run("{{ with .A }}[{{ . }}]{{ else }}none{{ end }}", {"A": ""}) == "none"
    assert run("{{ with $x := .A }}{{ $x }}{{ . }}{{ end }}", {"A": 5}) == "55"
    src = "{{ with .A }}a{{ else with .B }}b={{ . }}{{ else }}c{{ end }}"
    assert run(src, {"B": 2}) == "b=2"
    assert run(src, {}) == "c"


def test_define_template_block() -> None:
    assert (
        run('{{ define "T" }}[{{ . }}]{{ end }}{{ template "T" "x" }}{{ template "T" .Y }}', {"Y": 1})
        == "[x][1]"
    )
    assert run('{{ block "B" .X }}<{{ . }}>{{ end }}', {"X": "x"}) == "<x>"
    # without a pipeline the called template's dot is nil
    assert run('{{ define "T" }}{{ . }}{{ end }}{{ template "T" }}') == "<no value>"
    # $ inside a template is the value it was called with
    assert run('{{ define "T" }}{{ $.A }}{{ end }}{{ template "T" .Inner }}', {"Inner": {"A": "in"}}) == "in"


def test_define_does_not_see_outer_variables() -> None:
    assert err('{{ $x := 1 }}{{ define "T" }}{{ $x }}{{ end }}') == 'template: :1: undefined variable "$x"'


def test_parenthesised_and_chains() -> None:
    assert run("{{ (index .L 0).a }}", {"L": [{"a": "z"}]}) == "z"
    assert run("{{ (.M).k }}", {"M": {"k": "v"}}) == "v"
    assert run("{{ not (eq 1 2) }}") == "true"


# -- literals ---------------------------------------------------------------------------------------
def test_string_literals() -> None:
    assert run(r'{{ "a\tb\n\x41\u00e9\101\"q\"" }}') == 'a\tb\nAéA"q"'
    assert run("{{ `raw \\n text` }}") == "raw \\n text"
    assert run("{{ `a\r\nb` }}") == "a\nb"  # Go drops carriage returns from raw strings


def test_number_bool_nil_literals() -> None:
    assert (
        run("{{ 0x1F }} {{ 017 }} {{ 1e3 }} {{ 1.5 }} {{ -2 }} {{ 'a' }} {{ 1_000 }}")
        == "31 15 1000 1.5 -2 97 1000"
    )
    assert run("{{ true }} {{ false }}") == "true false"
    assert run("{{ print nil }}") == "<nil>"
    assert (
        run("{{ 1.0 }} {{ 1e6 }} {{ 123456.0 }} {{ 0.0001 }} {{ 0.00001 }}") == "1 1e+06 123456 0.0001 1e-05"
    )


# -- functions --------------------------------------------------------------------------------------
def test_comparisons() -> None:
    assert run('{{ eq 1 1 }} {{ eq 1 2 }} {{ eq 1 2 3 1 }} {{ ne 1 2 }} {{ eq .S "x" }}', {"S": "x"}) == (
        "true false true true true"
    )
    assert (
        run('{{ lt 1 2 }} {{ le 2 2 }} {{ gt 1 2 }} {{ ge 2 1 }} {{ lt "a" "b" }}')
        == "true true false true true"
    )
    assert run('{{ eq .Missing "x" }}', {}) == "false"


def test_and_or_short_circuit_and_return_operand() -> None:
    # the failing index is never evaluated
    assert run("{{ and 1 0 (index .L 99) }}", {"L": []}) == "0"
    assert run("{{ or 1 (index .L 99) }}", {"L": []}) == "1"
    assert run('{{ and 1 2 }} {{ or 0 "" "z" }} {{ or 0 false }} {{ and "a" "" }}|') == "2 z false |"
    assert run('{{ "last" | and 1 }}') == "last"


def test_not_len_index_slice() -> None:
    assert run("{{ not 0 }} {{ not 1 }} {{ not .Missing }}", {}) == "true false true"
    assert run('{{ len "héllo" }} {{ len .L }} {{ len .M }}', {"L": [1, 2], "M": {"a": 1}}) == "6 2 1"
    assert (
        run(
            '{{ index .L 1 }} {{ index .M "k" }} {{ index .N 0 1 }} {{ index "abc" 1 }}',
            {
                "L": ["a", "b"],
                "M": {"k": "v"},
                "N": [[1, 2]],
            },
        )
        == "b v 2 98"
    )
    assert run('{{ index .M "missing" }}', {"M": {}}) == "<no value>"
    assert run(
        '{{ slice .L 1 3 }} {{ slice .L 2 }} {{ slice "hello" 1 3 }} {{ slice .L }}', {"L": [1, 2, 3, 4]}
    ) == ("[2 3] [3 4] el [1 2 3 4]")


def test_print_println() -> None:
    # Sprint puts spaces only between operands when neither is a string
    assert run('{{ print 1 2 "a" 3 nil }}') == "1 2a3 <nil>"
    assert run('{{ println 1 "a" }}') == "1 a\n"


@pytest.mark.parametrize(
    ("fmt", "args", "out"),
    [
        (
            '"%s|%d|%v|%q|%f|%.2f|%t|%x"',
            '"s" 42 4.5 "q\\n" 3.14159 3.14159 true 255',
            's|42|4.5|"q\\n"|3.141590|3.14|true|ff',
        ),
        ('"[%5d][%-5s][%05.1f][%+d][%x]"', '42 "ab" 3.14159 7 "hi"', "[   42][ab   ][003.1][+7][6869]"),
        ('"%v %v %v"', ".L .M .F", "[1 a] map[k:v] 1e+06"),
        ('"%d %s"', '"str"', "%!d(string=str) %!s(MISSING)"),
        ('"%s"', '"a" 3', "a%!(EXTRA int=3)"),
        ('"100%% %c %U"', "65 65", "100% A U+0041"),
        ('"%6.2f|%e|%g"', "3.14159 1234.5678 0.000012", "  3.14|1.234568e+03|1.2e-05"),
    ],
)
def test_printf(fmt: str, args: str, out: str) -> None:
    data = {"L": [1, "a"], "M": {"k": "v"}, "F": 1e6}
    assert run("{{ printf " + fmt + " " + args + " }}", data) == out


def test_json_function() -> None:
    data = {"M": {"b": "<a&b>", "a": [1, 2.5, None, True, 3.0]}}
    assert run("{{ json .M }}", data) == '{"a":[1,2.5,null,true,3],"b":"\\u003ca\\u0026b\\u003e"}'
    assert run('{{ json "x\\ny" }} {{ json 1e21 }} {{ json 0.0000001 }}') == '"x\\ny" 1e+21 1e-7'


def test_date_functions() -> None:
    today = datetime.date.today()
    assert run("{{ currentDate }}") == today.isoformat()
    assert run('{{ currentDate "ignored" }}') == today.isoformat()
    assert run("{{ yesterdayDate }}") == (today - datetime.timedelta(days=1)).isoformat()


def test_html_js_urlquery() -> None:
    assert run("{{ html \"<a href='x'>&</a>\" }}") == "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
    assert run('{{ urlquery "a b&c" }}') == "a+b%26c"
    assert run('{{ js "a\'b<" }}') == "a\\'b\\u003C"


# -- missingkey=zero and typed data ------------------------------------------------------------------
def test_missing_key_prints_no_value() -> None:
    assert run("[{{ .Missing }}]", {}) == "[<no value>]"


def test_field_of_missing_key_is_an_error() -> None:
    assert err("{{ .Missing.Foo }}", {}) == (
        'template: :1:11: executing "" at <.Missing.Foo>: nil pointer evaluating interface {}.Foo'
    )


def test_field_of_nil_variable_is_nil() -> None:
    assert run("{{ $x := .Missing }}{{ $x.Foo }}", {}) == "<no value>"


def test_no_python_attribute_access() -> None:
    assert err("{{ .upper }}", "a string").endswith("can't evaluate field upper in type string")
    assert run("{{ .__class__ }}", {}) == "<no value>"
    assert "can't evaluate field __class__" in err("{{ .__class__ }}", [1])
    assert "can't evaluate field" in err("{{ .real }}", 1)


# -- parse errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("src", "message"),
    [
        ("{{ .X", "template: :1: unclosed action"),
        ("a\n{{ .X\n", "template: :3: unclosed action started at :2"),
        ("{{ foo }}", 'template: :1: function "foo" not defined'),
        ('{{ .X | "a" }}', "template: :1: non executable command in pipeline stage 2"),
        ("{{ | }}", 'template: :1: unexpected "|" in command'),
        ("{{ $x }}", 'template: :1: undefined variable "$x"'),
        ("{{ if .X }}", "template: :1: unexpected EOF"),
        ("{{ end }}", "template: :1: unexpected {{end}}"),
        ("x{{ else }}", "template: :1: unexpected {{else}}"),
        ("{{ break }}", "template: :1: {{break}} outside {{range}}"),
        ("{{ if 1 }}{{ continue }}{{ end }}", "template: :1: {{continue}} outside {{range}}"),
        ('{{ "abc }}', "template: :1: unterminated quoted string"),
        ("{{ `abc }}", "template: :1: unterminated raw quoted string"),
        ("{{/* abc }}", "template: :1: unclosed comment"),
        ("{{/* abc */ x }}", "template: :1: comment ends before closing delimiter"),
        ("{{ 1x }}", 'template: :1: bad number syntax: "1x"'),
        ("{{ (1 }}", "template: :1: unclosed left paren"),
        ("{{ 1) }}", "template: :1: unexpected right paren"),
        ("{{ if }}{{ end }}", "template: :1: missing value for if"),
        ('{{ "\\q" }}', "template: :1: invalid syntax"),
        ("{{ template .X }}", 'template: :1: unexpected ".X" in template clause'),
        ("{{ range $a, $b, $c := .L }}{{ end }}", "template: :1: too many declarations in range"),
        (
            '{{ define "a" }}1{{ end }}{{ define "a" }}2{{ end }}',
            'template: :1: template: multiple definition of template "a"',
        ),
        ("{{ .X }}\n\n{{ else }}", "template: :3: unexpected {{else}}"),
        ("{{ .X. }}", "template: :1: unexpected <.> in operand"),
        ("{{ true.X }}", 'template: :1: unexpected . after term "true"'),
    ],
)
def test_parse_errors(src: str, message: str) -> None:
    with pytest.raises(TemplateError) as e:
        Template.parse(src)
    assert str(e.value) == message


# -- execution errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("src", "data", "message"),
    [
        (
            "{{ len 1 2 }}",
            {},
            'template: :1:3: executing "" at <len 1 2>: wrong number of args for len: want 1 got 2',
        ),
        (
            "{{ index .L 5 }}",
            {"L": [1]},
            'template: :1:3: executing "" at <index .L 5>: error calling index: index out of range: 5',
        ),
        (
            '{{ lt 1 "a" }}',
            {},
            'template: :1:3: executing "" at <lt 1 "a">: error calling lt: incompatible types for comparison',
        ),
        (
            "{{ eq 1 1.5 }}",
            {},
            'template: :1:3: executing "" at <eq 1 1.5>: error calling eq: incompatible types for comparison',
        ),
        (
            "{{ lt true false }}",
            {},
            'template: :1:3: executing "" at <lt true false>: error calling lt: invalid type for comparison',
        ),
        ("{{ len 3 }}", {}, 'template: :1:3: executing "" at <len 3>: error calling len: len of type int'),
        (
            '{{ template "nope" }}',
            {},
            'template: :1:12: executing "" at <{{template "nope"}}>: template "nope" not defined',
        ),
        ("{{ nil }}", {}, 'template: :1:3: executing "" at <nil>: nil is not a command'),
        (
            "{{ range .S }}{{ end }}",
            {"S": "str"},
            'template: :1:9: executing "" at <{{range .S}}{{end}}>: range can\'t iterate over str',
        ),
        (
            "{{ .X 1 }}",
            {"X": "v"},
            'template: :1:3: executing "" at <.X>: X is not a method but has arguments',
        ),
        (
            "{{ printf 3 }}",
            {},
            'template: :1:10: executing "" at <3>: wrong type for value; expected string; got int',
        ),
        ("{{ not nil }}", {}, 'template: :1:7: executing "" at <nil>: cannot assign nil to reflect.Value'),
    ],
)
def test_exec_errors(src: str, data: object, message: str) -> None:
    assert err(src, data) == message


def test_exec_error_in_defined_template_names_it() -> None:
    msg = err('{{ define "inner" }}\n{{ len 1 2 }}{{ end }}{{ template "inner" }}')
    assert msg.startswith('template: :2:3: executing "inner" at <len 1 2>: wrong number of args')


# -- hostile templates ---------------------------------------------------------------------------------
def test_runaway_template_recursion_is_stopped() -> None:
    msg = err('{{ define "r" }}x{{ template "r" . }}{{ end }}{{ template "r" . }}')
    assert "exceeded maximum template depth" in msg


def test_mutual_recursion_is_stopped() -> None:
    src = '{{ define "a" }}{{ template "b" . }}{{ end }}{{ define "b" }}{{ template "a" . }}{{ end }}{{ template "a" }}'
    assert "exceeded maximum template depth" in err(src)


def test_output_is_bounded() -> None:
    src = "{{ range 1000 }}{{ range 1000 }}xxxxxxxxxx{{ end }}{{ end }}"
    assert "output exceeds 100000 characters" in err(src, max_output=100_000)


def test_steps_are_bounded() -> None:
    src = "{{ range 100000 }}{{ range 100000 }}{{ end }}{{ end }}"
    assert "execution stopped after 10000 steps" in err(src, max_steps=10_000)


def test_deep_nesting_is_rejected_at_parse_time() -> None:
    src = "{{ if 1 }}" * 300 + "x" + "{{ end }}" * 300
    with pytest.raises(TemplateError) as e:
        Template.parse(src)
    assert "nesting too deep" in str(e.value)
    src = "{{ " + "(" * 300 + "1" + ")" * 300 + " }}"
    with pytest.raises(TemplateError):
        Template.parse(src)


def test_huge_printf_width_is_refused() -> None:
    assert "too large" in err('{{ printf "%999999999d" 1 }}')


# -- identifiers (what Ollama's Vars() reports) ----------------------------------------------------------
@pytest.mark.parametrize(
    ("src", "names"),
    [
        ("{{ .Prompt }}", {"prompt"}),
        ("{{ .System }} {{ .Prompt }} {{ .Response }}", {"prompt", "response", "system"}),
        ("{{ with .Tools }}{{ . }}{{ end }} {{ .System }}", {"system", "tools"}),
        ("{{ range .Messages }}{{ .Role }} {{ .Content }}{{ end }}", {"content", "messages", "role"}),
        ("{{ range $i, $m := $.Messages }}{{ $m.Role }}{{ end }}", {"$m", "$", "messages", "role"}),
        ('{{ define "x" }}{{ .Suffix }}{{ end }}', {"suffix"}),
        ("{{ if .ToolCalls }}{{ (.A).B }}{{ end }}", {"toolcalls"}),  # like Ollama: chains are not walked
    ],
)
def test_identifiers(src: str, names: set[str]) -> None:
    assert Template.parse(src).identifiers() == names


def test_references() -> None:
    t = Template.parse("{{ range .Messages }}{{ .ToolCalls }}{{ end }}{{ if .Think }}{{ end }}")
    assert t.references("Messages") and t.references(".messages") and t.references("ToolCalls")
    assert t.references("Think") and not t.references("Thinking") and not t.references("Tools")
