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

fn preset(name: &str) -> RetryPolicy {
    resolved(serde_json::json!({ "preset": name }))
}

/// Every key of every preset, as its reference sets it.
#[test]
fn each_preset_sets_every_default_to_its_reference() {
    assert_eq!(
        preset("monitor"),
        RetryPolicy {
            preset: Some(Preset::Monitor),
            policy: PolicyKind::Bounded,
            schedule: Schedule::Fixed,
            delay: secs(30),
            max_retries: 5,
            min_delay: secs(60),
            max_delay: secs(4 * DAY),
            max_age: secs(3 * DAY),
            retry_on: StatusRule::parse("any").unwrap(),
            retry_after: false,
            on_client_error: OnClientError::Fail,
            flush_on_recovery: true,
        }
    );
    assert_eq!(
        preset("webhook"),
        RetryPolicy {
            preset: Some(Preset::Webhook),
            policy: PolicyKind::Bounded,
            schedule: Schedule::Power,
            delay: secs(30),
            max_retries: 25,
            min_delay: secs(60),
            max_delay: secs(4 * DAY),
            max_age: secs(30 * DAY),
            retry_on: StatusRule::parse("429, >=500").unwrap(),
            retry_after: false,
            on_client_error: OnClientError::Disable,
            flush_on_recovery: false,
        }
    );
    assert_eq!(
        preset("rule"),
        RetryPolicy {
            preset: Some(Preset::Rule),
            policy: PolicyKind::Bounded,
            schedule: Schedule::Exponential,
            delay: secs(3_600),
            max_retries: 5,
            min_delay: secs(60),
            max_delay: secs(7 * DAY),
            // 50 retries of at most 7 days each: no Retry-After the reference
            // allows is ever cut by age.
            max_age: secs(350 * DAY),
            retry_on: StatusRule::parse("any").unwrap(),
            retry_after: true,
            on_client_error: OnClientError::Fail,
            flush_on_recovery: false,
        }
    );
    // The rule preset's age follows a longer max_delay.
    assert_eq!(
        resolved(serde_json::json!({"preset": "rule", "max_delay": "10d"})).max_age,
        secs(500 * DAY)
    );
    // Explicit keys override within the limits.
    let given = resolved(serde_json::json!({
        "preset": "monitor", "policy": "always", "delay": "1m", "max_age": "2d", "retry_on": ">=500"
    }));
    assert_eq!(
        (
            given.policy,
            given.delay,
            given.max_age,
            given.retry_on.as_str()
        ),
        (PolicyKind::Always, secs(60), secs(2 * DAY), ">=500")
    );
    assert_eq!(
        resolved(serde_json::json!({"preset": "webhook", "max_retries": 50})).max_retries,
        50
    );
    assert_eq!(Preset::Webhook.default_timeout(), Some(secs(30)));
    assert_eq!(Preset::Monitor.default_timeout(), None);
}

#[test]
fn a_preset_refuses_what_its_reference_does_not_allow() {
    let cases = [
        (
            serde_json::json!({"preset": "monitor", "max_age": "5d"}),
            "max_age",
            "the monitor preset caps every event at 3 days, got 5d",
        ),
        (
            serde_json::json!({"preset": "monitor", "policy": "always", "max_age": "3d 1s"}),
            "max_age",
            "the monitor preset caps every event at 3 days, got 3d 1s",
        ),
        (
            serde_json::json!({"preset": "monitor", "schedule": "exponential"}),
            "schedule",
            "the monitor preset retries every `delay` (fixed), got exponential",
        ),
        (
            serde_json::json!({"preset": "webhook", "max_retries": 51}),
            "max_retries",
            "must be between 1 and 50, got 51",
        ),
        (
            serde_json::json!({"preset": "webhook", "max_retries": 0}),
            "max_retries",
            "must be between 1 and 50, got 0",
        ),
        (
            serde_json::json!({"preset": "webhook", "max_age": "31d"}),
            "max_age",
            "the webhook preset stops retrying 30 days after an event was created, got 31d",
        ),
        (
            serde_json::json!({"preset": "webhook", "min_delay": "30s"}),
            "min_delay",
            "the webhook preset waits at least 1m between retries, got 30s",
        ),
        (
            serde_json::json!({"preset": "webhook", "max_delay": "5d"}),
            "max_delay",
            "the webhook preset waits at most 4d between retries, got 5d",
        ),
        (
            serde_json::json!({"preset": "webhook", "schedule": "fixed"}),
            "schedule",
            "the webhook preset waits n⁴ seconds (power), got fixed",
        ),
        (
            serde_json::json!({"preset": "webhook", "policy": "always"}),
            "policy",
            "the webhook preset makes 1 to 50 retries (none or bounded), got always",
        ),
        (
            serde_json::json!({"preset": "rule", "max_retries": 51}),
            "max_retries",
            "must be between 1 and 50, got 51",
        ),
        (
            serde_json::json!({"preset": "rule", "policy": "always"}),
            "policy",
            "the rule preset makes at most 50 automatic retries (none or bounded), got always",
        ),
        (
            serde_json::json!({"preset": "rule", "schedule": "power"}),
            "schedule",
            "the rule preset retries linear (fixed) or exponential, got power",
        ),
        (
            serde_json::json!({"preset": "hookdeck"}),
            "preset",
            "unknown value \"hookdeck\" (expected monitor, webhook or rule)",
        ),
    ];
    for (json, key, message) in cases {
        let err = spec(json.clone()).resolve().unwrap_err();
        assert_eq!((err.key, err.message.as_str()), (key, message), "{json}");
    }
    // The limits themselves are allowed.
    for json in [
        serde_json::json!({"preset": "monitor", "policy": "always", "max_age": "3d"}),
        serde_json::json!({"preset": "webhook", "max_retries": 1, "max_age": "30d"}),
        serde_json::json!({"preset": "rule", "schedule": "fixed", "max_retries": 50}),
    ] {
        assert!(spec(json.clone()).resolve().is_ok(), "{json}");
    }
}

#[test]
fn presets_round_trip_through_to_spec() {
    for name in ["monitor", "webhook", "rule"] {
        let policy = preset(name);
        let shown = policy.to_spec();
        assert_eq!(shown.preset.as_deref(), Some(name));
        assert_eq!(shown.resolve().unwrap(), policy, "{name}");
    }
    assert_eq!(RetryPolicy::default().to_spec().preset, None);
}

mod preset_decisions {
    use super::*;
    // The outcome and verdict builders of the decision table tests.
    use crate::policy::decision::tests::{failed, pinned, retry, status, with_retry_after};
    use chrono::TimeDelta;

    fn now() -> DateTime<Utc> {
        start()
    }

    fn later(secs: i64) -> DateTime<Utc> {
        start() + TimeDelta::seconds(secs)
    }

    fn after(automatic_retries: u32) -> History {
        History {
            cycle_started_at: start(),
            automatic_retries,
            next_attempt_at: None,
        }
    }

    /// (name, policy, history, trigger, outcome, now, verdict, words,
    /// destination disabled, concurrency lowered)
    type Row = (
        &'static str,
        RetryPolicy,
        History,
        Trigger,
        Outcome,
        DateTime<Utc>,
        Verdict,
        &'static str,
        bool,
        bool,
    );

    fn check(rows: Vec<Row>) {
        for (name, policy, history, trigger, outcome, at, verdict, words, disabled, lowered) in rows
        {
            let decision = decide(&policy, &history, trigger, &outcome, at);
            assert_eq!(
                (
                    decision.verdict,
                    decision.words.as_str(),
                    decision.disable_destination,
                    decision.lower_concurrency
                ),
                (verdict, words, disabled, lowered),
                "{name}"
            );
        }
    }

    #[test]
    fn monitor() {
        let bounded = preset("monitor");
        let none = resolved(serde_json::json!({"preset": "monitor", "policy": "none"}));
        let always =
            resolved(serde_json::json!({"preset": "monitor", "policy": "always", "delay": "1h"}));
        use Trigger::{Automatic, Initial};
        check(vec![
            (
                "any 4xx is retried",
                bounded.clone(),
                after(0),
                Initial,
                status(404),
                now(),
                retry(later(30)),
                "retry in 30s",
                false,
                false,
            ),
            (
                "400 too",
                bounded.clone(),
                after(0),
                Initial,
                status(400),
                now(),
                retry(later(30)),
                "retry in 30s",
                false,
                false,
            ),
            (
                "a redirect loop too",
                bounded.clone(),
                after(0),
                Initial,
                Outcome::TooManyRedirects,
                now(),
                retry(later(30)),
                "retry in 30s",
                false,
                false,
            ),
            (
                "a 3xx answer too",
                bounded.clone(),
                after(0),
                Initial,
                status(304),
                now(),
                retry(later(30)),
                "retry in 30s",
                false,
                false,
            ),
            (
                "timeouts",
                bounded.clone(),
                after(0),
                Initial,
                Outcome::Timeout,
                now(),
                retry(later(30)),
                "retry in 30s",
                false,
                false,
            ),
            (
                "network errors",
                bounded.clone(),
                after(0),
                Initial,
                Outcome::Network("reset".into()),
                now(),
                retry(later(30)),
                "retry in 30s",
                false,
                false,
            ),
            (
                "429 retried at the delay, Retry-After not honoured",
                bounded.clone(),
                after(0),
                Initial,
                with_retry_after(429, "600"),
                now(),
                retry(later(30)),
                "retry in 30s",
                false,
                true,
            ),
            (
                "2xx delivers",
                bounded.clone(),
                after(2),
                Automatic,
                status(201),
                now(),
                Verdict::Delivered,
                "delivered",
                false,
                false,
            ),
            (
                "bounded: max_retries at delay",
                bounded.clone(),
                after(3),
                Automatic,
                status(500),
                now(),
                retry(later(30)),
                "retry in 30s",
                false,
                false,
            ),
            (
                "bounded: 5 retries",
                bounded.clone(),
                after(4),
                Automatic,
                status(500),
                now(),
                failed(FailReason::RetriesExhausted),
                "gave up: 5 retries exhausted",
                false,
                false,
            ),
            (
                "none: one retry",
                none.clone(),
                after(0),
                Initial,
                status(404),
                now(),
                retry(later(30)),
                "retry in 30s",
                false,
                false,
            ),
            (
                "none: only one",
                none.clone(),
                after(0),
                Automatic,
                status(404),
                now(),
                failed(FailReason::RetriesExhausted),
                "gave up: 1 retry exhausted",
                false,
                false,
            ),
            (
                "always: every delay, no count",
                always.clone(),
                after(70),
                Automatic,
                status(418),
                later(71 * 3_600),
                retry(later(72 * 3_600)),
                "retry in 1h",
                false,
                false,
            ),
            (
                "always: until the 3-day cap",
                always.clone(),
                after(71),
                Automatic,
                status(500),
                later(72 * 3_600 + 1),
                failed(FailReason::Expired),
                "expired after 3d",
                false,
                false,
            ),
        ]);
    }

    #[test]
    fn webhook() {
        let webhook = preset("webhook");
        use Trigger::{Automatic, Initial, Manual};
        let day = DAY as i64;
        check(vec![
            (
                "1st retry: 1⁴ s raised to 60 s",
                webhook.clone(),
                after(0),
                Initial,
                status(500),
                now(),
                retry(later(60)),
                "retry in 1m",
                false,
                false,
            ),
            (
                "3rd retry: 3⁴ = 81 s",
                webhook.clone(),
                after(1),
                Automatic,
                status(502),
                now(),
                retry(later(81)),
                "retry in 1m 21s",
                false,
                false,
            ),
            (
                "10th retry: 10⁴ s",
                webhook.clone(),
                after(8),
                Automatic,
                Outcome::Timeout,
                later(day),
                retry(later(day + 10_000)),
                "retry in 2h 46m",
                false,
                false,
            ),
            (
                "25th retry clamped to 4 d",
                webhook.clone(),
                after(23),
                Automatic,
                Outcome::Network("refused".into()),
                later(day),
                retry(later(5 * day)),
                "retry in 4d",
                false,
                false,
            ),
            (
                "25 retries by default",
                webhook.clone(),
                after(24),
                Automatic,
                status(500),
                later(day),
                failed(FailReason::RetriesExhausted),
                "gave up: 25 retries exhausted",
                false,
                false,
            ),
            (
                "30 days from creation",
                webhook.clone(),
                after(20),
                Automatic,
                status(500),
                later(29 * day),
                failed(FailReason::Expired),
                "expired after 30d",
                false,
                false,
            ),
            (
                "429 retried and lowers concurrency",
                webhook.clone(),
                after(0),
                Initial,
                status(429),
                now(),
                retry(later(60)),
                "retry in 1m",
                false,
                true,
            ),
            (
                "429's Retry-After not honoured",
                webhook.clone(),
                after(0),
                Initial,
                with_retry_after(429, "7200"),
                now(),
                retry(later(60)),
                "retry in 1m",
                false,
                true,
            ),
            (
                "404 fails and disables",
                webhook.clone(),
                after(0),
                Initial,
                status(404),
                now(),
                failed(FailReason::NotRetriable),
                "gave up: 404 not retriable; destination disabled",
                true,
                false,
            ),
            (
                "400 on a retry too",
                webhook.clone(),
                after(3),
                Automatic,
                status(400),
                now(),
                failed(FailReason::NotRetriable),
                "gave up: 400 not retriable; destination disabled",
                true,
                false,
            ),
            (
                "a redirect loop fails and disables",
                webhook.clone(),
                after(0),
                Initial,
                Outcome::TooManyRedirects,
                now(),
                failed(FailReason::TooManyRedirects),
                "gave up: too many redirects; destination disabled",
                true,
                false,
            ),
            (
                "a manual 404 disables but keeps the schedule",
                webhook.clone(),
                after(2),
                Manual,
                status(410),
                now(),
                Verdict::Unchanged,
                "manual retry failed; no automatic retry scheduled; destination disabled",
                true,
                false,
            ),
        ]);
    }

    #[test]
    fn rule() {
        let rule = preset("rule");
        let server_errors = resolved(serde_json::json!({
            "preset": "rule", "retry_on": "500-599, !501", "schedule": "fixed", "delay": "10m"
        }));
        let no_retry_after = resolved(
            serde_json::json!({"preset": "rule", "retry_on": ">=500", "retry_after": false}),
        );
        let linear = resolved(
            serde_json::json!({"preset": "rule", "schedule": "fixed", "delay": "10m", "max_retries": 50}),
        );
        use Trigger::{Automatic, Initial};
        let day = DAY as i64;
        check(vec![
            (
                "exponential from 1h",
                rule.clone(),
                after(0),
                Initial,
                status(500),
                now(),
                retry(later(3_600)),
                "retry in 1h",
                false,
                false,
            ),
            (
                "doubles: 4th waits 8h",
                rule.clone(),
                after(2),
                Automatic,
                status(500),
                now(),
                retry(later(8 * 3_600)),
                "retry in 8h",
                false,
                false,
            ),
            (
                "any failure by default",
                rule.clone(),
                after(0),
                Initial,
                status(404),
                now(),
                retry(later(3_600)),
                "retry in 1h",
                false,
                false,
            ),
            (
                "the status rule",
                server_errors.clone(),
                after(0),
                Initial,
                status(501),
                now(),
                failed(FailReason::NotRetriable),
                "gave up: 501 not retriable",
                false,
                false,
            ),
            (
                "the status rule retries",
                server_errors.clone(),
                after(0),
                Initial,
                status(503),
                now(),
                retry(later(600)),
                "retry in 10m",
                false,
                false,
            ),
            (
                "Retry-After over the status rule",
                server_errors.clone(),
                after(0),
                Initial,
                with_retry_after(400, "60"),
                now(),
                pinned(later(60)),
                "retry in 1m (Retry-After)",
                false,
                false,
            ),
            (
                "Retry-After over the status rule, excluded status",
                server_errors.clone(),
                after(1),
                Automatic,
                with_retry_after(501, "120"),
                now(),
                pinned(later(120)),
                "retry in 2m (Retry-After)",
                false,
                false,
            ),
            (
                "Retry-After over the retry count",
                server_errors.clone(),
                after(4),
                Automatic,
                with_retry_after(503, "30"),
                now(),
                pinned(later(30)),
                "retry in 30s (Retry-After)",
                false,
                false,
            ),
            (
                "without it the count ends the cycle",
                server_errors.clone(),
                after(4),
                Automatic,
                status(503),
                now(),
                failed(FailReason::RetriesExhausted),
                "gave up: 5 retries exhausted",
                false,
                false,
            ),
            (
                "50 automatic retries in all",
                server_errors.clone(),
                after(49),
                Automatic,
                with_retry_after(503, "30"),
                now(),
                failed(FailReason::RetriesExhausted),
                "gave up: 50 retries exhausted",
                false,
                false,
            ),
            (
                "7 days ahead is not cut by age",
                server_errors.clone(),
                after(3),
                Automatic,
                with_retry_after(503, "604800"),
                later(20 * day),
                pinned(later(27 * day)),
                "retry in 7d (Retry-After)",
                false,
                false,
            ),
            (
                "further is capped at 7 days",
                server_errors.clone(),
                after(3),
                Automatic,
                with_retry_after(503, "9999999"),
                now(),
                pinned(later(7 * day)),
                "retry in 7d (Retry-After)",
                false,
                false,
            ),
            (
                "an ISO time without offset is UTC",
                server_errors.clone(),
                after(0),
                Initial,
                with_retry_after(400, "2024-05-01T13:00:00"),
                now(),
                pinned(later(3_600)),
                "retry in 1h (Retry-After)",
                false,
                false,
            ),
            (
                "-1 cancels",
                server_errors.clone(),
                after(0),
                Initial,
                with_retry_after(404, "-1"),
                now(),
                Verdict::Cancelled,
                "cancelled by Retry-After: -1",
                false,
                false,
            ),
            (
                "retry_after off: the rule alone",
                no_retry_after.clone(),
                after(0),
                Initial,
                with_retry_after(400, "60"),
                now(),
                failed(FailReason::NotRetriable),
                "gave up: 400 not retriable",
                false,
                false,
            ),
            (
                "linear",
                linear.clone(),
                after(30),
                Automatic,
                status(500),
                now(),
                retry(later(600)),
                "retry in 10m",
                false,
                false,
            ),
            (
                "linear: at most 50",
                linear.clone(),
                after(49),
                Automatic,
                status(500),
                now(),
                failed(FailReason::RetriesExhausted),
                "gave up: 50 retries exhausted",
                false,
                false,
            ),
        ]);
    }

    /// Without a preset, a status the rule refuses fails even with a
    /// Retry-After, and a redirect loop is retried only under `any`.
    #[test]
    fn no_preset_keeps_the_rule_first_and_any_retries_everything() {
        let default = RetryPolicy::default();
        let any = resolved(serde_json::json!({"retry_on": "any", "on_client_error": "disable"}));
        let disable = resolved(serde_json::json!({"on_client_error": "disable"}));
        use Trigger::Initial;
        check(vec![
            (
                "rule first",
                default.clone(),
                after(0),
                Initial,
                with_retry_after(400, "60"),
                now(),
                failed(FailReason::NotRetriable),
                "gave up: 400 not retriable",
                false,
                false,
            ),
            (
                "redirect loop fails",
                default.clone(),
                after(0),
                Initial,
                Outcome::TooManyRedirects,
                now(),
                failed(FailReason::TooManyRedirects),
                "gave up: too many redirects",
                false,
                false,
            ),
            (
                "redirect loop disables when asked",
                disable.clone(),
                after(0),
                Initial,
                Outcome::TooManyRedirects,
                now(),
                failed(FailReason::TooManyRedirects),
                "gave up: too many redirects; destination disabled",
                true,
                false,
            ),
            (
                "any: 404 retried, nothing disabled",
                any.clone(),
                after(0),
                Initial,
                status(404),
                now(),
                retry(later(30)),
                "retry in 30s",
                false,
                false,
            ),
            (
                "any: redirect loop retried",
                any.clone(),
                after(0),
                Initial,
                Outcome::TooManyRedirects,
                now(),
                retry(later(30)),
                "retry in 30s",
                false,
                false,
            ),
            (
                "any: 302 retried",
                any.clone(),
                after(0),
                Initial,
                status(302),
                now(),
                retry(later(30)),
                "retry in 30s",
                false,
                false,
            ),
        ]);
        for name in ["monitor", "webhook", "rule"] {
            let any = resolved(serde_json::json!({"preset": name, "retry_on": "any"}));
            for outcome in [status(404), status(302), Outcome::TooManyRedirects] {
                let decision = decide(&any, &after(0), Initial, &outcome, now());
                assert!(
                    matches!(decision.verdict, Verdict::Retry { .. }),
                    "{name} retry_on any: {outcome:?} gave {}",
                    decision.words
                );
                assert!(!decision.disable_destination);
            }
        }
    }
}

fn any_preset_policy() -> impl Strategy<Value = RetryPolicy> {
    (
        prop_oneof![
            Just(None),
            Just(Some("monitor")),
            Just(Some("webhook")),
            Just(Some("rule"))
        ],
        prop_oneof![Just("none"), Just("bounded"), Just("always")],
        1i64..=50,
        any::<bool>(),
        prop_oneof![Just("1s"), Just("30s"), Just("1h")],
    )
        .prop_filter_map(
            "a combination its preset refuses",
            |(preset, kind, max_retries, retry_after, delay)| {
                RetrySpec {
                    preset: preset.map(str::to_string),
                    policy: Some(kind.to_string()),
                    max_retries: Some(max_retries),
                    retry_after: Some(retry_after),
                    delay: Some(delay.to_string()),
                    ..RetrySpec::default()
                }
                .resolve()
                .ok()
            },
        )
}

proptest! {
    // Enough cases to meet the edges often: the last retry of a count, the
    // end of max_age.
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// `hookwatch-will-retry-after` is present exactly when a failure of the
    /// attempt would be followed by another automatic retry, and announces
    /// the delay that retry then gets; a failure whose answer carries a
    /// Retry-After is retried whenever the header was sent.
    #[test]
    fn will_retry_after_matches_decide_in_every_preset(
        policy in any_preset_policy(),
        trigger in prop_oneof![Just(Trigger::Initial), Just(Trigger::Automatic), Just(Trigger::Flush)],
        automatic_retries in prop_oneof![0u32..6, 20u32..30, 45u32..55],
        elapsed in prop_oneof![0u64..600, 0u64..40 * DAY],
    ) {
        let history = History {
            cycle_started_at: start(),
            automatic_retries,
            next_attempt_at: None,
        };
        let now = start() + chrono::Duration::seconds(elapsed as i64);
        let header = will_retry_after(&policy, &history, trigger, now);
        for failure in [
            Outcome::Timeout,
            Outcome::Network("connection refused".into()),
            Outcome::Response { status: 500, retry_after: None },
            Outcome::Response { status: 503, retry_after: None },
        ] {
            let decision = decide(&policy, &history, trigger, &failure, now);
            match decision.verdict {
                Verdict::Retry { at, .. } => prop_assert_eq!(
                    header,
                    Some((at - now).to_std().unwrap()),
                    "{:?} {:?}: {}", policy.preset, failure, decision.words
                ),
                _ => prop_assert_eq!(header, None, "{:?} {:?}: {}", policy.preset, failure, decision.words),
            }
        }
        if header.is_some() {
            let asked = Outcome::Response { status: 503, retry_after: Some("5".into()) };
            let decision = decide(&policy, &history, trigger, &asked, now);
            prop_assert!(
                matches!(decision.verdict, Verdict::Retry { .. }),
                "{:?}: header sent, then {}", policy.preset, decision.words
            );
        }
    }
}
