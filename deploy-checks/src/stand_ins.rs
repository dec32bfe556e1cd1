//! The stand-ins for docker, kind, kubectl and istioctl in
//! `deploy-checks/fixtures/mesh-e2e-stand-ins/` (each cites the release whose output
//! it copies), put first on `PATH` for a command that would call the real
//! tools.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::manifests::repo_root;

/// The folder of stand-ins.
pub(crate) fn folder() -> PathBuf {
    repo_root().join("deploy-checks/fixtures/mesh-e2e-stand-ins")
}

/// `program args…` run in the repository with `dirs` and then the
/// stand-ins first on `PATH`; each stand-in appends the call it took to
/// `log` (which is emptied first, and the data plane the istioctl stand-in
/// records beside it, `<log>.dataplane`, removed). No `TRACING` or `DATAPLANE`, and none of an outer
/// make's variables, come from the caller.
pub fn command(program: &str, args: &[&str], dirs: &[&Path], log: &Path) -> Command {
    std::fs::write(log, "").expect("the stand-ins' log is writable");
    // No data plane is installed until the istioctl stand-in installs one.
    let mut state = log.as_os_str().to_owned();
    state.push(".dataplane");
    let _ = std::fs::remove_file(state);
    let mut path: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    path.push(folder());
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(repo_root())
        .env("PATH", std::env::join_paths(path).expect("a valid PATH"))
        .env("STAND_IN_LOG", log)
        .env_remove("TRACING")
        .env_remove("DATAPLANE")
        // A `make` under `make test` would otherwise inherit its job flags.
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL");
    command
}

/// The calls the stand-ins logged to `log`, in order.
pub fn calls(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `command` run to its end, with a log of its own named after `label`
/// (unique to this process): what it wrote, and the calls the stand-ins
/// logged.
pub fn run(
    label: &str,
    program: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (std::process::Output, Vec<String>) {
    let log = std::env::temp_dir().join(format!("{label}-{}.log", std::process::id()));
    let output = command(program, args, &[], &log)
        .envs(envs.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    (output, calls(&log))
}
