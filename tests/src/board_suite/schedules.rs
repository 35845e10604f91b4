//! Schedules on the board: create once, read and list, compare-and-swap on the revision
//! (two writers of one read: exactly one lands), delete, and `schedule_changes` wake-ups
//! seen by another session.

use jobboard::schedules::{self, Schedule, ScheduleSpec};
use jobboard::Error;
use serde_json::{json, Map};

use super::{within, BoardFactory};

fn schedule(name: &str) -> Schedule {
    let mut store = Map::new();
    store.insert("n".into(), json!(1));
    let spec = ScheduleSpec {
        name: name.into(),
        flow: "chain".into(),
        store,
        cron: "*/5 * * * * *".into(),
        timezone: "Europe/Berlin".into(),
        catch_up: 2,
    };
    Schedule::new(spec, 1_000)
}

/// The stored record round-trips, names are unique, a stale revision writes nothing,
/// `update` re-reads after a lost race, and changes wake another session.
pub async fn schedules_are_stored_once_and_changed_by_compare_and_swap(f: &impl BoardFactory) {
    let a = f.session("sched-a").await;
    let b = f.session("sched-b").await;
    let mut woken = b.schedules().schedule_changes();
    let nightly = schedule("nightly");
    a.schedules().create_schedule(&nightly).await.expect("create");
    within("b woken by the create", async { woken.changed().await.expect("wake-ups") }).await;
    match a.schedules().create_schedule(&schedule("nightly")).await {
        Err(Error::ScheduleExists(name)) => assert_eq!(name, "nightly"),
        other => panic!("a second create of one name gave {other:?}"),
    }
    let read = b.schedules().schedule("nightly").await.expect("read");
    assert_eq!((&read.spec, read.cursor, read.paused), (&nightly.spec, 1_000, false));

    // Two writers of the same read: the first lands, the second finds it changed.
    let mut first = read.clone();
    first.pause();
    let mut second = read.clone();
    second.cursor = 5_000;
    assert!(a.schedules().replace_schedule(&first).await.expect("first replace"), "the first CAS lands");
    assert!(!b.schedules().replace_schedule(&second).await.expect("second replace"), "a stale revision writes nothing");
    let now = b.schedules().schedule("nightly").await.expect("read again");
    assert!(now.paused && now.cursor == 1_000, "the first write stands whole: {now:?}");
    // `update` reads afresh, so it never loses a write.
    let resumed = schedules::update(a.schedules(), "nightly", |s| {
        s.resume(7_000);
        Some(())
    })
    .await
    .expect("update");
    assert!(resumed.is_some());
    let now = b.schedules().schedule("nightly").await.expect("read again");
    assert!(!now.paused && now.cursor == 7_000, "{now:?}");

    a.schedules().create_schedule(&schedule("hourly")).await.expect("a second schedule");
    let names: Vec<String> =
        b.schedules().list_schedules().await.expect("list").into_iter().map(|s| s.spec.name).collect();
    assert_eq!(names, ["hourly", "nightly"]);
    a.schedules().delete_schedule("nightly").await.expect("delete");
    assert!(matches!(b.schedules().schedule("nightly").await, Err(Error::UnknownSchedule(_))));
    assert!(matches!(a.schedules().delete_schedule("nightly").await, Err(Error::UnknownSchedule(_))));
    assert!(
        !a.schedules().replace_schedule(&now).await.expect("replace a deleted one"),
        "a deleted schedule stays gone"
    );
    assert!(a.schedules().create_schedule(&schedule("Bad/Name")).await.is_err(), "names are checked");
}
