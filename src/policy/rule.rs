//! Status-code rules such as `"429, 500-599, !501"`: which responses are worth
//! another attempt.
//!
//! The last matching term wins so a rule reads like a list of amendments: a broad
//! range first, then the exceptions.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

const LOWEST_STATUS: u16 = 100;
const HIGHEST_STATUS: u16 = 599;

/// A parsed status rule; it keeps the text it came from so it can be shown and
/// stored exactly as the operator wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusRule {
    source: String,
    terms: Vec<Term>,
    /// `retry_on = "any"`: every answer that is not 2xx is retriable, and so
    /// is a redirect loop (which has no status for a term to match).
    any: bool,
}

/// The rule that retries every outcome that is not a 2xx.
pub const ANY: &str = "any";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Term {
    exclude: bool,
    lowest: u16,
    highest: u16,
}

/// Why a rule was refused; `position` is a 1-based character column so the
/// message can point into what the operator typed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad status rule \"{rule}\" at position {position}: {message}")]
pub struct RuleError {
    pub rule: String,
    pub position: usize,
    pub message: String,
}

impl StatusRule {
    /// Grammar (whitespace is allowed between tokens):
    ///
    /// ```text
    /// rule  = term ("," term)*
    /// term  = ["!"] (code | code "-" code | (">" | ">=" | "<" | "<=") code)
    /// code  = three digits, 100..=599
    /// ```
    ///
    /// A malformed code is reported at the column where the code starts.
    ///
    /// or the word `any` alone: every status, and too many redirects too.
    pub fn parse(text: &str) -> Result<StatusRule, RuleError> {
        if text.trim().eq_ignore_ascii_case(ANY) {
            return Ok(StatusRule {
                source: text.to_string(),
                terms: vec![Term {
                    exclude: false,
                    lowest: LOWEST_STATUS,
                    highest: HIGHEST_STATUS,
                }],
                any: true,
            });
        }
        if let Some(at) = text.to_ascii_lowercase().find(ANY) {
            return Err(RuleError {
                rule: text.to_string(),
                position: text[..at].chars().count() + 1,
                message: "\"any\" stands alone: it already retries every answer that is not 2xx"
                    .to_string(),
            });
        }
        let terms = Parser::new(text).rule()?;
        Ok(StatusRule {
            source: text.to_string(),
            terms,
            any: false,
        })
    }

    /// Whether this is `any`: outcomes without a status (a redirect loop) are
    /// retriable too.
    pub fn is_any(&self) -> bool {
        self.any
    }

    /// The last matching term decides, so `!` terms carve exceptions out of
    /// earlier terms; a status no term mentions is not matched.
    pub fn matches(&self, status: u16) -> bool {
        self.terms
            .iter()
            .rev()
            .find(|term| (term.lowest..=term.highest).contains(&status))
            .is_some_and(|term| !term.exclude)
    }

    /// The rule as it was written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl Default for StatusRule {
    /// Rate limiting and server errors are transient; other statuses are not.
    fn default() -> Self {
        StatusRule::parse("429, >=500").expect("the default status rule parses")
    }
}

impl fmt::Display for StatusRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for StatusRule {
    type Err = RuleError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        StatusRule::parse(text)
    }
}

impl Serialize for StatusRule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for StatusRule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        StatusRule::parse(&text).map_err(serde::de::Error::custom)
    }
}

struct Parser<'a> {
    source: &'a str,
    chars: Vec<char>,
    index: usize,
}

impl<'a> Parser<'a> {
    fn new(source: &'a str) -> Self {
        Parser {
            source,
            chars: source.chars().collect(),
            index: 0,
        }
    }

    fn error_at(&self, index: usize, message: impl Into<String>) -> RuleError {
        RuleError {
            rule: self.source.to_string(),
            position: index + 1,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.index).copied()
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.index += 1;
        }
    }

    fn eat(&mut self, expected: char) -> bool {
        if self.peek() == Some(expected) {
            self.index += 1;
            true
        } else {
            false
        }
    }

    fn rule(mut self) -> Result<Vec<Term>, RuleError> {
        self.skip_whitespace();
        if self.peek().is_none() {
            return Err(self.error_at(0, "the rule is empty"));
        }
        let mut terms = Vec::new();
        loop {
            terms.push(self.term()?);
            self.skip_whitespace();
            match self.peek() {
                None => return Ok(terms),
                Some(',') => self.index += 1,
                Some(_) => {
                    return Err(self.error_at(self.index, "expected ',' or the end of the rule"))
                }
            }
        }
    }

    fn term(&mut self) -> Result<Term, RuleError> {
        self.skip_whitespace();
        if matches!(self.peek(), None | Some(',')) {
            return Err(self.error_at(self.index, "empty term"));
        }
        let exclude = self.eat('!');
        self.skip_whitespace();
        let term_start = self.index;
        let (lowest, highest) = if self.eat('>') {
            let inclusive = self.eat('=');
            self.skip_whitespace();
            let code = self.code()?;
            let lowest = if inclusive { code } else { code + 1 };
            if lowest > HIGHEST_STATUS {
                return Err(
                    self.error_at(term_start, format!("no status code is greater than {code}"))
                );
            }
            (lowest, HIGHEST_STATUS)
        } else if self.eat('<') {
            let inclusive = self.eat('=');
            self.skip_whitespace();
            let code = self.code()?;
            let highest = if inclusive { code } else { code - 1 };
            if highest < LOWEST_STATUS {
                return Err(
                    self.error_at(term_start, format!("no status code is less than {code}"))
                );
            }
            (LOWEST_STATUS, highest)
        } else {
            let lowest = self.code()?;
            self.skip_whitespace();
            if self.eat('-') {
                self.skip_whitespace();
                let highest = self.code()?;
                if lowest > highest {
                    return Err(self.error_at(
                        term_start,
                        format!(
                            "range {lowest}-{highest} is backwards (start must not exceed end)"
                        ),
                    ));
                }
                (lowest, highest)
            } else {
                (lowest, lowest)
            }
        };
        Ok(Term {
            exclude,
            lowest,
            highest,
        })
    }

    /// Reads a whole alphanumeric word so "59x" is judged as one malformed
    /// code rather than as 59 followed by junk.
    fn code(&mut self) -> Result<u16, RuleError> {
        let start = self.index;
        while self.peek().is_some_and(|c| c.is_alphanumeric()) {
            self.index += 1;
        }
        let word: String = self.chars[start..self.index].iter().collect();
        if word.is_empty() || !word.chars().all(|c| c.is_ascii_digit()) {
            return Err(self.error_at(start, "expected a status code"));
        }
        match word.parse::<u16>() {
            Ok(code) if word.len() == 3 && (LOWEST_STATUS..=HIGHEST_STATUS).contains(&code) => {
                Ok(code)
            }
            _ => Err(self.error_at(
                start,
                format!(
                    "status codes are between {LOWEST_STATUS} and {HIGHEST_STATUS}, got {word}"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule(text: &str) -> StatusRule {
        StatusRule::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn any_matches_every_status_and_stands_alone() {
        for text in ["any", " ANY "] {
            let any = rule(text);
            assert!(any.is_any());
            for status in [100, 302, 400, 404, 429, 499, 500, 599] {
                assert!(any.matches(status), "{text} {status}");
            }
            assert_eq!(any.to_string(), text);
        }
        assert!(!rule("100-599").is_any());
        let err = StatusRule::parse("500, any").unwrap_err();
        assert_eq!(err.position, 6);
        assert!(err.message.contains("stands alone"), "{err}");
    }

    #[test]
    fn every_operator_matches_its_codes() {
        // (rule, matched, not matched)
        let cases: &[(&str, &[u16], &[u16])] = &[
            ("503", &[503], &[502, 504, 200]),
            ("500-599", &[500, 550, 599], &[499, 429]),
            ("500 - 502", &[500, 501, 502], &[503]),
            ("500-500", &[500], &[501]),
            (">500", &[501, 599], &[500, 499]),
            (">=500", &[500, 599], &[499]),
            ("<400", &[100, 399], &[400, 500]),
            ("<=499", &[100, 499], &[500]),
            ("> 500", &[501], &[500]),
            (
                "429, >=500",
                &[429, 500, 503, 599],
                &[404, 400, 428, 430, 200, 301],
            ),
            ("500, !500", &[], &[500]),
            ("500-599, !501", &[500, 502, 599], &[501, 499]),
            ("!501, 500-599", &[500, 501, 502], &[499]),
            ("!500", &[], &[500, 501]),
            ("! 500-599, 503", &[503], &[500, 502]),
            ("500-599, !>=550", &[500, 549], &[550, 599]),
            ("!<=499", &[], &[100, 499, 500]),
            ("  429 ,  >= 500  ", &[429, 500], &[428]),
            ("100, 599", &[100, 599], &[101, 598]),
        ];
        for (text, yes, no) in cases {
            let parsed = rule(text);
            for status in *yes {
                assert!(parsed.matches(*status), "{text:?} should match {status}");
            }
            for status in *no {
                assert!(
                    !parsed.matches(*status),
                    "{text:?} should not match {status}"
                );
            }
        }
    }

    #[test]
    fn errors_point_at_the_problem() {
        let cases = [
            ("", 1, "the rule is empty"),
            ("   ", 1, "the rule is empty"),
            ("5xx", 1, "expected a status code"),
            ("500-59x, !501", 5, "expected a status code"),
            ("500,,501", 5, "empty term"),
            ("500,", 5, "empty term"),
            ("500, ", 6, "empty term"),
            (", 500", 1, "empty term"),
            ("!", 2, "expected a status code"),
            ("!,500", 2, "expected a status code"),
            (">", 2, "expected a status code"),
            (">=", 3, "expected a status code"),
            ("> =500", 3, "expected a status code"),
            ("=500", 1, "expected a status code"),
            ("500-", 5, "expected a status code"),
            ("600", 1, "status codes are between 100 and 599, got 600"),
            ("99", 1, "status codes are between 100 and 599, got 99"),
            ("0500", 1, "status codes are between 100 and 599, got 0500"),
            (
                "429, 99999999999",
                6,
                "status codes are between 100 and 599, got 99999999999",
            ),
            (
                "599-500",
                1,
                "range 599-500 is backwards (start must not exceed end)",
            ),
            (
                "!599-500",
                2,
                "range 599-500 is backwards (start must not exceed end)",
            ),
            (">599", 1, "no status code is greater than 599"),
            ("<100", 1, "no status code is less than 100"),
            ("500 501", 5, "expected ',' or the end of the rule"),
            (">500-599", 5, "expected ',' or the end of the rule"),
            ("500;501", 4, "expected ',' or the end of the rule"),
            ("!!500", 2, "expected a status code"),
            ("é500", 1, "expected a status code"),
            ("500, é", 6, "expected a status code"),
        ];
        for (text, position, message) in cases {
            let err = StatusRule::parse(text).unwrap_err();
            assert_eq!(
                (err.position, err.message.as_str()),
                (position, message),
                "{text:?}"
            );
            assert_eq!(err.rule, text);
        }
    }

    #[test]
    fn error_display_quotes_rule_and_position() {
        let err = StatusRule::parse("500-59x, !501").unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad status rule \"500-59x, !501\" at position 5: expected a status code"
        );
    }

    #[test]
    fn keeps_source_text_for_display_and_serde() {
        let parsed = rule("429,  >=500");
        assert_eq!(parsed.to_string(), "429,  >=500");
        assert_eq!(serde_json::to_string(&parsed).unwrap(), "\"429,  >=500\"");
        let back: StatusRule = serde_json::from_str("\"429,  >=500\"").unwrap();
        assert_eq!(back, parsed);
        let err = serde_json::from_str::<StatusRule>("\"5xx\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("bad status rule \"5xx\" at position 1: expected a status code"),
            "{err}"
        );
    }

    #[test]
    fn default_retries_rate_limits_and_server_errors() {
        let default = StatusRule::default();
        assert_eq!(default.as_str(), "429, >=500");
        let retried: Vec<u16> = (100..=599).filter(|s| default.matches(*s)).collect();
        let mut expected = vec![429];
        expected.extend(500..=599);
        assert_eq!(retried, expected);
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC*") {
            let _ = StatusRule::parse(&text);
        }

        #[test]
        fn rule_like_text_never_panics_and_errors_point_inside(
            text in "[ !<>=,0-9x-]{0,30}"
        ) {
            match StatusRule::parse(&text) {
                Ok(parsed) => { let _ = parsed.matches(500); }
                Err(err) => {
                    prop_assert!(err.position >= 1);
                    prop_assert!(err.position <= text.chars().count() + 1);
                }
            }
        }

        #[test]
        fn last_matching_term_wins(a in 100u16..=599, b in 100u16..=599, status in 100u16..=599) {
            let (low, high) = (a.min(b), a.max(b));
            let exclude_last = rule(&format!("{low}-{high}, !{status}"));
            prop_assert!(!exclude_last.matches(status));
            let include_last = rule(&format!("!{low}-{high}, {status}"));
            prop_assert!(include_last.matches(status));
        }
    }
}
