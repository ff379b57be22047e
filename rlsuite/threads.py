"""How many CPU threads torch uses, chosen on purpose.

rlsuite's batched cores run many small tensor operations (a few thousand elements each). With
torch's default intra-op thread count (one per core) each of them pays OpenMP's fork/join cost,
and on a machine whose cores are busy with anything else the threads wait for each other:
measured on 2 shared cores, the three-body core ran 20× slower with 2 threads than with 1 while
another process kept one core busy, and ``gf2.rank`` 13× slower (``benchmarks/threads.py``
measures every family). The command line therefore runs with **one thread per process** unless
told otherwise (``train.threads`` in a config, ``--threads`` on ``rlsuite eval`` / ``bench``),
which is never slower than one thread and loses at most the parallel speed-up of large batches
on idle cores. On a dedicated many-core machine with batches of thousands of envs, set the
count to the cores you can spare (or run one process per core, e.g. a sweep); on a GPU the CPU
only launches kernels and one thread is right.
"""

from __future__ import annotations

#: The thread count the command line uses when none is given.
DEFAULT_THREADS = 1


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count (``None``: :data:`DEFAULT_THREADS`) and return it."""
    count = DEFAULT_THREADS if threads is None else threads
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(
            f"threads must be a positive int (or None for {DEFAULT_THREADS}), got {threads!r}"
        )
    import torch  # here, so that importing rlsuite stays light

    torch.set_num_threads(count)
    return count
