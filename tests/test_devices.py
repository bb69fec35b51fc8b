"""Device and precision resolution, and the memory a run may take."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from brushwork.devices import (
    available_memory,
    cpu_has_amx,
    cpu_has_bf16,
    cpu_runs_amx_bf16,
    resolve_device,
    resolve_precision,
)
from brushwork.errors import ConfigError

CPU = torch.device("cpu")


def test_cpu_is_the_cpu() -> None:
    assert resolve_device("cpu") == CPU


def test_auto_picks_the_accelerator_or_the_cpu() -> None:
    want = "cuda" if torch.cuda.is_available() else "cpu"  # no MPS on Linux
    assert resolve_device("auto").type == want


def test_named_device_must_be_there_and_messages_name_no_flags() -> None:
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        with pytest.raises(ConfigError) as e:
            resolve_device("cuda")
        msg = str(e.value)
        assert msg == "device 'cuda' was asked for, but no CUDA GPU is available"
        assert "--" not in msg
    with pytest.raises(ConfigError) as e:
        resolve_device("tpu")
    assert "'tpu'" in str(e.value) and "--" not in str(e.value)


def test_precision_names() -> None:
    assert resolve_precision("fp32", CPU) == torch.float32
    assert resolve_precision("bf16", CPU) == torch.bfloat16
    with pytest.raises(ConfigError) as e:
        resolve_precision("fp16", CPU)
    assert "fp16" in str(e.value) and "--" not in str(e.value)
    with pytest.raises(ConfigError) as e:
        resolve_precision("fp8", CPU)
    assert "--" not in str(e.value)


def test_auto_precision_on_the_cpu_is_bf16_where_it_is_native() -> None:
    want = torch.bfloat16 if cpu_has_bf16() else torch.float32
    assert resolve_precision("auto", CPU) == want


def test_the_amx_speed_class_is_the_cpus_amx_flag_with_bf16() -> None:
    """cpu_has_amx agrees with the kernel's flags (Linux); the fast class needs bf16 too."""
    flags: set[str] = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    assert cpu_has_amx() == ("amx_tile" in flags)
    assert cpu_runs_amx_bf16(CPU, torch.bfloat16) == ("amx_tile" in flags)
    assert not cpu_runs_amx_bf16(CPU, torch.float32)
    assert not cpu_runs_amx_bf16(torch.device("cuda"), torch.bfloat16)


def test_available_memory_is_at_most_the_machines() -> None:
    got = available_memory(CPU)
    assert isinstance(got, int) and got > 0
    total = None
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            total = int(line.split()[1]) * 1024
    assert total is not None
    assert got <= total
    assert available_memory(torch.device("meta")) is None
