//! The `/` filter: `state:` and `topic:` go to the engine as an [`EventFilter`];
//! `status:` and free text filter the fetched window on the client.

use crate::model::{EventFilter, EventRecord, EventState, LabelSelector};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub state: Option<EventState>,
    pub topic: Option<String>,
    /// Events of destinations with these labels (resolved by the engine).
    pub label: Option<LabelSelector>,
    pub status: Option<StatusMatch>,
    /// Lowercased words that must all appear in the id, topic, error or reason.
    pub text: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusMatch {
    /// `5xx`: 500..=599.
    Class(u16),
    Exact(u16),
    /// `status:none`: no HTTP status (not attempted, or a network error).
    None,
}

impl StatusMatch {
    fn matches(self, status: Option<u16>) -> bool {
        match (self, status) {
            (StatusMatch::Class(c), Some(s)) => s / 100 == c,
            (StatusMatch::Exact(e), Some(s)) => s == e,
            (StatusMatch::None, None) => true,
            _ => false,
        }
    }
}

/// Filter syntax, for the help screen and the prompt.
pub const SYNTAX: &[(&str, &str)] = &[
    (
        "state:failed",
        "pending retrying delivered failed cancelled skipped (engine)",
    ),
    ("topic:order.*", "topic glob, * and ? (engine)"),
    (
        "label:tier=gold",
        "destination labels, comma-joined (engine)",
    ),
    (
        "status:5xx",
        "last status: 5xx, 404, none (loaded window only)",
    ),
    (
        "text",
        "id, topic, error or reason contains (loaded window only)",
    ),
];

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, String> {
        let mut filter = Filter::default();
        for term in text.split_whitespace() {
            if let Some(value) = term.strip_prefix("state:") {
                filter.state = Some(value.parse()?);
            } else if let Some(value) = term.strip_prefix("topic:") {
                if value.is_empty() {
                    return Err("topic: needs a pattern, e.g. topic:order.*".into());
                }
                filter.topic = Some(value.to_string());
            } else if let Some(value) = term.strip_prefix("label:") {
                filter.label = Some(LabelSelector::parse(value)?);
            } else if let Some(value) = term.strip_prefix("status:") {
                filter.status = Some(parse_status(value)?);
            } else {
                filter.text.push(term.to_lowercase());
            }
        }
        Ok(filter)
    }

    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// True when part of the filter is applied to the loaded window only.
    pub fn has_client_terms(&self) -> bool {
        self.status.is_some() || !self.text.is_empty()
    }

    /// The engine-side part, for `destination` (None: all).
    pub fn event_filter(&self, destination: Option<&str>) -> EventFilter {
        EventFilter {
            destination: destination.map(str::to_string),
            state: self.state,
            topic: self.topic.clone(),
            label: self.label.clone(),
            ..EventFilter::default()
        }
    }

    /// The client-side part.
    pub fn matches(&self, event: &EventRecord) -> bool {
        if let Some(status) = self.status {
            if !status.matches(event.last_status) {
                return false;
            }
        }
        if self.text.is_empty() {
            return true;
        }
        let haystack = format!(
            "{} {} {} {} {}",
            event.id,
            event.topic,
            event.destination,
            event.last_error.as_deref().unwrap_or(""),
            event.reason.as_ref().map_or("", |reason| reason.as_str())
        )
        .to_lowercase();
        self.text.iter().all(|word| haystack.contains(word))
    }
}

fn parse_status(value: &str) -> Result<StatusMatch, String> {
    let bad = || format!("status:{value}: expected e.g. 5xx, 404 or none");
    if value == "none" {
        return Ok(StatusMatch::None);
    }
    if let Some(class) = value.strip_suffix("xx") {
        let digit: u16 = class.parse().map_err(|_| bad())?;
        return if (1..=5).contains(&digit) {
            Ok(StatusMatch::Class(digit))
        } else {
            Err(bad())
        };
    }
    match value.parse::<u16>() {
        Ok(code) if (100..=599).contains(&code) => Ok(StatusMatch::Exact(code)),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_of_term() {
        let f = Filter::parse("state:failed topic:order.* status:5xx Timeout").unwrap();
        assert_eq!(f.state, Some(EventState::Failed));
        assert_eq!(f.topic.as_deref(), Some("order.*"));
        assert_eq!(f.status, Some(StatusMatch::Class(5)));
        assert_eq!(f.text, vec!["timeout".to_string()]);
        assert!(f.has_client_terms());
        assert!(Filter::parse("state:sent").is_err());
        assert!(Filter::parse("status:9xx").is_err());
        assert_eq!(
            Filter::parse("status:404").unwrap().status,
            Some(StatusMatch::Exact(404))
        );
        assert!(Filter::parse("  ").unwrap().is_empty());
        let labelled = Filter::parse("label:tenant=acme state:failed").unwrap();
        assert!(!labelled.has_client_terms());
        assert_eq!(
            labelled.event_filter(None).label,
            Some(LabelSelector::parse("tenant:acme").unwrap())
        );
        assert!(Filter::parse("label:acme").is_err());
    }
}
