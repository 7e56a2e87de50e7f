//! The configuration file `trail serve` reads, as a library: the binary (`main.rs`) is its one
//! user, and the fuzz targets (`crates/trail-fuzz`) read files through it as `serve` does.

pub mod config;
