//! A JACK test harness: a private dummy JACK server, a client that plays a signal into ports
//! and records ports, and a guard that stops child processes.
//!
//! Used from a test crate as
//!
//! ```ignore
//! mod support;
//! use support::jack::{ChildGuard, JackServer, Loopback};
//! ```
//!
//! A typical test:
//!
//! ```ignore
//! let server = JackServer::start(48_000, 256); // jackd -d dummy, no sound card needed
//! let mut app = ChildGuard::spawn(
//!     Command::new(env!("CARGO_BIN_EXE_interneuron_whitening"))
//!         .args(["--backend", "jack"])
//!         .env("JACK_DEFAULT_SERVER", server.name())
//!         .env_remove("DISPLAY"),
//!     "standalone",
//! );
//! let ins = server.wait_for_ports("interneuron_whitening:input_", 2, Duration::from_secs(10));
//! let mut lb = Loopback::new(&server, &signal, 2, record_frames); // ports play_1.., rec_1..
//! server.connect(&lb.play_port(1), &ins[0]);
//! ...
//! lb.start();
//! assert!(lb.wait(Duration::from_secs(15)));
//! let recorded: Vec<Vec<f32>> = lb.recorded();
//! app.terminate(Duration::from_secs(3));
//! ```
//!
//! **One server at a time per test process.** libjack keeps per-process global state (its
//! shared-memory registry and client synchronisation table) that is not meant for clients of
//! two servers at once, and the server a client connects to is chosen by the process-wide
//! environment variable `JACK_DEFAULT_SERVER`. [`JackServer::start`] therefore takes a
//! process-wide lock that the server holds until it is dropped (tests of one binary that use
//! JACK run one after the other; other test binaries run in parallel on servers with other
//! names), and sets `JACK_DEFAULT_SERVER` for the process while it lives. Child processes
//! should still get it explicitly: `.env("JACK_DEFAULT_SERVER", server.name())`.
//!
//! Drop order: declare the server first, so that [`Loopback`]s (which borrow it) and child
//! processes are stopped before it. Every process started here is killed and reaped on drop,
//! also when the test panics.

use std::fs::File;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Serialises JACK servers within one test process (see the module documentation).
static SERVER_LOCK: Mutex<()> = Mutex::new(());
/// Makes server names unique within the process.
static SERVER_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// How long [`JackServer::start`] waits for the server to accept clients.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Open a JACK client on the server named by `JACK_DEFAULT_SERVER`, never starting one.
fn open_client(name: &str) -> Result<jack::Client, jack::Error> {
    let (client, _status) = jack::Client::new(name, jack::ClientOptions::NO_START_SERVER)?;
    Ok(client)
}

/// A private `jackd` with the dummy backend (no sound card), killed and reaped on drop.
pub struct JackServer {
    name: String,
    sample_rate: u32,
    period: u32,
    /// A client for queries and connections (not activated). Closed before the server stops.
    control: Option<jack::Client>,
    jackd: Option<Child>,
    log: PathBuf,
    /// `JACK_DEFAULT_SERVER` before this server set it.
    previous_env: Option<std::ffi::OsString>,
    /// Held while the server lives; dropped last.
    _lock: MutexGuard<'static, ()>,
}

impl JackServer {
    /// Start `jackd --no-realtime -n <unique name> -t 5000 -d dummy -r RATE -p PERIOD` and wait
    /// until a client can connect. The client timeout of 5 s keeps a busy test machine from
    /// zombifying slow debug-build clients. Panics if jackd is not installed ("install jackd2
    /// (cargo xtask setup)") or does not come up within 15 s (with jackd's output).
    pub fn start(sample_rate: u32, period: u32) -> JackServer {
        let lock = SERVER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let name = format!(
            "iw-test-{}-{}",
            std::process::id(),
            SERVER_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let log = std::env::temp_dir().join(format!("{name}.log"));
        let log_file = File::create(&log)
            .unwrap_or_else(|e| panic!("creating the jackd log {}: {e}", log.display()));
        let log_err = log_file
            .try_clone()
            .expect("duplicating the log file handle");
        let child = Command::new("jackd")
            .args(["--no-realtime", "-n", &name, "-t", "5000", "-d", "dummy"])
            .args(["-r", &sample_rate.to_string(), "-p", &period.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(log_err))
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("jackd is not installed: install jackd2 (cargo xtask setup)")
            }
            Err(e) => panic!("starting jackd: {e}"),
        };
        let previous_env = std::env::var_os("JACK_DEFAULT_SERVER");
        // Safe to mutate the environment here: the lock serialises every JACK server (and so
        // every libjack client open) of this process, and Rust's own environment accesses
        // are synchronised with `set_var`.
        std::env::set_var("JACK_DEFAULT_SERVER", &name);
        let mut server = JackServer {
            name,
            sample_rate,
            period,
            control: None,
            jackd: Some(child),
            log,
            previous_env,
            _lock: lock,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = server
                .jackd
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "jackd exited with {status} before accepting clients:\n{}",
                    server.log_text()
                );
            }
            match open_client("harness") {
                Ok(client) => {
                    server.control = Some(client);
                    break;
                }
                Err(e) if Instant::now() > deadline => panic!(
                    "jackd did not accept a client within {START_TIMEOUT:?} ({e}):\n{}",
                    server.log_text()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        let client = server.control();
        assert_eq!(
            (client.sample_rate(), client.buffer_size()),
            (sample_rate, period),
            "jackd runs at another rate or period than asked"
        );
        server
    }

    /// The server's name: pass it to child processes as `JACK_DEFAULT_SERVER`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Frames per second.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Frames per period (process callback).
    pub fn period(&self) -> u32 {
        self.period
    }

    /// jackd's output so far (for failure messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The harness's own (inactive) client on this server.
    pub fn control(&self) -> &jack::Client {
        self.control
            .as_ref()
            .expect("the control client lives as long as the server")
    }

    /// Full names of the ports matching a regular expression (as `jack_lsp` would list them).
    pub fn ports(&self, pattern: &str) -> Vec<String> {
        self.control()
            .ports(Some(pattern), None, jack::PortFlags::empty())
    }

    /// Wait until at least `count` ports whose full names start with `prefix` exist; returns
    /// them sorted by name (so `client:input_1` comes before `client:input_2`; fine up to 9).
    /// Panics after `timeout`, listing the ports that do exist.
    pub fn wait_for_ports(&self, prefix: &str, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut found: Vec<String> = self
                .ports(".*")
                .into_iter()
                .filter(|p| p.starts_with(prefix))
                .collect();
            if found.len() >= count {
                found.sort();
                return found;
            }
            if Instant::now() > deadline {
                panic!(
                    "no {count} ports named {prefix}* within {timeout:?}; ports: {:?}",
                    self.ports(".*")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The ports connected to `port` (full names).
    pub fn connections(&self, port: &str) -> Vec<String> {
        self.control()
            .port_by_name(port)
            .map(|p| p.get_connections())
            .unwrap_or_default()
    }

    /// Connect an output port to an input port (full names); panics on failure. Connecting
    /// an existing connection again is fine.
    pub fn connect(&self, from: &str, to: &str) {
        match self.control().connect_ports_by_name(from, to) {
            Ok(()) | Err(jack::Error::PortAlreadyConnected(..)) => {}
            Err(e) => panic!(
                "jack: connecting {from} -> {to}: {e}; ports: {:?}",
                self.ports(".*")
            ),
        }
    }

    /// Disconnect two ports (full names); a missing connection is not an error.
    pub fn disconnect(&self, from: &str, to: &str) {
        let _ = self.control().disconnect_ports_by_name(from, to);
    }

    /// Disconnect every connection of `port`.
    pub fn disconnect_all(&self, port: &str) {
        for other in self.connections(port) {
            self.disconnect(port, &other);
            self.disconnect(&other, port);
        }
    }
}

impl Drop for JackServer {
    fn drop(&mut self) {
        // Our client first, while the server still answers.
        drop(self.control.take());
        if let Some(child) = self.jackd.take() {
            // SIGTERM lets jackd remove its shared memory and sockets; kill if it hangs.
            let mut guard = ChildGuard::new(child, "jackd");
            guard.terminate(Duration::from_secs(3));
        }
        let _ = std::fs::remove_file(&self.log);
        match self.previous_env.take() {
            Some(v) => std::env::set_var("JACK_DEFAULT_SERVER", v),
            None => std::env::remove_var("JACK_DEFAULT_SERVER"),
        }
        // `_lock` is released after this body, when the fields drop.
    }
}

/// State shared between a [`Loopback`]'s process callback and the test thread. The
/// recording is preallocated; samples are stored as `f32` bits in atomics, so no `unsafe` is
/// needed and the callback never allocates or locks.
struct Shared {
    /// Set by [`Loopback::start`]; the callback plays and records only once it is set.
    started: AtomicBool,
    /// Frames recorded (published with `Release` after the samples).
    recorded: AtomicUsize,
    /// Process cycles seen after the start.
    cycles: AtomicUsize,
    /// One buffer per recorded port, `capacity` frames each.
    rec: Vec<Box<[AtomicU32]>>,
    capacity: usize,
}

/// The real-time part of a [`Loopback`].
struct LoopProcess {
    play: Vec<jack::Port<jack::AudioOut>>,
    rec: Vec<jack::Port<jack::AudioIn>>,
    signal: Vec<Vec<f32>>,
    /// Next frame of `signal` to play.
    pos: usize,
    shared: Arc<Shared>,
}

impl jack::ProcessHandler for LoopProcess {
    fn process(&mut self, _: &jack::Client, ps: &jack::ProcessScope) -> jack::Control {
        let started = self.shared.started.load(Ordering::Acquire);
        for (c, port) in self.play.iter_mut().enumerate() {
            let out = port.as_mut_slice(ps);
            if !started {
                out.fill(0.0);
                continue;
            }
            let sig = &self.signal[c];
            for (i, o) in out.iter_mut().enumerate() {
                *o = sig.get(self.pos + i).copied().unwrap_or(0.0);
            }
        }
        if !started {
            return jack::Control::Continue;
        }
        let n = ps.n_frames() as usize;
        self.pos += n;
        let done = self.shared.recorded.load(Ordering::Relaxed);
        let take = n.min(self.shared.capacity - done);
        for (port, buf) in self.rec.iter().zip(&self.shared.rec) {
            let input = port.as_slice(ps);
            for (i, v) in input[..take].iter().enumerate() {
                buf[done + i].store(v.to_bits(), Ordering::Relaxed);
            }
        }
        self.shared.recorded.store(done + take, Ordering::Release);
        self.shared.cycles.fetch_add(1, Ordering::Relaxed);
        jack::Control::Continue
    }
}

/// A JACK client that plays a multichannel signal once (then silence) from output ports
/// `play_1..` and records its input ports `rec_1..`, both starting in the same process cycle
/// at [`Loopback::start`]. It borrows the server so that it is dropped first.
pub struct Loopback<'s> {
    client: Option<jack::AsyncClient<(), LoopProcess>>,
    shared: Arc<Shared>,
    client_name: String,
    n_play: usize,
    n_rec: usize,
    _server: PhantomData<&'s JackServer>,
}

impl<'s> Loopback<'s> {
    /// A client named `loopback` (JACK may append a suffix; see [`Loopback::client_name`])
    /// with one output port per channel of `signal` (`signal[c]` is channel c's samples;
    /// channels may differ in length, shorter ones are padded with silence) and `n_rec`
    /// input ports recording `record_frames` frames each. It is active at once, playing
    /// silence and recording nothing until [`Loopback::start`].
    pub fn new(
        server: &'s JackServer,
        signal: &[Vec<f32>],
        n_rec: usize,
        record_frames: usize,
    ) -> Loopback<'s> {
        debug_assert_eq!(
            std::env::var("JACK_DEFAULT_SERVER").ok().as_deref(),
            Some(server.name())
        );
        let client = open_client("loopback").expect("opening the loopback client");
        let client_name = client.name().to_string();
        let play = (1..=signal.len())
            .map(|i| {
                client
                    .register_port(&format!("play_{i}"), jack::AudioOut::default())
                    .expect("registering a play port")
            })
            .collect();
        let rec = (1..=n_rec)
            .map(|i| {
                client
                    .register_port(&format!("rec_{i}"), jack::AudioIn::default())
                    .expect("registering a rec port")
            })
            .collect();
        let shared = Arc::new(Shared {
            started: AtomicBool::new(false),
            recorded: AtomicUsize::new(0),
            cycles: AtomicUsize::new(0),
            rec: (0..n_rec)
                .map(|_| (0..record_frames).map(|_| AtomicU32::new(0)).collect())
                .collect(),
            capacity: record_frames,
        });
        let process = LoopProcess {
            play,
            rec,
            signal: signal.to_vec(),
            pos: 0,
            shared: Arc::clone(&shared),
        };
        let client = client
            .activate_async((), process)
            .expect("activating the loopback client");
        Loopback {
            client: Some(client),
            shared,
            client_name,
            n_play: signal.len(),
            n_rec,
            _server: PhantomData,
        }
    }

    /// The client's name in JACK.
    pub fn client_name(&self) -> &str {
        &self.client_name
    }

    /// Full name of play port `i` (1-based: `play_port(1)` = `"loopback:play_1"`).
    pub fn play_port(&self, i: usize) -> String {
        assert!(
            (1..=self.n_play).contains(&i),
            "play ports are 1..={}",
            self.n_play
        );
        format!("{}:play_{i}", self.client_name)
    }

    /// Full name of record port `i` (1-based: `rec_port(1)` = `"loopback:rec_1"`).
    pub fn rec_port(&self, i: usize) -> String {
        assert!(
            (1..=self.n_rec).contains(&i),
            "rec ports are 1..={}",
            self.n_rec
        );
        format!("{}:rec_{i}", self.client_name)
    }

    /// Connect two ports (full names) through this client; panics on failure.
    pub fn connect(&self, from: &str, to: &str) {
        let client = self.client.as_ref().expect("active").as_client();
        match client.connect_ports_by_name(from, to) {
            Ok(()) | Err(jack::Error::PortAlreadyConnected(..)) => {}
            Err(e) => panic!("jack: connecting {from} -> {to}: {e}"),
        }
    }

    /// Start playing and recording at the next process cycle.
    pub fn start(&self) {
        self.shared.started.store(true, Ordering::Release);
    }

    /// Frames recorded so far.
    pub fn recorded_frames(&self) -> usize {
        self.shared.recorded.load(Ordering::Acquire)
    }

    /// Process cycles run since [`Loopback::start`].
    pub fn cycles(&self) -> usize {
        self.shared.cycles.load(Ordering::Relaxed)
    }

    /// Wait until the recording is full; `false` on timeout.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.recorded_frames() < self.shared.capacity {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// The recording so far, one `Vec` per rec port.
    pub fn recorded(&self) -> Vec<Vec<f32>> {
        let n = self.recorded_frames();
        self.shared
            .rec
            .iter()
            .map(|buf| {
                buf[..n]
                    .iter()
                    .map(|v| f32::from_bits(v.load(Ordering::Relaxed)))
                    .collect()
            })
            .collect()
    }
}

impl Drop for Loopback<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.deactivate();
        }
    }
}

/// Owns a child process and kills and reaps it on drop (also when the test panics).
pub struct ChildGuard {
    child: Option<Child>,
    what: String,
}

impl ChildGuard {
    /// Guard an already spawned child; `what` names it in messages.
    pub fn new(child: Child, what: &str) -> ChildGuard {
        ChildGuard {
            child: Some(child),
            what: what.to_string(),
        }
    }

    /// Spawn `cmd` and guard it; panics with the program name if it cannot be started.
    pub fn spawn(cmd: &mut Command, what: &str) -> ChildGuard {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what} ({:?}): {e}", cmd.get_program()));
        ChildGuard::new(child, what)
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().expect("not yet reaped").id()
    }

    /// The guarded child (e.g. to take its stdout).
    pub fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("not yet reaped")
    }

    /// Whether it has exited, without waiting.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Wait up to `timeout` for it to exit by itself; `None` if it still runs.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send SIGTERM, wait up to `grace` for it to exit, then SIGKILL; returns its exit
    /// status (a signal exit if it had to be killed).
    pub fn terminate(&mut self, grace: Duration) -> ExitStatus {
        if let Some(s) = self.try_wait() {
            return s;
        }
        let pid = self.id() as libc::pid_t;
        // SAFETY: kill(2) with a pid we spawned and have not reaped (so it cannot have been
        // reused); no memory is involved.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        if let Some(s) = self.wait_timeout(grace) {
            return s;
        }
        self.kill()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("not yet reaped");
        let _ = child.kill();
        child
            .wait()
            .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.what))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if !matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
