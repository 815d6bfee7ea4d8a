//! The two stores the behavioural tests run on. A test written once with
//! [`both_stores!`](crate::harness::both_stores) becomes two: `NAME::redb`
//! (the redb file in the test's temp directory) and `NAME::postgres` (a
//! fresh database on this test binary's throwaway PostgreSQL cluster). The
//! PostgreSQL one skips with a note saying how to run it when PostgreSQL is
//! not installed, and fails under `CI`, as `TestCluster` does.

use super::config::TestConfig;
use hookwatch::store::postgres::test_cluster::TestCluster;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The store a test runs on.
#[derive(Clone, Debug)]
pub enum TestStore {
    /// The redb file in the test's temporary directory (the default).
    Redb,
    /// A database of its own on the test binary's PostgreSQL cluster.
    Postgres { url: String },
}

impl TestStore {
    /// A fresh database on this process's throwaway cluster, or `None` (after
    /// the cluster helper's note) when PostgreSQL is not installed.
    pub async fn postgres() -> Option<TestStore> {
        // initdb, the server's start and createdb are blocking commands.
        tokio::task::spawn_blocking(|| {
            static DATABASES: AtomicUsize = AtomicUsize::new(0);
            let cluster = TestCluster::for_this_process()?;
            let name = format!("test_{}", DATABASES.fetch_add(1, Ordering::Relaxed));
            Some(TestStore::Postgres {
                url: cluster.create_database(&name),
            })
        })
        .await
        .expect("preparing the test database panicked")
    }

    /// `TestConfig::new()` on this store.
    pub fn config(&self) -> TestConfig {
        TestConfig::new().on(self)
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestStore::Postgres { .. })
    }
}

impl TestConfig {
    /// Runs on `store`: nothing for redb (the path is given when the config
    /// is rendered), `store.url` for PostgreSQL.
    pub fn on(self, store: &TestStore) -> TestConfig {
        match store {
            TestStore::Redb => self,
            TestStore::Postgres { url } => self.store_url(url),
        }
    }
}

/// Runs the async test body `NAME(store: TestStore)` written just below on
/// each store:
///
/// ```ignore
/// both_stores!(#[tokio::test] delivers);
/// async fn delivers(store: TestStore) {
///     let daemon = Daemon::start(store.config().destination(...)).await;
///     ...
/// }
/// ```
///
/// emits a module `delivers` with the tests `redb` and `postgres`, each
/// carrying the given attributes (`#[tokio::test(...)]`, `#[ignore]`...). The
/// body stays an ordinary function, so rustfmt and the compiler's messages
/// treat it as any other. A test that runs the engine in-process (`Harness`,
/// `daemon::start`) needs `flavor = "multi_thread"`: the PostgreSQL store
/// refuses the current-thread runtime.
#[allow(unused_macros)]
macro_rules! both_stores {
    ($(#[$attr:meta])* $name:ident) => {
        mod $name {
            $(#[$attr])*
            async fn redb() {
                super::$name($crate::harness::TestStore::Redb).await
            }

            $(#[$attr])*
            async fn postgres() {
                if let Some(store) = $crate::harness::TestStore::postgres().await {
                    super::$name(store).await
                }
            }
        }
    };
}
pub(crate) use both_stores;
