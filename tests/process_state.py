"""What a new kernel process starts from, put back between in-process "kernel" sessions."""

from __future__ import annotations

import builtins
import csv
import decimal
import gc
import locale
import logging
import os
import random
import socket
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd


@dataclass
class ProcessState:
    """What a new kernel process would start from, put back at each restart: the working
    directory, environment, import path, random generators, the project's own modules and the
    process's settings (interpreter limits, umask, locale, time zone, decimal, builtins, the
    cyclic collector)."""

    project: Path
    cwd: str = field(default_factory=os.getcwd)
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    path: list[str] = field(default_factory=lambda: list(sys.path))
    random_state: Any = field(default_factory=random.getstate)
    numpy_state: Any = field(default_factory=lambda: np.random.get_state())
    warning_filters: list[Any] = field(default_factory=lambda: list(warnings.filters))
    logging_root: tuple[int, list[Any]] = field(
        default_factory=lambda: (logging.root.level, list(logging.root.handlers))
    )
    numpy_options: dict[str, Any] = field(default_factory=np.get_printoptions)
    numpy_errors: dict[str, Any] = field(default_factory=np.geterr)
    pandas_options: dict[str, Any] = field(default_factory=lambda: _pandas_options())
    matplotlib_settings: dict[str, Any] = field(
        default_factory=lambda: dict(dict.items(matplotlib.rcParams))
    )
    interpreter: tuple[int, float, int, float | None, int] = field(
        default_factory=lambda: (
            sys.getrecursionlimit(),
            sys.getswitchinterval(),
            sys.get_int_max_str_digits(),
            socket.getdefaulttimeout(),
            csv.field_size_limit(),
        )
    )
    umask: int = field(default_factory=lambda: _umask())
    locale_name: str = field(default_factory=lambda: locale.setlocale(locale.LC_ALL))
    decimal_context: decimal.Context = field(default_factory=lambda: decimal.getcontext().copy())
    builtin_names: dict[str, Any] = field(default_factory=lambda: dict(vars(builtins)))
    collector: tuple[bool, tuple[int, ...]] = field(
        default_factory=lambda: (gc.isenabled(), gc.get_threshold())
    )

    def reset(self) -> None:
        os.chdir(self.cwd)
        os.environ.clear()
        os.environ.update(self.environ)
        sys.path[:] = self.path
        random.setstate(self.random_state)
        np.random.set_state(self.numpy_state)
        warnings.filters[:] = self.warning_filters
        warnings._filters_mutated()  # type: ignore[attr-defined]
        logging.root.setLevel(self.logging_root[0])
        for handler in logging.root.handlers:
            if handler not in self.logging_root[1]:
                handler.close()
        logging.root.handlers[:] = self.logging_root[1]
        np.set_printoptions(**self.numpy_options)
        np.seterr(**self.numpy_errors)
        _put_back(pd._config.config._global_config, self.pandas_options)
        dict.update(matplotlib.rcParams, self.matplotlib_settings)
        limit, interval, digits, timeout, field_size = self.interpreter
        sys.setrecursionlimit(limit)
        sys.setswitchinterval(interval)
        sys.set_int_max_str_digits(digits)
        socket.setdefaulttimeout(timeout)
        csv.field_size_limit(field_size)
        os.umask(self.umask)
        locale.setlocale(locale.LC_ALL, self.locale_name)
        time.tzset()  # (from the environment put back)
        decimal.setcontext(self.decimal_context.copy())
        names = vars(builtins)
        for name in set(names) - set(self.builtin_names):
            del names[name]
        names.update(self.builtin_names)
        (gc.enable if self.collector[0] else gc.disable)()
        gc.set_threshold(*self.collector[1])
        inside = str(self.project)
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", None) or "").startswith(inside):
                del sys.modules[name]


def _umask() -> int:
    found = os.umask(0o022)
    os.umask(found)
    return found


def _pandas_options() -> dict[str, Any]:
    """pandas' options as it keeps them (read without its deprecation warnings)."""
    return _copied(pd._config.config._global_config)


def _copied(options: dict[str, Any]) -> dict[str, Any]:
    return {k: _copied(v) if type(v) is dict else v for k, v in options.items()}


def _put_back(options: dict[str, Any], saved: dict[str, Any]) -> None:
    for key, value in saved.items():
        if type(value) is dict:
            _put_back(options[key], value)
        else:
            options[key] = value
