use super::*;
use proptest::prelude::*;

const DAY: u64 = 86_400;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn spec(json: serde_json::Value) -> RetrySpec {
    serde_json::from_value(json).unwrap()
}

fn resolved(json: serde_json::Value) -> RetryPolicy {
    spec(json).resolve().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn defaults() {
    let policy = RetryPolicy::default();
    assert_eq!(
        policy,
        RetryPolicy {
            preset: None,
            policy: PolicyKind::Bounded,
            schedule: Schedule::Exponential,
            delay: secs(30),
            max_retries: 5,
            min_delay: secs(60),
            max_delay: secs(4 * DAY),
            max_age: secs(3 * DAY),
            retry_on: StatusRule::parse("429, >=500").unwrap(),
            retry_after: true,
            on_client_error: OnClientError::Fail,
            flush_on_recovery: true,
        }
    );
}

#[test]
fn power_schedule_has_its_own_defaults() {
    let power = resolved(serde_json::json!({"schedule": "power"}));
    assert_eq!((power.max_retries, power.max_age), (25, secs(30 * DAY)));
    let given =
        resolved(serde_json::json!({"schedule": "power", "max_retries": 7, "max_age": "2d"}));
    assert_eq!((given.max_retries, given.max_age), (7, secs(2 * DAY)));
    let fixed = resolved(serde_json::json!({"schedule": "fixed"}));
    assert_eq!((fixed.max_retries, fixed.max_age), (5, secs(3 * DAY)));
}

#[test]
fn resolve_reads_every_key() {
    let policy = resolved(serde_json::json!({
        "policy": "always",
        "schedule": "fixed",
        "delay": "1m",
        "max_retries": 50,
        "min_delay": "5s",
        "max_delay": "1h",
        "max_age": "1h 30m",
        "retry_on": "500-599, !501",
        "retry_after": false,
        "on_client_error": "disable",
        "flush_on_recovery": false,
    }));
    assert_eq!(
        policy,
        RetryPolicy {
            preset: None,
            policy: PolicyKind::Always,
            schedule: Schedule::Fixed,
            delay: secs(60),
            max_retries: 50,
            min_delay: secs(5),
            max_delay: secs(3_600),
            max_age: secs(5_400),
            retry_on: StatusRule::parse("500-599, !501").unwrap(),
            retry_after: false,
            on_client_error: OnClientError::Disable,
            flush_on_recovery: false,
        }
    );
}

#[test]
fn resolve_errors_name_the_key() {
    let cases = [
        (
            serde_json::json!({"max_retries": 0}),
            "max_retries: must be between 1 and 50, got 0",
        ),
        (
            serde_json::json!({"max_retries": 51}),
            "max_retries: must be between 1 and 50, got 51",
        ),
        (
            serde_json::json!({"max_retries": -3}),
            "max_retries: must be between 1 and 50, got -3",
        ),
        (
            serde_json::json!({"delay": "0s"}),
            "delay: must be greater than zero",
        ),
        (
            serde_json::json!({"min_delay": "0ms"}),
            "min_delay: must be greater than zero",
        ),
        (
            serde_json::json!({"max_delay": "0s"}),
            "max_delay: must be greater than zero",
        ),
        (
            serde_json::json!({"max_age": "0s"}),
            "max_age: must be greater than zero",
        ),
        (
            serde_json::json!({"delay": "soon"}),
            "delay: invalid duration \"soon\": ",
        ),
        (
            serde_json::json!({"retry_on": "5xx"}),
            "retry_on: bad status rule \"5xx\" at position 1: expected a status code",
        ),
        (
            serde_json::json!({"policy": "sometimes"}),
            "policy: unknown value \"sometimes\" (expected none, bounded or always)",
        ),
        (
            serde_json::json!({"schedule": "linear"}),
            "schedule: unknown value \"linear\" (expected fixed, exponential or power)",
        ),
        (
            serde_json::json!({"on_client_error": "ignore"}),
            "on_client_error: unknown value \"ignore\" (expected fail or disable)",
        ),
        (
            serde_json::json!({"min_delay": "5d"}),
            "min_delay: must not be greater than max_delay (4d), got 5d",
        ),
    ];
    for (json, expected) in cases {
        let err = spec(json.clone()).resolve().unwrap_err();
        assert!(err.to_string().starts_with(expected), "{json}: {err}");
    }
    assert_eq!(
        spec(serde_json::json!({"max_retries": 0}))
            .resolve()
            .unwrap_err()
            .key,
        "max_retries"
    );
    // Boundaries that are allowed.
    for json in [
        serde_json::json!({"max_retries": 1}),
        serde_json::json!({"max_retries": 50}),
        serde_json::json!({"min_delay": "4d", "max_delay": "4d"}),
    ] {
        assert!(spec(json.clone()).resolve().is_ok(), "{json}");
    }
}

#[test]
fn spec_rejects_unknown_keys_and_serializes_only_given_keys() {
    let err =
        serde_json::from_value::<RetrySpec>(serde_json::json!({"colour": "red"})).unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
    let partial = spec(serde_json::json!({"delay": "1m", "retry_after": false}));
    assert_eq!(
        serde_json::to_value(&partial).unwrap(),
        serde_json::json!({"delay": "1m", "retry_after": false})
    );
    assert_eq!(
        serde_json::to_value(RetrySpec::default()).unwrap(),
        serde_json::json!({})
    );
}

#[test]
fn merged_lets_the_patch_win_key_by_key() {
    let base = spec(serde_json::json!({"delay": "1m", "max_retries": 3, "retry_on": "503"}));
    let patch = spec(serde_json::json!({"max_retries": 9, "policy": "always"}));
    assert_eq!(
        base.merged(&patch),
        spec(serde_json::json!({
            "delay": "1m", "max_retries": 9, "retry_on": "503", "policy": "always"
        }))
    );
    assert_eq!(base.merged(&RetrySpec::default()), base);
    assert_eq!(RetrySpec::default().merged(&base), base);
}

#[test]
fn to_spec_round_trips() {
    let policies = [
        RetryPolicy::default(),
        resolved(serde_json::json!({"schedule": "power", "on_client_error": "disable"})),
        resolved(serde_json::json!({
            "policy": "none", "delay": "1d 5m 3s", "max_age": "90061s",
            "min_delay": "1500ms", "max_delay": "1d 1ns", "retry_on": " 429 ,>=500 ",
            "retry_after": false, "flush_on_recovery": false
        })),
    ];
    for policy in policies {
        let spec = policy.to_spec();
        assert!(
            [
                &spec.policy,
                &spec.schedule,
                &spec.delay,
                &spec.min_delay,
                &spec.max_delay,
                &spec.max_age,
                &spec.retry_on,
                &spec.on_client_error
            ]
            .iter()
            .all(|v| v.is_some())
                && spec.max_retries.is_some()
                && spec.retry_after.is_some()
                && spec.flush_on_recovery.is_some()
        );
        assert_eq!(spec.resolve().unwrap(), policy);
    }
    let shown = RetryPolicy::default().to_spec();
    assert_eq!(
        serde_json::to_value(&shown).unwrap(),
        serde_json::json!({
            "policy": "bounded", "schedule": "exponential", "delay": "30s", "max_retries": 5,
            "min_delay": "1m", "max_delay": "4d", "max_age": "3d", "retry_on": "429, >=500",
            "retry_after": true, "on_client_error": "fail", "flush_on_recovery": true
        })
    );
}

#[test]
fn enums_use_lowercase_names() {
    assert_eq!(serde_json::to_value(Trigger::Flush).unwrap(), "flush");
    assert_eq!(Trigger::Bulk.to_string(), "bulk");
    assert_eq!(
        serde_json::from_value::<PolicyKind>(serde_json::json!("always")).unwrap(),
        PolicyKind::Always
    );
    assert_eq!(serde_json::to_value(Schedule::Power).unwrap(), "power");
    assert_eq!(
        serde_json::to_value(OnClientError::Disable).unwrap(),
        "disable"
    );
    assert_eq!("manual".parse::<Trigger>(), Ok(Trigger::Manual));
    assert_eq!(
        serde_json::to_value(FailReason::RetriesExhausted).unwrap(),
        "retries_exhausted"
    );
    assert_eq!(
        FailReason::TooManyRedirects.to_string(),
        "too_many_redirects"
    );
    assert_eq!(FailReason::NotRetriable.to_string(), "not_retriable");
}

#[test]
fn schedules() {
    let fixed = resolved(serde_json::json!({"schedule": "fixed", "delay": "1m"}));
    let exponential = resolved(serde_json::json!({"delay": "30s", "max_delay": "6h"}));
    let power = resolved(serde_json::json!({"schedule": "power"}));
    let cases: &[(&RetryPolicy, u32, u64)] = &[
        (&fixed, 1, 60),
        (&fixed, 50, 60),
        (&exponential, 0, 30),
        (&exponential, 1, 30),
        (&exponential, 2, 60),
        (&exponential, 3, 120),
        (&exponential, 4, 240),
        (&exponential, 10, 30 * 512),
        (&exponential, 11, 6 * 3_600), // 30s * 1024 = 8h32m, capped
        (&exponential, 64, 6 * 3_600),
        (&exponential, 200, 6 * 3_600),
        (&exponential, u32::MAX, 6 * 3_600),
        (&power, 1, 60), // 1s, raised to min_delay
        (&power, 2, 60), // 16s
        (&power, 3, 81),
        (&power, 5, 625),
        (&power, 10, 10_000),
        (&power, 20, 160_000),
        (&power, 25, 4 * DAY), // 390625s ≈ 4.5d, capped at max_delay
        (&power, u32::MAX, 4 * DAY),
    ];
    for (policy, n, expected) in cases {
        assert_eq!(
            retry_delay(policy, *n),
            secs(*expected),
            "{:?} retry {n}",
            policy.schedule
        );
    }
}

#[test]
fn schedules_never_panic_on_hand_built_policies() {
    let mut odd = RetryPolicy {
        min_delay: secs(10 * DAY),
        max_delay: secs(1),
        delay: Duration::MAX,
        ..RetryPolicy::default()
    };
    for schedule in [Schedule::Fixed, Schedule::Exponential, Schedule::Power] {
        odd.schedule = schedule;
        for n in [0, 1, 2, 63, 64, 65, 128, u32::MAX] {
            let _ = retry_delay(&odd, n);
        }
    }
}

fn any_policy() -> impl Strategy<Value = RetryPolicy> {
    (
        prop_oneof![Just("none"), Just("bounded"), Just("always")],
        prop_oneof![Just("fixed"), Just("exponential"), Just("power")],
        1u64..=7_200,
        1i64..=50,
        1u64..=600,
        1u64..=10 * DAY,
        1u64..=60 * DAY,
        any::<bool>(),
    )
        .prop_map(
            |(kind, schedule, delay, max_retries, min_delay, max_delay, max_age, retry_after)| {
                RetrySpec {
                    policy: Some(kind.to_string()),
                    schedule: Some(schedule.to_string()),
                    delay: Some(format!("{delay}s")),
                    max_retries: Some(max_retries),
                    min_delay: Some(format!("{}s", min_delay.min(max_delay))),
                    max_delay: Some(format!("{max_delay}s")),
                    max_age: Some(format!("{max_age}s")),
                    retry_after: Some(retry_after),
                    ..RetrySpec::default()
                }
                .resolve()
                .unwrap()
            },
        )
}

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

use chrono::{DateTime, Utc};

proptest! {
    #[test]
    fn a_failing_cycle_respects_limit_and_max_age(
        policy in any_policy(),
        failures in prop::collection::vec(
            prop_oneof![
                Just(Outcome::Timeout),
                Just(Outcome::Network("connection refused".to_string())),
                (500u16..=599).prop_map(|status| Outcome::Response { status, retry_after: None }),
                Just(Outcome::Response { status: 429, retry_after: None }),
                (0u64..100_000).prop_map(|secs| Outcome::Response {
                    status: 503,
                    retry_after: Some(secs.to_string()),
                }),
                (0u64..100_000).prop_map(|secs| Outcome::Response {
                    status: 503,
                    retry_after: Some(httpdate::fmt_http_date((start() + chrono::Duration::seconds(secs as i64)).into())),
                }),
            ],
            1..20,
        ),
        late_start in 0u64..3_600,
    ) {
        let mut policy = policy;
        // Keep `always` cycles short enough to simulate step by step.
        let shortest_wait = match policy.schedule {
            Schedule::Fixed => policy.delay,
            Schedule::Exponential => policy.delay.min(policy.max_delay),
            Schedule::Power => policy.min_delay,
        };
        policy.max_age = policy.max_age.min(shortest_wait * 2_000);
        let cycle_started_at = start();
        let deadline = cycle_started_at + chrono::Duration::from_std(policy.max_age).unwrap();
        let limit = match policy.policy {
            PolicyKind::None => 1,
            PolicyKind::Bounded => policy.max_retries,
            PolicyKind::Always => u32::MAX,
        };
        let mut now = cycle_started_at + chrono::Duration::seconds(late_start as i64);
        let mut history = History { cycle_started_at, automatic_retries: 0, next_attempt_at: None };
        let mut trigger = Trigger::Initial;
        let mut attempts = 0usize;
        loop {
            let outcome = &failures[attempts % failures.len()];
            attempts += 1;
            let announced = will_retry_after(&policy, &history, trigger, now);
            let decision = decide(&policy, &history, trigger, outcome, now);
            prop_assert!(!decision.success);
            match decision.verdict {
                Verdict::Retry { at, .. } => {
                    prop_assert!(at >= now);
                    prop_assert!(at <= deadline, "scheduled past max_age: {}", decision.words);
                    let retry_after_given =
                        matches!(outcome, Outcome::Response { retry_after: Some(_), .. }) && policy.retry_after;
                    if !retry_after_given {
                        prop_assert_eq!(announced, Some((at - now).to_std().unwrap()));
                    }
                    if trigger != Trigger::Initial {
                        history.automatic_retries += 1;
                    }
                    history.next_attempt_at = Some(at);
                    trigger = Trigger::Automatic;
                    now = at;
                    let scheduled_retry = history.automatic_retries + 1;
                    prop_assert!(scheduled_retry <= limit);
                    if retry_after_given && decision.words.contains("(Retry-After)") {
                        prop_assert!(scheduled_retry <= MAX_RETRIES_LIMIT);
                    }
                }
                Verdict::Failed { reason } => {
                    prop_assert!(matches!(reason, FailReason::RetriesExhausted | FailReason::Expired));
                    let retry_after_given =
                        matches!(outcome, Outcome::Response { retry_after: Some(_), .. }) && policy.retry_after;
                    if !retry_after_given {
                        prop_assert_eq!(announced, None);
                    }
                    break;
                }
                other => prop_assert!(false, "unexpected verdict {:?}", other),
            }
            prop_assert!(attempts < 100_000);
        }
        let retries_made = if trigger == Trigger::Initial { 0 } else { history.automatic_retries + 1 };
        prop_assert!(retries_made <= limit);
    }

    #[test]
    fn growing_schedules_never_shrink(policy in any_policy(), n in 1u32..200) {
        if policy.schedule != Schedule::Fixed {
            prop_assert!(retry_delay(&policy, n + 1) >= retry_delay(&policy, n));
        }
        prop_assert!(retry_delay(&policy, n) > Duration::ZERO);
    }

    #[test]
    fn to_spec_resolves_to_the_same_policy(policy in any_policy()) {
        prop_assert_eq!(policy.to_spec().resolve().unwrap(), policy);
    }
}
