//! For tests of any crate that runs against PostgreSQL: the database, and a schema of its own
//! per test, dropped afterwards (feature `testing`).
//!
//! The database is `TRAIL_TEST_POSTGRES` (the test command sets it, starting a throwaway
//! cluster when no server is running), or the local server.

use crate::PgStore;

mod cluster;
pub use cluster::Cluster;

/// The test database's URL.
pub fn database_url() -> String {
    std::env::var("TRAIL_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema of its own, dropped when the guard is.
pub struct TestSchema {
    pub name: String,
}

impl TestSchema {
    pub async fn new() -> TestSchema {
        let name = format!("t{}_{}", std::process::id(), random_suffix());
        let url = database_url();
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {url} is not reachable ({e}); ./scripts/test starts one"));
        tokio::spawn(connection);
        client.batch_execute(&format!("CREATE SCHEMA {name}")).await.expect("a test schema");
        TestSchema { name }
    }

    /// The database URL with this schema first on the search path: what `--database` takes.
    pub fn url(&self) -> String {
        crate::with_search_path(&database_url(), &self.name)
    }

    /// A connection of its own in this schema, outside any store (as someone tampering with
    /// the trail, or looking at what a store left, would have).
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.url(), tokio_postgres::NoTls).await.expect("the test database connects");
        tokio::spawn(connection);
        client
    }

    /// Runs SQL in this schema on a connection of its own (see [`TestSchema::client`]).
    pub async fn execute(&self, sql: &str) {
        self.client().await.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// A store (a node) in this schema; several may share it.
    pub async fn store(&self) -> PgStore {
        PgStore::connect(&database_url(), Some(&self.name)).await.expect("the test store connects")
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop may run outside any runtime, or inside one that cannot block: a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async {
                if let Ok((client, connection)) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    // A store dropped with a transaction open (its indexer's, say) cannot roll it
                    // back while this thread blocks its runtime: end the sessions holding locks in
                    // the schema, or the drop would wait for them forever.
                    let _ = client
                        .execute(
                            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
                             JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace \
                             WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()",
                            &[&name],
                        )
                        .await;
                    let _ = client.batch_execute(&format!("DROP SCHEMA {name} CASCADE")).await;
                }
            });
        })
        .join();
    }
}

fn random_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    hasher.finish() % 1_000_000_000
}

/// A store in a fresh schema; the schema goes with the guard.
pub async fn new_store() -> (PgStore, TestSchema) {
    let schema = TestSchema::new().await;
    (schema.store().await, schema)
}
