//! The bench's report: a table of fields (and optionally one JSON line), and
//! the latency percentiles every scenario reports.

use serde::Serialize;

#[derive(Debug, Default, Serialize)]
pub struct LatencyMs {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

pub(super) fn percentiles(mut samples: Vec<f64>) -> LatencyMs {
    if samples.is_empty() {
        return LatencyMs::default();
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    LatencyMs {
        p50: at(0.50),
        p99: at(0.99),
        max: *samples.last().expect("not empty"),
    }
}

pub(super) fn print_report<T: Serialize>(report: &T, json: bool) {
    let value = serde_json::to_value(report).expect("reports serialise");
    if let serde_json::Value::Object(fields) = &value {
        let width = fields.keys().map(String::len).max().unwrap_or(0);
        for (key, value) in fields {
            let shown = match value {
                serde_json::Value::Object(inner) => inner
                    .iter()
                    .map(|(k, v)| format!("{k} {}", show(v)))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => show(other),
            };
            println!("{key:<width$}  {shown}");
        }
    }
    if json {
        println!("{value}");
    }
}

fn show(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => format!("{:.3}", n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_from_sorted_samples() {
        let p = percentiles((1..=100).map(f64::from).collect());
        assert_eq!((p.p50, p.max), (51.0, 100.0));
        assert_eq!(p.p99, 99.0);
    }
}
