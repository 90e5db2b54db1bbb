"""Finding a function's handler: the init phase of a Python environment.

``load_handler("pkg.module.name", code_dir)`` imports the module (with ``code_dir``
first on ``sys.path``, and the function's layers after its requirements) and returns
the callable. Every way this can fail becomes a
``LoadError`` with Lambda's error types, and a message that names the module, file
or handler at fault:

- ``Runtime.MalformedHandlerName``: the handler is not ``module.function``;
- ``Runtime.UserCodeSyntaxError``: the module (or one it imports) does not compile;
- ``Runtime.ImportModuleError``: the module, or one it imports, cannot be found;
- ``Runtime.HandlerNotFound``: the module has no such callable;
- any other exception raised while importing keeps its own class name.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

#: The folder of a function's code that holds its layers (``runtime.base.OPT_DIR``),
#: and the folder of the runtime overlay in a function's environment
#: (``functions.build.RUNTIME_DIR``); spelled here so an environment imports neither.
OPT_DIR = ".triggerfish-opt"
RUNTIME_DIR = "_runtime"


class LoadError(Exception):
    def __init__(self, error_type: str, message: str, stack_trace: list[str]) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack_trace = stack_trace


def user_frames(exc: BaseException) -> list[str]:
    """The traceback of ``exc`` without the runtime's own frames."""
    frames = traceback.extract_tb(exc.__traceback__)
    stdlib = os.path.dirname(os.__file__)
    hidden = (
        os.path.dirname(__file__),
        os.path.join(stdlib, "asyncio"),
        os.path.join(stdlib, "importlib"),
        "<frozen",
    )
    kept = [frame for frame in frames if not frame.filename.startswith(hidden)]
    return traceback.format_list(kept)


def add_layers(code_dir: str) -> None:
    """Put the function's layers on ``sys.path`` as Lambda puts ``/opt``'s:
    ``python/lib/python3.X/site-packages`` then ``python``, after the function's code
    and its own requirements, before what the runtime bundles (so a layer's boto3
    wins over the bundled one, and the function's own over a layer's)."""
    opt = os.path.join(code_dir, OPT_DIR)
    if not os.path.isdir(opt):
        return
    os.environ["TRIGGERFISH_OPT"] = opt
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    folders = [os.path.join(opt, "python", "lib", version, "site-packages")]
    folders.append(os.path.join(opt, "python"))
    folders = [f for f in folders if os.path.isdir(f) and f not in sys.path]
    # A function's own environment lists its site-packages, then the runtime overlay
    # (``functions.build``); the server's interpreter lists the bundle after the code.
    overlay = [i for i, entry in enumerate(sys.path) if os.path.basename(entry) == RUNTIME_DIR]
    at = overlay[0] if overlay else sys.path.index(code_dir) + 1
    sys.path[at:at] = folders


def load_handler(handler: str, code_dir: str) -> Callable[..., Any]:
    module_name, _, function_name = handler.replace("/", ".").rpartition(".")
    if not module_name or not function_name:
        raise LoadError(
            "Runtime.MalformedHandlerName",
            f"Bad handler '{handler}': expected 'module.function'",
            [],
        )
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    add_layers(code_dir)
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        where = f"{os.path.basename(exc.filename or '?')}, line {exc.lineno}"
        raise LoadError(
            "Runtime.UserCodeSyntaxError",
            f"Syntax error in module '{module_name}': {exc.msg} ({where})",
            user_frames(exc),
        ) from None
    except ImportError as exc:
        message = f"Unable to import module '{module_name}': {exc}"
        if isinstance(exc, ModuleNotFoundError) and exc.name == module_name.split(".")[0]:
            message += f" (looked in {code_dir})"
        raise LoadError("Runtime.ImportModuleError", message, user_frames(exc)) from None
    except MemoryError:
        raise
    except Exception as exc:
        raise LoadError(
            type(exc).__name__,
            f"Error importing module '{module_name}': {exc}",
            user_frames(exc),
        ) from None
    function = getattr(module, function_name, None)
    if function is None:
        raise LoadError(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'"
            f" ({getattr(module, '__file__', module_name)})",
            [],
        )
    if not callable(function):
        raise LoadError(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' on module '{module_name}' is not callable",
            [],
        )
    return function  # type: ignore[no-any-return]
