//! The events table's record encoding: a compact binary layout instead of
//! JSON. Records are decoded and re-encoded on every state change, and JSON
//! (with RFC 3339 timestamps) cost about 7 % of the engine's CPU under load.
//! Attempts and destination state, written rarely, stay JSON.
//!
//! Layout (little-endian): format byte, id (16), destination, topic,
//! content type?, created at, state, attempt count (4), automatic retries (4),
//! cycle started at, next attempt at?, next trigger, last status (2)?, last
//! error?, reason, duplicate of (16)?, idempotency key?, payload bytes (8).
//! Strings are a 4-byte length and UTF-8; times are seconds (8) and nanoseconds
//! (4); `?` marks a one-byte presence flag before the value.
//!
//! The reason is a one-byte code (0 = none; see [`reason_code`]), followed by
//! the text only for a reason this build does not know. Format 1 stored the
//! reason as optional text; such records are still read, mapping known texts to
//! their reason, and are rewritten in format 2 on their next change.

use super::StoreError;
use crate::model::{EventRecord, EventState, FailReason, Reason, Trigger};
use chrono::{DateTime, Utc};

const FORMAT: u8 = 3;
/// The second layout: no pinned-schedule flag at the end.
const FORMAT_WITHOUT_PIN: u8 = 2;
/// The first layout: the reason as optional text.
const FORMAT_REASON_TEXT: u8 = 1;
const REASON_UNRECOGNISED: u8 = 255;

pub(super) fn encode_event(record: &EventRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + record.destination.len() + record.topic.len());
    out.push(FORMAT);
    out.extend_from_slice(&record.id.0.to_le_bytes());
    put_str(&mut out, &record.destination);
    put_str(&mut out, &record.topic);
    put_opt_str(&mut out, record.content_type.as_deref());
    put_time(&mut out, record.created_at);
    out.push(record.state.code());
    out.extend_from_slice(&record.attempt_count.to_le_bytes());
    out.extend_from_slice(&record.automatic_retries.to_le_bytes());
    put_time(&mut out, record.cycle_started_at);
    match record.next_attempt_at {
        Some(at) => {
            out.push(1);
            put_time(&mut out, at);
        }
        None => out.push(0),
    }
    out.push(record.next_trigger.map_or(TRIGGER_NONE, trigger_code));
    match record.last_status {
        Some(status) => {
            out.push(1);
            out.extend_from_slice(&status.to_le_bytes());
        }
        None => out.push(0),
    }
    put_opt_str(&mut out, record.last_error.as_deref());
    match &record.reason {
        None => out.push(0),
        Some(Reason::Unrecognised(text)) => {
            out.push(REASON_UNRECOGNISED);
            put_str(&mut out, text);
        }
        Some(known) => out.push(reason_code(known)),
    }
    match record.duplicate_of {
        Some(id) => {
            out.push(1);
            out.extend_from_slice(&id.0.to_le_bytes());
        }
        None => out.push(0),
    }
    put_opt_str(&mut out, record.idempotency_key.as_deref());
    out.extend_from_slice(&record.payload_bytes.to_le_bytes());
    out.push(u8::from(record.schedule_pinned));
    out
}

pub(super) fn decode_event(bytes: &[u8]) -> Result<EventRecord, StoreError> {
    let mut r = Reader { bytes, at: 0 };
    let format = r.u8()?;
    if ![FORMAT, FORMAT_WITHOUT_PIN, FORMAT_REASON_TEXT].contains(&format) {
        return Err(corrupt(&format!("unknown record format {format}")));
    }
    let id = ulid::Ulid(r.u128()?);
    let destination = r.string()?;
    let topic = r.string()?;
    let content_type = r.opt_string()?;
    let created_at = r.time()?;
    let state = state_from_code(r.u8()?)?;
    let attempt_count = r.u32()?;
    let automatic_retries = r.u32()?;
    let cycle_started_at = r.time()?;
    let next_attempt_at = if r.flag()? { Some(r.time()?) } else { None };
    let next_trigger = match r.u8()? {
        TRIGGER_NONE => None,
        code => Some(trigger_from_code(code)?),
    };
    // Builds before the trigger could be absent kept the last one on finished
    // events; a finished event has nothing scheduled.
    let next_trigger = next_trigger.filter(|_| state.awaits_delivery());
    let last_status = if r.flag()? { Some(r.u16()?) } else { None };
    let last_error = r.opt_string()?;
    let reason = if format == FORMAT_REASON_TEXT {
        r.opt_string()?.map(|text| Reason::from_text(&text))
    } else {
        match r.u8()? {
            0 => None,
            REASON_UNRECOGNISED => Some(Reason::Unrecognised(r.string()?)),
            code => Some(reason_from_code(code)?),
        }
    };
    let duplicate_of = if r.flag()? {
        Some(ulid::Ulid(r.u128()?))
    } else {
        None
    };
    let idempotency_key = r.opt_string()?;
    let payload_bytes = r.u64()?;
    let schedule_pinned = format == FORMAT && r.flag()?;
    if r.at != bytes.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(EventRecord {
        id,
        destination,
        topic,
        content_type,
        created_at,
        state,
        attempt_count,
        automatic_retries,
        cycle_started_at,
        next_attempt_at,
        next_trigger,
        last_status,
        last_error,
        reason,
        duplicate_of,
        idempotency_key,
        payload_bytes,
        schedule_pinned,
    })
}

fn corrupt(what: &str) -> StoreError {
    StoreError::CorruptEvent(what.to_string())
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => {
            out.push(1);
            put_str(out, text);
        }
        None => out.push(0),
    }
}

fn put_time(out: &mut Vec<u8>, at: DateTime<Utc>) {
    out.extend_from_slice(&at.timestamp().to_le_bytes());
    out.extend_from_slice(&at.timestamp_subsec_nanos().to_le_bytes());
}

/// Stable codes; never reuse one.
fn reason_code(reason: &Reason) -> u8 {
    match reason {
        Reason::Duplicate => 1,
        Reason::Muted => 2,
        Reason::CancelledByRetryAfter => 3,
        Reason::Failed(FailReason::NotRetriable) => 4,
        Reason::Failed(FailReason::TooManyRedirects) => 5,
        Reason::Failed(FailReason::RetriesExhausted) => 6,
        Reason::Failed(FailReason::Expired) => 7,
        Reason::DestinationDeleted => 8,
        Reason::Unrecognised(_) => REASON_UNRECOGNISED,
    }
}

fn reason_from_code(code: u8) -> Result<Reason, StoreError> {
    Reason::known()
        .into_iter()
        .find(|reason| reason_code(reason) == code)
        .ok_or_else(|| corrupt(&format!("unknown reason {code}")))
}

/// The code of "no trigger scheduled" (a finished event).
const TRIGGER_NONE: u8 = 255;

fn trigger_code(trigger: Trigger) -> u8 {
    match trigger {
        Trigger::Initial => 0,
        Trigger::Automatic => 1,
        Trigger::Manual => 2,
        Trigger::Bulk => 3,
        Trigger::Flush => 4,
        Trigger::Resend => 5,
        Trigger::Requeue => 6,
    }
}

fn trigger_from_code(code: u8) -> Result<Trigger, StoreError> {
    Ok(match code {
        0 => Trigger::Initial,
        1 => Trigger::Automatic,
        2 => Trigger::Manual,
        3 => Trigger::Bulk,
        4 => Trigger::Flush,
        5 => Trigger::Resend,
        6 => Trigger::Requeue,
        other => return Err(corrupt(&format!("unknown trigger {other}"))),
    })
}

fn state_from_code(code: u8) -> Result<EventState, StoreError> {
    EventState::ALL
        .into_iter()
        .find(|state| state.code() == code)
        .ok_or_else(|| corrupt(&format!("unknown state {code}")))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], StoreError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| corrupt("truncated"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    fn flag(&mut self) -> Result<bool, StoreError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(corrupt(&format!("bad presence flag {other}"))),
        }
    }

    fn u16(&mut self) -> Result<u16, StoreError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn u128(&mut self) -> Result<u128, StoreError> {
        Ok(u128::from_le_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<String, StoreError> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("a string is not UTF-8"))
    }

    fn opt_string(&mut self) -> Result<Option<String>, StoreError> {
        if self.flag()? {
            Ok(Some(self.string()?))
        } else {
            Ok(None)
        }
    }

    fn time(&mut self) -> Result<DateTime<Utc>, StoreError> {
        let seconds = i64::from_le_bytes(self.array()?);
        let nanos = self.u32()?;
        DateTime::from_timestamp(seconds, nanos).ok_or_else(|| corrupt("time out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(full: bool) -> EventRecord {
        let at = DateTime::from_timestamp(1_800_000_000, 123_456_789).unwrap();
        EventRecord {
            id: ulid::Ulid(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            destination: "orders".into(),
            topic: "order.créé".into(),
            content_type: full.then(|| "application/json".into()),
            created_at: at,
            state: if full {
                EventState::Retrying
            } else {
                EventState::Pending
            },
            attempt_count: 7,
            automatic_retries: 3,
            cycle_started_at: at + chrono::Duration::days(1),
            next_attempt_at: full.then(|| at + chrono::Duration::minutes(8)),
            next_trigger: Some(if full {
                Trigger::Flush
            } else {
                Trigger::Initial
            }),
            last_status: full.then_some(503),
            last_error: full.then(|| "timed out".into()),
            reason: full.then_some(Reason::Failed(FailReason::Expired)),
            duplicate_of: full.then_some(ulid::Ulid(42)),
            idempotency_key: full.then(|| "key-1".into()),
            payload_bytes: 4096,
            schedule_pinned: full,
        }
    }

    #[test]
    fn records_round_trip_with_and_without_optional_fields() {
        for full in [true, false] {
            let original = record(full);
            assert_eq!(decode_event(&encode_event(&original)).unwrap(), original);
        }
    }

    #[test]
    fn every_state_and_trigger_round_trips() {
        for state in EventState::ALL {
            for trigger in Trigger::ALL {
                let mut original = record(true);
                original.state = state;
                original.next_trigger = Some(trigger);
                let mut expected = original.clone();
                if !state.awaits_delivery() {
                    expected.next_trigger = None;
                }
                assert_eq!(decode_event(&encode_event(&original)).unwrap(), expected);
            }
        }
    }

    #[test]
    fn every_reason_round_trips() {
        let mut reasons = Reason::known();
        reasons.push(Reason::Unrecognised("gone fishing".into()));
        for reason in reasons {
            let mut original = record(true);
            original.reason = Some(reason);
            assert_eq!(decode_event(&encode_event(&original)).unwrap(), original);
        }
    }

    /// Format 1 (reason as text) as the previous build wrote it: the same
    /// layout with a presence flag and the text where the code is now.
    fn format_1(record: &EventRecord, reason_text: Option<&str>) -> Vec<u8> {
        let mut plain = record.clone();
        plain.reason = None;
        let mut current = encode_event(&plain);
        // Formats 1 and 2 end at the payload bytes (no pinned flag).
        current.pop();
        // reason code, duplicate-of flag and id, key flag (no key), payload bytes
        let tail = 1 + 1 + 16 + 1 + 8;
        let (head, rest) = current.split_at(current.len() - tail);
        let mut out = head.to_vec();
        out[0] = FORMAT_REASON_TEXT;
        put_opt_str(&mut out, reason_text);
        out.extend_from_slice(&rest[1..]);
        out
    }

    #[test]
    fn format_2_records_read_as_not_pinned() {
        let mut original = record(true);
        let mut bytes = encode_event(&original);
        bytes.pop();
        bytes[0] = FORMAT_WITHOUT_PIN;
        original.schedule_pinned = false;
        assert_eq!(decode_event(&bytes).unwrap(), original);
    }

    #[test]
    fn format_1_records_are_still_read() {
        let mut original = record(true);
        original.idempotency_key = None;
        for (text, reason) in [
            (None, None),
            (Some("muted"), Some(Reason::Muted)),
            (
                Some("retries_exhausted"),
                Some(Reason::Failed(FailReason::RetriesExhausted)),
            ),
            (
                Some("cancelled by Retry-After: -1"),
                Some(Reason::CancelledByRetryAfter),
            ),
            (
                Some("by hand"),
                Some(Reason::Unrecognised("by hand".into())),
            ),
        ] {
            let decoded = decode_event(&format_1(&original, text)).unwrap();
            assert_eq!(decoded.reason, reason);
            assert_eq!(decoded.payload_bytes, original.payload_bytes);
        }
    }

    proptest! {
        /// Truncated or damaged bytes are an error naming the record, never a panic.
        #[test]
        fn damaged_records_are_errors_not_panics(cut in 0usize..200, flip in 0usize..200, byte in any::<u8>()) {
            let mut bytes = encode_event(&record(true));
            if flip < bytes.len() {
                bytes[flip] = byte;
            }
            bytes.truncate(cut.min(bytes.len()));
            if let Err(e) = decode_event(&bytes) {
                prop_assert!(e.to_string().contains("corrupt event record"), "{}", e);
            }
        }
    }
}
