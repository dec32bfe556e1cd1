//! `scripts/lint-files.sh`, run where none of its linters can be installed:
//! a developer's run says which were skipped and passes, and a run under
//! `CI=true` fails, so a green CI always means every linter ran.

use std::{os::unix::fs::symlink, path::Path, process::Output};

use deploy_checks::manifests::repo_root;

/// The linters the script runs, in its order.
const LINTERS: [&str; 4] = ["cargo-machete", "actionlint", "shellcheck", "hadolint"];

/// Runs the script with `CI` set to `ci` (or unset), a PATH that holds only
/// the few commands it needs to reach each install step (no cargo, npm,
/// apt-get or python3), and an empty tools directory.
fn lint_without_any_linter(ci: Option<&str>) -> Output {
    let work = std::env::temp_dir().join(format!(
        "lint-files-{}-{}",
        std::process::id(),
        ci.unwrap_or("unset")
    ));
    let bin = work.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["dirname", "mkdir", "grep"] {
        let found = ["/usr/bin", "/bin"]
            .iter()
            .map(|dir| Path::new(dir).join(tool))
            .find(|path| path.exists())
            .unwrap_or_else(|| panic!("{tool} is not installed"));
        let link = bin.join(tool);
        if !link.exists() {
            symlink(found, link).unwrap();
        }
    }
    let mut command = std::process::Command::new("/bin/bash");
    command
        .arg(repo_root().join("scripts/lint-files.sh"))
        .env_clear()
        .env("PATH", &bin)
        .env("HOME", &work)
        .env("LINT_TOOLS_DIR", work.join("tools"));
    if let Some(ci) = ci {
        command.env("CI", ci);
    }
    let output = command.output().expect("bash runs");
    std::fs::remove_dir_all(&work).unwrap();
    output
}

#[test]
fn a_developer_run_reports_each_linter_it_could_not_install_and_passes() {
    let output = lint_without_any_linter(None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    for linter in LINTERS {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&format!("lint: skipping {linter}: "))),
            "no skip line for {linter}:\n{stderr}"
        );
    }
}

#[test]
fn under_ci_a_linter_that_could_not_run_fails_the_run() {
    for ci in ["true", "1"] {
        let output = lint_without_any_linter(Some(ci));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "CI={ci}:\n{stderr}");
        assert!(
            stderr.lines().any(|l| l
                == format!(
                    "lint: CI={ci}, and these linters could not run: {}",
                    LINTERS.join(" ")
                )),
            "CI={ci}:\n{stderr}"
        );
    }
}
