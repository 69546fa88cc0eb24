//! `cmqtt-bench`: the performance harness of cmqtt. `cargo run --release -p cmqtt-bench` runs
//! every measurement, prints the tables and writes them into docs/PERFORMANCE.md; `--smoke`
//! runs each part tiny, as a build-and-run check without timing assertions.

pub mod alloc;
pub mod bindings;
pub mod broker;
pub mod child;
pub mod common;
pub mod digestb;
pub mod fake;
pub mod flood;
pub mod idle;
pub mod line;
pub mod memory;
pub mod mqttpub;
pub mod peers;
pub mod pyenv;
pub mod report;
pub mod stamp;
pub mod sys;
pub mod turnaround;
