//! Files and the `whiten` binary: what a directory holds, and `whiten process` run on files or
//! fed through a pipe.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Every file directly in `dir`, by name, with its bytes: compared before and after a failing
/// run, it shows that nothing was written, clobbered or left behind.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// `whiten process <args>`, with nothing on its standard input.
pub fn whiten_process<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_whiten"))
        .arg("process")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the whiten binary runs")
}

/// `whiten process /dev/stdin OUT [args…]` with `bytes` written into its standard input from
/// another thread (the process may stop reading early: a broken pipe is fine).
pub fn whiten_from_stdin(bytes: Vec<u8>, out: &Path, args: &[&std::ffi::OsStr]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_whiten"))
        .args(["process", "/dev/stdin"])
        .arg(out)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&bytes);
    });
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap();
    o
}
