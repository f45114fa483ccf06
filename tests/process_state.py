"""What a new kernel process starts from, put back between in-process "kernel" sessions."""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class ProcessState:
    """What a new kernel process would start from, put back at each restart: the working
    directory, environment, import path, random generators and the project's own modules."""

    project: Path
    cwd: str = field(default_factory=os.getcwd)
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    path: list[str] = field(default_factory=lambda: list(sys.path))
    random_state: Any = field(default_factory=random.getstate)
    numpy_state: Any = field(default_factory=lambda: np.random.get_state())

    def reset(self) -> None:
        os.chdir(self.cwd)
        os.environ.clear()
        os.environ.update(self.environ)
        sys.path[:] = self.path
        random.setstate(self.random_state)
        np.random.set_state(self.numpy_state)
        inside = str(self.project)
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", None) or "").startswith(inside):
                del sys.modules[name]
