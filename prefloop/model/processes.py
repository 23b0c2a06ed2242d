"""Several processes sharing one job: which share of a list is this process's, and how the shares meet.

prefloop has no launcher of its own: ``accelerate launch`` (or ``torchrun``) starts the
processes and sets ``WORLD_SIZE`` / ``RANK``; accelerate's ``PartialState`` joins them, over
NCCL on GPUs and gloo on CPUs. Without a launcher there is one process and every function here
is the identity (no torch.distributed, no accelerate import).

On a machine without GPUs, accelerate starts several local processes only through its
multi-process launcher: ``accelerate launch --multi_gpu --num_processes 2 -m prefloop ...``
(the name is accelerate's; prefloop then asks for the CPU backend). ``accelerate launch
--num_processes 2`` alone runs ONE process there, by accelerate's design.
"""

from __future__ import annotations

import functools
import os
from typing import Any

__all__ = ["barrier", "from_main", "gather", "is_main", "rank", "share", "world_size"]


@functools.cache
def _state() -> Any:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def world_size() -> int:
    state = _state()
    return 1 if state is None else int(state.num_processes)


def rank() -> int:
    state = _state()
    return 0 if state is None else int(state.process_index)


def is_main() -> bool:
    return rank() == 0


def share(n: int) -> slice:
    """This process's contiguous share of ``range(n)``: sizes differ by at most one, in rank order."""
    size, r = world_size(), rank()
    base, extra = divmod(n, size)
    start = r * base + min(r, extra)
    return slice(start, start + base + (1 if r < extra else 0))


def gather(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order, on every process (a collective: all must call it)."""
    if world_size() == 1:
        return [obj]
    from accelerate.utils import gather_object

    return list(gather_object([obj]))


def from_main(obj: Any) -> Any:
    """The main process's ``obj`` on every process (what it saw before anyone wrote)."""
    return gather(obj)[0]


def barrier() -> None:
    state = _state()
    if state is not None:
        state.wait_for_everyone()
