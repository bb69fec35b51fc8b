"""Benchmark steps in a fresh Python process, and the peak memory they read.

Torch-free on purpose: a parent that only launches children stays light, and every
child measures its own peak from an empty heap.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parents[1] / "shared" / "images"
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni")


def cpu_info() -> dict[str, str]:
    """The CPU every figure is named with: model, family, the flags that decide
    brushwork's speed (bf16 and AMX), and the Python version."""
    model, family, flags = platform.processor(), "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "cpu family":
                family = value.strip()
            elif key.strip() == "flags":
                have = set(value.split())
                flags = " ".join(f for f in CPU_FLAGS if f in have)
                break
    except OSError:
        pass
    return {"cpu": model, "family": family, "flags": flags, "python": platform.python_version()}


def cpu_line() -> str:
    """:func:`cpu_info` as one header line."""
    i = cpu_info()
    flags = i["flags"] or "no bf16/AMX flags"
    return f"{i['cpu']} (family {i['family']}; {flags}), {os.cpu_count()} CPUs"


def vm_hwm_bytes(pid: int | str = "self") -> int:
    """A process's high-water RSS (VmHWM), Linux only.

    Not ``ru_maxrss``, which Linux carries over exec from the parent.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def run_child(script: str, *args: str, quiet: bool = False) -> dict[str, Any]:
    """Run ``python -c script args`` and return the JSON on its last stdout line.

    The child can import this directory's modules (``from child import vm_hwm_bytes``).
    Its stderr passes through (live progress) unless ``quiet``.
    """
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": str(ROOT) if not path else f"{ROOT}{os.pathsep}{path}"}
    run = subprocess.run(
        [sys.executable, "-c", script, *args],
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if quiet else None,
        text=True,
        env=env,
    )
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result
