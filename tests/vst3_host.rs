//! The bundled VST3 plugin in a real VST3 host built on the `vst3` crate's bindings: `dlopen`
//! `target/bundled/Interneuron Whitening.vst3/Contents/x86_64-linux/Interneuron Whitening.so`,
//! call `ModuleEntry`, get the factory, find the audio module class, create and initialise a
//! component with a host context, query its `IAudioProcessor` and `IEditController`, negotiate
//! stereo buses, set up 48 kHz / 32-bit processing and process a correlated stereo mixture in
//! varied block sizes on an audio thread, with parameter automation through `IParameterChanges`
//! (dry/wet ramps, circuit switches, bypass, structural changes with latency restarts). Checks
//! that the output whitens, stays finite and within ±1, that state saved with
//! `IComponent::getState` restores into a fresh instance with `setState`, and that every
//! reference the host handed the plugin is released on teardown.
//!
//! Every scenario runs in a child process (this test binary re-run with `--ignored`), so that an
//! abort inside the plugin — `assert_process_allocs` aborts with SIGABRT on an allocation in
//! `process` — fails the test with a clear message instead of killing the test harness.
//!
//! The bundle is built by `cargo xtask test` (debug, with `assert_process_allocs`) or
//! `cargo xtask bundle interneuron-whitening --lib --features assert_process_allocs`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_void, CStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};
use vst3::Steinberg::Vst::{
    BusDirections_, BusInfo, BusInfo_::BusFlags_, BusTypes_, IAudioProcessor, IAudioProcessorTrait,
    IComponent, IComponentHandler, IComponentHandlerTrait, IComponentTrait, IEditController,
    IEditControllerTrait, IHostApplication, IHostApplicationTrait, IParamValueQueue,
    IParamValueQueueTrait, IParameterChanges, IParameterChangesTrait, MediaTypes_, ParamID,
    ParamValue, ParameterInfo, ParameterInfo_::ParameterFlags_, ProcessContext,
    ProcessContext_::StatesAndFlags_, ProcessData, ProcessModes_, ProcessSetup, RestartFlags_,
    SpeakerArr, SpeakerArrangement, String128, SymbolicSampleSizes_, TChar,
};
use vst3::Steinberg::{
    int32, int64, kInvalidArgument, kNotImplemented, kResultFalse, kResultOk, tresult, FUnknown,
    IBStream, IBStreamTrait, IBStream_::IStreamSeekMode_, IPluginBaseTrait, IPluginFactory,
    IPluginFactory2, IPluginFactory2Trait, IPluginFactory3, IPluginFactory3Trait,
    IPluginFactoryTrait, PClassInfo, PClassInfo2, PClassInfoW, PFactoryInfo, TUID,
};
use vst3::{Class, ComPtr, ComWrapper, Interface};

const SCENARIO_ENV: &str = "INTERNEURON_VST3_HOST_SCENARIO";
/// `kVstAudioEffectClass` from the SDK's `ivstaudioprocessor.h` (a macro, so not in the bindings).
const AUDIO_EFFECT_CLASS: &str = "Audio Module Class";
/// The plugin's `Vst3Plugin::VST3_CLASS_ID` (used as is on Linux).
const CLASS_ID: &[u8; 16] = b"IntrnrnWhitening";
/// Largest block the host hands the plugin.
const MAX_FRAMES: usize = 1024;
const RATE: f64 = 48_000.0;
/// The plugin's default output level, −20 dBFS, as an amplitude.
const OUTPUT_GAIN: f64 = 0.1;

const AUDIO: i32 = MediaTypes_::kAudio as i32;
const EVENT: i32 = MediaTypes_::kEvent as i32;
const INPUT: i32 = BusDirections_::kInput as i32;
const OUTPUT: i32 = BusDirections_::kOutput as i32;

// ---------------------------------------------------------------------------------------------
// The tests: each runs one scenario in a child process.
// ---------------------------------------------------------------------------------------------

#[test]
fn factory_classes_buses_and_parameters() {
    run_child("factory");
}

#[test]
fn stereo_48k_whitens_with_automation() {
    run_child("whitening");
}

#[test]
fn every_parameter_automated_at_random() {
    run_child("automation");
}

#[test]
fn state_restores_into_a_fresh_instance() {
    run_child("state");
}

/// The child side: does nothing unless started by [`run_child`].
#[test]
#[ignore = "run in a child process by the other tests of this file"]
fn vst3_scenario_child() {
    let Ok(name) = std::env::var(SCENARIO_ENV) else {
        return;
    };
    match name.as_str() {
        "factory" => factory_scenario(),
        "whitening" => whitening_scenario(),
        "automation" => automation_scenario(),
        "state" => state_scenario(),
        other => panic!("unknown scenario {other}"),
    }
}

fn bundle_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target
        .join("bundled")
        .join("Interneuron Whitening.vst3")
        .join("Contents")
        .join("x86_64-linux")
        .join("Interneuron Whitening.so")
}

mod support;
use support::plugin_child;
use support::signals::{check_bounded, correlation, Looper};

fn run_child(scenario: &str) {
    plugin_child::check_bundle(
        &bundle_path(),
        "`cargo xtask bundle interneuron-whitening --lib --features assert_process_allocs`",
    );
    plugin_child::run_scenario_child("vst3_scenario_child", SCENARIO_ENV, scenario);
}

// ---------------------------------------------------------------------------------------------
// Small helpers for the C strings and UTF-16 strings of the VST3 API.
// ---------------------------------------------------------------------------------------------

fn c_chars(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn utf16(chars: &[TChar]) -> String {
    let len = chars.iter().position(|c| *c == 0).unwrap_or(chars.len());
    String::from_utf16_lossy(&chars[..len])
}

fn to_utf16(s: &str) -> Vec<TChar> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// The reference count of the object behind `ptr` (including `ptr` itself).
fn refcount<I: Interface>(ptr: &ComPtr<I>) -> usize {
    // SAFETY: `ptr` is a live interface pointer; the add_ref is undone at once.
    unsafe {
        I::add_ref(ptr.as_ptr());
        I::release(ptr.as_ptr())
    }
}

// ---------------------------------------------------------------------------------------------
// The module: dlopen, ModuleEntry/ModuleExit, the factory.
// ---------------------------------------------------------------------------------------------

struct Module {
    handle: *mut c_void,
    exit: unsafe extern "C" fn() -> bool,
    factory: Option<ComPtr<IPluginFactory>>,
}

fn dlerror() -> String {
    // SAFETY: dlerror returns null or a C string valid until the next dl* call.
    unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            "unknown error".into()
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

impl Module {
    fn load() -> Self {
        let path = bundle_path();
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: loading the plugin under test runs its initialisers; the symbols are looked up
        // with the signatures the VST3 SDK's linuxmain.cpp gives them.
        unsafe {
            let handle = libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            assert!(
                !handle.is_null(),
                "dlopen {}: {}",
                path.display(),
                dlerror()
            );
            let sym = |name: &CStr| {
                let p = libc::dlsym(handle, name.as_ptr());
                assert!(!p.is_null(), "the module does not export {name:?}");
                p
            };
            let entry = std::mem::transmute::<*mut c_void, unsafe extern "C" fn(*mut c_void) -> bool>(
                sym(c"ModuleEntry"),
            );
            let exit = std::mem::transmute::<*mut c_void, unsafe extern "C" fn() -> bool>(sym(
                c"ModuleExit",
            ));
            let get_factory = std::mem::transmute::<
                *mut c_void,
                unsafe extern "system" fn() -> *mut c_void,
            >(sym(c"GetPluginFactory"));
            assert!(entry(handle), "ModuleEntry returned false");
            // GetPluginFactory hands over a reference: the ComPtr owns it.
            let factory = ComPtr::from_raw(get_factory() as *mut IPluginFactory)
                .expect("GetPluginFactory returned null");
            Self {
                handle,
                exit,
                factory: Some(factory),
            }
        }
    }

    fn factory(&self) -> &ComPtr<IPluginFactory> {
        self.factory.as_ref().unwrap()
    }

    /// Release the factory, call ModuleExit and unload. Every instance must be gone.
    fn unload(mut self) {
        let factory = self.factory.take().unwrap();
        assert_eq!(
            refcount(&factory),
            1,
            "the host holds the only reference to the factory"
        );
        drop(factory);
        // SAFETY: the plugin's objects are all released; ModuleExit pairs with ModuleEntry.
        unsafe {
            assert!((self.exit)(), "ModuleExit returned false");
            assert_eq!(libc::dlclose(self.handle), 0, "dlclose: {}", dlerror());
        }
        std::mem::forget(self);
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        // Only reached when a scenario panics: leave the module loaded (instances may still live).
        if let Some(f) = self.factory.take() {
            std::mem::forget(f);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Host-side COM objects.
// ---------------------------------------------------------------------------------------------

/// The host context passed to `initialize`.
struct HostApp;

impl Class for HostApp {
    type Interfaces = (IHostApplication,);
}

impl IHostApplicationTrait for HostApp {
    unsafe fn getName(&self, name: *mut String128) -> tresult {
        if name.is_null() {
            return kInvalidArgument;
        }
        let text = to_utf16("interneuron-whitening vst3_host test");
        // SAFETY: `name` points to a String128 (checked non-null).
        let dest = unsafe { &mut *name };
        let n = text.len().min(dest.len());
        dest[..n].copy_from_slice(&text[..n]);
        dest[dest.len() - 1] = 0;
        kResultOk
    }

    unsafe fn createInstance(
        &self,
        _cid: *mut TUID,
        _iid: *mut TUID,
        obj: *mut *mut c_void,
    ) -> tresult {
        if !obj.is_null() {
            // SAFETY: out parameter (checked non-null).
            unsafe { *obj = std::ptr::null_mut() };
        }
        kNotImplemented
    }
}

/// The host's `IComponentHandler`: counts edits and restart requests.
#[derive(Default)]
struct ComponentHandler {
    /// Restart flags not yet served by the host.
    pending_flags: AtomicI32,
    restarts: AtomicU32,
    edits: AtomicU32,
    /// Whether `restartComponent` was ever called on a thread other than the creating one.
    off_main_thread: AtomicBool,
    main_thread: Option<std::thread::ThreadId>,
}

impl Class for ComponentHandler {
    type Interfaces = (IComponentHandler,);
}

impl IComponentHandlerTrait for ComponentHandler {
    unsafe fn beginEdit(&self, _id: ParamID) -> tresult {
        self.edits.fetch_add(1, Ordering::SeqCst);
        kResultOk
    }

    unsafe fn performEdit(&self, _id: ParamID, _value: ParamValue) -> tresult {
        self.edits.fetch_add(1, Ordering::SeqCst);
        kResultOk
    }

    unsafe fn endEdit(&self, _id: ParamID) -> tresult {
        self.edits.fetch_add(1, Ordering::SeqCst);
        kResultOk
    }

    unsafe fn restartComponent(&self, flags: int32) -> tresult {
        if Some(std::thread::current().id()) != self.main_thread {
            self.off_main_thread.store(true, Ordering::SeqCst);
        }
        self.pending_flags.fetch_or(flags, Ordering::SeqCst);
        self.restarts.fetch_add(1, Ordering::SeqCst);
        kResultOk
    }
}

/// An in-memory `IBStream` (the SDK's `MemoryStream`).
#[derive(Default)]
struct MemoryStream {
    data: RefCell<Vec<u8>>,
    pos: Cell<usize>,
}

impl Class for MemoryStream {
    type Interfaces = (IBStream,);
}

impl IBStreamTrait for MemoryStream {
    unsafe fn read(&self, buffer: *mut c_void, num_bytes: int32, read: *mut int32) -> tresult {
        if buffer.is_null() || num_bytes < 0 {
            return kInvalidArgument;
        }
        let data = self.data.borrow();
        let pos = self.pos.get().min(data.len());
        let n = (num_bytes as usize).min(data.len() - pos);
        // SAFETY: the caller provides `num_bytes` writable bytes at `buffer`.
        unsafe {
            std::ptr::copy_nonoverlapping(data[pos..].as_ptr(), buffer as *mut u8, n);
            if !read.is_null() {
                *read = n as int32;
            }
        }
        self.pos.set(pos + n);
        kResultOk
    }

    unsafe fn write(&self, buffer: *mut c_void, num_bytes: int32, written: *mut int32) -> tresult {
        if buffer.is_null() || num_bytes < 0 {
            return kInvalidArgument;
        }
        let mut data = self.data.borrow_mut();
        let pos = self.pos.get();
        let n = num_bytes as usize;
        if data.len() < pos + n {
            data.resize(pos + n, 0);
        }
        // SAFETY: the caller provides `num_bytes` readable bytes at `buffer`.
        unsafe {
            std::ptr::copy_nonoverlapping(buffer as *const u8, data[pos..].as_mut_ptr(), n);
            if !written.is_null() {
                *written = num_bytes;
            }
        }
        self.pos.set(pos + n);
        kResultOk
    }

    unsafe fn seek(&self, pos: int64, mode: int32, result: *mut int64) -> tresult {
        let base = match mode as u32 {
            m if m == IStreamSeekMode_::kIBSeekSet => 0,
            m if m == IStreamSeekMode_::kIBSeekCur => self.pos.get() as i64,
            m if m == IStreamSeekMode_::kIBSeekEnd => self.data.borrow().len() as i64,
            _ => return kInvalidArgument,
        };
        let new = base + pos;
        if new < 0 {
            return kInvalidArgument;
        }
        self.pos.set(new as usize);
        if !result.is_null() {
            // SAFETY: out parameter (checked non-null).
            unsafe { *result = new };
        }
        kResultOk
    }

    unsafe fn tell(&self, pos: *mut int64) -> tresult {
        if pos.is_null() {
            return kInvalidArgument;
        }
        // SAFETY: out parameter (checked non-null).
        unsafe { *pos = self.pos.get() as int64 };
        kResultOk
    }
}

impl MemoryStream {
    fn with_bytes(bytes: &[u8]) -> Self {
        Self {
            data: RefCell::new(bytes.to_vec()),
            pos: Cell::new(0),
        }
    }
}

/// One parameter's automation points within a block.
struct ParamQueue {
    id: Cell<ParamID>,
    points: RefCell<Vec<(int32, ParamValue)>>,
}

impl Class for ParamQueue {
    type Interfaces = (IParamValueQueue,);
}

impl IParamValueQueueTrait for ParamQueue {
    unsafe fn getParameterId(&self) -> ParamID {
        self.id.get()
    }

    unsafe fn getPointCount(&self) -> int32 {
        self.points.borrow().len() as int32
    }

    unsafe fn getPoint(
        &self,
        index: int32,
        sample_offset: *mut int32,
        value: *mut ParamValue,
    ) -> tresult {
        let points = self.points.borrow();
        let Some(&(offset, v)) = usize::try_from(index).ok().and_then(|i| points.get(i)) else {
            return kInvalidArgument;
        };
        if sample_offset.is_null() || value.is_null() {
            return kInvalidArgument;
        }
        // SAFETY: out parameters (checked non-null).
        unsafe {
            *sample_offset = offset;
            *value = v;
        }
        kResultOk
    }

    unsafe fn addPoint(
        &self,
        sample_offset: int32,
        value: ParamValue,
        index: *mut int32,
    ) -> tresult {
        let mut points = self.points.borrow_mut();
        points.push((sample_offset, value));
        if !index.is_null() {
            // SAFETY: out parameter (checked non-null).
            unsafe { *index = points.len() as int32 - 1 };
        }
        kResultOk
    }
}

/// The `IParameterChanges` of one process call, with preallocated queues (as a real-time host
/// keeps them): `getParameterData` hands out non-owning pointers to queues that outlive the call.
struct ParamChanges {
    queues: Vec<ComWrapper<ParamQueue>>,
    used: Cell<usize>,
}

impl Class for ParamChanges {
    type Interfaces = (IParameterChanges,);
}

impl ParamChanges {
    fn new(capacity: usize) -> Self {
        Self {
            queues: (0..capacity)
                .map(|_| {
                    ComWrapper::new(ParamQueue {
                        id: Cell::new(0),
                        points: RefCell::new(Vec::with_capacity(256)),
                    })
                })
                .collect(),
            used: Cell::new(0),
        }
    }

    fn clear(&self) {
        self.used.set(0);
    }

    /// The queue for `id`, taking a fresh one if `id` has none yet.
    fn queue(&self, id: ParamID) -> Option<(usize, &ComWrapper<ParamQueue>)> {
        let used = self.used.get();
        if let Some(i) = self.queues[..used].iter().position(|q| q.id.get() == id) {
            return Some((i, &self.queues[i]));
        }
        let q = self.queues.get(used)?;
        q.id.set(id);
        q.points.borrow_mut().clear();
        self.used.set(used + 1);
        Some((used, q))
    }

    fn add(&self, id: ParamID, offset: usize, value: f64) {
        let (_, q) = self
            .queue(id)
            .expect("too many automated parameters in one block");
        q.points.borrow_mut().push((offset as int32, value));
    }

    fn points(&self) -> usize {
        self.queues[..self.used.get()]
            .iter()
            .map(|q| q.points.borrow().len())
            .sum()
    }
}

impl IParameterChangesTrait for ParamChanges {
    unsafe fn getParameterCount(&self) -> int32 {
        self.used.get() as int32
    }

    unsafe fn getParameterData(&self, index: int32) -> *mut IParamValueQueue {
        match usize::try_from(index) {
            Ok(i) if i < self.used.get() => self.queues[i]
                .as_com_ref::<IParamValueQueue>()
                .unwrap()
                .as_ptr(),
            _ => std::ptr::null_mut(),
        }
    }

    unsafe fn addParameterData(
        &self,
        id: *const ParamID,
        index: *mut int32,
    ) -> *mut IParamValueQueue {
        if id.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: `id` is non-null.
        match self.queue(unsafe { *id }) {
            Some((i, q)) => {
                if !index.is_null() {
                    // SAFETY: out parameter (checked non-null).
                    unsafe { *index = i as int32 };
                }
                q.as_com_ref::<IParamValueQueue>().unwrap().as_ptr()
            }
            None => std::ptr::null_mut(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A plugin instance as a host drives it.
// ---------------------------------------------------------------------------------------------

/// One parameter as the edit controller describes it.
#[derive(Clone, Debug)]
struct Param {
    id: ParamID,
    title: String,
    steps: i32,
    default: f64,
    flags: i32,
}

/// An automation point: (frame from the start of a `process` call, parameter, normalised value).
type Event = (usize, ParamID, f64);

struct Instance {
    component: ComPtr<IComponent>,
    processor: ComPtr<IAudioProcessor>,
    controller: ComPtr<IEditController>,
    /// Whether the controller is a separate object (created from the factory) rather than the
    /// component itself.
    separate_controller: bool,
    handler: ComWrapper<ComponentHandler>,
    _host: ComWrapper<HostApp>,
    params: Vec<Param>,
    channels: usize,
    active: bool,
    processing: bool,
    /// Project time in samples, for the process context.
    time: i64,
    /// Restarts (deactivate → activate) the host performed for the plugin.
    restarts_served: u32,
}

impl Instance {
    /// Find the audio module class, create and initialise a component, get its processor and
    /// controller, install the component handler, list the parameters.
    fn new(module: &Module) -> Self {
        let factory = module.factory();
        let cid = find_audio_class(factory).cid;
        let host = ComWrapper::new(HostApp);
        let host_ptr = host.as_com_ref::<IHostApplication>().unwrap().as_ptr() as *mut FUnknown;
        // SAFETY: plain VST3 calls on live objects; out parameters are owned by ComPtrs.
        unsafe {
            let mut obj = std::ptr::null_mut();
            let r = factory.createInstance(
                cid.as_ptr(),
                IComponent::IID.as_ptr() as *const c_char,
                &mut obj,
            );
            assert_eq!(r, kResultOk, "createInstance(IComponent)");
            let component =
                ComPtr::from_raw(obj as *mut IComponent).expect("createInstance gave null");
            assert_eq!(
                component.initialize(host_ptr),
                kResultOk,
                "IComponent::initialize"
            );
            let processor = component
                .cast::<IAudioProcessor>()
                .expect("the component implements IAudioProcessor");

            // A host first asks for a separate controller class, then falls back to querying
            // the component (single-component effects).
            let mut controller_cid: TUID = [0; 16];
            let (controller, separate_controller) =
                if component.getControllerClassId(&mut controller_cid) == kResultOk {
                    let mut obj = std::ptr::null_mut();
                    let r = factory.createInstance(
                        controller_cid.as_ptr(),
                        IEditController::IID.as_ptr() as *const c_char,
                        &mut obj,
                    );
                    assert_eq!(r, kResultOk, "createInstance(controller class)");
                    let c = ComPtr::from_raw(obj as *mut IEditController).unwrap();
                    assert_eq!(c.initialize(host_ptr), kResultOk);
                    (c, true)
                } else {
                    let c = component
                        .cast::<IEditController>()
                        .expect("no controller class and IEditController not on the component");
                    (c, false)
                };
            let handler = ComWrapper::new(ComponentHandler {
                main_thread: Some(std::thread::current().id()),
                ..Default::default()
            });
            assert_eq!(
                controller.setComponentHandler(
                    handler.as_com_ref::<IComponentHandler>().unwrap().as_ptr()
                ),
                kResultOk
            );
            let params = list_params(&controller);
            Self {
                component,
                processor,
                controller,
                separate_controller,
                handler,
                _host: host,
                params,
                channels: 0,
                active: false,
                processing: false,
                time: 0,
                restarts_served: 0,
            }
        }
    }

    fn param(&self, title: &str) -> Param {
        self.params
            .iter()
            .find(|p| p.title == title)
            .unwrap_or_else(|| panic!("no parameter titled {title}"))
            .clone()
    }

    /// The normalised value the plugin's text parser gives `text` for the parameter `title`.
    fn text_value(&self, title: &str, text: &str) -> (ParamID, f64) {
        let id = self.param(title).id;
        let mut s = to_utf16(text);
        let mut v = -1.0;
        // SAFETY: `s` is NUL-terminated UTF-16.
        let r = unsafe {
            self.controller
                .getParamValueByString(id, s.as_mut_ptr(), &mut v)
        };
        assert_eq!(r, kResultOk, "{title}: the plugin does not parse {text:?}");
        assert!((0.0..=1.0).contains(&v), "{title}: {text:?} → {v}");
        (id, v)
    }

    fn value_text(&self, id: ParamID, value: f64) -> String {
        let mut s: String128 = [0; 128];
        // SAFETY: `s` is a String128.
        let r = unsafe { self.controller.getParamStringByValue(id, value, &mut s) };
        assert_eq!(r, kResultOk);
        utf16(&s)
    }

    fn values(&self) -> Vec<(String, f64)> {
        self.params
            .iter()
            // SAFETY: plain getter.
            .map(|p| {
                (p.title.clone(), unsafe {
                    self.controller.getParamNormalized(p.id)
                })
            })
            .collect()
    }

    fn latency(&self) -> u32 {
        // SAFETY: plain getter.
        unsafe { self.processor.getLatencySamples() }
    }

    /// Negotiate `channels` in and out, set up processing and activate the buses.
    fn configure(&mut self, channels: usize) {
        let arrangement = speaker_arrangement(channels);
        // SAFETY: plain VST3 calls with pointers to locals.
        unsafe {
            let mut ins = [arrangement];
            let mut outs = [arrangement];
            assert_eq!(
                self.processor
                    .setBusArrangements(ins.as_mut_ptr(), 1, outs.as_mut_ptr(), 1),
                kResultOk,
                "setBusArrangements {channels} in, {channels} out"
            );
            for dir in [INPUT, OUTPUT] {
                let mut got: SpeakerArrangement = 0;
                assert_eq!(
                    self.processor.getBusArrangement(dir, 0, &mut got),
                    kResultOk
                );
                assert_eq!(
                    got.count_ones() as usize,
                    channels,
                    "getBusArrangement({dir}) = {got:#x} after setting {channels} channels"
                );
                let mut info: BusInfo = std::mem::zeroed();
                assert_eq!(
                    self.component.getBusInfo(AUDIO, dir, 0, &mut info),
                    kResultOk
                );
                assert_eq!(
                    info.channelCount as usize, channels,
                    "bus info channel count"
                );
            }
            assert_eq!(
                self.processor
                    .canProcessSampleSize(SymbolicSampleSizes_::kSample32 as i32),
                kResultOk,
                "32-bit processing"
            );
            let mut setup = ProcessSetup {
                processMode: ProcessModes_::kRealtime as i32,
                symbolicSampleSize: SymbolicSampleSizes_::kSample32 as i32,
                maxSamplesPerBlock: MAX_FRAMES as i32,
                sampleRate: RATE,
            };
            assert_eq!(self.processor.setupProcessing(&mut setup), kResultOk);
            for dir in [INPUT, OUTPUT] {
                assert_eq!(
                    self.component.activateBus(AUDIO, dir, 0, 1),
                    kResultOk,
                    "activateBus(audio, {dir}, 0)"
                );
            }
        }
        self.channels = channels;
    }

    /// setActive(true), setProcessing(true).
    fn start(&mut self) {
        // SAFETY: plain VST3 calls.
        unsafe {
            assert_eq!(self.component.setActive(1), kResultOk, "setActive(true)");
            self.active = true;
            assert_eq!(
                self.processor.setProcessing(1),
                kResultOk,
                "setProcessing(true)"
            );
            self.processing = true;
        }
    }

    /// setProcessing(false), setActive(false).
    fn stop(&mut self) {
        // SAFETY: plain VST3 calls.
        unsafe {
            if self.processing {
                assert_eq!(self.processor.setProcessing(0), kResultOk);
                self.processing = false;
            }
            if self.active {
                assert_eq!(self.component.setActive(0), kResultOk);
                self.active = false;
            }
        }
    }

    /// Serve the restarts the plugin requested (as a DAW does after a latency change:
    /// stop, deactivate, activate, start).
    fn serve_restarts(&mut self) {
        let flags = self.handler.pending_flags.swap(0, Ordering::SeqCst);
        if flags & RestartFlags_::kLatencyChanged != 0 && self.active {
            self.stop();
            self.start();
            self.restarts_served += 1;
        }
    }

    fn save_state(&self) -> Vec<u8> {
        let stream = ComWrapper::new(MemoryStream::default());
        let ptr = stream.to_com_ptr::<IBStream>().unwrap();
        // SAFETY: the stream lives across the call.
        let r = unsafe { self.component.getState(ptr.as_ptr()) };
        assert_eq!(r, kResultOk, "IComponent::getState");
        drop(ptr);
        let bytes = stream.data.borrow().clone();
        bytes
    }

    /// `IComponent::setState` from `bytes[start..]` (the stream positioned at `start`, as hosts
    /// that keep their own header in front of the plugin's state do), then the controller's
    /// `setComponentState` as a host does for split components.
    fn load_state(&self, bytes: &[u8], start: usize) -> tresult {
        let stream = ComWrapper::new(MemoryStream::with_bytes(bytes));
        stream.pos.set(start);
        let ptr = stream.to_com_ptr::<IBStream>().unwrap();
        // SAFETY: the stream lives across the calls.
        unsafe {
            let r = self.component.setState(ptr.as_ptr());
            if r == kResultOk {
                stream.pos.set(start);
                assert_eq!(self.controller.setComponentState(ptr.as_ptr()), kResultOk);
            }
            r
        }
    }

    /// Process `input` (planar, any length) in varied block sizes on an audio thread, with
    /// automation `events` (sorted by frame). With `in_place` the host hands the plugin the
    /// same buffers for input and output. Returns the output.
    fn process(
        &mut self,
        input: &[Vec<f32>],
        events: &[Event],
        rng: &mut ChaCha8Rng,
        in_place: bool,
    ) -> Vec<Vec<f32>> {
        assert!(self.processing, "process without setProcessing(true)");
        let n = self.channels;
        assert_eq!(input.len(), n);
        let frames = input[0].len();
        // Varied block sizes: mostly large, sometimes tiny, sometimes the maximum.
        let mut blocks = Vec::new();
        let mut pos = 0;
        while pos < frames {
            let len = match rng.random_range(0..20) {
                0..=2 => rng.random_range(1..=32),
                3 => MAX_FRAMES,
                _ => rng.random_range(33..=MAX_FRAMES),
            }
            .min(frames - pos);
            blocks.push((pos, len));
            pos += len;
        }
        let processor = &self.processor;
        let start_time = self.time;
        let output = std::thread::scope(|s| {
            s.spawn(move || {
                audio_thread(processor, n, input, events, &blocks, start_time, in_place)
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        });
        self.time += frames as i64;
        self.serve_restarts();
        output
    }

    /// A zero-sample process call carrying only parameter changes (a host's parameter flush).
    fn flush_params(&mut self, changes: &[(ParamID, f64)]) {
        let processor = &self.processor;
        let n = self.channels;
        std::thread::scope(|s| {
            s.spawn(move || {
                let params = ComWrapper::new(ParamChanges::new(16));
                for &(id, v) in changes {
                    params.add(id, 0, v);
                }
                let mut in_ptrs = vec![std::ptr::null_mut::<f32>(); n];
                let mut out_ptrs = vec![std::ptr::null_mut::<f32>(); n];
                let mut in_bus = bus(&mut in_ptrs);
                let mut out_bus = bus(&mut out_ptrs);
                let mut data = ProcessData {
                    processMode: ProcessModes_::kRealtime as i32,
                    symbolicSampleSize: SymbolicSampleSizes_::kSample32 as i32,
                    numSamples: 0,
                    numInputs: 1,
                    numOutputs: 1,
                    inputs: &mut in_bus,
                    outputs: &mut out_bus,
                    inputParameterChanges: params
                        .as_com_ref::<IParameterChanges>()
                        .unwrap()
                        .as_ptr(),
                    outputParameterChanges: std::ptr::null_mut(),
                    inputEvents: std::ptr::null_mut(),
                    outputEvents: std::ptr::null_mut(),
                    processContext: std::ptr::null_mut(),
                };
                // SAFETY: everything `data` points to lives across the call.
                let r = unsafe { processor.process(&mut data) };
                assert_eq!(r, kResultOk, "parameter flush (0-sample process)");
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        });
    }

    /// Process successive pieces of `source` until `done` holds (at most `limit_s` of wall time).
    fn process_until(
        &mut self,
        source: &Looper,
        rng: &mut ChaCha8Rng,
        limit_s: f64,
        mut done: impl FnMut(&Self) -> bool,
    ) {
        let started = Instant::now();
        while !done(self) {
            assert!(
                started.elapsed().as_secs_f64() < limit_s,
                "condition not reached within {limit_s} s"
            );
            let out = self.process(&source.next((RATE * 0.05) as usize), &[], rng, false);
            check_bounded(&out, "while waiting");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Tear down as a host does and check that no reference leaks either way.
    fn shutdown(mut self) {
        self.stop();
        // SAFETY: plain VST3 calls; the ComPtrs release their references when dropped.
        unsafe {
            for dir in [INPUT, OUTPUT] {
                assert_eq!(self.component.activateBus(AUDIO, dir, 0, 0), kResultOk);
            }
            let handler_ptr = self.handler.to_com_ptr::<IComponentHandler>().unwrap();
            let held_by_plugin = refcount(&handler_ptr) - 2; // ours: the wrapper and handler_ptr
            assert_eq!(held_by_plugin, 1, "the plugin keeps one handler reference");
            if self.separate_controller {
                assert_eq!(self.controller.terminate(), kResultOk);
            }
            assert_eq!(self.component.terminate(), kResultOk, "terminate");
            let Instance {
                component,
                processor,
                controller,
                handler,
                ..
            } = self;
            drop(processor);
            drop(controller);
            assert_eq!(
                refcount(&component),
                1,
                "after releasing the processor and controller interfaces, the host holds the \
                 only reference to the component"
            );
            drop(component);
            assert_eq!(
                refcount(&handler_ptr),
                2,
                "the plugin released its component handler when it was destroyed"
            );
            drop(handler_ptr);
            drop(handler);
        }
    }
}

fn speaker_arrangement(channels: usize) -> SpeakerArrangement {
    match channels {
        1 => SpeakerArr::kMono,
        2 => SpeakerArr::kStereo,
        4 => SpeakerArr::k40Music,
        6 => SpeakerArr::k51,
        8 => SpeakerArr::k71Cine,
        n => (1u64 << n) - 1,
    }
}

fn bus(ptrs: &mut [*mut f32]) -> vst3::Steinberg::Vst::AudioBusBuffers {
    vst3::Steinberg::Vst::AudioBusBuffers {
        numChannels: ptrs.len() as i32,
        silenceFlags: 0,
        __field0: vst3::Steinberg::Vst::AudioBusBuffers__type0 {
            channelBuffers32: ptrs.as_mut_ptr(),
        },
    }
}

/// The audio thread of [`Instance::process`].
fn audio_thread(
    processor: &ComPtr<IAudioProcessor>,
    n: usize,
    input: &[Vec<f32>],
    events: &[Event],
    blocks: &[(usize, usize)],
    start_time: i64,
    in_place: bool,
) -> Vec<Vec<f32>> {
    let frames = input[0].len();
    let mut output = vec![vec![0.0f32; frames]; n];
    let mut ins = vec![vec![0.0f32; MAX_FRAMES]; n];
    let mut outs = vec![vec![0.0f32; MAX_FRAMES]; n];
    let mut in_ptrs: Vec<*mut f32> = vec![std::ptr::null_mut(); n];
    let mut out_ptrs: Vec<*mut f32> = vec![std::ptr::null_mut(); n];
    let params_in = ComWrapper::new(ParamChanges::new(32));
    let params_out = ComWrapper::new(ParamChanges::new(32));
    let mut next_event = 0;
    for &(start, len) in blocks {
        for (b, x) in ins.iter_mut().zip(input) {
            b[..len].copy_from_slice(&x[start..start + len]);
        }
        if !in_place {
            // Garbage in the output buffers: the plugin must overwrite every sample.
            for b in outs.iter_mut() {
                b[..len].fill(f32::NAN);
            }
        }
        params_in.clear();
        params_out.clear();
        while next_event < events.len() && events[next_event].0 < start + len {
            let (frame, id, value) = events[next_event];
            assert!(frame >= start, "events must be sorted by frame");
            params_in.add(id, frame - start, value);
            next_event += 1;
        }
        for (p, b) in in_ptrs.iter_mut().zip(ins.iter_mut()) {
            *p = b.as_mut_ptr();
        }
        for (p, b) in out_ptrs.iter_mut().zip(outs.iter_mut()) {
            *p = b.as_mut_ptr();
        }
        if in_place {
            out_ptrs.copy_from_slice(&in_ptrs);
        }
        let mut in_bus = bus(&mut in_ptrs);
        let mut out_bus = bus(&mut out_ptrs);
        // SAFETY: ProcessContext is plain data; all-zero is a valid (empty) value.
        let mut context: ProcessContext = unsafe { std::mem::zeroed() };
        context.state = StatesAndFlags_::kPlaying
            | StatesAndFlags_::kTempoValid
            | StatesAndFlags_::kTimeSigValid
            | StatesAndFlags_::kContTimeValid;
        context.sampleRate = RATE;
        context.projectTimeSamples = start_time + start as i64;
        context.continousTimeSamples = start_time + start as i64;
        context.tempo = 120.0;
        context.timeSigNumerator = 4;
        context.timeSigDenominator = 4;
        let mut data = ProcessData {
            processMode: ProcessModes_::kRealtime as i32,
            symbolicSampleSize: SymbolicSampleSizes_::kSample32 as i32,
            numSamples: len as i32,
            numInputs: 1,
            numOutputs: 1,
            inputs: &mut in_bus,
            outputs: &mut out_bus,
            inputParameterChanges: params_in
                .as_com_ref::<IParameterChanges>()
                .unwrap()
                .as_ptr(),
            outputParameterChanges: params_out
                .as_com_ref::<IParameterChanges>()
                .unwrap()
                .as_ptr(),
            inputEvents: std::ptr::null_mut(),
            outputEvents: std::ptr::null_mut(),
            processContext: &mut context,
        };
        // SAFETY: every buffer and object `data` points to lives across the call.
        let r = unsafe { processor.process(&mut data) };
        assert_eq!(r, kResultOk, "process() of a {len}-sample block at {start}");
        let written = if in_place { &ins } else { &outs };
        for (o, b) in output.iter_mut().zip(written) {
            o[start..start + len].copy_from_slice(&b[..len]);
        }
        assert_eq!(
            params_out.points(),
            0,
            "the plugin sent output parameter changes"
        );
    }
    assert_eq!(next_event, events.len(), "events beyond the input");
    output
}

fn find_audio_class(factory: &ComPtr<IPluginFactory>) -> PClassInfo {
    // SAFETY: plain getters into zeroed plain-data structs.
    unsafe {
        let count = factory.countClasses();
        (0..count)
            .map(|i| {
                let mut info: PClassInfo = std::mem::zeroed();
                assert_eq!(factory.getClassInfo(i, &mut info), kResultOk);
                info
            })
            .find(|info| c_chars(&info.category) == AUDIO_EFFECT_CLASS)
            .expect("the factory has an audio module class")
    }
}

fn list_params(controller: &ComPtr<IEditController>) -> Vec<Param> {
    // SAFETY: plain getters into zeroed plain-data structs.
    unsafe {
        (0..controller.getParameterCount())
            .map(|i| {
                let mut info: ParameterInfo = std::mem::zeroed();
                assert_eq!(controller.getParameterInfo(i, &mut info), kResultOk);
                Param {
                    id: info.id,
                    title: utf16(&info.title),
                    steps: info.stepCount,
                    default: info.defaultNormalizedValue,
                    flags: info.flags,
                }
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Audio material and measurements.
// ---------------------------------------------------------------------------------------------

/// Two independent Gaussian sources mixed by a fixed non-orthogonal matrix, scaled to −20 dBFS
/// RMS over both channels, `secs` long.
fn mixture(secs: f64, seed: u64) -> Vec<Vec<f32>> {
    const MIX: [[f64; 2]; 2] = [[1.0, 0.6], [0.3, 0.9]];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let frames = (RATE * secs) as usize;
    let mut out: Vec<Vec<f32>> = (0..2).map(|_| Vec::with_capacity(frames)).collect();
    for _ in 0..frames {
        let s: [f64; 2] = [
            StandardNormal.sample(&mut rng),
            StandardNormal.sample(&mut rng),
        ];
        for (o, row) in out.iter_mut().zip(MIX) {
            o.push((row[0] * s[0] + row[1] * s[1]) as f32);
        }
    }
    let ms = out
        .iter()
        .flatten()
        .map(|v| (*v as f64).powi(2))
        .sum::<f64>()
        / (2 * frames) as f64;
    let gain = 0.1 / ms.sqrt();
    for v in out.iter_mut().flatten() {
        *v = (*v as f64 * gain) as f32;
    }
    out
}

/// Correlation coefficient of the two channels over `range`.
fn channel_correlation(x: &[Vec<f32>], range: std::ops::Range<usize>) -> f64 {
    correlation(&x[0][range.clone()], &x[1][range])
}

/// RMS level of each channel over `range`, in dBFS.
fn levels_db(x: &[Vec<f32>], range: std::ops::Range<usize>) -> Vec<f64> {
    x.iter()
        .map(|ch| {
            let ms = ch[range.clone()]
                .iter()
                .map(|v| (*v as f64).powi(2))
                .sum::<f64>()
                / range.len() as f64;
            10.0 * ms.log10()
        })
        .collect()
}

/// Assert that `out` over `range` is white: uncorrelated channels at the output level.
fn assert_white(out: &[Vec<f32>], range: std::ops::Range<usize>, what: &str) {
    let rho = channel_correlation(out, range.clone());
    let levels = levels_db(out, range);
    println!("{what}: output correlation {rho:+.4}, levels {levels:.2?} dBFS");
    assert!(
        rho.abs() < 0.1,
        "{what}: the output channels are still correlated (ρ = {rho:.3})"
    );
    let target = 20.0 * OUTPUT_GAIN.log10();
    for l in levels {
        assert!(
            (l - target).abs() < 2.0,
            "{what}: output level {l:.2} dBFS, not the {target} dBFS output level"
        );
    }
}

fn sec(s: f64) -> usize {
    (s * RATE) as usize
}

// ---------------------------------------------------------------------------------------------
// Scenarios.
// ---------------------------------------------------------------------------------------------

/// The factory, its class infos, the component's buses and arrangements, the parameters as the
/// edit controller describes them, and a clean teardown.
fn factory_scenario() {
    let module = Module::load();
    let factory = module.factory();
    // SAFETY: plain getters into zeroed plain-data structs and VST3 calls on live objects.
    unsafe {
        let mut finfo: PFactoryInfo = std::mem::zeroed();
        assert_eq!(factory.getFactoryInfo(&mut finfo), kResultOk);
        println!(
            "factory: vendor {:?}, flags {:#x}",
            c_chars(&finfo.vendor),
            finfo.flags
        );
        let count = factory.countClasses();
        println!("{count} class(es)");
        assert!(count >= 1);
        let info = find_audio_class(factory);
        let name = c_chars(&info.name);
        assert_eq!(name, "Interneuron Whitening");
        let cid: Vec<u8> = info.cid.iter().map(|b| *b as u8).collect();
        assert_eq!(&cid[..], CLASS_ID, "class id");

        let f2 = factory.cast::<IPluginFactory2>().expect("IPluginFactory2");
        let mut info2: PClassInfo2 = std::mem::zeroed();
        assert_eq!(f2.getClassInfo2(0, &mut info2), kResultOk);
        let subcategories = c_chars(&info2.subCategories);
        println!(
            "class 0: {:?} {:?}, subcategories {subcategories:?}, version {:?}, SDK {:?}",
            c_chars(&info2.category),
            c_chars(&info2.name),
            c_chars(&info2.version),
            c_chars(&info2.sdkVersion)
        );
        let subs: Vec<&str> = subcategories.split('|').collect();
        for s in ["Fx", "Analyzer", "Spatial"] {
            assert!(subs.contains(&s), "subcategory {s} missing");
        }
        let f3 = factory.cast::<IPluginFactory3>().expect("IPluginFactory3");
        let mut infow: PClassInfoW = std::mem::zeroed();
        assert_eq!(f3.getClassInfoUnicode(0, &mut infow), kResultOk);
        assert_eq!(utf16(&infow.name), "Interneuron Whitening");
        drop((f2, f3));

        // An unknown class id is refused without an object.
        let mut obj = std::ptr::null_mut();
        let bogus = [7 as c_char; 16];
        let r = factory.createInstance(
            bogus.as_ptr(),
            IComponent::IID.as_ptr() as *const c_char,
            &mut obj,
        );
        assert_ne!(r, kResultOk, "createInstance of an unknown class");
        assert!(obj.is_null());
    }

    let mut plugin = Instance::new(&module);
    println!(
        "edit controller: {}",
        if plugin.separate_controller {
            "separate class"
        } else {
            "on the component (single-component effect)"
        }
    );
    // SAFETY: VST3 calls on live objects with pointers to locals.
    unsafe {
        let c = &plugin.component;
        assert_eq!(c.getBusCount(AUDIO, INPUT), 1, "one audio input bus");
        assert_eq!(c.getBusCount(AUDIO, OUTPUT), 1, "one audio output bus");
        assert_eq!(c.getBusCount(EVENT, INPUT), 0, "no event input bus");
        assert_eq!(c.getBusCount(EVENT, OUTPUT), 0, "no event output bus");
        for dir in [INPUT, OUTPUT] {
            let mut info: BusInfo = std::mem::zeroed();
            assert_eq!(c.getBusInfo(AUDIO, dir, 0, &mut info), kResultOk);
            println!(
                "bus {dir}: {:?}, {} channels, type {}, flags {:#x}",
                utf16(&info.name),
                info.channelCount,
                info.busType,
                info.flags
            );
            assert_eq!(info.channelCount, 2, "stereo by default");
            assert_eq!(info.busType, BusTypes_::kMain as i32);
            assert_ne!(info.flags & BusFlags_::kDefaultActive, 0);
            assert_ne!(
                c.getBusInfo(AUDIO, dir, 1, &mut info),
                kResultOk,
                "no bus 1"
            );
        }

        // The layouts the plugin declares are accepted; others are refused.
        let p = &plugin.processor;
        for channels in [1usize, 2, 4, 6, 8, 16] {
            let a = speaker_arrangement(channels);
            let (mut i, mut o) = ([a], [a]);
            assert_eq!(
                p.setBusArrangements(i.as_mut_ptr(), 1, o.as_mut_ptr(), 1),
                kResultOk,
                "{channels} channels in and out"
            );
            let mut got = 0;
            assert_eq!(p.getBusArrangement(OUTPUT, 0, &mut got), kResultOk);
            println!("{channels} channels: set {a:#x}, plugin reports {got:#x}");
            assert_eq!(got.count_ones() as usize, channels);
        }
        for (ins, outs) in [
            (SpeakerArr::k30Cine, SpeakerArr::k30Cine),
            (SpeakerArr::kStereo, SpeakerArr::kMono),
        ] {
            let (mut i, mut o) = ([ins], [outs]);
            assert_ne!(
                p.setBusArrangements(i.as_mut_ptr(), 1, o.as_mut_ptr(), 1),
                kResultOk,
                "{ins:#x} in, {outs:#x} out must be refused"
            );
        }
        assert_eq!(
            p.canProcessSampleSize(SymbolicSampleSizes_::kSample64 as i32),
            kResultFalse,
            "no 64-bit processing (the plugin does not claim it)"
        );
    }
    plugin.configure(2);

    // Parameters.
    let count = plugin.params.len();
    println!("{count} parameters:");
    for p in &plugin.params {
        println!(
            "  {:>10} {:<16} steps {:>3} default {:.4} ({}) flags {:#x}",
            p.id,
            p.title,
            p.steps,
            p.default,
            plugin.value_text(p.id, p.default),
            p.flags
        );
    }
    assert!(count > 10, "only {count} parameters");
    let mut ids: Vec<ParamID> = plugin.params.iter().map(|p| p.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "parameter ids are unique");
    for required in [
        "Circuit",
        "Framing",
        "Adaptation time",
        "Interneurons",
        "Init scale",
        "Re-initialise",
        "Reference level",
        "Output level",
        "Dry/wet",
        "Noise floor",
        "FFT size",
        "Bands",
        "Learning",
        "Bypass",
    ] {
        let p = plugin.param(required);
        assert_ne!(
            p.flags & ParameterFlags_::kCanAutomate,
            0,
            "{required} is automatable"
        );
    }
    let bypass: Vec<&Param> = plugin
        .params
        .iter()
        .filter(|p| p.flags & ParameterFlags_::kIsBypass != 0)
        .collect();
    assert!(
        bypass.len() == 1 && bypass[0].title == "Bypass",
        "exactly one parameter, Bypass, is the host's bypass: {bypass:?}"
    );
    let circuit = plugin.param("Circuit");
    assert_eq!(circuit.steps, 2, "three circuits");
    assert_eq!(
        plugin.value_text(circuit.id, circuit.default),
        "Interneuron"
    );
    let (_, direct) = plugin.text_value("Circuit", "Direct");
    let (_, baseline) = plugin.text_value("Circuit", "Baseline (ZCA)");
    assert_eq!(plugin.value_text(circuit.id, direct), "Direct");
    assert_eq!(plugin.value_text(circuit.id, baseline), "Baseline (ZCA)");
    let mix = plugin.param("Dry/wet");
    assert!((mix.default - 1.0).abs() < 1e-9, "fully wet by default");
    // SAFETY: plain VST3 calls.
    unsafe {
        // Plain ↔ normalised for a linear parameter.
        let plain = plugin.controller.normalizedParamToPlain(mix.id, 0.25);
        assert!((plain - 0.25).abs() < 1e-6, "Dry/wet 0.25 → plain {plain}");
        // Edits from the host while not processing go to the plugin.
        assert_eq!(plugin.controller.setParamNormalized(mix.id, 0.5), kResultOk);
        let v = plugin.controller.getParamNormalized(mix.id);
        assert!((v - 0.5).abs() < 1e-6, "setParamNormalized → {v}");
        assert_eq!(plugin.controller.setParamNormalized(mix.id, 1.0), kResultOk);
    }

    plugin.start();
    assert_eq!(plugin.latency(), 0, "channels framing has no latency");
    // SAFETY: plain getter.
    let tail = unsafe { plugin.processor.getTailSamples() };
    println!("latency {}, tail {tail}", plugin.latency());
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let out = plugin.process(&mixture(0.5, 3), &[], &mut rng, false);
    check_bounded(&out, "first half second");
    plugin.shutdown();
    module.unload();
}

/// Stereo at 48 kHz: the default (interneuron) circuit whitens a correlated mixture; a dry/wet
/// ramp to dry passes the input through and back to wet whitens again; switching to the direct
/// circuit and to the baseline keeps the output white; bypass is the input; a parameter flush
/// (zero-sample process) takes effect.
fn whitening_scenario() {
    let input = mixture(18.0, 11);
    let rho_in = channel_correlation(&input, 0..input[0].len());
    println!(
        "input: correlation {rho_in:+.4}, levels {:.2?} dBFS",
        levels_db(&input, 0..input[0].len())
    );
    assert!(rho_in > 0.5, "the test mixture must be correlated");

    let module = Module::load();
    let mut plugin = Instance::new(&module);
    plugin.configure(2);
    plugin.start();
    let mut rng = ChaCha8Rng::seed_from_u64(1);

    let mix = plugin.param("Dry/wet").id;
    let bypass = plugin.param("Bypass").id;
    let (circuit, direct) = plugin.text_value("Circuit", "Direct");
    let (_, baseline) = plugin.text_value("Circuit", "Baseline (ZCA)");
    let mut events: Vec<Event> = Vec::new();
    // Dry/wet: ramp 1 → 0 over 6.0–6.5 s (a point every 256 samples, several per block), dry
    // until 7.5 s, ramp back 7.5–8.0 s.
    let ramp = |from: f64, to: f64, t0: f64, t1: f64, events: &mut Vec<Event>| {
        let (a, b) = (sec(t0), sec(t1));
        for f in (a..=b).step_by(256) {
            let x = (f - a) as f64 / (b - a) as f64;
            events.push((f, mix, from + (to - from) * x));
        }
        events.push((b, mix, to));
    };
    ramp(1.0, 0.0, 6.0, 6.5, &mut events);
    ramp(0.0, 1.0, 7.5, 8.0, &mut events);
    // Direct circuit from 10 s, baseline from 12.5 s, bypass 15–16.5 s.
    events.push((sec(10.0), circuit, direct));
    events.push((sec(12.5), circuit, baseline));
    events.push((sec(15.0), bypass, 1.0));
    events.push((sec(16.5), bypass, 0.0));
    events.sort_by_key(|e| e.0);

    let started = Instant::now();
    let out = plugin.process(&input, &events, &mut rng, false);
    println!(
        "processed {:.0} s of stereo in {:.2} s ({} automation points)",
        input[0].len() as f64 / RATE,
        started.elapsed().as_secs_f64(),
        events.len()
    );
    check_bounded(&out, "whitening");

    assert_white(&out, sec(5.0)..sec(5.9), "interneuron (default), 5–5.9 s");
    // Dry: the output is the input.
    let rho_dry = channel_correlation(&out, sec(6.6)..sec(7.4));
    let max_diff = (0..2)
        .flat_map(|c| (sec(6.6)..sec(7.4)).map(move |t| (c, t)))
        .map(|(c, t)| (out[c][t] - input[c][t]).abs())
        .fold(0.0f32, f32::max);
    println!("dry (mix 0), 6.6–7.4 s: correlation {rho_dry:+.4}, max |out − in| {max_diff:.2e}");
    assert!(
        max_diff < 1e-5,
        "with Dry/wet at 0 the output is not the input (max difference {max_diff})"
    );
    assert_white(
        &out,
        sec(9.0)..sec(9.9),
        "interneuron after the dry/wet ramp, 9–9.9 s",
    );
    assert_white(&out, sec(11.4)..sec(12.4), "direct, 11.4–12.4 s");
    assert_white(&out, sec(13.9)..sec(14.9), "baseline (ZCA), 13.9–14.9 s");
    // Bypass: after the 20 ms crossfade the output is the input (zero latency).
    for c in 0..2 {
        for t in sec(15.05)..sec(16.4) {
            assert_eq!(
                out[c][t], input[c][t],
                "bypass: channel {c} sample {t} is not the input"
            );
        }
    }
    assert_white(&out, sec(17.0)..sec(18.0), "baseline after bypass, 17–18 s");
    let rho_in_last = channel_correlation(&input, sec(17.0)..sec(18.0));
    println!("input correlation over the last second {rho_in_last:+.4}");
    assert!(rho_in_last > 0.5);

    // A parameter flush (zero samples, only changes) reaches the plugin: back to interneuron.
    let (_, interneuron) = plugin.text_value("Circuit", "Interneuron");
    plugin.flush_params(&[(circuit, interneuron)]);
    // SAFETY: plain getter.
    let v = unsafe { plugin.controller.getParamNormalized(circuit) };
    assert!(
        (v - interneuron).abs() < 1e-6,
        "after the flush Circuit is {v}, not {interneuron}"
    );
    let more = mixture(2.0, 12);
    let out = plugin.process(&more, &[], &mut rng, false);
    check_bounded(&out, "after the flush");
    assert_white(&out, sec(1.0)..sec(2.0), "interneuron after the flush");
    println!(
        "component handler: {} restart requests, {} edits",
        plugin.handler.restarts.load(Ordering::SeqCst),
        plugin.handler.edits.load(Ordering::SeqCst)
    );
    plugin.shutdown();
    module.unload();
}

/// Every parameter automated to random normalised values mid-block, several rounds (structural
/// changes, latency restarts, bypass, re-initialisation included): the output stays finite and
/// within ±1 and the plugin never allocates in `process`; back at the defaults (and a fresh
/// re-initialisation) it whitens again.
fn automation_scenario() {
    let module = Module::load();
    let source = Looper::new(mixture(6.0, 31));
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut plugin = Instance::new(&module);
    plugin.configure(2);
    plugin.start();
    let out = plugin.process(&source.next(sec(2.0)), &[], &mut rng, false);
    check_bounded(&out, "defaults");

    let params = plugin.params.clone();
    let started = Instant::now();
    for round in 0..4 {
        let piece = sec(0.3);
        let mut events: Vec<Event> = params
            .iter()
            .flat_map(|p| {
                // One to three points per parameter, anywhere in the piece.
                let points = rng.random_range(1..=3);
                (0..points)
                    .map(|_| (rng.random_range(0..piece), p.id, rng.random::<f64>()))
                    .collect::<Vec<_>>()
            })
            .collect();
        events.sort_by_key(|e| e.0);
        let out = plugin.process(&source.next(piece), &events, &mut rng, round % 2 == 1);
        check_bounded(&out, &format!("automation round {round}"));
        let values: Vec<String> = plugin
            .params
            .iter()
            // SAFETY: plain getter.
            .map(|p| {
                let v = unsafe { plugin.controller.getParamNormalized(p.id) };
                format!("{}={}", p.title, plugin.value_text(p.id, v))
            })
            .collect();
        println!("round {round}: {}", values.join(", "));
        // Run with the random settings until the engine rebuilt off the audio thread has landed
        // (its latency reported and the restart served), then a while longer.
        let text = |title: &str| {
            let id = plugin.param(title).id;
            // SAFETY: plain getter.
            plugin.value_text(id, unsafe { plugin.controller.getParamNormalized(id) })
        };
        let expected: u32 = if text("Framing") == "Spectral" {
            text("FFT size").parse().expect("FFT size as a number")
        } else {
            0
        };
        plugin.process_until(&source, &mut rng, 30.0, |p| {
            p.latency() == expected && p.handler.pending_flags.load(Ordering::SeqCst) == 0
        });
        let out = plugin.process(&source.next(sec(0.5)), &[], &mut rng, false);
        check_bounded(&out, &format!("after automation round {round}"));
        println!(
            "  latency {}, restarts served so far {}",
            plugin.latency(),
            plugin.restarts_served
        );
    }
    println!(
        "automation rounds took {:.2} s",
        started.elapsed().as_secs_f64()
    );

    // Back to the defaults with a re-initialisation: whitens again.
    let reinit = plugin.param("Re-initialise").id;
    let mut events: Vec<Event> = params.iter().map(|p| (0, p.id, p.default)).collect();
    events.push((sec(0.1), reinit, 1.0));
    events.push((sec(0.2), reinit, 0.0));
    let out = plugin.process(&source.next(sec(0.3)), &events, &mut rng, false);
    check_bounded(&out, "back to defaults");
    for (p, (_, v)) in params.iter().zip(plugin.values()) {
        assert!(
            (v - p.default).abs() < 1e-6,
            "{} is {v}, not its default {}",
            p.title,
            p.default
        );
    }
    plugin.process_until(&source, &mut rng, 30.0, |p| p.latency() == 0);
    let settle = Instant::now();
    plugin.process_until(&source, &mut rng, 30.0, |_| {
        settle.elapsed() > Duration::from_millis(200)
    });
    let out = plugin.process(&source.next(sec(4.0)), &[], &mut rng, false);
    check_bounded(&out, "defaults again");
    assert_white(
        &out,
        sec(3.0)..sec(4.0),
        "defaults after random automation, last second",
    );
    println!(
        "restarts served {}; restartComponent calls {}",
        plugin.restarts_served,
        plugin.handler.restarts.load(Ordering::SeqCst)
    );
    plugin.shutdown();
    module.unload();
}

/// Distinctive settings (including a structural change with a latency restart) survive
/// `getState` → `setState` into a fresh instance; a corrupt state is refused; loading the
/// default state into a running instance brings it back to whitening with no latency.
fn state_scenario() {
    let module = Module::load();
    let source = Looper::new(mixture(6.0, 21));
    let mut rng = ChaCha8Rng::seed_from_u64(2);

    // A fresh instance's state: the defaults.
    let defaults = {
        let plugin = Instance::new(&module);
        let state = plugin.save_state();
        plugin.shutdown();
        state
    };
    println!("default state: {} bytes", defaults.len());

    let mut plugin = Instance::new(&module);
    plugin.configure(2);
    plugin.start();
    let settings = [
        ("Circuit", "Direct"),
        ("Framing", "Spectral"),
        ("FFT size", "2048"),
        ("Adaptation time", "1234 ms"),
        ("Interneurons", "12"),
        ("Init scale", "100"),
        ("Reference level", "-30"),
        ("Output level", "-26"),
        ("Dry/wet", "80%"),
        ("Noise floor", "-100"),
        ("Bands", "48"),
    ];
    let events: Vec<Event> = settings
        .iter()
        .enumerate()
        .map(|(i, (title, text))| {
            let (id, v) = plugin.text_value(title, text);
            (i * 100, id, v)
        })
        .collect();
    let out = plugin.process(&source.next(sec(0.2)), &events, &mut rng, false);
    check_bounded(&out, "state settings");
    // The spectral engine is built off the audio thread; its latency comes with a restart
    // request, which the host serves by deactivating and activating.
    plugin.process_until(&source, &mut rng, 30.0, |p| {
        p.latency() == 2048 && p.restarts_served > 0
    });
    println!(
        "latency {} after {} restart request(s); restartComponent called off the creating \
         thread: {}",
        plugin.latency(),
        plugin.handler.restarts.load(Ordering::SeqCst),
        plugin.handler.off_main_thread.load(Ordering::SeqCst)
    );
    let out = plugin.process(&source.next(sec(1.0)), &[], &mut rng, false);
    check_bounded(&out, "spectral after the restart");
    let saved_values = plugin.values();
    let state = plugin.save_state();
    let text = String::from_utf8_lossy(&state);
    println!("state: {} bytes: {text}", state.len());
    assert!(!state.is_empty(), "empty state");
    assert_ne!(state, defaults, "the state does not reflect the settings");

    // A fresh instance refuses a corrupt state and keeps its defaults …
    let mut restored = Instance::new(&module);
    let fresh_values = restored.values();
    assert_ne!(
        restored.load_state(b"this is not a plugin state", 0),
        kResultOk,
        "a corrupt state must be refused"
    );
    assert_ne!(
        restored.load_state(&state[..state.len() / 2], 0),
        kResultOk,
        "a truncated state must be refused"
    );
    for ((name, before), (_, after)) in fresh_values.iter().zip(restored.values()) {
        assert!(
            (before - after).abs() < 1e-9,
            "{name} changed by a refused state"
        );
    }
    // … and restores the saved one, read from behind a host's own header.
    let mut with_header = b"HOSTHDR\0".to_vec();
    with_header.extend_from_slice(&state);
    assert_eq!(restored.load_state(&with_header, 8), kResultOk, "setState");
    for ((name, want), (_, got)) in saved_values.iter().zip(restored.values()) {
        assert!(
            (want - got).abs() < 1e-6,
            "{name}: restored {got}, saved {want}"
        );
    }
    restored.configure(2);
    restored.start();
    assert_eq!(
        restored.latency(),
        2048,
        "the restored instance reports the restored FFT size as latency"
    );
    // In-place buffers this time.
    let out = restored.process(&source.next(sec(2.0)), &[], &mut rng, true);
    check_bounded(&out, "restored instance");
    restored.shutdown();

    // The default state loaded into the running instance: back to channels framing, whitening.
    assert_eq!(
        plugin.load_state(&defaults, 0),
        kResultOk,
        "setState while active"
    );
    plugin.process_until(&source, &mut rng, 30.0, |p| p.latency() == 0);
    let settle = Instant::now();
    plugin.process_until(&source, &mut rng, 30.0, |_| {
        settle.elapsed() > Duration::from_millis(200)
    });
    let out = plugin.process(&source.next(sec(5.0)), &[], &mut rng, false);
    check_bounded(&out, "defaults loaded while active");
    assert_white(
        &out,
        sec(4.0)..sec(5.0),
        "defaults loaded while active, last second",
    );
    println!(
        "restarts served {}; restartComponent calls {}",
        plugin.restarts_served,
        plugin.handler.restarts.load(Ordering::SeqCst)
    );
    plugin.shutdown();
    module.unload();
}
