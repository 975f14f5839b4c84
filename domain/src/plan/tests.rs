//! The plan's rules: validation by field, the quietest stretch of the week, the next
//! occurrence in a time zone, acceptable-impact tests, proposed risks, comparison.

use super::*;
use chrono::NaiveDate;

fn at(d: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(d, "%Y-%m-%d %H:%M").unwrap()
}

fn period(label: &str, from: &str, to: &str) -> Period {
    Period {
        label: label.into(),
        starts: at(from),
        ends: at(to),
    }
}

#[test]
fn a_document_is_checked_field_by_field_without_quoting_values() {
    let mut plan = PlanDocument::default();
    assert!(plan.check().is_ok());
    assert_eq!(plan.requirements.len(), 5);
    plan.time_zone = "Mars/Olympus".into();
    let err = plan.check().unwrap_err().to_string();
    assert!(
        err.contains("time_zone") && !err.contains("Olympus"),
        "{err}"
    );
    plan.time_zone = "Europe/Berlin".into();
    plan.risks.push(Risk {
        title: " ".into(),
        kind: RiskKind::DataLoss,
        likelihood: Level::Low,
        impact: Level::Low,
        mitigation: String::new(),
        proposal: None,
    });
    assert!(
        plan.check()
            .unwrap_err()
            .to_string()
            .contains("risks[0].title")
    );
    plan.risks.clear();
    plan.windows
        .push(period("backwards", "2027-01-02 04:00", "2027-01-02 03:00"));
    assert!(
        plan.check()
            .unwrap_err()
            .to_string()
            .contains("windows[0].ends")
    );
    plan.windows.clear();
    plan.acceptable.max_reset_percent = Some(120.0);
    assert!(
        plan.check()
            .unwrap_err()
            .to_string()
            .contains("acceptable.max_reset_percent")
    );
}

#[test]
fn the_quietest_stretch_wraps_around_the_week_and_the_earliest_wins_a_tie() {
    let mut heat = [[10u64; 24]; 7];
    // Sunday 22:00 to Monday 02:00 is empty: four hours across the week's end.
    heat[6][22] = 0;
    heat[6][23] = 0;
    heat[0][0] = 0;
    heat[0][1] = 0;
    assert_eq!(quietest(&heat, 4), Some((6, 22, 0)));
    // Two hours: the first quiet pair in the week is Monday 00:00.
    assert_eq!(quietest(&heat, 2), Some((0, 0, 0)));
    assert_eq!(quietest(&heat, 169), None);
}

#[test]
fn the_suggested_window_is_long_enough_for_the_run_and_in_the_plans_zone() {
    let mut heat = [[5u64; 24]; 7];
    // Wednesday 02:00–06:00 local.
    heat[2][2..6].fill(0);
    let zone: chrono_tz::Tz = "Asia/Kolkata".parse().unwrap();
    // Monday 2027-01-04 12:00 UTC = 17:30 in Kolkata.
    let now = Utc.with_ymd_and_hms(2027, 1, 4, 12, 0, 0).unwrap();
    // 2 h 10 min of run: three hours plus one of margin = four.
    let w = suggest_window(&heat, 2 * 3600 + 600, zone, now, "500 users/s").unwrap();
    assert_eq!(w.hours, 4);
    assert_eq!(w.starts, at("2027-01-06 02:00"));
    assert_eq!(w.ends, at("2027-01-06 06:00"));
    assert_eq!(w.logins, 0);
    assert!(w.reason.contains("2 h 10 min"), "{}", w.reason);
    assert!(suggest_window(&[[0; 24]; 7], 60, zone, now, "x").is_none());
}

#[test]
fn the_next_occurrence_is_today_later_or_next_week() {
    let zone = chrono_tz::UTC;
    // Wednesday 2027-01-06 10:00.
    let now = Utc.with_ymd_and_hms(2027, 1, 6, 10, 0, 0).unwrap();
    assert_eq!(next_occurrence(zone, now, 2, 22), at("2027-01-06 22:00"));
    assert_eq!(next_occurrence(zone, now, 2, 3), at("2027-01-13 03:00"));
    assert_eq!(next_occurrence(zone, now, 0, 1), at("2027-01-11 01:00"));
}

#[test]
fn acceptable_impact_numbers_are_checked_and_unknowns_are_not_met() {
    let acceptable = AcceptableImpact {
        max_reset_percent: Some(25.0),
        max_failed_records: Some(10),
        max_downtime_minutes: Some(60),
    };
    let facts = ImpactFacts {
        moving: Some(1000),
        resets: Some(250),
        failing: Some(11),
        run_seconds: None,
    };
    let tests = impact_tests(&acceptable, &facts);
    assert_eq!(tests.len(), 3);
    assert!(tests[0].met && tests[0].actual == Some(25.0));
    assert!(!tests[1].met && tests[1].detail == "over the limit");
    assert!(!tests[2].met && tests[2].actual.is_none());
    assert!(impact_tests(&AcceptableImpact::default(), &facts).is_empty());
}

#[test]
fn ferry_proposes_the_risks_its_data_shows_and_knows_which_are_adopted() {
    let mut plan = PlanDocument::default();
    plan.windows.push(period(
        "Saturday night",
        "2027-01-09 01:00",
        "2027-01-09 02:00",
    ));
    plan.peaks
        .push(period("Sales", "2027-01-08 00:00", "2027-01-10 00:00"));
    plan.risks.push(Risk {
        title: "Collisions".into(),
        kind: RiskKind::Compatibility,
        likelihood: Level::High,
        impact: Level::High,
        mitigation: "fix".into(),
        proposal: Some("collisions".into()),
    });
    let facts = RiskFacts {
        quality: vec![
            ("Duplicate e-mail addresses".into(), 3),
            ("Empty".into(), 0),
        ],
        rejected: Some(0),
        colliding: Some(4),
        silent_without_hash: 7,
        run_seconds: Some(7200),
        pii_targets: vec!["emails[0].value".into()],
    };
    let risks = propose(&facts, &plan);
    let keys: Vec<&str> = risks.iter().map(|r| r.key.as_str()).collect();
    for key in [
        "data_quality",
        "collisions",
        "silent_without_hash",
        "window_too_short",
        "peak_overlap",
        "pii_to_target",
    ] {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
    assert!(!keys.contains(&"mapping_rejects"));
    assert!(
        risks
            .iter()
            .find(|r| r.key == "collisions")
            .unwrap()
            .adopted
    );
    assert!(
        !risks
            .iter()
            .find(|r| r.key == "pii_to_target")
            .unwrap()
            .adopted
    );
    let quality = risks.iter().find(|r| r.key == "data_quality").unwrap();
    assert_eq!(quality.evidence, "Duplicate e-mail addresses: 3");
    // Most severe first.
    assert_eq!(risks[0].impact, Level::High);
}

#[test]
fn two_versions_compare_field_by_field() {
    let a = PlanDocument::default();
    let mut b = a.clone();
    b.requirements[4].status = RequirementStatus::Met;
    b.acceptable.max_failed_records = Some(5);
    b.milestones.push(Milestone {
        title: "Go-live".into(),
        due: NaiveDate::from_ymd_opt(2027, 2, 1),
        owner: "ops".into(),
        done: false,
    });
    let changes = compare(&a, &b);
    let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "acceptable.max_failed_records",
            "milestones[0]",
            "requirements[4].status",
        ]
    );
    assert_eq!(changes[2].before.as_deref(), Some("\"open\""));
    assert_eq!(changes[2].after.as_deref(), Some("\"met\""));
    assert_eq!(changes[1].before, None);
    assert!(compare(&a, &a).is_empty());
}

#[test]
fn durations_read_as_words() {
    assert_eq!(duration_words(0), "under a minute");
    assert_eq!(duration_words(59), "under a minute");
    assert_eq!(duration_words(60), "1 min");
    assert_eq!(duration_words(3600), "1 h");
    assert_eq!(duration_words(2 * 3600 + 601), "2 h 11 min");
}
