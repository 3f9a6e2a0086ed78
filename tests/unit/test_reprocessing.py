"""The pieces of reprocessing that need no servers: event-time alignment, a processor version's
own names, delivery after a promotion, and waiting for a promotion to go live."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streams.config import DEFAULT_MEANING_CONFIG, ConfigError, Settings
from streams.runtime.align import IDLE_S, AlignedStep, EventTimeAligner
from streams.runtime.batch import Accepted, BatchOutput, Message, Rejected, Triaged
from streams.runtime.versions import ProcessorVersion, VersionRegistry
from streams.topics import ALERTS, COMMUNE_CONTROL, DEAD_LETTER, INCIDENTS, TIPS, partition_counts, physical

TIP, VERDICT = ("binhyen.tips.v1", 0), ("binhyen.feedback.v1", 0)


def item(partition: tuple[str, int], offset: int, at_ms: int) -> Triaged:
    return Message(partition[0], partition[1], offset, b""), Accepted("x", {"occurred_at_ms": at_ms})


class Ends:
    """Which partitions have been read to their end (a test flips them)."""

    def __init__(self) -> None:
        self.done: set[tuple[str, int]] = set()

    def __call__(self, partition: tuple[str, int], last_offset: int | None) -> bool:
        return partition in self.done


def times(released: list[Triaged]) -> list[int]:
    return [verdict.record["occurred_at_ms"] for _, verdict in released]  # type: ignore[union-attr]


def test_the_oldest_head_goes_first_and_a_partition_with_more_to_read_holds_back_the_rest() -> None:
    ends = Ends()
    aligner = EventTimeAligner(ends)
    aligner.add([item(VERDICT, 0, 50), item(VERDICT, 1, 90)])  # a whole week of verdicts in one fetch
    assert aligner.release([TIP, VERDICT]) == []  # the tips are not read yet
    aligner.add([item(TIP, 0, 10), item(TIP, 1, 60)])
    assert times(aligner.release([TIP, VERDICT])) == [10, 50, 60]  # 90 waits: more tips may come first
    assert aligner.holding() == 1
    aligner.add([item(TIP, 2, 70)])
    assert times(aligner.release([TIP, VERDICT])) == [70]
    ends.done.add(TIP)  # every tip read: nothing can come before the last verdict any more
    assert times(aligner.release([TIP, VERDICT])) == [90]
    assert aligner.holding() == 0


def test_rejections_wait_for_nothing_and_a_partition_keeps_its_own_order() -> None:
    ends = Ends()
    aligner = EventTimeAligner(ends)
    bad = (Message(TIP[0], 0, 0, b"\x00"), Rejected("decode", "not Avro"))
    aligner.add([item(VERDICT, 0, 30), item(VERDICT, 1, 20)])  # out of order within its partition
    aligner.add([bad, item(TIP, 1, 25)])
    ends.done |= {TIP, VERDICT}
    released = aligner.release([TIP, VERDICT])
    assert released[0] == bad
    assert times(released[1:]) == [25, 30, 20]


def test_what_revoked_partitions_held_is_let_go_unprocessed() -> None:
    ends = Ends()
    aligner = EventTimeAligner(ends)
    aligner.add([item(VERDICT, 0, 50), item(TIP, 0, 60)])
    aligner.forget([TIP])  # rebalanced away: its next owner reads it again from the committed offset
    ends.done.add(TIP)
    assert times(aligner.release([TIP, VERDICT])) == [50]
    aligner.add([item(TIP, 1, 70)])
    assert aligner.release([VERDICT]) == [] and aligner.holding() == 0  # no longer assigned: dropped


def test_a_partition_that_stays_empty_stops_holding_the_others_back() -> None:
    now = [0.0]
    aligner = EventTimeAligner(Ends(), clock=lambda: now[0])
    aligner.add([item(VERDICT, 0, 50)])
    assert aligner.release([TIP, VERDICT]) == []
    now[0] += IDLE_S  # a stale end: nothing arrived for IDLE_S
    assert times(aligner.release([TIP, VERDICT])) == [50]


def test_an_aligned_step_processes_and_acknowledges_only_what_was_released() -> None:
    class Step:
        def triage(self, messages: list[Message], now_ms: int) -> list[Triaged]:
            return [(m, Accepted("x", {"occurred_at_ms": m.offset * 10})) for m in messages]

        def process(self, ordered: list[Triaged], now_ms: int) -> BatchOutput:
            return BatchOutput(done=[message for message, _ in ordered])

    ends = Ends()
    step = AlignedStep(Step(), EventTimeAligner(ends), lambda: [TIP, VERDICT])  # type: ignore[arg-type]
    out = step.run([Message(VERDICT[0], 0, 5, b"")], 0)
    assert out.done == []  # held: the tips may hold something older
    ends.done.add(TIP)
    assert [m.offset for m in step.run([Message(VERDICT[0], 0, 6, b"")], 0).done] == [5, 6]


def settings(**overrides: Any) -> Settings:
    import dataclasses

    return dataclasses.replace(Settings.from_env(), **overrides)


def test_a_processor_version_has_its_own_group_state_topics_and_when_reprocessing_database() -> None:
    base = settings(worker_group="binhyen-worker", clickhouse_database="binhyen")
    live = base.for_version("cred-2-alerts-1", {"credibility": "{}", "alerts": "{}"}, reprocessing=False)
    history = base.for_version("cred-2-alerts-1", {}, reprocessing=True)
    assert (live.worker_group, live.clickhouse_database) == ("binhyen-worker.cred-2-alerts-1", "binhyen")
    assert (history.worker_group, history.clickhouse_database) == ("binhyen-worker.cred-2-alerts-1",
                                                                   "binhyen_cred_2_alerts_1")
    assert base.faust_dir != live.faust_dir  # the tables of two groups share names
    assert physical(live, COMMUNE_CONTROL) == f"{COMMUNE_CONTROL}.cred-2-alerts-1"
    assert [physical(live, t) for t in (INCIDENTS, ALERTS, DEAD_LETTER, TIPS)] == [INCIDENTS, ALERTS, DEAD_LETTER, TIPS]
    assert [physical(history, t) for t in (INCIDENTS, ALERTS, DEAD_LETTER)] == [
        f"{t}.reprocess.cred-2-alerts-1" for t in (INCIDENTS, ALERTS, DEAD_LETTER)]
    assert physical(history, TIPS) == TIPS  # history is read from the live inputs
    assert set(partition_counts(base)) & set(partition_counts(history)) == {
        physical(base, t) for t in (TIPS, "binhyen.device-signals.v1", "binhyen.model-changes.v1",
                                    "binhyen.feedback.v1", "binhyen.alert-actions.v1")}


def test_a_processor_version_reads_text_with_its_own_meaning_model_or_the_one_from_files() -> None:
    shipped = json.loads(DEFAULT_MEANING_CONFIG.read_text(encoding="utf-8"))
    own = json.dumps({**shipped, "version": "meaning-9"})
    assert settings().for_version("v", {"meaning": own}, reprocessing=False).meaning_model().version == "meaning-9"
    # recorded before versions held a meaning model: the one from files
    assert settings().for_version("v", {"meaning": ""}, reprocessing=False).meaning_model().version == shipped["version"]


@pytest.mark.parametrize("name", ["Cred-2", "cred_2", "", "-cred", "x" * 41, "cred 2"])
def test_a_version_name_that_cannot_name_a_group_topic_and_database_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="is not a valid name; use up to 40 lowercase letters"):
        settings().for_version(name, {}, reprocessing=True)


class Answers:
    """A ClickHouse client that answers the registry's queries from a script."""

    def __init__(self, *answers: list[tuple[Any, ...]]) -> None:
        self.answers = list(answers)

    def execute(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self.answers.pop(0)


def test_a_worker_waits_while_a_version_is_being_promoted_and_runs_it_once_live() -> None:
    promoting = [("cred-2", "promoting", "{c}", "{a}", "{m}", 1)]
    live = [("cred-2", "live", "{c}", "{a}", "{m}", 2)]
    slept: list[float] = []
    registry = VersionRegistry(Answers(promoting, promoting, live), "binhyen")
    assert registry.wait_for_live(slept.append) == ProcessorVersion("cred-2", "live", {
        "credibility": "{c}", "alerts": "{a}", "meaning": "{m}"}, 2)
    assert len(slept) == 2
    back_to_files = VersionRegistry(Answers([("", "live", "", "", "", 3)]), "binhyen")
    assert back_to_files.wait_for_live() is None  # a failed first promotion: the configs from files again
