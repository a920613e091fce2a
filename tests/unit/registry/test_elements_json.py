"""An ended array's ``--json`` elements encoded from rows (issue 16): the same text as
each element's record encoded, whatever its values hold."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobfleet.backends.base import Capabilities, NativeStatus
from jobfleet.cli.jsonout import Encoded, dumps
from jobfleet.cli.main import cli
from jobfleet.engine.views import FleetViews
from jobfleet.registry import NewJob, Registry, StatusUpdate
from jobfleet.spec import JobSpec, parse_array
from jobfleet.states import JobState as S
from jobfleet.usage import Usage
from support.board import Board, fleet_with

_COMPACT = json.JSONEncoder(separators=(", ", ": ")).encode

#: Times that test the microsecond's rounding: whole seconds, exact halves of a
#: microsecond (to even), fractions that round up into the next second, 1970.
EDGE_TIMES = [
    0.0,
    1.5,
    1796640427.0,
    1796640427.0000005,
    1796640427.0000015,
    1796640427.9999995,
    1796640427.9999999,
    1796640427.123456789,
    0.0000005,
    86399.9999996,
]

#: Reasons a scheduler may give: quotes, backslashes, new lines, non-ASCII, control bytes.
REASONS = [None, "", 'said "no"', "a\\b", "line\nnext", "naïve ✓", "\x01\x1f", "x" * 300]


def _usages(n: int) -> dict[int, Usage]:
    rng = random.Random(16)
    out: dict[int, Usage] = {}
    for i in range(n):
        if i % 7 == 0:
            continue  # no usage at all
        times = [rng.choice(EDGE_TIMES) if i % 3 else rng.uniform(0, 2e9) for _ in range(3)]
        out[i] = Usage(
            submitted_at=times[0],
            started_at=None if i % 5 == 0 else times[1],
            ended_at=times[2],
            hosts=None if i % 4 == 0 else tuple(f"node{j:02d}" for j in range(i % 3 + 1)),
            max_memory_bytes=None if i % 6 == 0 else rng.randrange(1 << 40),
            cpu_time_s=rng.choice([0.1 + 0.2, 2.0, 1e-7, 1e16, rng.random(), float("inf")]),
            wall_time_s=None if i % 2 else rng.random() * 1000,
        )
    return out


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def ended_array(home: Path) -> Iterator[str]:
    n = 200
    with Registry(home) as reg:
        (job,) = reg.create_jobs(
            [NewJob("big", "local", JobSpec(["true"], array=parse_array(f"0-{n - 1}")))]
        )
        reg.mark_submitted_many([(job.id, "1")])
        states = [(S.COMPLETED, 0), (S.FAILED, 3), (S.CANCELLED, None), (S.OUT_OF_MEMORY, 137)]
        elements = {i: (*states[i % len(states)], REASONS[i % len(REASONS)]) for i in range(n)}
        reg.apply([StatusUpdate(job.id, elements=elements, element_usage=_usages(n))])
        yield job.id


def test_each_element_is_encoded_as_its_record_would_be(home: Path, ended_array: str) -> None:
    with Registry(home) as reg:
        (record,) = reg.get_many([ended_array])
        encoded = reg.elements_json(ended_array)
    assert [i for i, _ in encoded] == sorted(record.elements)
    for index, text in encoded:
        assert text == _COMPACT(record.elements[index].to_dict()), index
    assert len({text for _, text in encoded}) > 150  # the values did vary


def test_a_single_job_or_an_unknown_id_has_no_elements(home: Path) -> None:
    with Registry(home) as reg:
        (single,) = reg.create_jobs([NewJob("one", "local", JobSpec(["true"]))])
        assert reg.elements_json(single.id) == []
        assert reg.elements_json("999") == []


def test_encoded_elements_are_laid_out_as_a_dict_of_them() -> None:
    values = {"3": {"state": "completed"}, "10": {"state": "failed"}}
    as_dict = dumps([{"id": "7", "elements": values}])
    as_encoded = dumps(
        [
            {
                "id": "7",
                "elements": Encoded([(3, '{"state": "completed"}'), (10, _COMPACT(values["10"]))]),
            }
        ]
    )
    assert as_encoded == as_dict
    assert dumps({"elements": Encoded([])}) == dumps({"elements": {}})


def test_status_json_of_an_ended_array_is_what_its_records_say(
    home: Path, ended_array: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded: list[str] = []
    original = FleetViews.elements_json

    def counted(self: FleetViews, job_id: str) -> list[tuple[int, str]]:
        encoded.append(job_id)
        return original(self, job_id)

    monkeypatch.setattr(FleetViews, "elements_json", counted)
    with Registry(home) as reg:  # ended two hours ago: no usage can fill in any more
        reg._conn.execute("UPDATE jobs SET updated_at = updated_at - 7200")
        reg._conn.commit()
    config = tmp_path / "jobfleet.yaml"
    config.write_text("backend: local\n")
    env = {"JOBFLEET_HOME": str(home)}
    runner = CliRunner()
    status = runner.invoke(cli, ["status", ended_array, "--json", "--config", str(config)], env=env)
    assert status.exit_code == 0, status.output
    (shown,) = json.loads(status.output)
    with Registry(home) as reg:
        (record,) = reg.get_many([ended_array])
    expected = {**record.to_dict(), "refreshed": True, "not_refreshed_because": None}
    assert list(shown) == list(expected)  # the same keys in the same order
    assert shown == json.loads(json.dumps(expected))
    assert len(shown["elements"]) == 200
    assert encoded == [ended_array]  # encoded from rows, not read into records


class _SettlingBoard(Board):
    """A scheduler whose accounting fills in an element's peak memory after its end."""

    capabilities = Capabilities(usage_settles_s=60.0)


def test_status_json_still_asks_about_an_array_whose_usage_may_fill_in(tmp_path: Path) -> None:
    board = _SettlingBoard()
    done = {0: (S.COMPLETED, 0, None), 1: (S.COMPLETED, 0, None)}
    at_end = Usage(100.0, 101.0, 105.0, ("n1",), None, 0.3, 4.0)
    with fleet_with(board, tmp_path) as fleet:
        (job,) = fleet.submit_many([JobSpec(["true"], array=parse_array("0-1"))], backend="board")
        native = job.native_id or ""
        board.board[native] = NativeStatus(
            S.COMPLETED, None, None, done, element_usage={0: at_end, 1: at_end}
        )
        fleet.refresh([job])
        peak = Usage(max_memory_bytes=123)
        board.board[native] = NativeStatus(
            S.COMPLETED, None, None, done, element_usage={0: peak, 1: peak}
        )
        polls = board.polls
        report = fleet.status_report([job.id], ended_elements=False, settling_whole=True)
        assert board.polls == polls + 1  # asked: its peak memory came after its end
        (record,) = report.records
        assert record.elements[0].usage.max_memory_bytes == 123
        assert job.id not in report.element_counts
        counted = fleet.status_report([job.id], ended_elements=False)  # the table: counted
        assert counted.element_counts[job.id] == {"completed": 2}


def test_an_unknown_stored_state_is_warned_about_once_an_array(
    home: Path, ended_array: str, caplog: pytest.LogCaptureFixture
) -> None:
    with Registry(home) as reg:
        reg._conn.execute(
            "UPDATE elements SET state = 'zombie' WHERE job_id = ?", (int(ended_array),)
        )
        reg._conn.commit()
        with caplog.at_level("WARNING"):
            encoded = reg.elements_json(ended_array)
    assert all('"state": "unknown"' in text for _, text in encoded)
    assert len([r for r in caplog.records if "zombie" in r.getMessage()]) == 1
