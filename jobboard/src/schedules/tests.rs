//! Which ticks are due, caught up or skipped, and the reserve/record steps.

use serde_json::Map;

use super::*;

/// 2026-11-27T08:00:00Z.
const EIGHT: Millis = 1_795_766_400_000;
const S: Millis = 1_000;

fn every_second(catch_up: u32, cursor: Millis) -> (Schedule, CronClock) {
    let spec = ScheduleSpec {
        name: "tick".into(),
        flow: "f".into(),
        store: Map::new(),
        cron: "* * * * * *".into(),
        timezone: String::new(),
        catch_up,
    };
    let clock = Schedule::check(&spec).expect("valid");
    (Schedule::new(spec, cursor), clock)
}

#[test]
fn a_running_conductor_fires_each_new_tick() {
    let (schedule, clock) = every_second(0, EIGHT);
    let due = schedule.due(&clock, EIGHT + S + 30, EIGHT - 100 * S).expect("one tick due");
    assert_eq!(due, Due { fire: vec![EIGHT + S], cursor: EIGHT + S });
    assert_eq!(schedule.due(&clock, EIGHT + 999, EIGHT - 100 * S), None, "no tick since the cursor");
}

#[test]
fn late_ticks_after_the_session_began_are_all_fired() {
    let (schedule, clock) = every_second(0, EIGHT);
    // The loop ran 5 s late, but this session was up since before the ticks.
    let due = schedule.due(&clock, EIGHT + 5 * S, EIGHT - S).expect("due");
    assert_eq!(due.fire, (1..=5).map(|i| EIGHT + i * S).collect::<Vec<_>>());
}

#[test]
fn missed_ticks_are_skipped_or_the_most_recent_caught_up() {
    // Nothing ran from 08:00 to 08:00:30; a conductor started at 08:00:30.
    let now = EIGHT + 30 * S + 100;
    let since = EIGHT + 30 * S;
    let (skip, clock) = every_second(0, EIGHT);
    let due = skip.due(&clock, now, since).expect("due");
    // Only what is within the grace (2 s) before now counts as on time.
    assert_eq!(due.fire, vec![EIGHT + 29 * S, EIGHT + 30 * S]);
    assert_eq!(due.cursor, EIGHT + 30 * S);
    let (three, clock) = every_second(3, EIGHT);
    let due = three.due(&clock, now, since).expect("due");
    assert_eq!(due.fire, (26..=30).map(|i| EIGHT + i * S).collect::<Vec<_>>(), "3 missed + 2 on time");
    let (many, clock) = every_second(1_000, EIGHT + 25 * S);
    assert_eq!(many.due(&clock, now, since).expect("due").fire.len(), 5, "never before the cursor");
}

#[test]
fn paused_schedules_fire_nothing_and_resume_after_the_pause() {
    let (mut schedule, clock) = every_second(5, EIGHT);
    schedule.pause();
    assert_eq!(schedule.due(&clock, EIGHT + 10 * S, EIGHT), None);
    schedule.resume(EIGHT + 10 * S);
    assert_eq!(schedule.due(&clock, EIGHT + 10 * S + 1, EIGHT), None, "ticks while paused are settled");
    assert_eq!(schedule.next_firing(&clock, EIGHT + 10 * S), Some(EIGHT + 11 * S));
}

#[test]
fn reserve_then_record_moves_a_tick_to_recent_once() {
    let (mut schedule, clock) = every_second(0, EIGHT);
    let due = schedule.due(&clock, EIGHT + S, EIGHT).expect("due");
    schedule.reserve(&due, EIGHT + S);
    assert_eq!(schedule.pending, vec![PendingTick { tick: EIGHT + S, reserved_at: EIGHT + S }]);
    let job = uuid::Uuid::new_v4();
    assert!(schedule.record(EIGHT + S, job, EIGHT + S + 5));
    assert!(!schedule.record(EIGHT + S, job, EIGHT + S + 6), "a second record is refused");
    assert_eq!(schedule.recent, vec![Firing { tick: EIGHT + S, job, fired_at: EIGHT + S + 5 }]);
    assert!(schedule.pending.is_empty());
}

#[test]
fn tick_keys_name_the_schedule_and_the_time() {
    assert_eq!(tick_key("nightly", EIGHT), "schedule/nightly/2026-11-27T08:00:00Z");
}

#[test]
fn names_are_checked() {
    assert!(check_name("nightly-report.v2").is_ok());
    for bad in ["", "Upper", "a/b", &"x".repeat(129)] {
        assert!(check_name(bad).is_err(), "{bad:?}");
    }
}
