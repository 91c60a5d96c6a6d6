//! Records the git commit this binary is built from, so every report can say which code
//! produced it (its provenance). Without git or a repository (a source tarball, a Docker build
//! whose context leaves `.git` out) set `SHAKEDOWN_GIT_COMMIT`; otherwise the commit is unknown,
//! never guessed.

use std::process::Command;

/// What the binary is made of: when one of these changes, whether the tree is dirty may too.
const SOURCES: &[&str] = &[
    "src",
    "Cargo.toml",
    "Cargo.lock",
    "reference-services/src",
    "scenarios/src",
    "scenarios/proto",
    "reports/src",
    "reports/templates",
    "slo/src",
    "chaos/src",
    "config/src",
];

fn main() {
    println!("cargo:rerun-if-env-changed=SHAKEDOWN_GIT_COMMIT");
    if let Ok(commit) = std::env::var("SHAKEDOWN_GIT_COMMIT")
        && !commit.trim().is_empty()
    {
        println!("cargo:rustc-env=SHAKEDOWN_GIT_COMMIT={}", commit.trim());
        return;
    }
    let Some(commit) = git(&["rev-parse", "HEAD"]) else {
        return;
    };
    println!("cargo:rustc-env=SHAKEDOWN_GIT_COMMIT={commit}");
    if let Some(changes) = git(&["status", "--porcelain", "--untracked-files=no"]) {
        println!(
            "cargo:rustc-env=SHAKEDOWN_GIT_DIRTY={}",
            !changes.is_empty()
        );
    }
    // Re-run when HEAD moves (checkout, commit) or the tree's content changes.
    let mut watched = vec![
        "HEAD".to_string(),
        "index".to_string(),
        "packed-refs".to_string(),
    ];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    for source in SOURCES {
        println!("cargo:rerun-if-changed={source}");
    }
}

/// `git ARGS` in this package's directory, its trimmed output when it succeeded.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}
