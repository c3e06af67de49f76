"""Modelfiles: parse (with line-numbered errors), render, and turn into a create request."""

from pollama.modelfile.parser import Command, Modelfile, ModelfileError, decode, parse, quote
from pollama.modelfile.request import check_requires, to_request

__all__ = [
    "Command",
    "Modelfile",
    "ModelfileError",
    "check_requires",
    "decode",
    "parse",
    "quote",
    "to_request",
]
