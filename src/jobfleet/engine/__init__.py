"""The engine: what happens between a job description and what a user is told.

Data flows one way: spec -> script -> backend -> registry -> monitor -> user.
:class:`~jobfleet.engine.fleet.Fleet` is the front door; each step is a module
of its own, and none calls back into the one that called it::

    fleet.py        the front door: orders the steps below, nothing else
    pool.py         the backends of one fleet, made once each from the catalog
    submission.py   prepare, resolve dependencies, dry run, record, write, submit
    handover.py     write each job's files, submit, record each outcome as it goes
    polling.py      ask the backends, record what changed (and the lost rule)
    recovery.py     after a crash or a poll: dead submitters, retries, adopt
    cancel.py       cancel jobs or elements, send signals
    monitor.py      watch, back off, fire callbacks once, wait (over a protocol)
"""
