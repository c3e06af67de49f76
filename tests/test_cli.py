"""The `pollama` verbs in pipes, as scripts use them, against the session's real server.

Generations use `cli-tiny`, the bundled weights with num_predict 3 and temperature 0 and a
plain-continuation template, so every answer is a few tokens; the assertions are on the
shape of the output (tables, the --verbose block, exit codes, messages), never on its words.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.cli_support import cli_env, pollama
from tests.conftest import MODEL
from tests.serverproc import ServerProcess, free_port

GO_DURATION = r"(\d+h)?(\d+m)?\d+(\.\d+)?(ns|µs|ms|s)"


@dataclass
class Cli:
    server: ServerProcess
    env: dict[str, str]

    def __call__(self, *args: str, input: str | None = None) -> tuple[int, str, str]:
        r = pollama(*args, env=self.env, input=input)
        return r.returncode, r.stdout, r.stderr


@pytest.fixture(scope="module")
def cli(cli_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(cli_server, cli_env(cli_server.base_url, tmp_path_factory.mktemp("cli-home")))


def columns(header: str, row: str) -> list[str]:
    """Cut `row` at the header's column starts (the table is left-aligned, space padded)."""
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    ends = [*starts[1:], None]
    return [row[a:b].strip() for a, b in zip(starts, ends, strict=True)]


def test_list_is_ollamas_table(cli: Cli):
    tags = {m["name"]: m for m in httpx.get(cli.server.url("/api/tags")).json()["models"]}
    rc, out, err = cli("list")
    assert rc == 0 and err == ""
    header, *rows = out.rstrip("\n").split("\n")
    assert re.fullmatch(r"NAME +ID +SIZE +MODIFIED", header)
    table = {columns(header, row)[0]: columns(header, row) for row in rows}
    assert set(table) == set(tags)
    _, ident, size, modified = table[MODEL]
    assert ident == tags[MODEL]["digest"][:12]
    assert size == f"{tags[MODEL]['size'] // 10**6} MB"  # 253 MB: decimal units, like ollama
    assert re.fullmatch(r"(Less than a second|\d+ seconds|About a minute|\d+ minutes) ago", modified)

    rc, out, _ = cli("ls", "cli-")  # the alias, and a name prefix
    assert rc == 0
    listed = sorted(line.split()[0] for line in out.strip().split("\n")[1:])
    # the cli server's own models; other CLI tests (the REPL's /save) may have added some
    assert "cli-tiny:latest" in listed and MODEL not in listed
    assert listed == sorted(name for name in tags if name.startswith("cli-"))


def parse_go_duration(text: str) -> float:
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "µs": 1e-6, "ns": 1e-9}
    return sum(float(v) * scale[u] for v, u in re.findall(r"([\d.]+)(h|ms|µs|ns|m|s)", text))


def test_run_one_shot_verbose_keepalive_ps_and_stop(cli: Cli):
    rc, out, err = cli("run", "cli-tiny", "1, 2, 3,", "--verbose", "--keepalive", "10m")
    assert rc == 0, err
    assert out.strip() and out.endswith("\n\n") and "\x1b" not in out  # a pipe gets plain text
    # Ollama's Metrics.Summary(): labels padded to 22 columns, Go durations, rates to 2 places.
    lines = [line for line in err.split("\n") if line]
    labels = [line[:22].rstrip() for line in lines]
    expected = ["total duration:", "load duration:", "prompt eval count:", "prompt eval duration:"]
    expected += ["prompt eval rate:", "eval count:", "eval duration:", "eval rate:"]
    if "load duration:" not in labels:  # 0 when the model was already loaded, then not printed
        expected.remove("load duration:")
    assert labels == expected, err
    values = dict(zip(labels, (line[22:] for line in lines), strict=True))
    for label in ("total duration:", "prompt eval duration:", "eval duration:"):
        assert re.fullmatch(GO_DURATION, values[label]), values[label]
    assert values["eval count:"] == "3 token(s)"  # the model's num_predict
    assert re.fullmatch(r"\d+ token\(s\)", values["prompt eval count:"])
    rate = float(values["eval rate:"].removesuffix(" tokens/s"))
    assert rate == pytest.approx(3 / parse_go_duration(values["eval duration:"]), rel=0.02)
    assert parse_go_duration(values["total duration:"]) >= parse_go_duration(values["eval duration:"])

    rc, out, _ = cli("ps")
    assert rc == 0
    header, *rows = out.rstrip("\n").split("\n")
    assert re.fullmatch(r"NAME +ID +SIZE +PROCESSOR +CONTEXT +UNTIL", header)
    assert len(rows) == 1, out  # cli-tiny shares the bundled model's weights, so its runner
    name, ident, size, processor, context, until = columns(header, rows[0])
    assert name in (MODEL, "cli-tiny:latest") and re.fullmatch(r"[0-9a-f]{12}", ident)
    assert re.fullmatch(r"\d+ MB", size) and processor == "100% CPU" and context == "2048"
    assert until in ("9 minutes from now", "10 minutes from now")  # --keepalive 10m, the last request

    rc, out, err = cli("stop", "cli-tiny")
    assert (rc, out, err) == (0, "", "")
    rc, out, _ = cli("ps")
    assert rc == 0 and out.split() == header.split()  # the header alone


def test_piped_stdin_is_the_prompt_and_format_json_applies(cli: Cli):
    rc, out, err = cli("run", "cli-tiny", "--format", "json", "--nowordwrap", input="Answer in JSON:\n")
    assert rc == 0, err
    assert out.lstrip().startswith("{")  # the grammar forces a JSON object from the first token
    assert err == ""


def test_think_shows_or_hides_the_thinking(cli: Cli):
    rc, out, err = cli("run", "cli-think", "1, 2,")  # thinking-capable: think is on by default
    assert rc == 0, err
    assert out.startswith("Thinking...\n") and out.removeprefix("Thinking...\n").strip()
    rc, out, err = cli("run", "cli-think", "1, 2,", "--hidethinking", "--keepalive", "-1m")
    assert rc == 0 and out.strip() == "", out
    rc, out, _ = cli("ps")  # a negative keep-alive: loaded until stopped
    assert rc == 0 and out.split("\n")[1].split()[-1] == "Forever"
    rc, out, err = cli("run", "cli-tiny", "1, 2,", "--think")  # a model that cannot think
    assert rc == 1 and err == 'Error: "cli-tiny" does not support thinking\n'


def test_embedding_model_prints_its_vector(cli: Cli):
    rc, out, err = cli("run", "all-minilm", "The sky is blue.")
    assert rc == 0, err
    line, rest = out.split("\n", 1)
    vector = json.loads(line)
    assert rest == "" and len(vector) == 384 and all(isinstance(x, float) for x in vector)
    assert math.fsum(x * x for x in vector) == pytest.approx(1.0, abs=1e-3)  # normalized, as /api/embed
    rc, out, err = cli("run", "all-minilm")
    assert rc == 1 and err.startswith("Error: embedding models require input text.")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "cli-tiny", "hi", "--bogus"], "Error: unknown flag: --bogus\n"),
        (["run", "cli-tiny", "hi", "--keepalive"], "Error: flag needs an argument: --keepalive\n"),
        (
            ["run", "cli-tiny", "hi", "--verbose=maybe"],
            'Error: invalid argument "maybe" for "--verbose" flag',
        ),
        (["run", "cli-tiny", "hi", "--keepalive", "soon"], 'Error: time: invalid duration "soon"\n'),
        (["run", "cli-tiny", "hi", "--think=maybe"], "Error: invalid value for --think"),
        (["run"], "Error: requires at least 1 arg(s), only received 0\n"),
        (["frobnicate"], 'Error: unknown command "frobnicate" for "pollama"\n'),
        (["stop", "no-such-model"], 'Error: couldn\'t find model "no-such-model" to stop\n'),
        (["run", "no-such-model", "hi"], "pollama list"),
    ],
)
def test_errors_exit_1_with_a_message(cli: Cli, args: list[str], message: str):
    rc, out, err = cli(*args)
    assert rc == 1 and out == ""
    assert err.startswith(message) if message.startswith("Error") else message in err


def test_server_down_says_how_to_start_it(tmp_path: Path):
    env = cli_env(f"127.0.0.1:{free_port()}", tmp_path)
    for args in (["list"], ["run", MODEL, "hi"]):
        r = pollama(*args, env=env)
        assert r.returncode == 1 and r.stdout == ""
        assert "could not connect to pollama server" in r.stderr and "'pollama serve'" in r.stderr
