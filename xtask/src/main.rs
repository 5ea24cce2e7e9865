//! `cargo run -p xtask -- c-guest <dir> <out.wasm>`: builds a C guest into a component.
//!
//! 1. C bindings for the `colony:agent/agent` world, generated from `wit/` by
//!    wit-bindgen's C generator (as a library: nothing to install);
//! 2. a core module from `<dir>/*.c` plus the bindings, by Debian's `clang-19` against
//!    wasi-libc (WASI preview 1, reactor model);
//! 3. a component, by wit-component with the WASI preview1 → preview2 reactor adapter
//!    that ships with wasmtime (the same work as `wasm-tools component new --adapt`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Writes the C bindings of the agent world into `out`.
fn bindings(out: &Path) -> anyhow::Result<()> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve.push_path(workspace().join("wit"))?;
    let world = resolve.select_world(&[package], Some("agent"))?;
    let mut files = wit_bindgen_core::Files::default();
    let mut generator = wit_bindgen_c::Opts::default().build();
    generator.generate(&mut resolve, world, &mut files)?;
    std::fs::create_dir_all(out)?;
    for (name, contents) in files.iter() {
        std::fs::write(out.join(name), contents)?;
    }
    Ok(())
}

fn c_guest(source: &Path, output: &Path) -> anyhow::Result<()> {
    let build = workspace()
        .join("target/c-guests")
        .join(source.file_name().context("source dir")?);
    bindings(&build)?;
    let mut sources: Vec<PathBuf> = std::fs::read_dir(source)?
        .chain(std::fs::read_dir(&build)?)
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();
    let core = build.join("core.wasm");
    let status = Command::new("clang-19")
        .args(["--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-mexec-model=reactor", "-Wl,--strip-debug"])
        .arg("-I")
        .arg(&build)
        .args(&sources)
        .arg(build.join("agent_component_type.o"))
        .arg("-o")
        .arg(&core)
        .status()
        .context("cannot run clang-19 (apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32)")?;
    if !status.success() {
        bail!("clang-19 failed for {}", source.display());
    }
    let module = std::fs::read(&core)?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)?
        .adapter(
            "wasi_snapshot_preview1",
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .validate(true)
        .encode()?;
    if let Some(dir) = output.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(output, component)?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, source, output] if cmd == "c-guest" => c_guest(Path::new(source), Path::new(output)),
        [cmd, out] if cmd == "c-bindings" => bindings(Path::new(out)),
        _ => bail!("usage: xtask c-guest <source-dir> <out.wasm> | xtask c-bindings <out-dir>"),
    }
}
