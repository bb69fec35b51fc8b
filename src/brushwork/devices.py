"""Where a run computes: device, network precision, allocator tuning, memory available.

Error messages name option values ("device 'cuda'"), not CLI flags: the
studio's users never typed a flag.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

import torch

from brushwork.errors import ConfigError


@functools.cache
def tune_cpu_allocator() -> bool:
    """Keep freed tensor memory in glibc's heap instead of returning it to the OS.

    Every iteration allocates and frees the same large activations; glibc serves
    blocks over 32 MB-ish with mmap and unmaps them on free, so each iteration
    page-faults them in again (measured: 5x fewer page faults and 18% less time per
    iteration at 512 px). Raising the mmap and trim thresholds is process-wide but
    harmless; it runs once, and only where glibc is there.
    """
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 30)
    except (OSError, AttributeError):
        return False
    return bool(ok)


def release_free_memory() -> bool:
    """Hand the heap's free pages back to the OS (glibc ``malloc_trim``).

    :func:`tune_cpu_allocator` keeps freed blocks in the heap, which pays at one
    size; across a print's scales it does not: each scale's L-BFGS history
    vectors are larger than the last's and cannot reuse their holes, so the
    heap's peak grows scale by scale, and within a tiled scale short-lived tile
    activations interleave with the long-lived history. ``malloc_trim(0)``
    returns every free page inside the heap (madvise), not only its top.
    """
    if sys.platform != "linux":
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA, else MPS, else CPU; a named device must be there."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for, but no CUDA GPU is available")
    if name == "mps" and not _mps_available():
        raise ConfigError("device 'mps' was asked for, but Apple's MPS backend is not available")
    if name not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unknown device {name!r} (choose from auto, cpu, cuda, mps)")
    return torch.device(name)


def _torch_cpu_has(*checks: str) -> bool:
    """Whether any of ``torch.cpu``'s private capability checks (``_is_…_supported``)
    that this torch build has says yes."""
    cpu = getattr(torch, "cpu", None)
    try:
        return any(bool(getattr(cpu, name)()) for name in checks if hasattr(cpu, name))
    except RuntimeError:
        return False


def cpu_has_bf16() -> bool:
    """True where the CPU has native bf16 dot products (AVX512-BF16 or AMX).

    Not ``torch.ops.mkldnn._is_mkldnn_bf16_supported()``: that is true on any
    AVX-512 CPU, where oneDNN only emulates bf16, several times slower than fp32.
    """
    return _torch_cpu_has("_is_avx512_bf16_supported", "_is_amx_tile_supported")


def cpu_has_amx() -> bool:
    """True where the CPU has AMX tiles (Intel Xeon from Sapphire Rapids on)."""
    return _torch_cpu_has("_is_amx_tile_supported")


def cpu_runs_amx_bf16(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether a run on ``device`` in ``dtype`` computes on AMX tiles: the CPU speed
    class whose default iterations are :data:`~brushwork.config.FAST_CPU_ITERATIONS`."""
    return device.type == "cpu" and dtype == torch.bfloat16 and cpu_has_amx()


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    """The network's compute dtype. Losses, Grams and the optimizer stay fp32."""
    if name == "fp32":
        return torch.float32
    if name == "bf16":
        return torch.bfloat16
    if name == "fp16":
        if device.type == "cpu":
            raise ConfigError("precision fp16 is for GPUs; on the CPU use bf16 or fp32")
        return torch.float16
    if name != "auto":
        raise ConfigError(f"unknown precision {name!r} (choose from auto, fp32, bf16, fp16)")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return torch.float32


def available_memory(device: torch.device) -> int | None:
    """Bytes a run may still take on ``device``, or None where it cannot be told.

    CPU: the kernel's MemAvailable (free memory plus what the page cache can give
    back), falling back to free physical pages. CUDA: the driver's free memory.
    """
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
