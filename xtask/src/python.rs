//! The project-local Python environment of the third-party host test
//! (`tests/pedalboard_host.rs` runs `tests/python/test_pedalboard.py` in it): a virtual
//! environment under the target directory with the exact packages of
//! `tests/python/requirements.txt`, installed from the package registry with pip. Nothing
//! outside `target/` is touched, so `cargo clean` removes it and a fresh checkout rebuilds it.

use crate::run;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The requirements file, relative to the workspace root.
const REQUIREMENTS: &str = "tests/python/requirements.txt";
/// The environment, relative to the target directory (the tests find it there too).
const ENV_DIR: &str = "pyenv";
/// Written into the environment after a successful install: a copy of the requirements it
/// was installed from, so an unchanged environment is not reinstalled on every `setup` and a
/// changed pin is.
const STAMP: &str = "installed-requirements.txt";

/// The target directory: `$CARGO_TARGET_DIR` or `target/` in the workspace (as the tests
/// compute it).
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// Create or update the environment. The interpreter is `$PYTHON` or `python3` (3.9 or
/// newer, with the standard `venv` module).
pub fn setup(root: &Path) -> Result<(), String> {
    let requirements_path = root.join(REQUIREMENTS);
    let requirements = std::fs::read_to_string(&requirements_path)
        .map_err(|e| format!("cannot read {}: {e}", requirements_path.display()))?;
    let env = target_dir(root).join(ENV_DIR);
    let python = env.join("bin").join("python");
    let stamp = env.join(STAMP);
    if python.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&requirements) {
        eprintln!("xtask: Python environment {} up to date", env.display());
        return Ok(());
    }
    let interpreter = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run(Command::new(&interpreter).args([
        "-c",
        "import sys, venv; assert sys.version_info >= (3, 9), sys.version",
    ]))
    .map_err(|e| {
        format!(
            "{e}\nthe pedalboard test needs CPython 3.9 or newer with the venv module as \
             `{interpreter}` (set PYTHON to choose another; on Debian: apt-get install \
             python3-venv)"
        )
    })?;
    // --clear: a half-installed environment from an interrupted run starts over.
    run(Command::new(&interpreter)
        .args(["-m", "venv", "--clear"])
        .arg(&env))?;
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "-r",
        ])
        .arg(&requirements_path))?;
    run(Command::new(&python).args([
        "-c",
        "import numpy, pedalboard; print('pedalboard', pedalboard.__version__, 'numpy', \
         numpy.__version__)",
    ]))?;
    std::fs::write(&stamp, requirements)
        .map_err(|e| format!("cannot write {}: {e}", stamp.display()))
}
