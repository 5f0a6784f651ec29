"""Recent lines and followers, as a unit."""

import asyncio

from procrun.output.history import LogHistory


def test_recent_lines_interleave_processes_in_relay_order() -> None:
    history = LogHistory()
    history.record("web.1", b"w1\nw2")
    history.record("worker.1", b"k1")
    history.record("web.1", b"w3")
    assert history.recent([], 10) == [
        ("web.1", "w1"),
        ("web.1", "w2"),
        ("worker.1", "k1"),
        ("web.1", "w3"),
    ]
    assert history.recent(["web.1"], 2) == [("web.1", "w2"), ("web.1", "w3")]
    assert history.recent([], 0) == []


def test_a_chatty_process_cannot_evict_a_quiet_one() -> None:
    history = LogHistory(budget_bytes=100)
    history.record("quiet.1", b"important")
    for n in range(1000):
        history.record("chatty.1", b"x" * 50 + str(n).encode())
    assert history.recent(["quiet.1"], 5) == [("quiet.1", "important")]
    chatty = history.recent(["chatty.1"], 100)
    assert len(chatty) <= 3
    assert chatty[-1][1].endswith("999")


async def test_followers_get_new_lines_and_learn_about_drops() -> None:
    history = LogHistory()
    lines = history.follow(["web.1"])
    first = asyncio.ensure_future(anext(lines))
    await asyncio.sleep(0)  # let the follower subscribe
    history.record("worker.1", b"not for us")
    history.record("web.1", b"a\nb")
    assert await asyncio.wait_for(first, 5) == ("web.1", "a")
    assert await asyncio.wait_for(anext(lines), 5) == ("web.1", "b")
    for n in range(2000):
        history.record("web.1", str(n).encode())
    received = [await asyncio.wait_for(anext(lines), 5) for _ in range(1025)]
    assert received[:2] == [("web.1", "0"), ("web.1", "1")]
    assert received[1023] == ("web.1", "1023")
    assert received[1024] == ("procrun", "[976 lines dropped: the reader was too slow]")
    await lines.aclose()


def test_lines_recorded_as_read_come_back_whole() -> None:
    """The relay records a chunk beside the line start carried over from the read before, and its
    unfinished tail after `end`: only the complete lines are history."""
    history = LogHistory()
    history.record_chunk("web.1", b"par", b"tial\nnext\nunfini", 9)
    history.record_chunk("web.1", b"unfini", b"shed\n", 4)
    assert history.recent([], 10) == [
        ("web.1", "partial"),
        ("web.1", "next"),
        ("web.1", "unfinished"),
    ]


def test_the_budget_counts_what_a_chunk_holds_not_only_its_lines() -> None:
    """A chunk kept for one short line must not hold a long unfinished tail outside the budget."""
    history = LogHistory(budget_bytes=1000)
    for n in range(50):
        history.record_chunk("web.1", b"", b"%d\n" % n + b"t" * 900, len(b"%d" % n))
    assert history.recent(["web.1"], 100) == [("web.1", "49")]


async def test_followers_get_chunks_as_whole_lines() -> None:
    history = LogHistory()
    lines = history.follow([])
    first = asyncio.ensure_future(anext(lines))
    await asyncio.sleep(0)  # let the follower subscribe
    history.record_chunk("web.1", b"he", b"llo\nworld\nta", 9)
    assert await asyncio.wait_for(first, 5) == ("web.1", "hello")
    assert await asyncio.wait_for(anext(lines), 5) == ("web.1", "world")
    await lines.aclose()
