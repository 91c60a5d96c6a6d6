//! Load profiles as data: built-ins, scaling math, overrides, and errors that point at the
//! offending file, line and field.

use std::time::Duration;

use scenarios::{Load, Overrides, Profile, ProfileError, UserStage};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn closed_stages(profile: &Profile) -> Vec<(u64, u32)> {
    match &profile.load {
        Load::Closed { stages } => stages
            .iter()
            .map(|s| (s.duration.as_secs(), s.users))
            .collect(),
        Load::Open { .. } => panic!("expected a closed-model profile"),
    }
}

#[test]
fn k6_baseline_is_the_seed_profile() {
    let profile = Profile::builtin("k6-baseline").unwrap();
    assert_eq!(
        closed_stages(&profile),
        [(30, 20), (90, 50), (60, 100), (60, 50), (30, 0)]
    );
    assert_eq!(profile.planned_duration(), secs(270));
    assert_eq!(profile.peak_users(), 100);
    let thresholds: Vec<String> = profile.thresholds.iter().map(|t| t.to_string()).collect();
    assert_eq!(thresholds, ["p95<500ms", "p99<1000ms", "error_rate<5%"]);
    assert_eq!(
        profile.goose_test_plan(),
        "20,30s;50,90s;100,60s;50,60s;0,30s"
    );
}

#[test]
fn k6_baseline_scales_time_and_users_together() {
    let profile = Profile::builtin("k6-baseline")
        .unwrap()
        .scaled(0.2)
        .unwrap();
    assert_eq!(
        closed_stages(&profile),
        [(6, 4), (18, 10), (12, 20), (12, 10), (6, 0)]
    );
    assert_eq!(profile.planned_duration(), secs(54));
    assert_eq!(profile.goose_test_plan(), "4,6s;10,18s;20,12s;10,12s;0,6s");
}

#[test]
fn tiny_scales_keep_every_stage_alive() {
    let profile = Profile::builtin("k6-baseline")
        .unwrap()
        .scaled(0.01)
        .unwrap();
    let stages = closed_stages(&profile);
    // 20 × 0.01 rounds to 0, but a stage that had users keeps one; the final drain stays 0.
    assert_eq!(stages, [(1, 1), (1, 1), (1, 1), (1, 1), (1, 0)]);
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let error = Profile::builtin("k6-baseline")
            .unwrap()
            .scaled(bad)
            .unwrap_err();
        assert!(
            matches!(error, ProfileError::Reshape { .. }),
            "{bad}: {error}"
        );
    }
}

#[test]
fn overrides_keep_the_shape() {
    let base = Profile::builtin("k6-baseline").unwrap();
    let shorter = base
        .with_overrides(&Overrides {
            duration: Some(secs(60)),
            ..Overrides::default()
        })
        .unwrap();
    // 60/270 of each stage, rounded to whole seconds: still one minute in total.
    assert_eq!(
        closed_stages(&shorter),
        [(7, 20), (20, 50), (13, 100), (13, 50), (7, 0)]
    );
    assert_eq!(shorter.planned_duration(), secs(60));
    let fewer = base
        .with_overrides(&Overrides {
            users: Some(10),
            ..Overrides::default()
        })
        .unwrap();
    assert_eq!(
        closed_stages(&fewer),
        [(30, 2), (90, 5), (60, 10), (60, 5), (30, 0)]
    );
    let error = base
        .with_overrides(&Overrides {
            rate: Some(10.0),
            ..Overrides::default()
        })
        .unwrap_err();
    assert!(error.to_string().contains("open-model"), "{error}");
}

#[test]
fn open_model_overrides_set_rate_and_users() {
    let base = Profile::builtin("open-baseline").unwrap();
    let reshaped = base
        .with_overrides(&Overrides {
            duration: Some(secs(18)),
            users: Some(7),
            rate: Some(4.0),
        })
        .unwrap();
    let Load::Open {
        start_rate,
        max_users,
        stages,
    } = &reshaped.load
    else {
        panic!("open model expected");
    };
    assert_eq!(*max_users, 7);
    assert_eq!(*start_rate, 0.0);
    let rates: Vec<f64> = stages.iter().map(|s| s.rate).collect();
    assert_eq!(rates, [2.0, 2.0, 4.0, 4.0, 2.0]);
    assert_eq!(reshaped.planned_duration(), secs(18));
    assert_eq!(reshaped.goose_test_plan(), "7,0s;7,18s;0,0s");
}

#[test]
fn every_builtin_parses_and_the_list_is_complete() {
    let names = scenarios::builtin_profile_names();
    assert_eq!(names, ["k6-baseline", "smoke", "open-baseline"]);
    for name in names {
        let profile = Profile::builtin(name).unwrap();
        assert_eq!(profile.name, name);
        assert!(profile.planned_duration() > Duration::ZERO);
    }
    let smoke = Profile::builtin("smoke").unwrap();
    assert_eq!(smoke.planned_duration(), secs(20));
    assert!(smoke.peak_users() <= 5);
}

#[test]
fn unknown_builtin_names_the_choices() {
    let error = Profile::resolve("k6-basline").unwrap_err();
    let ProfileError::UnknownBuiltin { name, known } = &error else {
        panic!("unexpected {error}");
    };
    assert_eq!(name, "k6-basline");
    assert!(known.iter().any(|k| k == "k6-baseline"));
    let text = error.to_string();
    assert!(text.contains("unknown profile \"k6-basline\""), "{text}");
    assert!(text.contains("k6-baseline, smoke, open-baseline"), "{text}");
}

#[test]
fn missing_file_is_a_read_error() {
    let error = Profile::resolve("/nonexistent/ramp.yaml").unwrap_err();
    assert!(matches!(error, ProfileError::Read { .. }), "{error}");
    assert!(error.to_string().contains("/nonexistent/ramp.yaml"));
}

/// Writes `yaml` to a file and returns the error loading it.
fn load_error(yaml: &str) -> (ProfileError, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ramp.yaml");
    std::fs::write(&path, yaml).unwrap();
    let error = Profile::resolve(path.to_str().unwrap()).unwrap_err();
    (error, path.display().to_string())
}

#[test]
fn bad_duration_names_file_line_and_field() {
    let (error, path) = load_error(
        "name: ramp\nclosed:\n  stages:\n    - duration: 30s\n      users: 5\n    - duration: 5 parsecs\n      users: 5\n",
    );
    assert_eq!(error.line(), Some(6), "{error}");
    assert_eq!(error.field(), Some("closed.stages[1].duration"), "{error}");
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("invalid profile {path}:6:")),
        "{text}"
    );
    assert!(text.contains("field `closed.stages[1].duration`"), "{text}");
    assert!(text.contains("5 parsecs"), "{text}");
}

#[test]
fn misspelled_field_is_caught() {
    let (error, path) = load_error(
        "name: ramp\nclosed:\n  stages:\n    - duration: 30s\n      users: 5\n    - duraton: 10s\n      users: 0\n",
    );
    let text = error.to_string();
    assert!(text.contains(&path), "{text}");
    assert_eq!(error.line(), Some(6), "{text}");
    assert!(text.contains("closed.stages[1]"), "{text}");
    assert!(text.contains("duraton"), "{text}");
}

#[test]
fn values_are_validated_where_they_are_written() {
    let cases = [
        // (yaml, line, field, words in the message)
        (
            "closed:\n  stages:\n    - { duration: 1500ms, users: 5 }\n",
            3,
            "closed.stages[0].duration",
            "whole seconds",
        ),
        (
            "open:\n  max_users: 2\n  stages:\n    - { duration: 5s, rate: -3 }\n",
            4,
            "open.stages[0].rate",
            "non-negative",
        ),
        (
            "open:\n  max_users: 0\n  stages:\n    - { duration: 5s, rate: 3 }\n",
            2,
            "open.max_users",
            "at least 1",
        ),
        (
            "closed:\n  stages: []\n",
            2,
            "closed.stages",
            "at least one stage",
        ),
        (
            "closed:\n  stages:\n    - { duration: 5s, users: 1 }\nthresholds:\n  - p95 500ms\n",
            5,
            "thresholds[0]",
            "invalid threshold",
        ),
        (
            "closed:\n  stages:\n    - { duration: 5s, users: 1 }\nrequest_timeout: 0s\n",
            4,
            "request_timeout",
            "longer than zero",
        ),
    ];
    for (yaml, line, field, words) in cases {
        let (error, _) = load_error(yaml);
        let text = error.to_string();
        assert_eq!(error.line(), Some(line), "{yaml}\n→ {text}");
        assert_eq!(error.field(), Some(field), "{yaml}\n→ {text}");
        assert!(text.contains(words), "{yaml}\n→ {text}");
    }
}

#[test]
fn rules_spanning_fields_name_the_file_and_field() {
    let (error, path) = load_error("name: nothing\n");
    let text = error.to_string();
    assert!(text.contains(&path) && text.contains("`closed:`"), "{text}");

    let (error, _) = load_error("closed:\n  stages:\n    - { duration: 5s, users: 0 }\n");
    assert_eq!(error.field(), Some("closed.stages[0].users"));

    let (error, _) = load_error(
        "closed:\n  stages:\n    - { duration: 5s, users: 1 }\nthink_time: { min: 2s, max: 1s }\n",
    );
    assert_eq!(error.field(), Some("think_time"));
}

#[test]
fn a_file_profile_round_trips_into_goose_terms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short-ramp.yaml");
    std::fs::write(
        &path,
        "closed:\n  stages:\n    - { duration: 2s, users: 3 }\n    - { duration: 1m, users: 3 }\nthink_time: { min: 10ms, max: 20ms }\nrequest_timeout: 2s\n",
    )
    .unwrap();
    let profile = Profile::resolve(path.to_str().unwrap()).unwrap();
    assert_eq!(profile.name, "short-ramp", "named after the file");
    assert_eq!(
        profile.load,
        Load::Closed {
            stages: vec![
                UserStage {
                    duration: secs(2),
                    users: 3
                },
                UserStage {
                    duration: secs(60),
                    users: 3
                },
            ]
        }
    );
    assert_eq!(profile.request_timeout, secs(2));
    assert_eq!(profile.goose_test_plan(), "3,2s;3,60s;0,0s");
    assert!(profile.thresholds.is_empty());
}
