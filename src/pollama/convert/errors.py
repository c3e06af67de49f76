"""The one error type conversion raises for input it cannot or will not convert."""

from __future__ import annotations


class ConvertError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
