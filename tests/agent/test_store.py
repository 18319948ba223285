from pathlib import Path

import pytest

from edgestack.agent.store import LocalStore


def test_outbox_hands_out_oldest_first_until_acked(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "a.db")
    store.enqueue("events", b"one")
    store.enqueue("samples", b"two")

    first = store.peek()
    again = store.peek()
    assert first is not None and again == first and first.body == b"one"
    store.ack(first)
    second = store.peek()
    assert second is not None and (second.kind, second.body) == ("samples", b"two")
    store.ack(second)
    assert store.peek() is None and store.pending() == 0


def test_sequence_numbers_have_no_gaps_across_reopen(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "a.db")
    seqs = [store.enqueue_numbered("telemetry", lambda n: str(n).encode()) for _ in range(3)]
    store.close()

    reopened = LocalStore(tmp_path / "a.db")
    seqs.append(reopened.enqueue_numbered("telemetry", lambda n: str(n).encode()))
    bodies = []
    while (item := reopened.peek()) is not None:
        bodies.append(item.body)
        reopened.ack(item)

    assert seqs == [1, 2, 3, 4]
    assert bodies == [b"1", b"2", b"3", b"4"]


def test_failed_body_allocates_no_number(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "a.db")

    def broken(seq: int) -> bytes:
        raise RuntimeError("serialisation failed")

    with pytest.raises(RuntimeError):
        store.enqueue_numbered("telemetry", broken)

    assert store.enqueue_numbered("telemetry", lambda n: b"x") == 1
    assert store.pending() == 1


def test_full_outbox_drops_oldest_and_counts(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "a.db", max_outbox_bytes=250)
    for i in range(5):
        store.enqueue("telemetry", bytes([i]) * 100)

    kept = []
    while (item := store.peek()) is not None:
        kept.append(item.body[0])
        store.ack(item)

    assert kept == [3, 4]
    assert store.dropped() == 3


def test_kv_survives_reopen(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "a.db")
    store.set("device_token", "secret")
    store.set("gone", "x")
    store.set("gone", None)
    store.close()

    reopened = LocalStore(tmp_path / "a.db")
    assert reopened.get("device_token") == "secret"
    assert reopened.get("gone") is None


def test_full_outbox_drops_telemetry_then_samples_and_never_events(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "a.db", max_outbox_bytes=350)
    store.enqueue("events", b"e" * 100)
    store.enqueue("samples", b"s" * 100)
    store.enqueue("telemetry", b"t" * 100)
    store.enqueue("events", b"E" * 100)
    store.enqueue("events", b"F" * 100)
    store.enqueue("events", b"G" * 100)

    kept = []
    while (item := store.peek()) is not None:
        kept.append(item.body[:1])
        store.ack(item)

    # Over its bound with nothing left to drop but events: events are kept all the same.
    assert kept == [b"e", b"E", b"F", b"G"]
    assert store.dropped() == 2


def test_the_byte_bound_holds_across_reopen(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "a.db", max_outbox_bytes=250)
    store.enqueue("telemetry", b"1" * 100)
    store.enqueue("telemetry", b"2" * 100)
    store.close()

    reopened = LocalStore(tmp_path / "a.db", max_outbox_bytes=250)
    reopened.enqueue("telemetry", b"3" * 100)

    assert reopened.pending() == 2
    assert reopened.dropped() == 1


def test_a_refused_message_moves_to_dead_letters_with_its_reason(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "a.db")
    store.enqueue("events", b"bad")
    store.enqueue("events", b"good")
    refused = store.peek()
    assert refused is not None

    store.dead_letter(refused, "hub answered 422: events.0.kind: not a kind")

    assert [(p.body, reason) for p, reason in store.dead_letters()] == [
        (b"bad", "hub answered 422: events.0.kind: not a kind")
    ]
    nxt = store.peek()
    assert nxt is not None and nxt.body == b"good"
    assert store.dead_lettered() == 1


def test_dead_letters_keep_the_newest_and_count_them_all(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "a.db", keep_dead_letters=3)
    for i in range(5):
        store.enqueue("samples", f"refused {i}".encode())
        item = store.peek()
        assert item is not None
        store.dead_letter(item, f"hub answered 403 to {i}")

    kept = store.dead_letters()

    assert [p.body for p, _ in kept] == [b"refused 2", b"refused 3", b"refused 4"]
    assert store.dead_lettered() == 5
    assert store.pending() == 0
    store.close()


def test_the_database_holding_the_token_is_owner_only(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "a.db")
    store.set("device_token", "secret")
    store.enqueue("events", b"x")

    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes["a.db"] == 0o600
    assert all(mode == 0o600 for mode in modes.values()), modes
    store.close()
