//! `whiten process`'s contract on a file that may be anything (the fuzzers of WAV and of the
//! decoded formats): it never panics or hangs; a success writes a complete OUT of IN's shape,
//! finite and within ±1, and nothing else; a failure names IN, prints nothing on stdout and
//! leaves OUT's directory exactly as it was — with OUT existing and with OUT absent.

use super::files::snapshot;
use interneuron_whitening::io::{read_wav, WavError, WavSpec};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A run that takes longer than this has hung (a valid file takes well under a second).
pub const TIME_LIMIT: Duration = Duration::from_secs(60);

/// A refusal: the error message and the input's path (for messages that name it).
pub struct Refusal {
    /// `whiten`'s standard error.
    pub stderr: String,
    /// The input file the message names.
    pub input: PathBuf,
}

/// Write `bytes` as `case-N/{input_name}` under `root`, run `whiten process` on it (spectral
/// framing with a small FFT if `spectral`) once with an existing OUT and once with OUT absent,
/// and check the contract against `library`, what the library's reader makes of the file.
/// Returns `None` if the file was accepted, the refusal otherwise; both runs must agree.
pub fn check_process(
    root: &Path,
    case: usize,
    input_name: &str,
    bytes: &[u8],
    library: impl Fn(&Path) -> Result<(WavSpec, Vec<f32>), WavError>,
    spectral: bool,
    what: &str,
) -> Option<Refusal> {
    let dir = root.join(format!("case-{case}"));
    std::fs::create_dir(&dir).unwrap();
    let input = dir.join(input_name);
    std::fs::write(&input, bytes).unwrap();
    let library = library(&input);
    let out_dir = dir.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let old = out_dir.join("old.wav");
    let old_bytes = b"an existing file that a failed run must not touch".to_vec();
    std::fs::write(&old, &old_bytes).unwrap();
    let mut verdicts = Vec::new();
    for (out, existing) in [(old.clone(), true), (out_dir.join("new.wav"), false)] {
        let before = snapshot(&out_dir);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_whiten"));
        cmd.arg("process").arg(&input).arg(&out);
        if spectral {
            cmd.args(["--mode", "spectral", "--fft-size", "256", "--bands", "8"]);
        }
        let run = format!(
            "{what}, OUT {}",
            if existing { "existing" } else { "absent" }
        );
        let o = run_with_limit(&mut cmd, &run);
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            o.status.code().is_some(),
            "{run}: killed by a signal ({:?}); stderr: {stderr}",
            o.status
        );
        assert_ne!(o.status.code(), Some(101), "{run}: panicked: {stderr}");
        assert!(
            !stderr.contains("panicked"),
            "{run}: panic message: {stderr}"
        );
        match o.status.code() {
            Some(0) => {
                let (spec, samples) = library.as_ref().unwrap_or_else(|e| {
                    panic!("{run}: the CLI accepted a file the library refuses ({e})")
                });
                let (ospec, written) =
                    read_wav(&out).unwrap_or_else(|e| panic!("{run}: cannot read OUT back: {e}"));
                assert_eq!(&ospec, spec, "{run}: OUT's shape differs from IN's");
                assert_eq!(written.len(), samples.len(), "{run}: OUT's length differs");
                assert!(
                    written.iter().all(|v| v.is_finite() && v.abs() <= 1.0),
                    "{run}: OUT has samples that are not finite within ±1"
                );
                let file = out.file_name().unwrap().to_string_lossy().into_owned();
                let (mut after, mut expected) = (snapshot(&out_dir), before.clone());
                after.remove(&file);
                expected.remove(&file);
                assert_eq!(
                    after, expected,
                    "{run}: files besides OUT changed or were left"
                );
                // Put the old file back for the second run.
                std::fs::write(&old, &old_bytes).unwrap();
                verdicts.push(None);
            }
            Some(1) => {
                assert!(
                    stderr.starts_with("whiten: error: ")
                        && stderr.contains(&input.display().to_string()),
                    "{run}: the error does not name the input file: {stderr}"
                );
                assert!(o.stdout.is_empty(), "{run}: printed to stdout on failure");
                assert_eq!(
                    snapshot(&out_dir),
                    before,
                    "{run}: OUT's directory changed (OUT clobbered or created, or a temporary \
                     left behind)"
                );
                if let Ok((spec, _)) = &library {
                    // A readable file the engine cannot take (e.g. a rate mutated outside what
                    // the engine runs at): refused as cleanly as an unreadable one.
                    println!("{run}: readable ({spec:?}) but refused: {}", stderr.trim());
                }
                verdicts.push(Some(stderr));
            }
            other => panic!("{run}: exit status {other:?}; stderr: {stderr}"),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let (first, second) = (verdicts.remove(0), verdicts.remove(0));
    assert_eq!(
        first.is_none(),
        second.is_none(),
        "{what}: accepted with OUT existing or absent, but not both"
    );
    first.map(|stderr| Refusal { stderr, input })
}

/// Runs `cmd` with its output captured, failing the test if it outlives [`TIME_LIMIT`].
pub fn run_with_limit(cmd: &mut Command, run: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the whiten binary runs");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + TIME_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{run}: still running after {TIME_LIMIT:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}
