//! The PostgreSQL backend against a real PostgreSQL: the storage conformance suite, and what
//! only several nodes on one database can show. One binary, so that the suite builds once.

mod credentials;
mod index;
mod nodes;
mod readers;
mod replicas;
mod retention;
mod status;
mod writer;

mod conformance {
    trail_store::conformance_suite!(trail_store_postgres::testing::new_store);
}
