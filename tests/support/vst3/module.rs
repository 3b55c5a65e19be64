//! The plugin module as a host loads it: `dlopen`, `ModuleEntry` / `ModuleExit` (the
//! signatures of the VST3 SDK's `linuxmain.cpp`), the factory from `GetPluginFactory`.

use super::{bundle_path, c_chars, refcount};
use std::ffi::{c_void, CStr};
use std::os::unix::ffi::OsStrExt;
use vst3::ComPtr;
use vst3::Steinberg::{kResultOk, IPluginFactory, IPluginFactoryTrait, PClassInfo};

/// `kVstAudioEffectClass` from the SDK's `ivstaudioprocessor.h` (a macro, so not in the bindings).
const AUDIO_EFFECT_CLASS: &str = "Audio Module Class";

/// The loaded plugin module.
pub struct Module {
    /// The `dlopen` handle, closed by [`Module::unload`].
    handle: *mut c_void,
    /// `ModuleExit`, called by [`Module::unload`] to pair with `ModuleEntry`.
    exit: unsafe extern "C" fn() -> bool,
    /// The host's reference to the factory (`None` once released by [`Module::unload`]).
    factory: Option<ComPtr<IPluginFactory>>,
}

/// The last `dl*` error as text.
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
    /// `dlopen` the bundle, call `ModuleEntry`, get the factory.
    pub fn load() -> Self {
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

    /// The plugin factory.
    pub fn factory(&self) -> &ComPtr<IPluginFactory> {
        self.factory.as_ref().unwrap()
    }

    /// Release the factory, call ModuleExit and unload. Every instance must be gone.
    pub fn unload(mut self) {
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

/// The class info of the factory's audio module class (the effect).
pub fn find_audio_class(factory: &ComPtr<IPluginFactory>) -> PClassInfo {
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
