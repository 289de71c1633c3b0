// Skipping a test because a program it needs is not installed, visibly.
//
// libtest captures what a passing test prints with `eprintln!` and reports it as `ok`, so a
// skip would go unseen. The notice is written to the process's standard error directly (the
// capture only covers the print macros), naming the test and the program. Under CI
// (`CI=true`), where `.ci/run` installs these programs, a missing one fails the test instead.
//
// Dependency-free and without inner attributes: the integration tests use it through `common`,
// and unit tests in `src/` `include!` it.

use std::io::Write;
use std::path::PathBuf;

/// `program` as found on `PATH`, if it is there.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// `program` on `PATH`; when it is not there, None after [`present_or_skip`] (which fails the
/// test under CI).
pub fn find_or_skip(test: &str, program: &str, hint: &str) -> Option<PathBuf> {
    let found = on_path(program);
    present_or_skip(found.is_some(), test, program, hint);
    found
}

/// Whether `program ARGS...` can be run and exits 0.
pub fn runs(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether `test` may go on: true when `found`. Otherwise it fails the test under CI, or writes
/// a notice naming `test` and `program` (with `hint`, how to install it) straight to standard
/// error and returns false: the caller returns, and the test reports `ok` without having run.
pub fn present_or_skip(found: bool, test: &str, program: &str, hint: &str) -> bool {
    skip_unless(
        found,
        test,
        &format!("`{program}` is not installed ({hint}; .ci/run installs it)"),
    )
}

/// Whether `test` may go on: true when `ok`. Otherwise it fails the test under CI, or writes
/// `why` as a notice naming `test` straight to standard error and returns false.
pub fn skip_unless(ok: bool, test: &str, why: &str) -> bool {
    if ok {
        return true;
    }
    let under_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(!under_ci, "{test}: {why}; CI must not skip this test");
    let notice = format!(
        "\n*** SKIPPED {test}: {why}; it reports ok without having run (under CI=true this fails) ***\n\n"
    );
    // Not eprintln!: libtest would capture it. Nothing to do if stderr itself is gone.
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(notice.as_bytes());
    let _ = err.flush();
    false
}
