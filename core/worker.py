"""The worker process: ``python -m core.worker FD RUNNERS_JSON``, started by the job manager.

It imports the runners, warms them up (data into memory, a speed measurement), then runs
each job it is sent in its main thread — where PyTorch's CPU thread pool is fastest — and
reports events back over the socket ``FD``.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from multiprocessing.connection import Connection
from typing import Iterable, Iterator

from core.errors import RunCancelled, UserError
from core.jobs import CANCELLED, FAILED, FINISHED, WARMED_UP, RunContext, Runner, resolve

log = logging.getLogger("core.worker")
# Training takes every core it is given; a lower priority keeps the pages (and, on a laptop, the
# browser) responsive while a run trains on the same machine, at no cost when nothing else waits.
NICENESS = 10


def main(fd: int, runners: dict[str, str]) -> None:
    connection = Connection(fd)
    os.nice(NICENESS)
    resolved = {kind: resolve(path) for kind, path in runners.items()}
    try:
        for info in warm_up_infos(resolved.values()):
            connection.send(("info", info))
    except (BrokenPipeError, EOFError):
        return  # the server stopped while this worker was still warming up: nobody to tell
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return  # the server went away
        if message[0] == "stop":
            return
        if message[0] != "run":
            continue  # a cancel for a run that already ended
        _, run_id, kind, spec = message
        context = RunContext(run_id, connection)
        state, outcome = run_one(resolved[kind], spec, context)
        context.flush()
        connection.send(("done", run_id, state, outcome))
        if context.stop_requested:
            return


def warm_up_infos(runners: Iterable[Runner]) -> Iterator[dict]:
    """What a worker reports at start-up: each runner module's ``warm_up()`` (data into memory,
    a speed measurement), then WARMED_UP, which pages wait for rather than the first lab's numbers."""
    for module in dict.fromkeys(sys.modules[runner.__module__] for runner in runners):  # in the labs' order
        warm_up = getattr(module, "warm_up", None)
        if warm_up is None:
            continue
        try:
            yield warm_up()
        except Exception as error:  # e.g. data that cannot be unpacked: say so, keep serving
            log.exception("warm-up of %s failed", module.__name__)
            yield {"warm_up_error": f"{type(error).__name__}: {error}"[:300]}
    yield {WARMED_UP: True}


def run_one(runner: Runner, spec: dict, context: RunContext) -> tuple[str, dict | None]:
    """Run a job and sort its ending into finished / cancelled / failed with a message."""
    try:
        runner(spec, context)
        return FINISHED, None
    except RunCancelled:
        return CANCELLED, None
    except UserError as error:
        return FAILED, {"key": error.key, "params": error.params, "text": str(error)}
    except MemoryError:
        return FAILED, {"key": "run.out_of_memory", "params": {}, "text": "Out of memory."}
    except Exception as error:  # a bug in a runner must not kill the worker
        log.exception("run %s failed", context.run_id)
        if _is_cuda_out_of_memory(error):
            return FAILED, {"key": "run.out_of_memory", "params": {}, "text": "Out of GPU memory."}
        text = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        return FAILED, {"key": "run.crashed", "params": {"error": text}, "text": text}
    finally:
        _release_device_memory()


def _is_cuda_out_of_memory(error: Exception) -> bool:
    import torch

    return isinstance(error, torch.OutOfMemoryError)


def _release_device_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="worker %(levelname)s %(message)s")
    main(int(sys.argv[1]), json.loads(sys.argv[2]))
