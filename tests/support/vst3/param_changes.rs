//! Parameter automation as a real-time host hands it to `process`: `IParameterChanges` with
//! one `IParamValueQueue` per automated parameter, all preallocated.

use std::cell::{Cell, RefCell};
use vst3::Steinberg::Vst::{
    IParamValueQueue, IParamValueQueueTrait, IParameterChanges, IParameterChangesTrait, ParamID,
    ParamValue,
};
use vst3::Steinberg::{int32, kInvalidArgument, kResultOk, tresult};
use vst3::{Class, ComWrapper};

/// One parameter's automation points within a block.
struct ParamQueue {
    /// The parameter this queue automates (reassigned when the queue is reused).
    id: Cell<ParamID>,
    /// (sample offset in the block, normalised value), in the order added.
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
pub struct ParamChanges {
    /// Every queue, allocated up front so that the audio thread never allocates one.
    queues: Vec<ComWrapper<ParamQueue>>,
    /// How many of `queues` carry a parameter in this block.
    used: Cell<usize>,
}

impl Class for ParamChanges {
    type Interfaces = (IParameterChanges,);
}

impl ParamChanges {
    /// Room for `capacity` automated parameters per block.
    pub fn new(capacity: usize) -> Self {
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

    /// Empty, for the next block.
    pub fn clear(&self) {
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

    /// Add the point (`offset` in the block, normalised `value`) for parameter `id`.
    pub fn add(&self, id: ParamID, offset: usize, value: f64) {
        let (_, q) = self
            .queue(id)
            .expect("too many automated parameters in one block");
        q.points.borrow_mut().push((offset as int32, value));
    }

    /// How many points the queues hold (on the output side: the plugin's changes, if any).
    pub fn points(&self) -> usize {
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
