"""Readers for two file formats shipped in ``frame-alignment-checks``, without their usual libraries.

* :func:`read_xlsx_rows`: the first worksheet of an ``.xlsx`` as rows of strings,
  with the standard library (zip + XML); no openpyxl needed.
* :func:`read_numpy_pickle`: a pickle that holds only a dict of numpy arrays,
  numpy scalars and plain Python values, read by interpreting its opcodes with a
  whitelist. Nothing is unpickled: no ``pickle.load``, no import of the names a
  pickle mentions, no call of anything but ``np.frombuffer`` / ``np.dtype``; any
  other object or opcode is refused with ``ValueError``.
"""

from __future__ import annotations

import os
import pickletools
import re
import xml.etree.ElementTree as ET
import zipfile

import numpy as np

from meta_layer_cli.runtime.errors import InputDataError

_XLSX = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_CELL = re.compile(r"^([A-Z]+)(\d+)$")


def _column_index(letters: str) -> int:
    index = 0
    for ch in letters:
        index = index * 26 + (ord(ch) - 64)
    return index - 1


def read_xlsx_rows(path: str | os.PathLike) -> list[list[str | None]]:
    """All rows of the first worksheet; each row a list of cell texts (None for empty cells).

    Rich-text cells are concatenated run by run, numbers come back as the text
    stored in the file (full precision).
    """
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        strings: list[str] = []
        if "xl/sharedStrings.xml" in names:
            for si in ET.fromstring(z.read("xl/sharedStrings.xml")).findall(f"{_XLSX}si"):
                parts = [t.text or "" for t in si.findall(f"{_XLSX}t")]
                parts += [t.text or "" for r in si.findall(f"{_XLSX}r") for t in r.findall(f"{_XLSX}t")]
                strings.append("".join(parts))
        sheet = ET.fromstring(z.read("xl/worksheets/sheet1.xml"))
    rows: list[list[str | None]] = []
    for row in sheet.iter(f"{_XLSX}row"):
        cells: dict[int, str | None] = {}
        for cell in row.findall(f"{_XLSX}c"):
            match = _CELL.match(cell.get("r", ""))
            if not match:
                continue
            kind = cell.get("t")
            value = cell.find(f"{_XLSX}v")
            if kind == "s" and value is not None:
                text: str | None = strings[int(value.text)]
            elif kind == "inlineStr":
                text = "".join(t.text or "" for t in cell.iter(f"{_XLSX}t"))
            else:
                text = value.text if value is not None else None
            cells[_column_index(match.group(1))] = text
        rows.append([cells.get(i) for i in range(max(cells) + 1)] if cells else [])
    return rows


class _Mark:
    pass


class _Global:
    def __init__(self, name: str):
        self.name = name


class _Dtype:
    """A numpy dtype under construction (pickle BUILDs its byte order after creating it)."""

    def __init__(self, spec: str):
        self.spec = spec
        self.order = "="

    def resolve(self) -> np.dtype:
        dtype = np.dtype(self.spec)
        if dtype.hasobject:
            raise InputDataError("pickle holds an object array; refusing to read it")
        return dtype.newbyteorder(self.order) if self.order in "<>" else dtype


class _Array:
    def __init__(self):
        self.value: np.ndarray | None = None


_ALLOWED = {
    "numpy.core.multiarray._reconstruct": "reconstruct",
    "numpy._core.multiarray._reconstruct": "reconstruct",
    "numpy.core.multiarray.scalar": "scalar",
    "numpy._core.multiarray.scalar": "scalar",
    "numpy.ndarray": "ndarray",
    "numpy.dtype": "dtype",
}
_PUSH_ARG = {
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "UNICODE",
    "BININT",
    "BININT1",
    "BININT2",
    "LONG1",
    "INT",
    "BINFLOAT",
    "SHORT_BINBYTES",
    "BINBYTES",
    "BINBYTES8",
}


def _finish(value):
    if isinstance(value, _Array):
        if value.value is None:
            raise InputDataError("pickle: array without data")
        return value.value
    if isinstance(value, _Dtype):
        return value.resolve()
    if isinstance(value, dict):
        return {k: _finish(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_finish(v) for v in value)
    if isinstance(value, (_Global, _Mark)):
        raise InputDataError("pickle: unexpected reference to a global")
    return value


def read_numpy_pickle(path: str | os.PathLike) -> dict:
    """Read a pickled dict of numpy arrays/scalars and plain values without unpickling it."""
    with open(path, "rb") as fh:
        data = fh.read()
    stack: list = []
    marks: list[int] = []
    memo: dict[int, object] = {}

    def pop_mark() -> list:
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    for op, arg, _ in pickletools.genops(data):
        name = op.name
        if name in ("PROTO", "FRAME"):
            continue
        if name in _PUSH_ARG:
            stack.append(arg)
        elif name == "EMPTY_DICT":
            stack.append({})
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name in ("NONE", "NEWTRUE", "NEWFALSE"):
            stack.append({"NONE": None, "NEWTRUE": True, "NEWFALSE": False}[name])
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("BINPUT", "LONG_BINPUT"):
            memo[arg] = stack[-1]
        elif name in ("BINGET", "LONG_BINGET"):
            stack.append(memo[arg])
        elif name == "MARK":
            marks.append(len(stack))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = tuple(stack[-n:])
            del stack[-n:]
            stack.append(items)
        elif name == "TUPLE":
            stack.append(tuple(pop_mark()))
        elif name in ("STACK_GLOBAL", "GLOBAL"):
            if name == "GLOBAL":
                module, attr = arg.split(" ", 1)
            else:
                attr = stack.pop()
                module = stack.pop()
            full = f"{module}.{attr}"
            if full not in _ALLOWED:
                raise InputDataError(f"pickle refers to {full}; only numpy arrays and scalars are read")
            stack.append(_Global(_ALLOWED[full]))
        elif name == "REDUCE":
            args = stack.pop()
            func = stack.pop()
            if not isinstance(func, _Global):
                raise InputDataError("pickle: REDUCE of something that is not an allowed numpy constructor")
            if func.name == "reconstruct":
                stack.append(_Array())
            elif func.name == "dtype":
                stack.append(_Dtype(str(args[0])))
            elif func.name == "scalar":
                dtype, raw = args
                stack.append(np.frombuffer(raw, dtype=dtype.resolve())[0].copy())
            else:
                raise InputDataError(f"pickle: cannot call {func.name}")
        elif name == "BUILD":
            state = stack.pop()
            target = stack[-1]
            if isinstance(target, _Dtype):
                target.order = state[1]
            elif isinstance(target, _Array):
                _, shape, dtype, fortran, raw = state
                if not isinstance(raw, (bytes, bytearray)):
                    raise InputDataError("pickle: array data is not raw bytes")
                array = np.frombuffer(raw, dtype=dtype.resolve())
                target.value = array.reshape(shape, order="F" if fortran else "C").copy()
            else:
                raise InputDataError("pickle: BUILD of an unsupported object")
        elif name == "SETITEM":
            value = stack.pop()
            key = stack.pop()
            stack[-1][key] = value
        elif name == "SETITEMS":
            items = pop_mark()
            target = stack[-1]
            for k, v in zip(items[0::2], items[1::2]):
                target[k] = v
        elif name == "APPEND":
            value = stack.pop()
            stack[-1].append(value)
        elif name == "APPENDS":
            items = pop_mark()
            stack[-1].extend(items)
        elif name == "STOP":
            result = _finish(stack.pop())
            if not isinstance(result, dict):
                raise InputDataError("pickle does not hold a dict")
            return result
        else:
            raise InputDataError(f"pickle opcode {name} is not supported by this reader")
    raise InputDataError("pickle ended without STOP")
