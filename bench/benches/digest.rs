//! The digester benchmarks on their own: `cargo bench -p cmqtt-bench --bench digest`.
//! (`cargo run --release -p cmqtt-bench` runs the same ones as part of the whole harness.)

use cmqtt_bench::digestb::{benches, stream};
use criterion::{criterion_group, criterion_main, Criterion};

fn digest(c: &mut Criterion) {
    let (data, _) = stream(2000, true);
    benches(c, &data);
}

criterion_group!(group, digest);
criterion_main!(group);
