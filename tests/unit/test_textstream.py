"""Incremental detokenization: UTF-8 split across tokens, stop strings across tokens."""

from pollama.engine.textstream import TextStream


def feed_all(stream: TextStream, pieces: list[bytes]) -> str:
    return "".join(stream.feed(p) for p in pieces) + stream.flush()


def test_multibyte_character_split_across_tokens_is_never_emitted_half():
    stream = TextStream()
    euro = "€".encode()  # 3 bytes
    assert stream.feed(b"a" + euro[:1]) == "a"
    assert stream.feed(euro[1:2]) == ""
    assert stream.feed(euro[2:] + b"b") == "€b"


def test_stop_string_spanning_tokens_is_held_back_and_not_emitted():
    stream = TextStream(["<end>"])
    out = [stream.feed(p) for p in (b"hello <", b"en", b"d> tail")]
    assert "".join(out) == "hello "
    assert stream.stopped
    assert stream.flush() == ""


def test_partial_stop_prefix_is_released_when_it_does_not_complete():
    stream = TextStream(["STOP"])
    assert stream.feed(b"ab ST") == "ab "
    assert stream.feed(b"AR") == "STAR"
    assert not stream.stopped


def test_held_text_is_released_at_the_end():
    stream = TextStream(["###"])
    assert feed_all(stream, [b"x", b"#", b"#"]) == "x##"


def test_earliest_of_several_stops_wins():
    stream = TextStream(["world", "lo w"])
    assert feed_all(stream, [b"hello world"]) == "hel"


def test_every_split_point_gives_the_same_text():
    text = "naïve café — 東京 <stop> after".encode()
    for cut in range(1, len(text)):
        stream = TextStream(["<stop>"])
        assert feed_all(stream, [text[:cut], text[cut:]]) == "naïve café — 東京 "
