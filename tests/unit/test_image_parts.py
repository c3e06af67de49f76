"""Splitting a rendered prompt at Ollama's `[img-N]` markers (server/prompts.py)."""

from __future__ import annotations

from pollama.server.prompts import image_parts


def test_markers_become_their_images_in_prompt_order() -> None:
    text = "<u>[img-1] and [img-0]?</u>"
    assert image_parts(text, [b"A", b"B"]) == ["<u>", b"B", " and ", b"A", "?</u>"]


def test_adjacent_and_edge_markers_leave_no_empty_text() -> None:
    assert image_parts("[img-0][img-0]x", [b"A"]) == [b"A", b"A", "x"]
    assert image_parts("x[img-0]", [b"A"]) == ["x", b"A"]


def test_a_marker_naming_no_image_stays_text() -> None:
    assert image_parts("see [img-2] [img-x]", [b"A"]) == ["see [img-2] [img-x]"]
    assert image_parts("no markers", [b"A"]) == ["no markers"]
