"""The request scheduler on a virtual clock: priorities, coalescing, the edit kept in hand for the
final text, typing only with headroom, 429 pauses. No test here reads the wall clock."""

from __future__ import annotations

import asyncio

import pytest

from core.budget import (
    GLOBAL,
    BudgetPacer,
    BudgetPolicy,
    Priority,
    RequestScheduler,
    SchedulerClosed,
    Window,
)
from core.budget.holds import HOLD_LIFETIME
from core.budget.scheduler import scheduled_here


class VirtualTime:
    """A clock that moves only when the scheduler sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        # Time passes only once everything else runnable has run (an answer settling, a call
        # arriving), as it would in real time while the sleep lasts.
        for _ in range(10):
            await asyncio.sleep(0)
        self.now += seconds
        await asyncio.sleep(0)


class Recorder:
    def __init__(self, time: VirtualTime) -> None:
        self.time = time
        self.sent: list[tuple[str, float]] = []

    def call(self, name: str) -> object:
        async def send() -> str:
            self.sent.append((name, self.time.now))
            return name

        return send


def scheduler(time: VirtualTime, **windows: Window) -> RequestScheduler:
    return RequestScheduler(
        BudgetPolicy(windows=windows, typing_headroom=2), clock=time.clock, sleep=time.sleep
    )


async def test_the_most_urgent_call_goes_first_when_slots_are_short() -> None:
    time = VirtualTime()
    budget = scheduler(time, **{GLOBAL: Window(2, 1.0)})
    calls = Recorder(time)
    results = await asyncio.gather(
        budget.send(Priority.EDIT, calls.call("edit")),
        budget.send(Priority.ESSAY_POST, calls.call("essay")),
        budget.send(Priority.FIRST_TEXT, calls.call("first")),
        budget.send(Priority.FINAL_TEXT, calls.call("final")),
    )
    assert results == ["edit", "essay", "first", "final"]
    assert calls.sent == [("first", 0.0), ("final", 0.0), ("essay", 1.0), ("edit", 1.0)]
    await budget.aclose()


async def test_queued_edits_of_one_message_merge_and_the_newest_text_wins() -> None:
    time = VirtualTime()
    budget = scheduler(time, **{GLOBAL: Window(1, 1.0)})
    calls = Recorder(time)
    results = await asyncio.gather(
        budget.send(Priority.FIRST_TEXT, calls.call("post")),
        budget.send(Priority.EDIT, calls.call("edit 1"), coalesce="message-1"),
        budget.send(Priority.EDIT, calls.call("edit 2"), coalesce="message-1"),
        budget.send(Priority.ESSAY_POST, calls.call("essay")),
        budget.send(Priority.FINAL_TEXT, calls.call("final"), coalesce="message-1"),
    )
    # The final text took the queued edits' place and urgency; the essay waited behind it.
    assert results == ["post", None, None, "essay", "final"]
    assert calls.sent == [("post", 0.0), ("final", 1.0), ("essay", 2.0)]
    await budget.aclose()


async def test_intermediate_edits_keep_a_slot_in_hand_so_the_final_text_never_waits() -> None:
    time = VirtualTime()
    budget = scheduler(time, **{"channel": Window(3, 5.0)})
    calls = Recorder(time)
    keys = (GLOBAL, "channel:A")
    await budget.send(Priority.FIRST_TEXT, calls.call("post"), keys=keys)
    await budget.send(Priority.EDIT, calls.call("edit 1"), keys=keys, coalesce="m")
    # One slot is left in the window: an edit may not take it, the final text may.
    edit = asyncio.ensure_future(budget.send(Priority.EDIT, calls.call("edit 2"), keys=keys, coalesce="m"))
    await asyncio.sleep(0)
    final = await budget.send(Priority.FINAL_TEXT, calls.call("final"), keys=keys, coalesce="other")
    assert final == "final"
    assert calls.sent == [("post", 0.0), ("edit 1", 0.0), ("final", 0.0)]
    assert await edit == "edit 2"
    assert calls.sent[-1] == ("edit 2", 5.0)  # after the window's first sends expired
    await budget.aclose()


async def test_windows_are_per_key() -> None:
    time = VirtualTime()
    budget = scheduler(time, **{"channel": Window(1, 5.0)})
    calls = Recorder(time)
    await asyncio.gather(
        budget.send(Priority.FIRST_TEXT, calls.call("A1"), keys=("channel:A",)),
        budget.send(Priority.FIRST_TEXT, calls.call("A2"), keys=("channel:A",)),
        budget.send(Priority.ESSAY_POST, calls.call("B1"), keys=("channel:B",)),
    )
    # A full channel does not hold back a less urgent call elsewhere.
    assert calls.sent == [("A1", 0.0), ("B1", 0.0), ("A2", 5.0)]
    await budget.aclose()


async def test_typing_goes_out_only_with_headroom_and_nothing_queued() -> None:
    time = VirtualTime()
    budget = scheduler(time, **{GLOBAL: Window(3, 1.0)})
    calls = Recorder(time)
    assert await budget.send(Priority.TYPING, calls.call("typing 1")) == "typing 1"
    await budget.send(Priority.FIRST_TEXT, calls.call("post"))
    # Two of three slots are spent: one free slot is less than the headroom of two.
    assert await budget.send(Priority.TYPING, calls.call("typing 2")) is None
    time.now += 1.0
    assert await budget.send(Priority.TYPING, calls.call("typing 3")) == "typing 3"
    assert [name for name, _ in calls.sent] == ["typing 1", "post", "typing 3"]
    await budget.aclose()


async def test_a_429_pauses_its_key_until_retry_after() -> None:
    time = VirtualTime()
    budget = scheduler(time, **{GLOBAL: Window(50, 1.0)})
    calls = Recorder(time)
    budget.pause(GLOBAL, 2.5)
    await budget.send(Priority.FIRST_TEXT, calls.call("after the pause"))
    assert calls.sent == [("after the pause", 2.5)]
    await budget.aclose()


async def test_a_failed_call_raises_to_its_caller_and_the_queue_goes_on() -> None:
    time = VirtualTime()
    budget = scheduler(time, **{GLOBAL: Window(5, 1.0)})
    calls = Recorder(time)

    async def refused() -> str:
        raise PermissionError("403 Missing Access")

    with pytest.raises(PermissionError):
        await budget.send(Priority.ANSWER, refused)
    assert await budget.send(Priority.ANSWER, calls.call("next")) == "next"
    await budget.aclose()


async def test_closing_refuses_what_still_waits() -> None:
    time = VirtualTime()
    budget = scheduler(time, **{GLOBAL: Window(1, 60.0)})
    calls = Recorder(time)
    await budget.send(Priority.FIRST_TEXT, calls.call("sent"))
    waiting = asyncio.ensure_future(budget.send(Priority.ESSAY_POST, calls.call("never")))
    await asyncio.sleep(0)
    assert budget.queued == 1
    await budget.aclose()
    with pytest.raises(SchedulerClosed):
        await waiting
    with pytest.raises(SchedulerClosed):
        await budget.send(Priority.ANSWER, calls.call("late"))
    assert calls.sent == [("sent", 0.0)]


def test_a_window_needs_a_positive_limit_and_span() -> None:
    with pytest.raises(ValueError, match="limit >= 1"):
        Window(0, 1.0)
    with pytest.raises(ValueError, match="seconds > 0"):
        Window(5, float("nan"))


async def test_the_headroom_kept_for_replies_goes_to_first_and_final_text_only() -> None:
    time = VirtualTime()
    policy = BudgetPolicy(windows={GLOBAL: Window(3, 1.0)}, kept_for_replies={GLOBAL: 2}, typing_headroom=0)
    budget = RequestScheduler(policy, clock=time.clock, sleep=time.sleep)
    calls = Recorder(time)
    await asyncio.gather(
        budget.send(Priority.ESSAY_POST, calls.call("essay 1")),
        budget.send(Priority.ESSAY_POST, calls.call("essay 2")),
    )
    # One essay post per window: the other two slots are kept for replies, which take them at once.
    await asyncio.gather(
        budget.send(Priority.FIRST_TEXT, calls.call("first")),
        budget.send(Priority.FINAL_TEXT, calls.call("final")),
    )
    assert calls.sent == [("essay 1", 0.0), ("essay 2", 1.0), ("first", 1.0), ("final", 1.0)]
    await budget.aclose()


async def test_a_request_counts_from_its_answer_and_while_in_flight() -> None:
    # The platform counts a request when it arrives, somewhere between sending and answering:
    # a slow answer holds its slot until the window has passed since the answer.
    time = VirtualTime()
    budget = scheduler(time, **{GLOBAL: Window(1, 1.0)})
    calls = Recorder(time)
    answered = asyncio.Event()

    async def slow() -> str:
        calls.sent.append(("slow", time.now))
        await answered.wait()
        return "slow"

    first = asyncio.ensure_future(budget.send(Priority.FIRST_TEXT, slow))
    second = asyncio.ensure_future(budget.send(Priority.FIRST_TEXT, calls.call("next")))
    for _ in range(5):
        await asyncio.sleep(0)
    assert calls.sent == [("slow", 0.0)]  # in flight: it still fills the window
    time.now = 3.0  # the answer takes three seconds
    answered.set()
    assert await first == "slow"
    assert await second == "next"
    assert calls.sent[-1] == ("next", 4.0)  # a second after the answer, not after the send
    await budget.aclose()


async def test_requests_made_outside_the_scheduler_spend_its_budget() -> None:
    time = VirtualTime()
    budget = scheduler(time, **{GLOBAL: Window(2, 1.0)})
    calls = Recorder(time)
    budget.outside_call_started()
    assert budget.has_room(Priority.FIRST_TEXT, (GLOBAL,))
    budget.outside_call_ended()
    budget.outside_call_started()
    budget.outside_call_ended()
    assert not budget.has_room(Priority.FIRST_TEXT, (GLOBAL,))
    assert await budget.send(Priority.FIRST_TEXT, calls.call("post")) == "post"
    assert calls.sent == [("post", 1.0)]
    await budget.aclose()


async def test_a_call_whose_caller_gave_up_is_never_made() -> None:
    time = VirtualTime()
    budget = scheduler(time, **{GLOBAL: Window(1, 1.0)})
    calls = Recorder(time)
    await budget.send(Priority.FIRST_TEXT, calls.call("post"))
    waiting = asyncio.ensure_future(budget.send(Priority.EDIT, calls.call("edit"), coalesce="m"))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert budget.queued == 0
    assert await budget.send(Priority.FINAL_TEXT, calls.call("final"), coalesce="m") == "final"
    assert calls.sent == [("post", 0.0), ("final", 1.0)]
    await budget.aclose()


async def test_two_live_hosts_each_send_half_of_a_shared_window_and_all_of_a_channels() -> None:
    time = VirtualTime()
    policy = BudgetPolicy(
        windows={GLOBAL: Window(10, 1.0), "channel": Window(4, 1.0)},
        kept_for_replies={GLOBAL: 2},
        typing_headroom=0,
        shared=frozenset({GLOBAL}),
    )
    budget = RequestScheduler(policy, clock=time.clock, sleep=time.sleep)
    budget.share(2)  # another host runs the same bot: half of the token's window is this one's
    calls = Recorder(time)
    await asyncio.gather(*(budget.send(Priority.FIRST_TEXT, calls.call(f"m{n}")) for n in range(10)))
    per_second = [sum(1 for _, at in calls.sent if int(at) == second) for second in range(2)]
    assert per_second == [5, 5]
    # The channel's window is the channel's, not the token's: it stays whole.
    assert (
        budget.has_room(Priority.FIRST_TEXT, ("channel:1",)) and budget.policy.windows["channel"].limit == 4
    )
    # The room kept for replies shrinks with the share, so essay posts still get some of it.
    assert budget.policy.kept_for_replies == {GLOBAL: 1}
    budget.share(1)  # the other host stopped: the whole window again
    assert budget.policy == policy
    await budget.aclose()


async def test_slots_held_for_replies_in_flight_go_to_their_first_and_final_text() -> None:
    time = VirtualTime()
    budget = scheduler(time, **{GLOBAL: Window(3, 1.0)})
    calls = Recorder(time)
    held = [budget.hold(), budget.hold()]  # two questions arrived; their models are thinking
    # An empty window has the headroom typing needs (two), but not beside two held slots.
    assert await budget.send(Priority.TYPING, calls.call("typing")) is None
    await asyncio.gather(
        budget.send(Priority.ESSAY_POST, calls.call("essay 1")),
        budget.send(Priority.ESSAY_POST, calls.call("essay 2")),
        budget.send(Priority.FIRST_TEXT, calls.call("first A")),
        budget.send(Priority.FIRST_TEXT, calls.call("first B")),
    )
    # The replies' first texts take their slots at once; each essay post leaves both held slots
    # free, so it goes only into a window otherwise empty.
    assert calls.sent == [("first A", 0.0), ("first B", 0.0), ("essay 1", 1.0), ("essay 2", 2.0)]
    held[0].release()
    held[0].release()  # twice is harmless: the other reply keeps its slot
    held[1].release()
    await asyncio.gather(*(budget.send(Priority.ESSAY_POST, calls.call(f"essay {n}")) for n in (3, 4, 5)))
    # Released, the slots serve everyone again: two fit beside essay 2, the third a window later.
    assert calls.sent[4:] == [("essay 3", 2.0), ("essay 4", 2.0), ("essay 5", 3.0)]
    await budget.aclose()


async def test_a_hold_never_released_lapses_on_its_own() -> None:
    time = VirtualTime()
    budget = scheduler(time, **{GLOBAL: Window(1, 1.0)})
    calls = Recorder(time)
    budget.hold()  # a reply that broke off without finishing
    assert await budget.send(Priority.ESSAY_POST, calls.call("essay")) == "essay"
    assert calls.sent == [("essay", HOLD_LIFETIME)]
    await budget.aclose()


async def test_an_essay_request_sent_through_the_pacer_is_made_in_its_turn_and_counted_once() -> None:
    time = VirtualTime()
    budget = scheduler(time, **{GLOBAL: Window(2, 1.0)})
    pacer = BudgetPacer(budget, concurrency=4)

    async def post() -> bool:
        return scheduled_here()  # what the HTTP tracer asks: True, so it does not count it again

    assert await pacer.send("C1", post) is True
    assert budget.has_room(Priority.FIRST_TEXT, (GLOBAL,))  # one slot of two spent, not two
    assert await pacer.send("C2", post) is True
    assert not budget.has_room(Priority.FIRST_TEXT, (GLOBAL,))
    await budget.aclose()


async def test_a_global_429_during_deliveries_holds_every_channel_until_retry_after() -> None:
    time = VirtualTime()
    budget = scheduler(time, **{GLOBAL: Window(50, 1.0)})
    pacer = BudgetPacer(budget, concurrency=4)
    calls = Recorder(time)
    assert await pacer.send("C1", calls.call("before")) == "before"
    pacer.pause(3.0)  # the outbox's answer to a global RateLimited
    await asyncio.gather(pacer.send("C1", calls.call("C1 after")), pacer.send("C2", calls.call("C2 after")))
    # The whole platform waits, and the window's unspent slots are no burst at its end.
    assert calls.sent == [("before", 0.0), ("C1 after", 3.0), ("C2 after", 3.0)]
    await budget.aclose()


async def test_a_channel_window_spaces_deliveries_to_that_channel_only() -> None:
    time = VirtualTime()
    budget = scheduler(time, **{GLOBAL: Window(100, 1.0), "channel": Window(1, 1.0)})
    pacer = BudgetPacer(budget, concurrency=4)
    calls = Recorder(time)
    await asyncio.gather(
        *(
            pacer.send(channel, calls.call(name))
            for channel, name in [("C1", "C1 first"), ("C2", "C2"), ("C1", "C1 second"), ("C1", "C1 third")]
        )
    )
    assert sorted(calls.sent, key=lambda sent: sent[1]) == [
        ("C1 first", 0.0),
        ("C2", 0.0),
        ("C1 second", 1.0),
        ("C1 third", 2.0),
    ]
    await budget.aclose()
