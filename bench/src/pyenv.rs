//! The Python side: a venv in `target/bench-venv` with pyserial (for the peers) and, for the
//! full run, the cmqtt wheel built from this tree with maturin (so that the Python numbers are
//! of the current library); and the C program, built against `libcmqtt.so`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;

fn run(cmd: &mut Command, what: &str, log: &Path) -> Res<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::write(log, &text);
    if !out.status.success() {
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        return Err(format!(
            "{what} failed ({}), log {}:\n{}",
            out.status,
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    Ok(())
}

fn imports(python: &Path, module: &str) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {module}")])
        .current_dir("/")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The bench venv's python, with pyserial installed.
pub fn bench_python(ctx: &Ctx) -> Res<PathBuf> {
    let venv = ctx.target.join("bench-venv");
    let py = venv.join("bin/python");
    let log = ctx.scratch().join("venv.log");
    if !py.exists() {
        eprintln!("  creating {}", venv.display());
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
            &log,
        )?;
    }
    if !imports(&py, "serial") {
        eprintln!("  pip install pyserial");
        run(
            Command::new(&py).args(["-m", "pip", "install", "-q", "pyserial"]),
            "pip install pyserial",
            &log,
        )?;
    }
    Ok(py)
}

/// A python that imports this tree's cmqtt module. Full run: builds the wheel with maturin and
/// installs it into the bench venv. Smoke run: uses whatever venv already has it (CI's
/// `target/py-venv` from ci/python.sh), or `None`.
pub fn cmqtt_python(ctx: &Ctx, py: &Path) -> Res<Option<PathBuf>> {
    if ctx.smoke {
        for cand in [ctx.target.join("py-venv/bin/python"), py.to_path_buf()] {
            if cand.exists() && imports(&cand, "cmqtt") {
                return Ok(Some(cand));
            }
        }
        return Ok(None);
    }
    let log = ctx.scratch().join("maturin.log");
    let maturin = py.with_file_name("maturin");
    if !maturin.exists() {
        eprintln!("  pip install maturin");
        run(
            Command::new(py).args(["-m", "pip", "install", "-q", "maturin>=1.9.4,<2"]),
            "pip install maturin",
            &log,
        )?;
    }
    let wheels = ctx.scratch().join("wheels");
    let _ = std::fs::remove_dir_all(&wheels);
    eprintln!("  maturin build --release (the Python module of this tree)");
    run(
        Command::new(&maturin)
            .args(["build", "--release", "-m"])
            .arg(ctx.root.join("python/Cargo.toml"))
            .arg("-i")
            .arg(py)
            .arg("-o")
            .arg(&wheels),
        "maturin build",
        &log,
    )?;
    let wheel = std::fs::read_dir(&wheels)
        .map_err(err("wheels"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or("maturin produced no wheel")?;
    run(
        Command::new(py)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--force-reinstall",
                "--no-deps",
            ])
            .arg(&wheel),
        "pip install the wheel",
        &log,
    )?;
    Ok(Some(py.to_path_buf()))
}

/// Builds libcmqtt (cargo build --release -p cmqtt-ffi) and bench/c/publish_loop.c against it.
pub fn c_program(ctx: &Ctx) -> Res<PathBuf> {
    let log = ctx.scratch().join("c-build.log");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let lib = ctx.target.join("release");
    if !ctx.smoke || !lib.join("libcmqtt.so").exists() {
        eprintln!("  cargo build --release -p cmqtt-ffi");
        run(
            Command::new(&cargo)
                .args(["build", "--release", "-p", "cmqtt-ffi"])
                .current_dir(&ctx.root),
            "cargo build -p cmqtt-ffi",
            &log,
        )?;
    }
    let exe = ctx.scratch().join("publish_loop");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    run(
        Command::new(cc)
            .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(ctx.root.join("include"))
            .arg(ctx.root.join("bench/c/publish_loop.c"))
            .arg("-o")
            .arg(&exe)
            .arg("-L")
            .arg(&lib)
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .args(["-lcmqtt", "-lpthread"]),
        "cc publish_loop.c",
        &log,
    )?;
    Ok(exe)
}
