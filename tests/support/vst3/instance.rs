//! A plugin instance as a host drives it: creation and initialisation, bus negotiation and
//! processing setup, activation, restarts, state, teardown. Processing itself is in
//! `process.rs`.

use super::host_objects::{ComponentHandler, HostApp, MemoryStream};
use super::{find_audio_class, refcount, to_utf16, utf16, Module};
use super::{AUDIO, INPUT, MAX_FRAMES, OUTPUT, RATE};
use std::ffi::c_char;
use std::sync::atomic::Ordering;
use vst3::Steinberg::Vst::{
    BusInfo, IAudioProcessor, IAudioProcessorTrait, IComponent, IComponentHandler, IComponentTrait,
    IEditController, IEditControllerTrait, IHostApplication, ParamID, ParameterInfo, ProcessModes_,
    ProcessSetup, RestartFlags_, SpeakerArr, SpeakerArrangement, String128, SymbolicSampleSizes_,
};
use vst3::Steinberg::{
    kResultOk, tresult, FUnknown, IBStream, IPluginBaseTrait, IPluginFactoryTrait, TUID,
};
use vst3::{ComPtr, ComWrapper, Interface};

/// One parameter as the edit controller describes it.
#[derive(Clone, Debug)]
pub struct Param {
    /// The id automation and the controller's calls address it by.
    pub id: ParamID,
    /// Its title, by which the tests find it.
    pub title: String,
    /// `stepCount`: 0 for a continuous parameter, choices − 1 for a stepped one.
    pub steps: i32,
    /// The default, normalised.
    pub default: f64,
    /// `ParameterFlags_` (automatable, bypass, …).
    pub flags: i32,
    /// `ParameterInfo::units`: the unit a host shows after the value (and pedalboard appends
    /// to the parameter's Python name).
    pub units: String,
}

/// An automation point: (frame from the start of a `process` call, parameter, normalised value).
pub type Event = (usize, ParamID, f64);

/// One plugin instance, with the host's state of it.
pub struct Instance {
    /// The component (`IComponent`): buses, activation, state.
    pub component: ComPtr<IComponent>,
    /// Its `IAudioProcessor`: arrangements, processing setup, `process`, latency.
    pub processor: ComPtr<IAudioProcessor>,
    /// The edit controller: parameters, their texts, the component handler.
    pub controller: ComPtr<IEditController>,
    /// Whether the controller is a separate object (created from the factory) rather than the
    /// component itself.
    pub separate_controller: bool,
    /// The host's component handler, counting what the plugin reported to it.
    pub handler: ComWrapper<ComponentHandler>,
    /// The host context the plugin was initialised with; kept alive as long as the plugin.
    _host: ComWrapper<HostApp>,
    /// The parameters as the controller listed them after initialisation.
    pub params: Vec<Param>,
    /// Channels per bus, as configured.
    pub(super) channels: usize,
    /// Sample rate, as configured ([`RATE`] unless [`Instance::configure_at`] chose another).
    pub(super) rate: f64,
    /// Whether the component is active (`setActive(true)`).
    pub(super) active: bool,
    /// Whether processing is on (`setProcessing(true)`).
    pub(super) processing: bool,
    /// Project time in samples, for the process context.
    pub(super) time: i64,
    /// Restarts (deactivate → activate) the host performed for the plugin.
    pub restarts_served: u32,
}

impl Instance {
    /// Find the audio module class, create and initialise a component, get its processor and
    /// controller, install the component handler, list the parameters.
    pub fn new(module: &Module) -> Self {
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
                rate: RATE,
                active: false,
                processing: false,
                time: 0,
                restarts_served: 0,
            }
        }
    }

    /// The parameter titled `title`.
    pub fn param(&self, title: &str) -> Param {
        self.params
            .iter()
            .find(|p| p.title == title)
            .unwrap_or_else(|| panic!("no parameter titled {title}"))
            .clone()
    }

    /// The normalised value the plugin's text parser gives `text` for the parameter `title`.
    pub fn text_value(&self, title: &str, text: &str) -> (ParamID, f64) {
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

    /// The plugin's text for the normalised `value` of parameter `id`.
    pub fn value_text(&self, id: ParamID, value: f64) -> String {
        let mut s: String128 = [0; 128];
        // SAFETY: `s` is a String128.
        let r = unsafe { self.controller.getParamStringByValue(id, value, &mut s) };
        assert_eq!(r, kResultOk);
        utf16(&s)
    }

    /// (title, normalised value) of every parameter, as the controller reports them.
    pub fn values(&self) -> Vec<(String, f64)> {
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

    /// The latency the processor reports, in samples.
    pub fn latency(&self) -> u32 {
        // SAFETY: plain getter.
        unsafe { self.processor.getLatencySamples() }
    }

    /// Negotiate `channels` in and out, set up processing at [`RATE`] and activate the buses.
    pub fn configure(&mut self, channels: usize) {
        self.configure_at(channels, RATE);
    }

    /// Negotiate `channels` in and out, set up processing at `rate` and activate the buses.
    pub fn configure_at(&mut self, channels: usize, rate: f64) {
        let arrangement = speaker_arrangement(channels);
        // SAFETY: plain VST3 calls with pointers to locals.
        unsafe {
            // The main input and the sidechain (auxiliary) input, of as many channels.
            assert_eq!(self.component.getBusCount(AUDIO, INPUT), 2, "input buses");
            let mut ins = [arrangement, arrangement];
            let mut outs = [arrangement];
            assert_eq!(
                self.processor
                    .setBusArrangements(ins.as_mut_ptr(), 2, outs.as_mut_ptr(), 1),
                kResultOk,
                "setBusArrangements {channels} + {channels} in, {channels} out"
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
            // The sidechain: an auxiliary bus (a host may leave it unconnected).
            let mut info: BusInfo = std::mem::zeroed();
            assert_eq!(
                self.component.getBusInfo(AUDIO, INPUT, 1, &mut info),
                kResultOk
            );
            assert_eq!(
                info.busType,
                vst3::Steinberg::Vst::BusTypes_::kAux as i32,
                "the sidechain bus is auxiliary"
            );
            assert_eq!(info.channelCount as usize, channels, "sidechain channels");
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
                sampleRate: rate,
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
        self.rate = rate;
    }

    /// setActive(true), setProcessing(true), reporting failure instead of panicking (for hosts
    /// that try odd configurations): whether activation succeeded.
    pub fn try_start(&mut self) -> bool {
        // SAFETY: plain VST3 calls.
        unsafe {
            if self.component.setActive(1) != kResultOk {
                return false;
            }
            self.active = true;
            assert_eq!(self.processor.setProcessing(1), kResultOk);
            self.processing = true;
        }
        true
    }

    /// setActive(true), setProcessing(true).
    pub fn start(&mut self) {
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
    pub fn stop(&mut self) {
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
    pub(super) fn serve_restarts(&mut self) {
        let flags = self.handler.pending_flags.swap(0, Ordering::SeqCst);
        if flags & RestartFlags_::kLatencyChanged != 0 && self.active {
            self.stop();
            self.start();
            self.restarts_served += 1;
        }
    }

    /// `IComponent::getState` into a memory stream: the saved bytes.
    pub fn save_state(&self) -> Vec<u8> {
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
    pub fn load_state(&self, bytes: &[u8], start: usize) -> tresult {
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

    /// Tear down as a host does and check that no reference leaks either way.
    pub fn shutdown(mut self) {
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

/// The speaker arrangement the host asks for with `channels` channels.
pub fn speaker_arrangement(channels: usize) -> SpeakerArrangement {
    match channels {
        1 => SpeakerArr::kMono,
        2 => SpeakerArr::kStereo,
        4 => SpeakerArr::k40Music,
        6 => SpeakerArr::k51,
        8 => SpeakerArr::k71Cine,
        n => (1u64 << n) - 1,
    }
}

/// Every parameter the controller lists.
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
                    units: utf16(&info.units),
                }
            })
            .collect()
    }
}
