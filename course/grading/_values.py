"""Values that leave a grading kernel as plain data, and how the grader judges them.

In a graded test cell the student's kernel evaluates only the value under test: every
``check(what, got, expected, ...)`` becomes ``send(site, got)`` (``course.grading._plan``),
which sends ``got`` to the grader as plain data and nothing else. The reference run of the
source notebook, in a kernel of its own, turns the same call into ``record(site, kind,
check, what, got, expected, ...)``, which sends every argument. The grader compares the two
in its own process (``judge``), so expected values never exist in the student's process.

Plain data is ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, lists, tuples,
sets and dicts of these, and NumPy arrays and scalars of booleans or numbers (sent as
dtype, shape and bytes). Types are matched exactly: a subclass, whatever its ``__eq__``
says, is not plain data, and sending it fails with a message that says so.
"""
import base64
import inspect

import numpy as np

#: The MIME type of a value sent from a kernel (as ``display_data``).
MIME = "application/vnd.course.grading.value+json"
#: Bytes of array data one value may hold.
MAX_BYTES = 64 * 2**20
_MAX_DEPTH = 32
_NUMERIC_KINDS = "biufc"
_KINDS = {"check": "equal", "check_at_least": "at_least", "check_at_most": "at_most",
          "check_contains": "contains"}


class NotPlainData(TypeError):
    """A value that cannot leave the kernel as plain data."""


def encode(value):
    """``value`` as JSON-ready plain data; raises ``NotPlainData`` saying why not."""
    budget = [MAX_BYTES]
    return _encode(value, budget, 0)


def _encode(value, budget, depth):
    if depth > _MAX_DEPTH:
        raise NotPlainData(f"the value is nested more than {_MAX_DEPTH} levels deep")
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return {"plain": value}
    if kind is float:
        return {"float": value.hex()}
    if kind is complex:
        return {"complex": [value.real.hex(), value.imag.hex()]}
    # A container goes as its base type, read with the base type's own methods: a namedtuple
    # is the tuple it is, an OrderedDict the dict.
    base = next((kind for kind in (list, tuple, set, frozenset, dict) if isinstance(value, kind)),
                None)
    if base is dict:
        return {"dict": [[_encode(key, budget, depth + 1), _encode(item, budget, depth + 1)]
                         for key, item in dict.items(value)]}
    if base is not None:
        items = [_encode(item, budget, depth + 1) for item in base.__iter__(value)]
        if base in (set, frozenset):
            items.sort(key=repr)
        return {base.__name__.replace("frozenset", "set"): items}
    if kind is np.ndarray or (isinstance(value, np.generic) and kind.__module__ == "numpy"):
        array = np.asarray(value)
        if array.dtype.kind not in _NUMERIC_KINDS or array.dtype.fields is not None:
            raise NotPlainData(f"a NumPy array of dtype {array.dtype} is not numbers")
        budget[0] -= array.nbytes
        if budget[0] < 0:
            raise NotPlainData(f"the value holds more than {MAX_BYTES} bytes of arrays")
        return {"array": [array.dtype.str, list(array.shape),
                          base64.b64encode(array.tobytes(order="C")).decode("ascii"),
                          kind is not np.ndarray]}
    raise NotPlainData(f"a value of type {kind.__module__}.{kind.__qualname__} cannot be "
                       f"graded; return numbers, strings, booleans, None, NumPy arrays, or "
                       f"lists, tuples, sets and dicts of these")


def decode(data):
    """The value that ``encode`` turned into ``data``; raises ``ValueError`` on bad data."""
    try:
        [(tag, content)] = data.items()
        if tag == "plain" and (content is None or type(content) in (bool, int, str)):
            return content
        if tag == "float":
            return float.fromhex(content)
        if tag == "complex":
            return complex(float.fromhex(content[0]), float.fromhex(content[1]))
        if tag in ("list", "tuple", "set"):
            return {"list": list, "tuple": tuple, "set": frozenset}[tag](map(decode, content))
        if tag == "dict":
            return {decode(key): decode(item) for key, item in content}
        if tag == "array":
            dtype, shape, text, scalar = content
            dtype = np.dtype(dtype)
            if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None:
                raise ValueError(f"dtype {dtype}")
            array = np.frombuffer(base64.b64decode(text, validate=True), dtype).reshape(shape)
            return array[()] if scalar else array.copy()
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"malformed value ({type(exc).__name__})") from None
    raise ValueError(f"malformed value (tag {tag!r})")


def _publish(payload):
    from IPython.display import publish_display_data

    publish_display_data({MIME: payload})


def send(site, got):
    """In a student's kernel: send the value under test at check ``site`` to the grader."""
    try:
        payload = {"site": site, "got": encode(got)}
    except NotPlainData as exc:
        payload = {"site": site, "error": str(exc)}
    _publish(payload)


def record(site, kind, function, *args, **kwargs):
    """In the reference kernel: send everything a check call at ``site`` was given.

    ``function`` is the notebook's own ``check`` (or ``check_at_least``/``check_at_most``):
    its signature says which argument is which (the first three are the description, the
    value and the expected value or bound) and gives ``rtol``, ``atol`` and ``hint`` their
    defaults (0, 0 and "" where it has none)."""
    bound = inspect.signature(function).bind(*args, **kwargs)
    bound.apply_defaults()
    values = list(bound.arguments.values())
    options = {name: bound.arguments.get(name, default)
               for name, default in (("rtol", 0.0), ("atol", 0.0), ("hint", ""))}
    _publish({"site": site, "kind": kind, "what": str(values[0]), "got": encode(values[1]),
              "expected": encode(values[2]), "hint": str(options["hint"]),
              "rtol": float(options["rtol"]), "atol": float(options["atol"])})


# --- judging, in the grader's process ----------------------------------------------------

def show(value, limit=300):
    """A short text for ``value``."""
    with np.printoptions(threshold=20, edgeitems=3, precision=8):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + " ..."


def judge(reference, sent):
    """Compare what a student's kernel ``sent`` at one check with the ``reference`` record.

    Returns "" when they agree, else a message that says what was expected and what came."""
    if not isinstance(sent, dict) or sent.get("site") != reference["site"]:
        return f"{reference['what']}: the checks did not run in the order of the test"
    if "error" in sent:
        return f"{reference['what']}: {sent['error']}"
    try:
        got = decode(sent["got"])
    except (KeyError, ValueError, RecursionError) as exc:
        return f"{reference['what']}: the value could not be read ({type(exc).__name__})"
    expected = decode(reference["expected"])
    kind, what = reference["kind"], reference["what"]
    if kind == "contains":
        parts = [expected] if isinstance(expected, str) else list(expected)
        missing = [part for part in parts if type(got) is not str or part not in got]
        return f"{what}: expected a text that contains {show(missing)}, got {show(got)}" \
            if missing else ""
    if kind != "equal":
        number = _numbers(got)
        if number is None or number.shape != ():
            return f"{what}: expected a number, got {show(got)}"
        if kind == "at_least" and not number >= expected:
            return f"{what}: expected at least {show(expected)}, got {show(got)}"
        if kind == "at_most" and not number <= expected:
            return f"{what}: expected at most {show(expected)}, got {show(got)}"
        return ""
    if got is None and expected is not None:
        return f"{what}: your code returned None. Did the function forget to `return` its result?"
    try:
        if same(got, expected, reference["rtol"], reference["atol"]):
            return ""
    except RecursionError:
        return f"{what}: the value is nested too deeply to compare"
    if _numbers(got) is not None and _numbers(expected) is not None \
            and _numbers(got).shape != _numbers(expected).shape:
        return (f"{what}: expected shape {_numbers(expected).shape}, "
                f"got shape {_numbers(got).shape}")
    return f"{what}: expected {show(expected)}, got {show(got)}"


def same(got, expected, rtol, atol):
    """Whether two plain values agree: numbers and arrays of numbers within
    ``atol + rtol * |expected|``, with equal shapes; anything else equal, item by item."""
    a, b = _numbers(got), _numbers(expected)
    if a is not None and b is not None:
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))
    if type(got) in (list, tuple) and type(expected) in (list, tuple):
        return type(got) is type(expected) and len(got) == len(expected) and all(
            same(x, y, rtol, atol) for x, y in zip(got, expected))
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(
            same(got[key], expected[key], rtol, atol) for key in got)
    return type(a) is type(b) and got == expected


def _numbers(value):
    """``value`` as an array of numbers, or None when it is not numbers."""
    if isinstance(value, (str, dict, frozenset)):
        return None
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        return None
    if array.dtype.kind not in _NUMERIC_KINDS:
        return None
    return array if array.dtype.kind in "fc" else array.astype(float)
