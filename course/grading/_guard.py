"""The autograder's tripwire inside a grading kernel.

The autograder runs a submission's answer cells and the source notebook's tests in one
kernel, one after the other, so code in an answer could try to change how a later test
behaves instead of passing it. This module watches for that from inside the kernel. The
grader drives it with one-line calls that it adds to the code it runs (never to answers):

``install(roots, imports, builtin_names)``
    Runs first, before any answer. Imports ``imports`` and records the objects the tests
    rely on: everything bound in ``builtins``; the functions, classes and class methods of
    every loaded module under ``roots`` (NumPy, ``math``, the ``course`` library and the
    packages the tests import); the parts of IPython and ipykernel that run a cell and
    report its errors, with their transformers, cell callbacks and message handlers; the
    trace hook; and that the notebook leaves the builtins ``builtin_names`` unbound.
``remember(names)``
    Ends each cell of the source notebook. Records the objects that cell bound to
    ``names`` (the imports and helpers the tests use, such as ``np``) and marks its code
    as trusted.
``watch(source)``
    Runs just before a piece of test code. Starts a profiler that notes comparison methods
    (``__eq__``, ``__bool__``, NumPy's ``__array_ufunc__`` ...) which come from outside
    trusted code and are called by it: a value whose class decides its own comparisons is
    how an answer makes ``result == expected`` true whatever ``expected`` is.
``seal(token, names)``
    Ends each piece of test code. Stops the profiler, checks that nothing recorded has
    been replaced, and only then prints ``token``: a random string the grader made for
    this piece of test code and waits for. A test whose exception was swallowed never
    gets this far, however the swallowing was done.
``recover(names)``
    Follows a source cell or test that stopped before its last line, in place of the
    ``remember`` or ``seal`` it did not reach.

A finding raises ``IntegrityError``, which fails the test; a replaced object also fails
every later test. The checks compare object identities, so they take milliseconds.

This is a tripwire, not a sandbox: code running in the kernel can reach this module too.
It catches the ways of faking a pass that do not single out the grader; the grader's
review of answer code flags those that do (see ``course.grading.grade``).
"""
import builtins
import importlib
import operator
import os
import site
import sys
import sysconfig
from types import FunctionType, ModuleType

#: Modules whose functions and classes the tests may rely on, in every grading.
TRUSTED_ROOTS = ("builtins", "math", "cmath", "operator", "numpy", "course")
#: The modules that run a cell and decide whether it raised.
MACHINERY = (
    "IPython.core.interactiveshell", "IPython.core.compilerop", "IPython.core.events",
    "IPython.core.inputtransformer2", "ipykernel.kernelbase", "ipykernel.ipkernel",
    "ipykernel.zmqshell", "ipykernel.compiler",
)
#: Methods that decide a comparison or a truth value, or take over NumPy functions.
COMPARISONS = frozenset({
    "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__contains__",
    "__array_ufunc__", "__array_function__", "__array_wrap__", "__array_finalize__",
})
#: Arithmetic that NumPy calls on the elements of object arrays (``np.isclose`` computes
#: ``abs(a - b)``), so an object returning 0 from ``__sub__`` would look close to anything.
ARITHMETIC = frozenset({
    "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
    "__rtruediv__", "__pow__", "__rpow__", "__abs__", "__neg__", "__pos__",
})
#: Bytes of a NumPy array the tests use that are copied, to notice changes in place.
_MAX_COPY = 4 * 2**20
#: Entries that ipykernel itself rebinds for every cell it runs.
_VOLATILE = frozenset({("builtins", "input")})
_MISSING = object()
# Where code comes from, by file name (see _origin).
_CELL, _COURSE, _NUMPY, _LIBRARY, _ANSWER = "cell", "course", "numpy", "library", "answer"


class IntegrityError(Exception):
    """Answer code changed something the tests rely on."""


class _Records:
    """What ``install`` recorded, and what the checks have found since."""

    def __init__(self, roots):
        self.roots = frozenset(roots)
        self.shell = builtins.get_ipython()  # IPython puts it in builtins
        self.stdout = sys.stdout  # the token is written here even if sys.stdout is replaced
        self.namespaces = {}  # label -> _Namespace
        self.modules = {}  # name -> module, as in sys.modules
        self.references = {}  # label -> (getter, object)
        self.sequences = {}  # label -> (getter, tuple of items)
        self.bindings = {}  # user-namespace name -> object
        self.contents = {}  # user-namespace name -> copy of a NumPy array's contents
        self.functions = []  # (label, function, its code, defaults, keyword defaults)
        self.problems = []  # replaced objects found so far (they fail every later test)
        self.suspects = []  # comparisons made by answer code during the current test
        self.origins = {}  # file name -> _CELL, _COURSE, _NUMPY, _LIBRARY or _ANSWER
        self.course_dir = _package_dir("course")
        self.numpy_dir = _package_dir("numpy")
        paths = sysconfig.get_paths()
        libraries = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
        libraries.update(site.getsitepackages() + [site.getusersitepackages()])
        self.library_dirs = tuple(os.path.join(path, "") for path in sorted(libraries))


class _Namespace:
    """The recorded entries of one namespace (a module's, a class's, an object's)."""

    def __init__(self, mapping):
        self.mapping = mapping
        self.keys, self.values = [], []
        self.shape = None  # (len(mapping), its last key) when last recorded

    def unchanged(self):
        """Whether every recorded entry is still the same object (a C-speed loop)."""
        return all(map(operator.is_, map(self.mapping.get, self.keys), self.values))


_records = None
_CODE = operator.attrgetter("__code__")
_DEFAULTS = operator.attrgetter("__defaults__")
_KWDEFAULTS = operator.attrgetter("__kwdefaults__")


def _package_dir(name):
    module = sys.modules.get(name) or importlib.import_module(name)
    return os.path.join(os.path.dirname(module.__file__), "")


# --- the calls the grader makes ----------------------------------------------------------

def install(roots=(), imports=(), builtin_names=()):
    """Record what the tests rely on; the grader runs this before any answer code.

    ``builtin_names``: builtins the tests use; the notebook must not bind them itself.
    """
    global _records
    for name in imports:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the notebook itself will report a bad import
            pass
    _records = _Records(TRUSTED_ROOTS + tuple(roots))
    _record_machinery(_records)
    _refresh(_records)
    _bind(_records, builtin_names)  # none bound: they come from builtins


def remember(names=()):
    """End of a source-notebook cell: record what it bound to ``names``; trust its code.

    The cell may have rebound ``names`` and changed its data in place, so those are taken
    as they now are; anything else that changed since the last check was an answer's doing.
    """
    records = _records
    _bind(records, names)
    _add_problems(records, _check(records, contents=False))
    _trust(records, sys._getframe(1).f_code.co_filename)
    if not records.problems:
        _refresh(records)
    _copy_contents(records)


def watch(source):
    """Start watching comparisons, just before the test code ``source`` runs."""
    records = _records
    _trust(records, records.shell.compile.get_code_name(source, source, 0))
    records.suspects = []
    sys.setprofile(_profile)


def seal(token, names=()):
    """End of test code: stop watching, record ``names``, check, then print ``token``."""
    records = _records
    hook = sys.getprofile()
    sys.setprofile(None)
    _bind(records, names)  # the test's own variables and helpers
    _add_problems(records, _check(records))
    found = list(records.problems)
    if hook is not _profile:
        found.append("the profiler that watches the tests was switched off")
    found += records.suspects
    if found:
        raise IntegrityError(_describe(found))
    _trust(records, sys._getframe(1).f_code.co_filename)
    _refresh(records)
    _copy_contents(records)
    records.stdout.write(f"\n{token}\n")
    records.stdout.flush()


def recover(names=()):
    """After a source cell or test that stopped early: stop watching, and take ``names``
    (the names it binds, some perhaps rebound before it stopped) as they now are."""
    if sys.getprofile() is _profile:
        sys.setprofile(None)
    _bind(_records, names)


# --- recording ----------------------------------------------------------------------------

def _worth_recording(value):
    """Functions, classes, modules and descriptors: what tests call, not data that changes."""
    return callable(value) or isinstance(value, ModuleType) or hasattr(type(value), "__get__")


def _record(records, label, mapping):
    """Record the entries of ``mapping`` worth recording, keeping earlier records.

    A Python function can be changed without being replaced (``f.__code__ = ...``), so
    its code and default arguments are recorded too. Returns whether ``mapping`` changed.
    Its size and last key tell cheaply whether any key was added: a new key goes last,
    so deleting one entry and adding another is seen too.
    """
    shape = (len(mapping), next(reversed(mapping), None))
    entry = records.namespaces.get(label)
    if entry is None:
        entry = records.namespaces[label] = _Namespace(mapping)
    elif shape == entry.shape:
        return False  # no new key; anything replaced is _check's business
    known = set(entry.keys)
    for key, value in list(mapping.items()):
        if key in known or not _worth_recording(value) or (label, key) in _VOLATILE:
            continue
        entry.keys.append(key)
        entry.values.append(value)
        if isinstance(value, FunctionType):
            records.functions.append((f"{label}.{key}", value, value.__code__,
                                      value.__defaults__, value.__kwdefaults__))
    entry.shape = shape
    return True


def _refresh(records):
    """Record modules loaded since the last refresh, and anything new in the known ones."""
    _record(records, "builtins", vars(builtins))
    for name, module in list(sys.modules.items()):
        if not isinstance(module, ModuleType):
            continue
        if name.partition(".")[0] not in records.roots and name not in MACHINERY:
            continue
        records.modules.setdefault(name, module)
        if records.modules[name] is not module:
            continue  # replaced: _check reports it
        if _record(records, name, vars(module)):
            for value in list(vars(module).values()):
                if isinstance(value, type) and value.__module__ == name:
                    _record(records, f"{name}.{value.__qualname__}", vars(value))


def _record_machinery(records):
    """Record the shell's and kernel's own state that decides how a cell runs."""
    shell = records.shell
    references = {
        "get_ipython().user_ns": lambda: shell.user_ns,
        "get_ipython().user_global_ns": lambda: shell.user_global_ns,
        "the notebook's __builtins__": lambda: shell.user_ns.get("__builtins__"),
        "get_ipython().compile": lambda: shell.compile,
        "get_ipython().events": lambda: shell.events,
        "get_ipython().input_transformer_manager": lambda: shell.input_transformer_manager,
        "get_ipython().custom_exceptions": lambda: shell.custom_exceptions,
        "sys.gettrace()": sys.gettrace,
    }
    records.references = {label: (get, get()) for label, get in references.items()}
    manager = shell.input_transformer_manager
    sequences = {
        "get_ipython().input_transformers_cleanup": lambda: shell.input_transformers_cleanup,
        "get_ipython().input_transformers_post": lambda: shell.input_transformers_post,
        "get_ipython().ast_transformers": lambda: shell.ast_transformers,
        "the input transformers": lambda: manager.cleanup_transforms + manager.line_transforms
        + manager.token_transformers,
        "the pre_run_cell callbacks": lambda: shell.events.callbacks.get("pre_run_cell", []),
        "the post_run_cell callbacks": lambda: shell.events.callbacks.get("post_run_cell", []),
    }
    records.sequences = {label: (get, tuple(get())) for label, get in sequences.items()}
    kernel = getattr(shell, "kernel", None)
    if kernel is not None:
        _record(records, "the kernel's message handlers", kernel.shell_handlers)
    for label, instance in (("get_ipython()", shell), ("get_ipython().kernel", kernel),
                            ("get_ipython().compile", shell.compile)):
        if instance is not None:
            _record(records, label, vars(instance))


def _bind(records, names):
    """Record the objects bound to ``names`` in the notebook (or that none is)."""
    namespace = records.shell.user_ns
    for name in names:
        value = records.bindings[name] = namespace.get(name, _MISSING)
        records.contents.pop(name, None)
        if (contents := _contents(value)) is not None:
            records.contents[name] = contents


def _copy_contents(records):
    """Copy the contents of the small NumPy arrays recorded, which could change in place."""
    copies = {name: _contents(value) for name, value in records.bindings.items()}
    records.contents = {name: copy for name, copy in copies.items() if copy is not None}


def _contents(value):
    """A copy of a small numeric NumPy array's shape, type and data, else None."""
    numpy = sys.modules.get("numpy")
    if (numpy is None or type(value) is not numpy.ndarray or value.dtype.kind not in "biufcmM"
            or value.nbytes > _MAX_COPY):
        return None
    return value.shape, value.dtype.str, value.tobytes()


def _trust(records, filename):
    records.origins[filename] = _CELL


# --- checking -----------------------------------------------------------------------------

def _check(records, contents=True):
    """The recorded things that have been replaced (or, with ``contents``, whose NumPy
    arrays have changed), as readable names."""
    problems = []
    for label, entry in records.namespaces.items():
        if not entry.unchanged():
            problems += [f"{label}.{key}" for key, value in zip(entry.keys, entry.values)
                         if entry.mapping.get(key, _MISSING) is not value]
    if not _functions_unchanged(records.functions):
        problems += [f"the code of {label}" for label, function, *parts in records.functions
                     if not _functions_unchanged([(label, function, *parts)])]
    for label, instance in (("get_ipython()", records.shell),
                            ("get_ipython().kernel", getattr(records.shell, "kernel", None)),
                            ("get_ipython().compile", records.shell.compile)):
        if instance is None:
            continue
        known = set(records.namespaces[label].keys)
        for key, value in list(vars(instance).items()):
            if key not in known and callable(value) and hasattr(type(instance), key):
                problems.append(f"{label}.{key}")  # an instance attribute hiding a method
    for name, module in records.modules.items():
        if sys.modules.get(name) is not module:
            problems.append(f"sys.modules[{name!r}]")
    for label, (get, value) in records.references.items():
        if get() is not value:
            problems.append(label)
    for label, (get, items) in records.sequences.items():
        current = tuple(get())
        if len(current) != len(items) or not all(map(operator.is_, current, items)):
            problems.append(label)
    namespace = records.shell.user_ns
    for name, value in records.bindings.items():
        if namespace.get(name, _MISSING) is not value:
            problems.append(f"the name {name!r}")
        elif (contents and name in records.contents
              and _contents(value) != records.contents[name]):
            problems.append(f"the contents of {name!r}")
    return problems


def _functions_unchanged(functions):
    """Whether every recorded function still has its code and defaults (C-speed loops)."""
    if not functions:
        return True
    _, funcs, codes, defaults, kwdefaults = zip(*functions)
    return (all(map(operator.is_, map(_CODE, funcs), codes))
            and all(map(operator.is_, map(_DEFAULTS, funcs), defaults))
            and all(map(operator.is_, map(_KWDEFAULTS, funcs), kwdefaults)))


def _add_problems(records, problems):
    records.problems.extend(p for p in problems if p not in records.problems)


def _describe(found):
    replaced = [item for item in found if not item.startswith("a comparison")]
    compared = [item for item in found if item.startswith("a comparison")]
    parts = []
    if replaced:
        shown = ", ".join(replaced[:3])
        if len(replaced) > 3:
            shown += f" and {len(replaced) - 3} more"
        parts.append(f"answer code changed {shown}, which the tests rely on")
    if compared:
        parts.append(compared[0])
    return "; ".join(parts)


# --- the profiler -------------------------------------------------------------------------

def _origin(records, filename):
    """Who wrote the code in ``filename``: a trusted cell, the course library, NumPy, another
    library, or an answer (answer cells, strings run with exec, the student's own files)."""
    origin = records.origins.get(filename)
    if origin is None:
        if filename.startswith(records.course_dir):
            origin = _COURSE
        elif filename.startswith(records.numpy_dir):
            origin = _NUMPY
        elif filename.startswith(records.library_dirs) or filename.startswith("<frozen"):
            origin = _LIBRARY
        else:
            origin = _ANSWER
        records.origins[filename] = origin
    return origin


def _suspicious(callee, caller, caller_code, names):
    """Whether a call from ``caller`` code into ``callee`` code, running as one of ``names``,
    decides a test's comparison (the rules are in ``_profile``)."""
    if caller == _CELL:
        return bool(names & COMPARISONS)
    if caller_code.co_name == "<module>":
        return False  # a library being imported, not a test comparing
    if caller == _NUMPY:
        return bool(names & (COMPARISONS | ARITHMETIC))
    return caller == _COURSE and callee == _ANSWER and bool(names & COMPARISONS)


def _method_names(frame):
    """The names the running function has: its own, and those it is bound to in the class
    of its first argument (``__eq__ = lambda self, other: True`` runs as ``<lambda>``)."""
    code = frame.f_code
    names = {code.co_name}
    if not code.co_argcount:
        return names
    first = frame.f_locals.get(code.co_varnames[0], _MISSING)
    if first is _MISSING:
        return names
    for klass in type(first).__mro__:
        for name, value in list(vars(klass).items()):
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, FunctionType) and value.__code__ is code:
                names.add(name)
    return names


def _profile(frame, event, arg):
    """Note comparisons that code from answers or other libraries decides for the tests.

    Test code may rely on comparisons implemented by itself, the course library and NumPy.
    A comparison method (``COMPARISONS``) from anywhere else, called by test code or by a
    NumPy function, is noted; so is such a method from an answer called by a course
    function, and arithmetic NumPy runs on the elements of object arrays (``ARITHMETIC``).
    Both call and return are checked, so switching the profiler off and on again inside
    the method does not hide it.
    """
    if event != "call" and event != "return":
        return
    records = _records
    try:
        code = frame.f_code
        callee = _origin(records, code.co_filename)
        if callee in (_CELL, _COURSE, _NUMPY) or frame.f_back is None:
            return
        caller_code = frame.f_back.f_code
        caller = _origin(records, caller_code.co_filename)
        if caller in (_LIBRARY, _ANSWER):
            return
        names = _method_names(frame)
        if _suspicious(callee, caller, caller_code, names):
            name = sorted(names & (COMPARISONS | ARITHMETIC))[0]
            owner = frame.f_locals.get(code.co_varnames[0]) if code.co_argcount else None
            what = type(owner).__name__ if owner is not None else "an object"
            note = (f"a comparison in the tests was decided by {what}.{name}, which the "
                    f"answers supplied; tests compare plain values (numbers, arrays, strings)")
            if note not in records.suspects:
                records.suspects.append(note)
    except Exception:  # noqa: BLE001 - a profiler must never raise into the code it watches
        pass
