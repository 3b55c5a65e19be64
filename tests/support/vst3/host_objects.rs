//! The COM objects the host implements for the plugin: the host context passed to
//! `initialize`, the component handler the edit controller reports to, and an in-memory stream
//! for `getState` / `setState`.

use super::to_utf16;
use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use vst3::Class;
use vst3::Steinberg::Vst::{
    IComponentHandler, IComponentHandlerTrait, IHostApplication, IHostApplicationTrait, ParamID,
    ParamValue, String128,
};
use vst3::Steinberg::{
    int32, int64, kInvalidArgument, kNotImplemented, kResultOk, tresult, IBStream, IBStreamTrait,
    IBStream_::IStreamSeekMode_, TUID,
};

/// The host context passed to `initialize`.
pub struct HostApp;

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
pub struct ComponentHandler {
    /// Restart flags not yet served by the host.
    pub pending_flags: AtomicI32,
    /// `restartComponent` calls so far, for the tests' reports.
    pub restarts: AtomicU32,
    /// `beginEdit` / `performEdit` / `endEdit` calls so far, for the tests' reports.
    pub edits: AtomicU32,
    /// Whether `restartComponent` was ever called on a thread other than the creating one.
    pub off_main_thread: AtomicBool,
    /// The thread that created the handler (the host's main thread), to tell the above.
    pub main_thread: Option<std::thread::ThreadId>,
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
pub struct MemoryStream {
    /// The bytes written so far (or handed in to be read).
    pub data: RefCell<Vec<u8>>,
    /// The read/write position, which the host may set (state behind a host's own header).
    pub pos: Cell<usize>,
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
    /// A stream to read `bytes` from, positioned at the start.
    pub fn with_bytes(bytes: &[u8]) -> Self {
        Self {
            data: RefCell::new(bytes.to_vec()),
            pos: Cell::new(0),
        }
    }
}
