//! Bulk retry jobs, kept so that a restart resumes a running job where it
//! stopped and the last finished ones can still be listed.
//!
//! A job is one row of [`BULK_JOBS`]: whether it has finished, and the
//! engine's JSON record of it (its selection, counts, state, times and how
//! far each destination's share has got). The store reads only the flag; the
//! record's bytes are the engine's. A running job's ids, fixed when it
//! started, are kept apart in [`BULK_JOB_IDS`], in chunks, so that saving
//! its progress rewrites a small record and never the id list; they are
//! dropped when the job finishes. When a job finishes, it is kept and the
//! other finished jobs beyond the newest [`FINISHED_BULK_JOBS_KEPT`] less one
//! are pruned, so the table holds at most that many plus the running ones,
//! and a job is never pruned by its own finish.

use super::tables::{decode, ATTEMPTS, BULK_JOBS, BULK_JOB_IDS};
use super::{read_err, write_err, RedbStore, StoreError};
use crate::model::{AttemptRecord, EventId, Trigger};
use chrono::{DateTime, Utc};
use redb::{ReadableTable, TableError};

/// How many finished jobs are kept (and listed).
pub const FINISHED_BULK_JOBS_KEPT: usize = 100;
/// Ids per stored chunk of a job's id list.
const IDS_PER_CHUNK: usize = 4096;

/// One destination's share of a bulk job: its ids in the order the job
/// retries them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkLane {
    pub destination: String,
    pub ids: Vec<EventId>,
}

/// A stored bulk job: its id, whether it has finished, and the engine's
/// record of it.
#[derive(Clone, Debug)]
pub struct BulkJobRow {
    pub id: ulid::Ulid,
    pub finished: bool,
    pub record: Vec<u8>,
}

/// A chunk of a lane: the destination's name (length-prefixed, u16 LE), then
/// the ids, 16 bytes LE each.
fn encode_chunk(destination: &str, ids: &[EventId]) -> Vec<u8> {
    let name = destination.as_bytes();
    let mut out = Vec::with_capacity(2 + name.len() + ids.len() * 16);
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(name);
    for id in ids {
        out.extend_from_slice(&id.0.to_le_bytes());
    }
    out
}

fn decode_chunk(raw: &[u8]) -> Result<(String, Vec<EventId>), StoreError> {
    let corrupt = |detail: &str| StoreError::CorruptBulkJob(detail.to_string());
    let len = raw
        .get(..2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
        .ok_or_else(|| corrupt("too short"))?;
    let name = raw
        .get(2..2 + len)
        .ok_or_else(|| corrupt("name cut short"))?;
    let name = std::str::from_utf8(name).map_err(|_| corrupt("name is not UTF-8"))?;
    let ids = &raw[2 + len..];
    if !ids.len().is_multiple_of(16) {
        return Err(corrupt("ids cut short"));
    }
    let ids = ids
        .chunks_exact(16)
        .map(|b| ulid::Ulid(u128::from_le_bytes(b.try_into().expect("16 bytes"))))
        .collect();
    Ok((name.to_string(), ids))
}

impl RedbStore {
    /// Stores a new running job with its record and its ids, in one commit.
    pub async fn create_bulk_job(
        &self,
        id: ulid::Ulid,
        record: Vec<u8>,
        lanes: Vec<BulkLane>,
    ) -> Result<(), StoreError> {
        self.write(move |tables| {
            let mut jobs = tables.txn.open_table(BULK_JOBS).map_err(write_err)?;
            jobs.insert(id.0, (false, record.as_slice()))
                .map_err(write_err)?;
            let mut chunks = tables.txn.open_table(BULK_JOB_IDS).map_err(write_err)?;
            let mut n = 0u32;
            for lane in &lanes {
                for ids in lane.ids.chunks(IDS_PER_CHUNK) {
                    chunks
                        .insert((id.0, n), encode_chunk(&lane.destination, ids).as_slice())
                        .map_err(write_err)?;
                    n += 1;
                }
            }
            Ok(())
        })
        .await
    }

    /// Replaces a job's record (its progress). A finished job's ids are
    /// dropped, and finished jobs are pruned in the same commit: this one
    /// stays, with the newest (by start) others up to
    /// [`FINISHED_BULK_JOBS_KEPT`] in all.
    pub async fn save_bulk_job(
        &self,
        id: ulid::Ulid,
        record: Vec<u8>,
        finished: bool,
    ) -> Result<(), StoreError> {
        self.write(move |tables| {
            let mut jobs = tables.txn.open_table(BULK_JOBS).map_err(write_err)?;
            jobs.insert(id.0, (finished, record.as_slice()))
                .map_err(write_err)?;
            if !finished {
                return Ok(());
            }
            let mut chunks = tables.txn.open_table(BULK_JOB_IDS).map_err(write_err)?;
            chunks
                .retain_in((id.0, 0)..=(id.0, u32::MAX), |_, _| false)
                .map_err(write_err)?;
            // The job finishing now is kept whenever it started, with the
            // newest of the others: a long job that ends after 100 newer
            // ones is the latest to finish and must not prune itself. The
            // table holds at most the kept finished jobs and the running
            // ones (this prune runs whenever one finishes), so this walk is
            // short; only the flags are read.
            let mut seen = 1usize;
            let mut old = Vec::new();
            for entry in jobs.iter().map_err(write_err)?.rev() {
                let (key, value) = entry.map_err(write_err)?;
                if value.value().0 && key.value() != id.0 {
                    seen += 1;
                    if seen > FINISHED_BULK_JOBS_KEPT {
                        old.push(key.value());
                    }
                }
            }
            for job in old {
                jobs.remove(job).map_err(write_err)?;
                chunks
                    .retain_in((job, 0)..=(job, u32::MAX), |_, _| false)
                    .map_err(write_err)?;
            }
            Ok(())
        })
        .await
    }

    /// One stored job, or `None`.
    pub fn bulk_job(&self, id: ulid::Ulid) -> Result<Option<BulkJobRow>, StoreError> {
        let txn = self.read()?;
        let jobs = match txn.open_table(BULK_JOBS) {
            Ok(table) => table,
            // A store from before stored jobs: none yet.
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(read_err(e)),
        };
        let row = jobs.get(id.0).map_err(read_err)?.map(|value| {
            let (finished, record) = value.value();
            BulkJobRow {
                id,
                finished,
                record: record.to_vec(),
            }
        });
        Ok(row)
    }

    /// Every running job and the newest [`FINISHED_BULK_JOBS_KEPT`] finished
    /// ones, newest first (with `running_only`, the running ones alone).
    pub fn bulk_jobs(&self, running_only: bool) -> Result<Vec<BulkJobRow>, StoreError> {
        let txn = self.read()?;
        let jobs = match txn.open_table(BULK_JOBS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(read_err(e)),
        };
        let mut out = Vec::new();
        let mut finished_seen = 0usize;
        for entry in jobs.iter().map_err(read_err)?.rev() {
            let (key, value) = entry.map_err(read_err)?;
            let (finished, record) = value.value();
            if finished {
                finished_seen += 1;
                if running_only || finished_seen > FINISHED_BULK_JOBS_KEPT {
                    continue;
                }
            }
            out.push(BulkJobRow {
                id: ulid::Ulid(key.value()),
                finished,
                record: record.to_vec(),
            });
        }
        Ok(out)
    }

    /// A running job's ids, by destination, in the order they were stored.
    pub fn bulk_job_lanes(&self, id: ulid::Ulid) -> Result<Vec<BulkLane>, StoreError> {
        let txn = self.read()?;
        let chunks = match txn.open_table(BULK_JOB_IDS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(read_err(e)),
        };
        let mut lanes: Vec<BulkLane> = Vec::new();
        for entry in chunks
            .range((id.0, 0)..=(id.0, u32::MAX))
            .map_err(read_err)?
        {
            let (_, raw) = entry.map_err(read_err)?;
            let (destination, ids) = decode_chunk(raw.value())?;
            match lanes.last_mut() {
                Some(lane) if lane.destination == destination => lane.ids.extend(ids),
                _ => lanes.push(BulkLane { destination, ids }),
            }
        }
        Ok(lanes)
    }

    /// For each event, its last attempt with `trigger` made at or after
    /// `since`, if any; one read transaction for all of them.
    pub fn last_attempts_since(
        &self,
        ids: &[EventId],
        trigger: Trigger,
        since: DateTime<Utc>,
    ) -> Result<Vec<Option<AttemptRecord>>, StoreError> {
        let txn = self.read()?;
        let attempts = txn.open_table(ATTEMPTS).map_err(read_err)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let mut found = None;
            for entry in attempts
                .range((id.0, 0u32)..=(id.0, u32::MAX))
                .map_err(read_err)?
                .rev()
            {
                let (_, raw) = entry.map_err(read_err)?;
                let record: AttemptRecord = decode("attempt", raw.value())?;
                if record.at < since {
                    break;
                }
                if record.trigger == trigger {
                    found = Some(record);
                    break;
                }
            }
            out.push(found);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_finishing_after_100_newer_ones_is_kept_and_the_oldest_other_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("store.redb")).unwrap();
        let lanes = || {
            vec![BulkLane {
                destination: "d".into(),
                ids: vec![ulid::Ulid(1)],
            }]
        };
        let ids: Vec<ulid::Ulid> = (1..=FINISHED_BULK_JOBS_KEPT as u128 + 2)
            .map(ulid::Ulid)
            .collect();
        for id in &ids {
            store
                .create_bulk_job(*id, b"{}".to_vec(), lanes())
                .await
                .unwrap();
        }
        // Every job but the first finishes, then the first (the oldest by start).
        for id in &ids[1..] {
            store
                .save_bulk_job(*id, b"{}".to_vec(), true)
                .await
                .unwrap();
        }
        store
            .save_bulk_job(ids[0], b"{}".to_vec(), true)
            .await
            .unwrap();
        let kept: Vec<ulid::Ulid> = store
            .bulk_jobs(false)
            .unwrap()
            .iter()
            .map(|row| row.id)
            .collect();
        assert_eq!(kept.len(), FINISHED_BULK_JOBS_KEPT);
        assert!(
            store.bulk_job(ids[0]).unwrap().is_some(),
            "pruned by its own finish"
        );
        // The others kept are the newest; the oldest two of them went.
        assert!(store.bulk_job(ids[1]).unwrap().is_none());
        assert!(store.bulk_job(ids[2]).unwrap().is_none());
        assert!(store.bulk_job(ids[3]).unwrap().is_some());
        assert!(store.bulk_job_lanes(ids[0]).unwrap().is_empty());
    }

    #[test]
    fn a_chunk_reads_back_as_written() {
        let ids: Vec<EventId> = (1..=3u128).map(ulid::Ulid).collect();
        let raw = encode_chunk("orders", &ids);
        assert_eq!(decode_chunk(&raw).unwrap(), ("orders".to_string(), ids));
        assert!(decode_chunk(&raw[..raw.len() - 1]).is_err());
    }
}
