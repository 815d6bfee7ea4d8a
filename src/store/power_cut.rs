//! A redb storage backend that can lose power, for tests: what a real disk
//! keeps across a power cut is what was there at the last `sync_data`; writes
//! made since live in the drive's cache and are lost, or (a drive that was
//! part-way through flushing them) kept up to some point, the last page torn.
//!
//! [`PowerCutBackend`] keeps the durable image apart from the writes made since
//! the last sync. Reads see both, as they would through the page cache;
//! `sync_data` makes the pending writes durable; [`PowerCutBackend::cut_power`]
//! turns the machine off (every later call fails) and hands back the image a
//! restart would find. Run the store on it with [`super::RedbStore::open_on_backend`],
//! and again on [`PowerCutBackend::from_image`] of what the cut left.
//!
//! Not used by the product; public (hidden) so the integration tests can use it.

use rand::Rng;
use redb::StorageBackend;
use std::sync::{Arc, Mutex};

/// What survives the cut of the writes made since the last sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutMode {
    /// None of them: the drive's cache is simply gone.
    DropUnsynced,
    /// A random prefix of them, in the order they were made, the last one of
    /// the prefix cut at a random byte (a torn page).
    TornTail,
}

/// One change made since the last sync, in order.
#[derive(Clone, Debug)]
enum Pending {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default)]
struct Disk {
    /// The bytes as of the last `sync_data`.
    durable: Vec<u8>,
    /// The bytes as reads see them: `durable` with `pending` applied.
    current: Vec<u8>,
    /// The changes not yet synced, oldest first.
    pending: Vec<Pending>,
    /// The power was cut: every call fails.
    off: bool,
    syncs: u64,
    /// A cut waiting for a commit under way (see [`PowerCutBackend::arm_cut`]).
    armed: Option<ArmedCut>,
    /// What an armed cut left, once it happened.
    left: Option<Vec<u8>>,
}

#[derive(Debug)]
struct ArmedCut {
    mode: CutMode,
    /// The cut happens at the write that finds this many writes unsynced.
    at_unsynced: usize,
    rng: rand::rngs::StdRng,
}

/// A redb [`StorageBackend`] in memory that can lose its unsynced writes.
/// Clones share the same disk, so the store can reopen on it.
#[derive(Clone, Debug, Default)]
pub struct PowerCutBackend {
    disk: Arc<Mutex<Disk>>,
}

fn powered_off() -> std::io::Error {
    std::io::Error::other("the power is off")
}

impl Disk {
    fn cut(&mut self, mode: CutMode, rng: &mut impl Rng) -> Vec<u8> {
        self.off = true;
        self.armed = None;
        let pending = std::mem::take(&mut self.pending);
        let mut image = self.durable.clone();
        if mode == CutMode::TornTail && !pending.is_empty() {
            let kept = rng.gen_range(1..=pending.len());
            let (whole, last) = pending[..kept].split_at(kept - 1);
            for change in whole {
                apply(&mut image, change);
            }
            match &last[0] {
                Pending::Write { offset, data } => {
                    let torn_at = rng.gen_range(0..=data.len());
                    apply(
                        &mut image,
                        &Pending::Write {
                            offset: *offset,
                            data: data[..torn_at].to_vec(),
                        },
                    );
                }
                whole @ Pending::SetLen(_) => apply(&mut image, whole),
            }
        }
        self.durable = image.clone();
        self.current = image.clone();
        self.left = Some(image.clone());
        image
    }
}

fn apply(bytes: &mut Vec<u8>, change: &Pending) {
    match change {
        Pending::Write { offset, data } => {
            let start = *offset as usize;
            let end = start + data.len();
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            bytes[start..end].copy_from_slice(data);
        }
        Pending::SetLen(len) => bytes.resize(*len as usize, 0),
    }
}

impl PowerCutBackend {
    /// An empty disk.
    pub fn new() -> PowerCutBackend {
        PowerCutBackend::default()
    }

    /// A disk holding `image`, all of it durable: the machine restarted after a cut.
    pub fn from_image(image: Vec<u8>) -> PowerCutBackend {
        PowerCutBackend {
            disk: Arc::new(Mutex::new(Disk {
                current: image.clone(),
                durable: image,
                ..Disk::default()
            })),
        }
    }

    /// Turns the power off: every later call on this disk (and its clones)
    /// fails. Returns the bytes a restart finds, per `mode`; `rng` picks how
    /// much of the unsynced tail a [`CutMode::TornTail`] keeps. A second cut
    /// returns the same durable image.
    pub fn cut_power(&self, mode: CutMode, rng: &mut impl Rng) -> Vec<u8> {
        let mut disk = self.disk.lock().expect("power-cut disk lock");
        disk.cut(mode, rng)
    }

    /// Arranges for the power to go off in the middle of a commit: at the
    /// write that finds `at_unsynced` writes already waiting for a sync (that
    /// write is the last of the pending ones, the one a torn tail tears).
    /// [`PowerCutBackend::left_by_cut`] then returns the image. A commit
    /// writes its pages in one burst just before its sync, so a cut at a
    /// random moment rarely finds any write unsynced; this one always does.
    pub fn arm_cut(&self, mode: CutMode, at_unsynced: usize, seed: u64) {
        use rand::SeedableRng;
        let mut disk = self.disk.lock().expect("power-cut disk lock");
        disk.armed = Some(ArmedCut {
            mode,
            at_unsynced,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
        });
    }

    /// The image an armed cut left, once the power went off.
    pub fn left_by_cut(&self) -> Option<Vec<u8>> {
        self.disk.lock().expect("power-cut disk lock").left.clone()
    }

    /// How many writes and length changes wait for the next sync.
    pub fn unsynced(&self) -> usize {
        self.disk.lock().expect("power-cut disk lock").pending.len()
    }

    /// How many times the disk was synced.
    pub fn syncs(&self) -> u64 {
        self.disk.lock().expect("power-cut disk lock").syncs
    }

    fn powered(&self) -> Result<std::sync::MutexGuard<'_, Disk>, std::io::Error> {
        let disk = self.disk.lock().expect("power-cut disk lock");
        if disk.off {
            Err(powered_off())
        } else {
            Ok(disk)
        }
    }
}

impl StorageBackend for PowerCutBackend {
    fn len(&self) -> Result<u64, std::io::Error> {
        Ok(self.powered()?.current.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let disk = self.powered()?;
        let start = offset as usize;
        let end = start + out.len();
        if end > disk.current.len() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "read of {start}..{end} past the end ({})",
                    disk.current.len()
                ),
            ));
        }
        out.copy_from_slice(&disk.current[start..end]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        let mut disk = self.powered()?;
        let change = Pending::SetLen(len);
        apply(&mut disk.current, &change);
        disk.pending.push(change);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        let mut disk = self.powered()?;
        let pending = std::mem::take(&mut disk.pending);
        for change in &pending {
            apply(&mut disk.durable, change);
        }
        disk.syncs += 1;
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        let mut disk = self.powered()?;
        let change = Pending::Write {
            offset,
            data: data.to_vec(),
        };
        apply(&mut disk.current, &change);
        disk.pending.push(change);
        let due = disk
            .armed
            .as_ref()
            .is_some_and(|armed| disk.pending.len() > armed.at_unsynced);
        if due {
            let mut armed = disk.armed.take().expect("armed");
            disk.cut(armed.mode, &mut armed.rng);
            return Err(powered_off());
        }
        Ok(())
    }

    fn close(&self) -> Result<(), std::io::Error> {
        // Nothing to release: the disk lives as long as its clones.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    fn read_all(backend: &PowerCutBackend) -> Vec<u8> {
        let mut out = vec![0; backend.len().unwrap() as usize];
        backend.read(0, &mut out).unwrap();
        out
    }

    #[test]
    fn reads_see_unsynced_writes_and_a_cut_drops_them() {
        let backend = PowerCutBackend::new();
        backend.write(0, b"durable").unwrap();
        backend.sync_data().unwrap();
        backend.write(0, b"DUR").unwrap();
        backend.write(7, b"+tail").unwrap();
        assert_eq!(read_all(&backend), b"DURable+tail");
        assert_eq!(backend.unsynced(), 2);

        let image = backend.cut_power(CutMode::DropUnsynced, &mut rng());
        assert_eq!(image, b"durable");
    }

    #[test]
    fn after_the_cut_every_call_fails() {
        let backend = PowerCutBackend::new();
        backend.write(0, b"abc").unwrap();
        let clone = backend.clone();
        backend.cut_power(CutMode::DropUnsynced, &mut rng());
        let mut out = [0u8; 1];
        assert!(clone.read(0, &mut out).is_err());
        assert!(clone.write(0, b"x").is_err());
        assert!(clone.len().is_err());
        assert!(clone.set_len(10).is_err());
        assert!(clone.sync_data().is_err());
    }

    #[test]
    fn a_synced_length_change_survives_and_an_unsynced_one_does_not() {
        let backend = PowerCutBackend::new();
        backend.set_len(8).unwrap();
        backend.sync_data().unwrap();
        backend.set_len(4096).unwrap();
        assert_eq!(backend.len().unwrap(), 4096);
        let image = backend.cut_power(CutMode::DropUnsynced, &mut rng());
        assert_eq!(image, vec![0u8; 8]);
    }

    #[test]
    fn a_torn_tail_keeps_a_prefix_of_the_writes_the_last_one_cut() {
        // Writes 1..=5 of 4 bytes each at their own offsets, after a synced base.
        for seed in 0..200 {
            let backend = PowerCutBackend::new();
            backend.write(0, &[0u8; 20]).unwrap();
            backend.sync_data().unwrap();
            for n in 1..=5u8 {
                backend.write(u64::from(n - 1) * 4, &[n; 4]).unwrap();
            }
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let image = backend.cut_power(CutMode::TornTail, &mut rng);
            assert_eq!(image.len(), 20);
            // The bytes written form a prefix of the 20 written in order:
            // every byte before the first zero is its write's number, every
            // byte after it is zero.
            let kept = image.iter().position(|b| *b == 0).unwrap_or(20);
            for (at, byte) in image.iter().enumerate() {
                let expected = if at < kept { at as u8 / 4 + 1 } else { 0 };
                assert_eq!(*byte, expected, "seed {seed}: byte {at} of {image:?}");
            }
        }
    }

    #[test]
    fn torn_tails_vary_with_the_seed_and_cover_the_whole_range() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..300 {
            let backend = PowerCutBackend::new();
            backend.write(0, &[0u8; 8]).unwrap();
            backend.sync_data().unwrap();
            backend.write(0, &[1u8; 4]).unwrap();
            backend.write(4, &[2u8; 4]).unwrap();
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let image = backend.cut_power(CutMode::TornTail, &mut rng);
            seen.insert(image.iter().filter(|b| **b != 0).count());
        }
        // Anything from nothing kept (the first write torn at byte 0) to both whole.
        assert_eq!(seen, (0..=8).collect());
    }

    #[test]
    fn a_restart_from_the_image_holds_it_durably() {
        let backend = PowerCutBackend::from_image(b"left".to_vec());
        assert_eq!(read_all(&backend), b"left");
        backend.write(0, b"L").unwrap();
        let image = backend.cut_power(CutMode::DropUnsynced, &mut rng());
        assert_eq!(image, b"left");
    }

    #[test]
    fn an_armed_cut_goes_off_at_the_write_that_finds_that_many_unsynced() {
        let backend = PowerCutBackend::new();
        backend.write(0, &[9u8; 12]).unwrap();
        backend.sync_data().unwrap();
        backend.arm_cut(CutMode::DropUnsynced, 2, 1);
        // A sync with fewer pending writes passes the armed cut by.
        backend.write(0, &[1u8; 4]).unwrap();
        backend.sync_data().unwrap();
        backend.write(4, &[2u8; 4]).unwrap();
        backend.write(8, &[3u8; 4]).unwrap();
        assert_eq!(backend.left_by_cut(), None);
        assert!(backend.write(0, &[4u8; 4]).is_err(), "the third write cuts");
        assert!(backend.sync_data().is_err(), "the power stays off");
        let left = backend.left_by_cut().expect("the cut happened");
        assert_eq!(left, [[1u8; 4], [9u8; 4], [9u8; 4]].concat());
    }

    #[test]
    fn an_armed_torn_cut_keeps_a_prefix_including_maybe_the_cutting_write() {
        let mut whole_kept = std::collections::BTreeSet::new();
        for seed in 0..100 {
            let backend = PowerCutBackend::new();
            backend.write(0, &[0u8; 12]).unwrap();
            backend.sync_data().unwrap();
            backend.arm_cut(CutMode::TornTail, 2, seed);
            backend.write(0, &[1u8; 4]).unwrap();
            backend.write(4, &[2u8; 4]).unwrap();
            assert!(backend.write(8, &[3u8; 4]).is_err());
            let left = backend.left_by_cut().unwrap();
            let kept = left.iter().position(|b| *b == 0).unwrap_or(12);
            for (at, byte) in left.iter().enumerate() {
                let expected = if at < kept { at as u8 / 4 + 1 } else { 0 };
                assert_eq!(*byte, expected, "seed {seed}: {left:?}");
            }
            whole_kept.insert(kept);
        }
        assert!(
            whole_kept.contains(&12),
            "the cutting write is sometimes kept whole"
        );
        assert!(whole_kept.contains(&0), "and sometimes nothing is");
    }

    #[test]
    fn a_commit_cut_midway_fails_and_the_reopened_file_holds_the_one_before() {
        const TABLE: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("t");
        for (seed, mode) in (0..40).zip([CutMode::DropUnsynced, CutMode::TornTail].iter().cycle()) {
            let backend = PowerCutBackend::new();
            let db = redb::Database::builder()
                .create_with_backend(backend.clone())
                .unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(TABLE).unwrap().insert(1, 10).unwrap();
            txn.commit().unwrap();
            backend.arm_cut(*mode, seed as usize % 3, seed);
            let txn = db.begin_write().unwrap();
            {
                let mut table = txn.open_table(TABLE).unwrap();
                for key in 2..500 {
                    table.insert(key, key * 10).unwrap();
                }
            }
            assert!(
                txn.commit().is_err(),
                "seed {seed}: the commit the cut interrupted fails"
            );
            drop(db);
            let image = backend.left_by_cut().expect("the cut happened");
            let reopened = redb::Database::builder()
                .create_with_backend(PowerCutBackend::from_image(image))
                .unwrap();
            let txn = redb::ReadableDatabase::begin_read(&reopened).unwrap();
            let table = txn.open_table(TABLE).unwrap();
            assert_eq!(table.get(1).unwrap().unwrap().value(), 10, "seed {seed}");
            assert!(table.get(2).unwrap().is_none(), "seed {seed}");
        }
    }

    #[test]
    fn redb_runs_on_it_and_a_cut_loses_only_the_uncommitted() {
        const TABLE: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("t");
        let backend = PowerCutBackend::new();
        let db = redb::Database::builder()
            .create_with_backend(backend.clone())
            .unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(TABLE).unwrap().insert(1, 10).unwrap();
        txn.commit().unwrap();
        let image = backend.cut_power(CutMode::DropUnsynced, &mut rng());
        drop(db);
        let reopened = redb::Database::builder()
            .create_with_backend(PowerCutBackend::from_image(image))
            .unwrap();
        let txn = redb::ReadableDatabase::begin_read(&reopened).unwrap();
        let table = txn.open_table(TABLE).unwrap();
        assert_eq!(table.get(1).unwrap().unwrap().value(), 10);
    }
}
