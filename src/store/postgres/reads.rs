//! The reads: sync, as the redb store's are (see [`PgStore::block`]), each
//! one query (or a few in one read-only snapshot) over an index.

use super::error::query_err;
use super::{bound_bytes, id_bytes, id_from, PgStore};
use crate::model::{
    AttemptRecord, DestinationRuntime, EventFilter, EventId, EventIdSet, EventRecord, EventState,
    Notice, NoticeId, NoticeQuery, StateCounts, Trigger,
};
use crate::store::bulk_jobs::FINISHED_BULK_JOBS_KEPT;
use crate::store::tables::decode;
use crate::store::{ulid_floor, BulkJobRow, BulkLane, StoreError};
use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// Rows read per query while a topic glob (checked on each record) leaves
/// some of them out of a listing.
const GLOB_BATCH: usize = 256;

type Param = Box<dyn ToSql + Sync + Send>;

impl PgStore {
    async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(query_err)?;
        client.query(&statement, params).await.map_err(query_err)
    }

    fn read(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        self.block(self.rows(sql, params))
    }

    fn read_count(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let rows = self.read(sql, params)?;
        Ok(rows.first().map_or(0, |row| row.get::<_, i64>(0)) as u64)
    }

    pub fn get_event(&self, id: EventId) -> Result<Option<EventRecord>, StoreError> {
        let rows = self.read(
            "SELECT record::text FROM hookwatch.events WHERE id = $1",
            &[&id_bytes(id)],
        )?;
        Ok(rows.first().and_then(|row| decode_record(id, row.get(0))))
    }

    /// The record and the payload in one read, for an attempt.
    pub fn get_for_delivery(
        &self,
        id: EventId,
    ) -> Result<Option<(EventRecord, Vec<u8>)>, StoreError> {
        let rows = self.read(
            "SELECT e.record::text, p.body FROM hookwatch.events e
             LEFT JOIN hookwatch.payloads p ON p.id = e.id WHERE e.id = $1",
            &[&id_bytes(id)],
        )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let Some(record) = decode_record(id, row.get(0)) else {
            return Ok(None);
        };
        let payload: Option<Vec<u8>> = row.get(1);
        Ok(Some((record, payload.unwrap_or_default())))
    }

    pub fn get_payload(&self, id: EventId) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self.read(
            "SELECT body FROM hookwatch.payloads WHERE id = $1",
            &[&id_bytes(id)],
        )?;
        Ok(rows.first().map(|row| row.get(0)))
    }

    pub fn attempts(&self, id: EventId) -> Result<Vec<AttemptRecord>, StoreError> {
        let rows = self.read(
            "SELECT record::text FROM hookwatch.attempts WHERE event_id = $1 ORDER BY n",
            &[&id_bytes(id)],
        )?;
        rows.iter()
            .map(|row| decode("attempt", row.get::<_, &str>(0).as_bytes()))
            .collect()
    }

    /// Newest first, `limit` at most, strictly older than `before` when
    /// given; the same filters and cursor as the redb store's listing. The
    /// destination, state, time and the topic glob's literal prefix are
    /// conditions of the query (over the indexes by destination and state,
    /// by state, by topic); the glob itself is checked on each record with
    /// the same matcher the redb store uses, reading on until the page is
    /// full. A record that does not decode is skipped.
    ///
    /// `among`, when given, keeps only events of these destinations (what
    /// the engine resolved `filter.label` to; the store ignores the label).
    pub fn list_events(
        &self,
        filter: &EventFilter,
        among: Option<&[String]>,
        before: Option<EventId>,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let upper = before.map_or(u128::MAX, |id| id.0);
        // Ids are ULIDs, so a created-at bound is an id bound.
        let upper = match filter.created_before {
            Some(t) => upper.min(ulid_floor(t)),
            None => upper,
        };
        let lower = filter.created_after.map(ulid_floor).unwrap_or(0);
        if limit == 0 || upper <= lower {
            return Ok(Vec::new());
        }
        // A pattern that cannot compile matches no topic.
        let pattern = match filter.topic.as_deref() {
            None => None,
            Some(glob) => match crate::model::TopicPattern::new(glob) {
                Ok(pattern) => Some((glob, pattern)),
                Err(_) => return Ok(Vec::new()),
            },
        };
        let destinations: Option<Vec<String>> = match (among, &filter.destination) {
            (Some(among), Some(only)) => {
                Some(among.iter().filter(|d| *d == only).cloned().collect())
            }
            (Some(among), None) => Some(among.to_vec()),
            (None, Some(only)) => Some(vec![only.clone()]),
            (None, None) => None,
        };
        if destinations.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let mut sql = String::from(
            "SELECT id, record::text FROM hookwatch.events WHERE id < $1 AND id >= $2",
        );
        let mut params: Vec<Param> = vec![Box::new(bound_bytes(lower))];
        // Conditions are added as `$3`, `$4`, ...: `$1` is the cursor.
        match destinations {
            Some(list) if list.len() == 1 => {
                sql.push_str(&format!(" AND destination = ${}", params.len() + 2));
                params.push(Box::new(list.into_iter().next().expect("one destination")));
            }
            Some(list) => {
                sql.push_str(&format!(" AND destination = ANY(${})", params.len() + 2));
                params.push(Box::new(list));
            }
            None => {}
        }
        if let Some(state) = filter.state {
            sql.push_str(&format!(" AND state = ${}", params.len() + 2));
            params.push(Box::new(state.code() as i16));
        }
        if let Some((glob, _)) = &pattern {
            let prefix = glob.split(['*', '?']).next().unwrap_or_default();
            if !prefix.is_empty() {
                sql.push_str(&format!(
                    " AND topic LIKE ${} ESCAPE '\\'",
                    params.len() + 2
                ));
                params.push(Box::new(format!("{}%", like_escape(prefix))));
            }
        }
        let batch = if pattern.is_some() {
            limit.max(GLOB_BATCH)
        } else {
            limit
        };
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {batch}"));
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut cursor = upper;
        loop {
            let cursor_bytes = bound_bytes(cursor);
            let mut args: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(params.len() + 1);
            args.push(&cursor_bytes);
            for param in &params {
                args.push(param.as_ref() as &(dyn ToSql + Sync));
            }
            let rows = self.read(&sql, &args)?;
            let full = rows.len() == batch;
            for row in &rows {
                let id = id_from("event", row.get(0))?;
                cursor = id.0;
                let Some(record) = decode_record(id, row.get(1)) else {
                    continue;
                };
                if let Some((_, pattern)) = &pattern {
                    if !pattern.matches(&record.topic) {
                        continue;
                    }
                }
                out.push(record);
                if out.len() == limit {
                    return Ok(out);
                }
            }
            if !full {
                return Ok(out);
            }
        }
    }

    /// Events of `destination` due at or before `now`, earliest first,
    /// skipping the ones already in flight; at most `limit`.
    pub fn due(
        &self,
        destination: &str,
        now: DateTime<Utc>,
        limit: usize,
        in_flight: &EventIdSet,
    ) -> Result<Vec<EventId>, StoreError> {
        let in_flight: Vec<Vec<u8>> = in_flight.iter().map(|id| id_bytes(*id)).collect();
        let rows = self.read(
            "SELECT id FROM hookwatch.events
             WHERE destination = $1 AND next_attempt_ms IS NOT NULL AND next_attempt_ms <= $2
               AND NOT (id = ANY($3))
             ORDER BY next_attempt_ms, id LIMIT $4",
            &[
                &destination,
                &now.timestamp_millis(),
                &in_flight,
                &(limit as i64),
            ],
        )?;
        rows.iter()
            .map(|row| id_from("event", row.get(0)))
            .collect()
    }

    /// How many of `destination`'s due entries come before (`due_ms`, `id`),
    /// counting at most `cap`.
    pub fn due_ahead(
        &self,
        destination: &str,
        id: EventId,
        due_ms: i64,
        cap: u64,
    ) -> Result<u64, StoreError> {
        self.read_count(
            "SELECT count(*) FROM (
                 SELECT 1 FROM hookwatch.events
                 WHERE destination = $1 AND next_attempt_ms IS NOT NULL
                   AND (next_attempt_ms, id) < ($2, $3)
                 LIMIT $4) AS ahead",
            &[&destination, &due_ms, &id_bytes(id), &(cap as i64)],
        )
    }

    /// When the earliest not-in-flight event of `destination` falls due.
    pub fn next_due(
        &self,
        destination: &str,
        in_flight: &EventIdSet,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let in_flight: Vec<Vec<u8>> = in_flight.iter().map(|id| id_bytes(*id)).collect();
        let rows = self.read(
            "SELECT next_attempt_ms FROM hookwatch.events
             WHERE destination = $1 AND next_attempt_ms IS NOT NULL AND NOT (id = ANY($2))
             ORDER BY next_attempt_ms, id LIMIT 1",
            &[&destination, &in_flight],
        )?;
        Ok(rows
            .first()
            .and_then(|row| DateTime::from_timestamp_millis(row.get(0))))
    }

    /// Ids of a destination's events in `state`, oldest first, after `after`.
    pub fn ids_in_state(
        &self,
        destination: &str,
        state: EventState,
        after: Option<EventId>,
        limit: usize,
    ) -> Result<Vec<EventId>, StoreError> {
        // No id sorts before the empty bytea.
        let after = after.map(id_bytes).unwrap_or_default();
        let rows = self.read(
            "SELECT id FROM hookwatch.events
             WHERE destination = $1 AND state = $2 AND id > $3 ORDER BY id LIMIT $4",
            &[
                &destination,
                &(state.code() as i16),
                &after,
                &(limit as i64),
            ],
        )?;
        rows.iter()
            .map(|row| id_from("event", row.get(0)))
            .collect()
    }

    /// A destination's events by state: one count over its index entries.
    pub fn counts(&self, destination: &str) -> Result<StateCounts, StoreError> {
        let rows = self.read(
            "SELECT state, count(*) FROM hookwatch.events WHERE destination = $1 GROUP BY state",
            &[&destination],
        )?;
        let mut out = StateCounts::default();
        for row in rows {
            let code: i16 = row.get(0);
            let n: i64 = row.get(1);
            if let Some(state) = EventState::ALL
                .into_iter()
                .find(|s| s.code() as i16 == code)
            {
                *out.slot(state) = n as u64;
            }
        }
        Ok(out)
    }

    pub fn runtime(&self, destination: &str) -> Result<Option<DestinationRuntime>, StoreError> {
        let rows = self.read(
            "SELECT runtime::text FROM hookwatch.destination_runtime WHERE destination = $1",
            &[&destination],
        )?;
        rows.first()
            .map(|row| decode("destination state", row.get::<_, &str>(0).as_bytes()))
            .transpose()
    }

    pub fn event_count(&self) -> Result<u64, StoreError> {
        self.read_count("SELECT count(*) FROM hookwatch.events", &[])
    }

    /// A destination's stored minutes of statistics from `since_ms` on,
    /// oldest first.
    pub fn stats_since(
        &self,
        destination: &str,
        since_ms: i64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let rows = self.read(
            "SELECT bytes FROM hookwatch.stats
             WHERE destination = $1 AND minute_ms >= $2 ORDER BY minute_ms",
            &[&destination, &since_ms],
        )?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Every destination created through the API, with its document.
    pub fn api_destinations(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let rows = self.read(
            "SELECT id, document FROM hookwatch.destinations ORDER BY id",
            &[],
        )?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// Notices newest first, older than `query.before`, at most
    /// `query.limit` (only unacknowledged ones with `query.unacked_only`):
    /// the page, the next page's cursor when there is one, and how many are
    /// unacknowledged, all from one snapshot.
    pub fn list_notices(
        &self,
        query: &NoticeQuery,
    ) -> Result<(Vec<Notice>, Option<NoticeId>, u64), StoreError> {
        let upper = bound_bytes(query.before.map_or(u128::MAX, |b| b.0));
        let limit = query.limit.max(1);
        let sql = if query.unacked_only {
            "SELECT record::text FROM hookwatch.notices WHERE NOT acked AND id < $1
             ORDER BY id DESC LIMIT $2"
        } else {
            "SELECT record::text FROM hookwatch.notices WHERE id < $1 ORDER BY id DESC LIMIT $2"
        };
        // One more than the page: whether there is a next one.
        let fetch = (limit + 1) as i64;
        self.block(async {
            let mut client = self.client().await?;
            let txn = client
                .build_transaction()
                .read_only(true)
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .start()
                .await
                .map_err(query_err)?;
            let page = txn.prepare_cached(sql).await.map_err(query_err)?;
            let rows = txn
                .query(&page, &[&upper, &fetch])
                .await
                .map_err(query_err)?;
            let count = txn
                .prepare_cached("SELECT count(*) FROM hookwatch.notices WHERE NOT acked")
                .await
                .map_err(query_err)?;
            let unacked: i64 = txn.query_one(&count, &[]).await.map_err(query_err)?.get(0);
            txn.commit().await.map_err(query_err)?;
            let more = rows.len() > limit;
            let notices = rows
                .iter()
                .take(limit)
                .map(|row| decode::<Notice>("notice", row.get::<_, &str>(0).as_bytes()))
                .collect::<Result<Vec<_>, _>>()?;
            let next = if more {
                notices.last().map(|n| n.id)
            } else {
                None
            };
            Ok((notices, next, unacked as u64))
        })
    }

    /// How many notices are unacknowledged (their partial index).
    pub fn unacked_notices(&self) -> Result<u64, StoreError> {
        self.read_count(
            "SELECT count(*) FROM hookwatch.notices WHERE NOT acked",
            &[],
        )
    }

    /// One stored bulk job, or `None`.
    pub fn bulk_job(&self, id: ulid::Ulid) -> Result<Option<BulkJobRow>, StoreError> {
        let rows = self.read(
            "SELECT finished, record FROM hookwatch.bulk_jobs WHERE id = $1",
            &[&id_bytes(id)],
        )?;
        Ok(rows.first().map(|row| BulkJobRow {
            id,
            finished: row.get(0),
            record: row.get(1),
        }))
    }

    /// Every running job and the newest `FINISHED_BULK_JOBS_KEPT` finished
    /// ones, newest first (with `running_only`, the running ones alone).
    pub fn bulk_jobs(&self, running_only: bool) -> Result<Vec<BulkJobRow>, StoreError> {
        let finished_kept = if running_only {
            0
        } else {
            FINISHED_BULK_JOBS_KEPT as i64
        };
        let rows = self.read(
            "SELECT id, finished, record FROM hookwatch.bulk_jobs
             WHERE NOT finished OR id IN (
                 SELECT id FROM hookwatch.bulk_jobs WHERE finished ORDER BY id DESC LIMIT $1)
             ORDER BY id DESC",
            &[&finished_kept],
        )?;
        rows.iter()
            .map(|row| {
                Ok(BulkJobRow {
                    id: id_from("bulk job", row.get(0))?,
                    finished: row.get(1),
                    record: row.get(2),
                })
            })
            .collect()
    }

    /// A running job's ids, by destination, in the order they were stored.
    pub fn bulk_job_lanes(&self, id: ulid::Ulid) -> Result<Vec<BulkLane>, StoreError> {
        let rows = self.read(
            "SELECT destination, ids FROM hookwatch.bulk_job_ids WHERE job = $1 ORDER BY n",
            &[&id_bytes(id)],
        )?;
        let mut lanes: Vec<BulkLane> = Vec::new();
        for row in rows {
            let destination: String = row.get(0);
            let raw: &[u8] = row.get(1);
            if !raw.len().is_multiple_of(16) {
                return Err(StoreError::CorruptBulkJob("ids cut short".into()));
            }
            let ids = raw
                .chunks_exact(16)
                .map(|b| ulid::Ulid(u128::from_be_bytes(b.try_into().expect("16 bytes"))));
            match lanes.last_mut() {
                Some(lane) if lane.destination == destination => lane.ids.extend(ids),
                _ => lanes.push(BulkLane {
                    destination,
                    ids: ids.collect(),
                }),
            }
        }
        Ok(lanes)
    }

    /// For each event, its last attempt with `trigger` made at or after
    /// `since`, if any; one query for all of them.
    pub fn last_attempts_since(
        &self,
        ids: &[EventId],
        trigger: Trigger,
        since: DateTime<Utc>,
    ) -> Result<Vec<Option<AttemptRecord>>, StoreError> {
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| id_bytes(*id)).collect();
        // Attempts are made in time order, so those at or after `since` are
        // the newest ones; the millisecond column only narrows the read, the
        // exact time is compared on the record.
        let rows = self.read(
            "SELECT event_id, record::text FROM hookwatch.attempts
             WHERE event_id = ANY($1) AND at_ms >= $2 ORDER BY event_id, n DESC",
            &[&keys, &since.timestamp_millis()],
        )?;
        let mut newest: std::collections::HashMap<EventId, AttemptRecord> =
            std::collections::HashMap::new();
        let mut done: std::collections::HashSet<EventId> = std::collections::HashSet::new();
        for row in rows {
            let id = id_from("event", row.get(0))?;
            if done.contains(&id) {
                continue;
            }
            let record: AttemptRecord = decode("attempt", row.get::<_, &str>(1).as_bytes())?;
            if record.at < since {
                done.insert(id);
                continue;
            }
            if record.trigger == trigger {
                newest.insert(id, record);
                done.insert(id);
            }
        }
        Ok(ids.iter().map(|id| newest.remove(id)).collect())
    }
}

/// An event's stored record, or `None` (reported) when it does not decode:
/// a listing or a dispatcher carries on without it.
fn decode_record(id: EventId, text: &str) -> Option<EventRecord> {
    match serde_json::from_str::<EventRecord>(text) {
        Ok(record) => {
            debug_assert_eq!(record.id, id);
            Some(record)
        }
        Err(error) => {
            tracing::error!(event = %id, %error, "event record does not decode; skipped");
            None
        }
    }
}

/// `text` with LIKE's wildcards and escape character escaped (`\`).
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
