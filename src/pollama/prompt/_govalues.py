"""How Go values look to the template interpreter.

Plain Python data stands for Go's dynamic JSON-ish values: `str`, `bool`, `int`, `float`,
`None` (a nil interface), `list` ([]interface{}) and `dict` (map[string]interface{}, whose
keys Go visits and marshals in sorted order). Typed Go values that templates reach through
Ollama's data (messages, tools, tool calls) are subclasses below with a fixed set of
exported fields and methods. The interpreter only ever looks at these explicit tables; it
never uses Python attribute access on data, which is what keeps hostile templates inside
the data they are given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar


class FuncError(Exception):
    """A template function failed; the interpreter reports `error calling NAME: msg`."""


@dataclass(frozen=True, slots=True)
class GoFunc:
    """A function or method callable from a template, with Go's arity rules."""

    impl: Callable[..., Any]
    nfixed: int
    variadic: bool = False
    lazy: bool = False  # `and` / `or`: arguments are evaluated one at a time
    value_args: bool = True  # parameters are reflect.Value: a literal nil is rejected
    string_args: str = ""  # "first" (printf's format) or "all" (currentDate's ...string)


class GoStruct:
    """A Go struct (or pointer to one) with exported fields `fields`, in declaration order."""

    go_type: ClassVar[str] = "struct {}"
    fields: ClassVar[tuple[str, ...]] = ()
    methods: ClassVar[dict[str, GoFunc]] = {}
    __slots__ = ("_v",)

    def __init__(self, **values: Any):
        self._v = values

    def get(self, name: str) -> Any:
        return self._v[name]

    def json_pairs(self) -> list[tuple[str, Any]]:
        """Key/value pairs as encoding/json writes them (field names, omitempty applied)."""
        return [(f, self._v[f]) for f in self.fields]


class GoMap(dict):
    """A Go map with string keys. `zero` is what a missing key yields (missingkey=zero)."""

    go_type: ClassVar[str] = "map[string]interface {}"
    zero: ClassVar[Any] = None
    sort_keys: ClassVar[bool] = True  # Go maps iterate and marshal in key order
    methods: ClassVar[dict[str, GoFunc]] = {}


class GoSlice(list):
    """A Go slice; `is_nil` distinguishes a nil slice (JSON null) from an empty one."""

    go_type: ClassVar[str] = "[]interface {}"
    methods: ClassVar[dict[str, GoFunc]] = {}

    def __init__(self, items: Any = (), *, is_nil: bool = False):
        super().__init__(items)
        self.is_nil = is_nil and not self

    def json_override(self) -> Any:
        """A different value to marshal in place of the slice (a custom MarshalJSON)."""
        return NotImplemented


def methods_of(v: Any) -> dict[str, GoFunc]:
    if isinstance(v, (GoStruct, GoMap, GoSlice)):
        return type(v).methods
    return {}


def go_type_name(v: Any) -> str:
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (GoStruct, GoMap, GoSlice)):
        return v.go_type
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, (list, tuple)):
        return "[]interface {}"
    return "interface {}"


def truth(v: Any) -> bool:
    """Go template truthiness: false, 0, nil, and empty strings/slices/maps are false."""
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, (str, list, tuple, dict)):
        return len(v) > 0
    return True  # structs and non-nil pointers


def sorted_keys(m: dict) -> list:
    if isinstance(m, GoMap) and not type(m).sort_keys:
        return list(m)
    try:
        return sorted(m)
    except TypeError:
        return sorted(m, key=str)
