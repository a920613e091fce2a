"""What a job asks of this machine: the amount the agent holds for it, the checks
before it is queued, and the site options that mean nothing here (each warned
about once per process, never dropped silently).
"""

from __future__ import annotations

import logging
import threading

from jobfleet.backends.local.plan import Amount
from jobfleet.errors import SpecError
from jobfleet.resources import Resources

__all__ = ["MAPPING", "check_local_request", "local_amount"]

logger = logging.getLogger(__name__)

#: How each key of ``resources:`` is honoured on this machine (read by docs and
#: ``jobfleet options``).
MAPPING: dict[str, str] = {
    "cores": "cores held: tasks x cores; the agent starts the job once that many of this "
    "machine's cores are free (local.cores)",
    "memory": "memory held: the agent starts the job once that much of local.memory is not "
    "promised to other jobs; not a limit on the job",
    "walltime": "enforced: the agent ends the job at its limit (TERM, then KILL after "
    "local.cancel_grace); reported timeout",
    "gpus": "GPUs held: free ones of local.gpus, named in CUDA_VISIBLE_DEVICES",
    "nodes": "1 only (error otherwise)",
    "queue": "not used: the local backend has one queue",
    "account": "not used: nothing is charged on this machine",
    "extra_directives": "not used (no directives)",
    "directives_skip": "not used (no directives)",
    "extra_args": "not used: nothing is run to submit a local job",
    "tasks": "cores held: tasks x cores; mpirun/mpiexec -np tasks",
    "tasks_per_node": "as tasks (one node)",
    "cores_per_task": "as cores",
    "gpus_per_node": "as gpus (one node)",
    "gpus_per_task": "GPUs held: tasks x gpus_per_task",
    "memory_per_core": "memory held: memory_per_core x tasks x cores",
    "exclusive": "holds every core of the local backend: nothing runs beside it",
    "launcher": "mpirun/mpiexec -np tasks (Open MPI: may oversubscribe, binds no ranks); "
    "srun is an error",
    "qos": "warning, once: not used",
    "constraint": "warning, once: not used",
    "reservation": "warning, once: not used",
    "mail_to": "warning, once: no mail is sent",
    "mail_on": "as mail_to",
    "licenses": "warning, once: not counted",
    "priority": "warning, once: jobs start in submission order (with backfill)",
    "begin": "error: the local backend starts a job as soon as it fits",
    "name_prefix": "the job's name in the local queue (jobfleet queue) starts with it",
}

#: Options a cluster profile may carry that the local backend has no use for.
_IGNORED = ("qos", "constraint", "reservation", "mail_to", "licenses", "priority")
_warned: set[str] = set()
_warned_lock = threading.Lock()


def local_amount(res: Resources, cores: int) -> Amount:
    """What the agent holds for one task of the queue (a job or an array element).

    Args:
        res: the job's resources.
        cores: every core the local backend has (an exclusive job holds them all).
    """
    held = cores if res.exclusive else res.total_cores
    if res.memory_per_core_bytes is not None:
        memory = res.memory_per_core_bytes * res.total_cores
    else:
        memory = res.memory_bytes or 0
    gpus = res.gpus or res.gpus_per_node or res.gpus_per_task * res.total_tasks
    return Amount(held, memory, gpus)


def check_local_request(res: Resources, capacity: Amount) -> None:
    """Refuse what this machine cannot give; warn (once) about what it ignores.

    Raises:
        SpecError: several nodes, a start time, srun, or more than the capacity.
    """
    if res.nodes != 1:
        raise SpecError("resources.nodes", "the local backend runs on this one machine; use 1")
    if res.begin is not None:
        raise SpecError("resources.begin", f"not on the local backend: {MAPPING['begin']}")
    if res.launcher == "srun":
        raise SpecError("resources.launcher", "srun needs SLURM; use mpirun or mpiexec locally")
    need = local_amount(res, capacity.cores)
    field = "tasks" if res.total_tasks > 1 else "cores"
    for key, asked, has, what in (
        (field, need.cores, capacity.cores, "cores"),
        ("memory", need.memory, capacity.memory, "memory"),
        ("gpus", need.gpus, capacity.gpus, "gpus"),
    ):
        if asked > has:
            unit = " bytes" if what == "memory" else f" {what}"
            raise SpecError(
                f"resources.{key}",
                f"asks for {asked}{unit} but the local backend has {has} "
                f"(set local.{what} in the configuration to change that)",
            )
    for key in _IGNORED:
        if getattr(res, key) and key not in _warned:
            with _warned_lock:
                if key in _warned:
                    continue
                _warned.add(key)
            logger.warning("resources.%s is ignored by the local backend (%s)", key, MAPPING[key])
