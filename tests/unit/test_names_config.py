"""Model-name parsing (the store's path safety rests on it) and settings parsing."""

import math

import pytest

from pollama.config import DurationError, keep_alive_seconds, parse_go_duration, parse_host
from pollama.names import InvalidName, ModelName


@pytest.mark.parametrize(
    ("text", "display", "full"),
    [
        ("gemma3", "gemma3:latest", "registry.ollama.ai/library/gemma3:latest"),
        ("gemma3:270m-text", "gemma3:270m-text", "registry.ollama.ai/library/gemma3:270m-text"),
        ("me/m:v1", "me/m:v1", "registry.ollama.ai/me/m:v1"),
        ("localhost:5000/ns/m:t", "localhost:5000/ns/m:t", "localhost:5000/ns/m:t"),
        ("http://localhost:5000/ns/m", "localhost:5000/ns/m:latest", "localhost:5000/ns/m:latest"),
    ],
)
def test_valid_names(text: str, display: str, full: str):
    name = ModelName.parse(text)
    assert name.display == display
    assert str(name) == full


@pytest.mark.parametrize(
    "text",
    [
        "",
        "../etc/passwd",
        "a/../../b",
        "..",
        "m:",
        "/m",
        "a/b/c/d",
        "ns.x/m",
        "m:ta/g",
        "-m",
        "m:.tag",
        "a b",
        "m\x00",
    ],
)
def test_invalid_names(text: str):
    with pytest.raises(InvalidName):
        ModelName.parse(text)


def test_names_match_case_insensitively():
    assert ModelName.parse("Gemma3:270M-Text").key == ModelName.parse("gemma3:270m-text").key


def test_go_durations():
    assert parse_go_duration("5m") == 300
    assert parse_go_duration("1h30m") == 5400
    assert parse_go_duration("-1m") == -60
    assert parse_go_duration("0") == 0
    assert parse_go_duration("1.5s") == 1.5
    with pytest.raises(DurationError, match='time: missing unit in duration "3600"'):
        parse_go_duration("3600")
    with pytest.raises(DurationError):
        parse_go_duration("5 minutes")


def test_keep_alive_forms():
    assert keep_alive_seconds(None, 300) == 300
    assert keep_alive_seconds(10, 300) == 10
    assert keep_alive_seconds("10m", 300) == 600
    assert math.isinf(keep_alive_seconds(-1, 300))
    assert math.isinf(keep_alive_seconds("-1s", 300))


def test_ollama_host_forms():
    assert parse_host("0.0.0.0").port == 11434
    assert parse_host("0.0.0.0").client_url == "http://127.0.0.1:11434"
    assert parse_host("http://example.com").port == 80
    assert parse_host("https://example.com/ollama").url == "https://example.com:443/ollama"
    assert parse_host("[::1]:8080").port == 8080
