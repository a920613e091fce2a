"""What the fake PBS and Torque qstat print (see fakepbs.py): a job's attributes as
each server holds them (PBS's comment as svr_jobfunc.c's update_job_finish_comment
writes it, "... and terminated by alice@host" for a running job qdel ended; Torque's
exit_code_canceled_job, ``$FAKEPBS_EXIT_CODE_CANCELED``), and the three forms real
qstat writes them in: PBS's text form and JSON (OpenPBS 22.05's prt_attr and pbs_json.c
rules), Torque's one-line XML (``<`` as the byte 0x0E, nothing else escaped). Imported
by fakepbs.py only.
"""

from __future__ import annotations

import json
import os
import pwd
import time
from typing import Any

Job = dict[str, Any]
SERVER = "fakepbs"
LIMIT = 78  # PBS's CHAR_LINE_LIMIT (Torque's linesize is 77)


def dialect() -> str:
    return os.environ.get("FAKEPBS_DIALECT", "pbs")


def canceled_code() -> int | None:
    """Torque's exit_code_canceled_job, if the fake server sets it."""
    code = os.environ.get("FAKEPBS_EXIT_CODE_CANCELED")
    return int(code) if code else None


def comment(job: Job, more: str) -> None:
    """PBS appends to a job's comment as it ends (update_job_finish_comment): only to one
    it has (the server sets "Job run at ..." when it runs the job), and "terminated"
    only once."""
    if job.get("comment") and not ("terminated" in more and "terminated" in job["comment"]):
        job["comment"] += more


def user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid{os.getuid()}"


def finished(job: Job) -> bool:
    return job["state"] in ("F", "X", "C")


def _made_up(job: Job, jobs: dict[str, Job]) -> list[tuple[str, str]]:
    """A PBS element without a job of its own (deleted before it started): qstat
    prints its array's attributes but the array ones, with the element's state letter
    and a comment for it (OpenPBS stat_job.c, status_subjob)."""
    parent = jobs[job["parent"]]
    shown = attributes(job["parent"], parent, jobs)
    out = [(k, v) for k, v in shown if k not in ("array", "array_indices_submitted", "comment")]
    out = [(k, job["state"] if k == "job_state" else v) for k, v in out]
    return [*out, ("comment", "Subjob finished")]


def attributes(job_id: str, job: Job, jobs: dict[str, Job]) -> list[tuple[str, str]]:
    torque = dialect() == "torque"
    if job.get("no_record"):
        return _made_up(job, jobs)
    ctime = lambda t: str(int(t)) if torque else time.ctime(t)  # noqa: E731
    state = job["state"]
    array_own = bool(job.get("array")) and "index" not in job  # subjobs copy "array"
    if array_own:
        kids = [j for j in jobs.values() if j.get("parent") == job_id]
        state = (
            "F"
            if all(finished(k) for k in kids)
            else ("B" if any(k["state"] not in ("Q", "H") for k in kids) else "Q")
        )
        if torque and state == "F":
            state = "C"
    a = [("Job_Name", job["name"]), ("Job_Owner", f"{job['owner']}@{SERVER}")]
    if job.get("start"):
        a += [
            ("resources_used.cput", "00:00:00"),
            ("resources_used.mem", "1024kb"),
            ("resources_used.walltime", hms((job.get("end") or time.time()) - job["start"])),
        ]
    a += [
        ("job_state", state),
        ("queue", "workq"),
        ("server", SERVER),
        ("ctime", ctime(job["qtime"])),
    ]
    if job.get("start"):
        a.append(("exec_host", f"{SERVER}/0" if torque else f"{SERVER}/0*1"))
    # A dependency's hold is the system hold, s (req_register.c, PBS and Torque alike).
    a.append(("Hold_Types", "s" if state == "H" else "n"))
    a += [("Output_Path", f"{SERVER}:{job['output']}"), ("qtime", ctime(job["qtime"]))]
    if job.get("walltime") is not None:
        a.append(("Resource_List.walltime", hms(job["walltime"])))
    if job.get("depend"):
        a.append(("depend", job["depend"]))
    if job.get("start"):
        a.append(("stime" if not torque else "start_time", ctime(job["start"])))
    if not torque:
        # A subjob's own substate, even once its array's has changed (svr_histjob_update
        # keeps a subjob's 91/92/93); the array's own: 70 once begun, when finished
        # the first subjob's (by index) that failed or was terminated, else 92.
        substate = _array_substate(job_id, state, jobs) if array_own else None
        a.append(("substate", str(substate or job.get("substate", 10))))
    a.append(("Variable_List", f"PBS_O_WORKDIR={job['workdir']},PBS_O_HOST={SERVER}"))
    if job.get("comment"):
        a.append(("comment", job["comment"]))
    if job.get("exit") is not None:
        a.append(("exit_status" if torque else "Exit_status", str(job["exit"])))
    if job.get("end") and job.get("start"):
        a.append(("comp_time" if torque else "obittime", ctime(job["end"])))
    if job.get("array") and "index" not in job and not torque:
        a += [("array", "True"), ("array_indices_submitted", _span(job["indices"]))]
    if "index" in job:
        a.append(("job_array_id" if torque else "array_index", str(job["index"])))
    return a


def _array_substate(job_id: str, state: str, jobs: dict[str, Job]) -> int | None:
    """An array's own substate (svr_setjob_histinfo, T_FIN_JOB, OpenPBS 22.05): 91 if
    qdel deleted the array itself; else a subjob deleted before it ran has no job, so
    it counts as finished (92)."""
    if state == "B":
        return 70
    if state != "F":
        return None
    if jobs[job_id].get("terminated"):  # the array itself was deleted
        return 91
    kids = sorted((j for j in jobs.values() if j.get("parent") == job_id), key=_index)
    ended = [k.get("substate") for k in kids if not k.get("no_record")]
    return next((s for s in ended if s in (91, 93)), 92)


def _index(job: Job) -> int:
    return int(job["index"])


def hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _span(indices: list[int]) -> str:
    return f"{indices[0]}-{indices[-1]}"


def text(job_id: str, attrs: list[tuple[str, str]], limit: int) -> list[str]:
    """``qstat -f``: PBS's and Torque's prt_attr, continuation lines and all."""
    lines = [f"Job Id: {job_id}"]
    for name, value in attrs:
        out, start, first = [f"    {name} = "], len(name) + 7, True
        pieces = [p for p in value.split(",") if p]
        for i, piece in enumerate(pieces):
            if len(piece) + start < limit:
                out.append(piece)
                start += len(piece)
            else:
                if not first:
                    out.append("\n\t")
                    start = 9
                for ch in piece:
                    out.append(ch)
                    start += 1
                    if start > limit:
                        start = 8
                        out.append("\n\t")
            if i + 1 < len(pieces):
                first = False
                out.append(",")
        lines.append("".join(out))
    return [*lines, ""]


def _number(value: str) -> bool:
    """Whether OpenPBS 22.05's JSON writer prints the value unquoted (strtod reads it)."""
    try:
        val = float(value)
    except ValueError:
        return False
    return bool(value.strip()) and (not value.startswith("0") or val < 1)


def _json_value(value: str) -> str:
    return value if _number(value) else json.dumps(value)


def as_json(records: list[tuple[str, list[tuple[str, str]]]]) -> list[str]:
    lines = [
        "{",
        f'    "timestamp":{int(time.time())},',
        '    "pbs_version":"22.05.11",',
        f'    "pbs_server":"{SERVER}",',
        '    "Jobs":{',
    ]
    for n, (job_id, attrs) in enumerate(records):
        items, groups = [], {}
        for name, value in attrs:
            head, _, resource = name.partition(".")
            if resource:
                groups.setdefault(head, []).append((resource, value))
                if len(groups[head]) == 1:
                    items.append((head, None))
            elif name == "Variable_List":
                pairs = [p.partition("=") for p in value.split(",")]
                items.append((name, [(k, v) for k, _, v in pairs]))
            else:
                items.append((name, value))
        body = []
        for name, value in items:
            inner = (
                groups.get(name) if value is None else value if isinstance(value, list) else None
            )
            if inner is not None:
                rows = ",\n".join(f'                "{k}":{_json_value(v)}' for k, v in inner)
                body.append(f'            "{name}":{{\n{rows}\n            }}')
            else:
                shown = json.dumps(value) if name == "Job_Name" else _json_value(str(value))
                body.append(f'            "{name}":{shown}')
        comma = "," if n + 1 < len(records) else ""
        lines += [f'        "{job_id}":{{', ",\n".join(body), f"        }}{comma}"]
    return [*lines, "    }", "}"]


def as_xml(records: list[tuple[str, list[tuple[str, str]]]]) -> list[str]:
    parts = ["<Data>"]
    for job_id, attrs in records:
        parts.append(f"<Job><Job_Id>{job_id}</Job_Id>")
        open_group = None
        for name, value in attrs:
            head, _, resource = name.partition(".")
            if open_group and head != open_group:
                parts.append(f"</{open_group}>")
                open_group = None
            value = value.replace("<", "\x0e")  # MXMLSetVal; nothing else is escaped
            if resource:
                if open_group is None:
                    parts.append(f"<{head}>")
                    open_group = head
                parts.append(f"<{resource}>{value}</{resource}>")
            else:
                parts.append(f"<{name}>{value}</{name}>")
        if open_group:
            parts.append(f"</{open_group}>")
        parts.append("</Job>")
    return ['<?xml version="1.0"?>', "".join([*parts, "</Data>"])]
