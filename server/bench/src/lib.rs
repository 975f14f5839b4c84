//! Ferry's benchmarks and its synthetic export generator, beside the server rather
//! than in it: `ferry-bench` runs them (see `scripts/bench.sh`), and the server's tests
//! write exports with [`gen_export`]. The `ferry` binary keeps only what a running
//! Ferry needs.

pub mod gen_export;
pub mod ingest;
pub mod null_target;
pub mod passwords;
pub mod reconcile;
pub mod review;
pub mod run;
pub mod scim;
