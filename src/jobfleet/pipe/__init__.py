"""Pipe mode: many small tasks served by one array job of workers, each task finished
exactly once (docs/pipe.md). The library's front door is :class:`jobfleet.Pipe`."""
