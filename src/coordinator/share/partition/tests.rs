use super::*;

const S: Settings = Settings {
    lock_ms: 30_000,
    delivery_limit: 3,
    max_in_flight: 100,
    dead_letter: true,
};

fn batch(base: i64, last: i64) -> LogBatch {
    LogBatch {
        base_offset: base,
        last_offset: last,
        skip: false,
    }
}

fn ack(first: i64, last: i64, types: &[i8]) -> AckBatch {
    AckBatch {
        first_offset: first,
        last_offset: last,
        types: types.to_vec(),
    }
}

fn range(first: i64, last: i64, count: i16) -> AcquiredRange {
    AcquiredRange {
        first_offset: first,
        last_offset: last,
        delivery_count: count,
    }
}

fn m(s: &str) -> Arc<str> {
    Arc::from(s)
}

#[test]
fn acquire_then_accept_moves_the_start() {
    let mut sp = SharePartition::new(0);
    let (got, change) = sp.acquire(&m("a"), &[batch(0, 4), batch(5, 9)], 500, false, &S, 0);
    assert_eq!(got, vec![range(0, 9, 1)]);
    assert_eq!(
        change.batches,
        vec![StateBatch {
            first_offset: 0,
            last_offset: 9,
            state: STATE_AVAILABLE,
            delivery_count: 1
        }]
    );
    assert_eq!(sp.acquired_count(), 10);
    let out = sp
        .acknowledge("a", &[ack(0, 4, &[ACK_ACCEPT])], false, &S, 1)
        .unwrap();
    assert_eq!(out.change.start_offset, 5);
    assert_eq!(sp.start_offset(), 5);
    // Nothing more to acquire until the rest is released.
    assert_eq!(sp.next_fetch_offset(&S), Some(10));
}

#[test]
fn a_released_record_is_delivered_again_with_count_two() {
    let mut sp = SharePartition::new(0);
    sp.acquire(&m("a"), &[batch(0, 2)], 500, false, &S, 0);
    sp.acknowledge(
        "a",
        &[ack(0, 2, &[ACK_ACCEPT, ACK_RELEASE, ACK_ACCEPT])],
        false,
        &S,
        1,
    )
    .unwrap();
    assert_eq!(sp.start_offset(), 1);
    assert_eq!(sp.next_fetch_offset(&S), Some(1));
    let (got, _) = sp.acquire(&m("b"), &[batch(0, 2)], 500, false, &S, 2);
    assert_eq!(got, vec![range(1, 1, 2)]);
    // Another member cannot acknowledge it.
    assert!(matches!(
        sp.acknowledge("a", &[ack(1, 1, &[ACK_ACCEPT])], false, &S, 3),
        Err(AckError::InvalidRecordState(_))
    ));
    sp.acknowledge("b", &[ack(1, 1, &[ACK_ACCEPT])], false, &S, 3)
        .unwrap();
    assert_eq!(sp.start_offset(), 3);
    assert_eq!(sp.in_flight(), 0);
}

#[test]
fn an_expired_lock_makes_records_available_and_keeps_the_count() {
    let mut sp = SharePartition::new(10);
    sp.acquire(&m("a"), &[batch(10, 14)], 500, false, &S, 1_000);
    assert!(sp.expire_locks(30_999, &S).change.is_empty());
    let out = sp.expire_locks(31_000, &S);
    assert_eq!(out.change.batches.len(), 1);
    assert_eq!(sp.acquired_count(), 0);
    let (got, _) = sp.acquire(&m("b"), &[batch(10, 14)], 500, false, &S, 31_001);
    assert_eq!(got, vec![range(10, 14, 2)]);
    // The lock holder lost them.
    assert!(sp
        .acknowledge("a", &[ack(10, 10, &[ACK_ACCEPT])], false, &S, 31_002)
        .is_err());
}

#[test]
fn the_delivery_limit_archives_and_dead_letters() {
    let mut sp = SharePartition::new(0);
    for round in 1..=3 {
        let (got, _) = sp.acquire(&m("a"), &[batch(0, 0)], 500, false, &S, 0);
        assert_eq!(got, vec![range(0, 0, round)]);
        let out = sp
            .acknowledge("a", &[ack(0, 0, &[ACK_RELEASE])], false, &S, 0)
            .unwrap();
        if round < 3 {
            assert!(out.dead_letters.is_empty());
        } else {
            assert_eq!(out.dead_letters, vec![(0, DeadLetter::DeliveryLimit, 3)]);
        }
    }
    // On its way to the dead-letter topic: not delivered, and the start waits for the copy.
    assert_eq!(sp.start_offset(), 0);
    assert_eq!(sp.archiving(3), vec![(0, DeadLetter::DeliveryLimit, 3)]);
    let c = sp.archive(&[0]);
    assert_eq!(
        c.start_offset, 1,
        "archived, and passed by the start offset"
    );
    assert_eq!(sp.start_offset(), 1);
    let (got, _) = sp.acquire(&m("a"), &[batch(0, 0)], 500, false, &S, 0);
    assert!(got.is_empty());
}

#[test]
fn reject_archives_and_dead_letters_and_gap_only_archives() {
    let mut sp = SharePartition::new(0);
    sp.acquire(&m("a"), &[batch(0, 3)], 500, false, &S, 0);
    let out = sp
        .acknowledge(
            "a",
            &[ack(0, 3, &[ACK_REJECT, ACK_GAP, ACK_ACCEPT, ACK_REJECT])],
            false,
            &S,
            0,
        )
        .unwrap();
    assert_eq!(
        out.dead_letters,
        vec![(0, DeadLetter::Rejected, 1), (3, DeadLetter::Rejected, 1)]
    );
    assert_eq!(sp.start_offset(), 0);
    // A restart in between resumes the copies.
    let snap = sp.durable_state();
    let back = SharePartition::from_state(snap.start_offset, &snap.batches);
    assert_eq!(back.archiving(3).len(), 2);
    sp.archive(&[0, 3]);
    assert_eq!(sp.start_offset(), 4);
    // Without a dead-letter topic a reject archives at once.
    let mut sp = SharePartition::new(0);
    let s = Settings {
        dead_letter: false,
        ..S
    };
    sp.acquire(&m("a"), &[batch(0, 0)], 500, false, &s, 0);
    let out = sp
        .acknowledge("a", &[ack(0, 0, &[ACK_REJECT])], false, &s, 0)
        .unwrap();
    assert!(out.dead_letters.is_empty());
    assert_eq!(sp.start_offset(), 1);
}

#[test]
fn malformed_acknowledgements_are_refused_whole() {
    let mut sp = SharePartition::new(0);
    sp.acquire(&m("a"), &[batch(0, 9)], 500, false, &S, 0);
    let bad = [
        vec![ack(5, 4, &[ACK_ACCEPT])],
        vec![ack(0, 4, &[ACK_ACCEPT]), ack(4, 6, &[ACK_ACCEPT])],
        vec![ack(4, 6, &[ACK_ACCEPT]), ack(0, 1, &[ACK_ACCEPT])],
        vec![ack(0, 2, &[ACK_ACCEPT, ACK_ACCEPT])],
        vec![ack(0, 0, &[9])],
        vec![ack(0, 0, &[ACK_RENEW])],
        vec![ack(-1, 0, &[ACK_ACCEPT])],
    ];
    for b in &bad {
        assert!(
            matches!(
                sp.acknowledge("a", b, false, &S, 0),
                Err(AckError::InvalidRequest(_))
            ),
            "{b:?}"
        );
    }
    // Valid first range, second out of what was acquired: nothing is applied.
    assert!(matches!(
        sp.acknowledge(
            "a",
            &[ack(0, 1, &[ACK_ACCEPT]), ack(5, 20, &[ACK_ACCEPT])],
            false,
            &S,
            0
        ),
        Err(AckError::InvalidRecordState(_))
    ));
    assert_eq!(sp.start_offset(), 0);
    assert_eq!(sp.acquired_count(), 10);
}

#[test]
fn renew_extends_the_lock() {
    let mut sp = SharePartition::new(0);
    sp.acquire(&m("a"), &[batch(0, 0)], 500, false, &S, 0);
    sp.acknowledge("a", &[ack(0, 0, &[ACK_RENEW])], true, &S, 20_000)
        .unwrap();
    assert!(sp.expire_locks(30_000, &S).change.is_empty());
    assert_eq!(sp.acquired_count(), 1);
    assert_eq!(sp.expire_locks(50_000, &S).change.batches.len(), 1);
}

#[test]
fn record_limit_and_batch_optimized_modes() {
    let mut sp = SharePartition::new(0);
    let (got, _) = sp.acquire(&m("a"), &[batch(0, 4), batch(5, 9)], 3, true, &S, 0);
    assert_eq!(got, vec![range(0, 2, 1)]);
    let mut sp = SharePartition::new(0);
    let (got, _) = sp.acquire(&m("a"), &[batch(0, 4), batch(5, 9)], 3, false, &S, 0);
    assert_eq!(
        got,
        vec![range(0, 4, 1)],
        "whole batches, stopping past the limit"
    );
}

#[test]
fn the_window_is_bounded() {
    let s = Settings {
        max_in_flight: 4,
        ..S
    };
    let mut sp = SharePartition::new(0);
    let (got, _) = sp.acquire(&m("a"), &[batch(0, 9)], 500, false, &s, 0);
    assert_eq!(got, vec![range(0, 3, 1)]);
    assert_eq!(sp.next_fetch_offset(&s), None);
    assert!(!sp.has_acquirable(10, &s));
    sp.acknowledge("a", &[ack(0, 1, &[ACK_ACCEPT])], false, &s, 0)
        .unwrap();
    assert_eq!(sp.next_fetch_offset(&s), Some(4));
    let (got, _) = sp.acquire(&m("a"), &[batch(0, 9)], 500, false, &s, 0);
    assert_eq!(got, vec![range(4, 5, 1)]);
}

#[test]
fn skipped_batches_and_holes_are_archived_not_delivered() {
    let mut sp = SharePartition::new(0);
    let marker = LogBatch {
        base_offset: 3,
        last_offset: 3,
        skip: true,
    };
    let (got, change) = sp.acquire(
        &m("a"),
        &[batch(0, 2), marker, batch(7, 8)],
        500,
        false,
        &S,
        0,
    );
    assert_eq!(got, vec![range(0, 2, 1), range(7, 8, 1)]);
    assert!(change
        .batches
        .iter()
        .any(|b| b.first_offset == 3 && b.last_offset == 6 && b.state == STATE_ARCHIVED));
    sp.acknowledge(
        "a",
        &[ack(0, 2, &[ACK_ACCEPT]), ack(7, 8, &[ACK_ACCEPT])],
        false,
        &S,
        0,
    )
    .unwrap();
    assert_eq!(sp.start_offset(), 9);
}

#[test]
fn durable_state_replays_to_the_same_deliveries() {
    let mut sp = SharePartition::new(0);
    let mut log: Vec<Change> = Vec::new();
    let (_, c) = sp.acquire(&m("a"), &[batch(0, 9)], 500, false, &S, 0);
    log.push(c);
    let out = sp
        .acknowledge(
            "a",
            &[
                ack(0, 3, &[ACK_ACCEPT]),
                ack(5, 5, &[ACK_RELEASE]),
                ack(6, 6, &[ACK_REJECT]),
            ],
            false,
            &S,
            0,
        )
        .unwrap();
    log.push(out.change);
    // Replay the changes (a restart): acquired records come back available, counts kept.
    let mut back = SharePartition::new(0);
    for c in &log {
        back.apply_durable(c.start_offset, &c.batches);
    }
    assert_eq!(back.start_offset(), 4);
    let (got, _) = back.acquire(&m("b"), &[batch(0, 9)], 500, false, &S, 0);
    assert_eq!(got, vec![range(4, 5, 2), range(7, 9, 2)]);
    // A snapshot of the live state replays to the same window.
    let snap = sp.durable_state();
    let again = SharePartition::from_state(snap.start_offset, &snap.batches);
    assert_eq!(again.start_offset(), sp.start_offset());
    assert_eq!(again.end_offset(), sp.end_offset());
}

#[test]
fn releasing_a_member_frees_only_its_records() {
    let mut sp = SharePartition::new(0);
    sp.acquire(&m("a"), &[batch(0, 1)], 500, false, &S, 0);
    sp.acquire(&m("b"), &[batch(0, 3)], 500, false, &S, 0);
    let out = sp.release_member("a", &S);
    assert_eq!(
        out.change.batches,
        vec![StateBatch {
            first_offset: 0,
            last_offset: 1,
            state: STATE_AVAILABLE,
            delivery_count: 1
        }]
    );
    assert_eq!(sp.acquired_count(), 2);
}

#[test]
fn the_log_start_moving_past_the_window_drops_records() {
    let mut sp = SharePartition::new(0);
    sp.acquire(&m("a"), &[batch(0, 9)], 500, false, &S, 0);
    assert_eq!(sp.log_start_moved(5).unwrap().start_offset, 5);
    assert_eq!(sp.acquired_count(), 5);
    assert!(sp
        .acknowledge("a", &[ack(2, 2, &[ACK_ACCEPT])], false, &S, 0)
        .is_err());
    assert!(sp.log_start_moved(3).is_none());
}
