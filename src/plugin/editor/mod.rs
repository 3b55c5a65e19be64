//! The plugin's editor (docs/DESIGN.md §6, §8.1): the race between the circuits, live. Shown
//! by hosts and by the standalone (nice-plug's standalone opens the plugin's editor).
//!
//! What it shows, from the stats records the audio thread publishes:
//! * the whitening error of every whitener over the last 20 s on a log axis, the heard one
//!   drawn thicker, with the detected changes and the readaptation threshold (`plots`);
//! * the eigenvalue spectrum of each circuit's `M` next to the target spectrum, which is the
//!   baseline's (`Ĉ^{1/2}` estimated from the input) (`plots`);
//! * the readaptation time of each whitener after the recent changes (`table`);
//! * every parameter, the circuit switch and a "Re-initialise" button (`controls`), and the
//!   view of what the heard whitener does (`heard`).
//!
//! **Threads.** The audio thread only `try_send`s fixed-size records into a bounded channel
//! (see `crate::plugin`, docs/DESIGN.md §5.4). The editor drains that channel into a
//! [`Monitor`] it owns, on the GUI thread, once per frame. While no editor is open the plugin
//! switches the engine's stats off entirely ([`EditorShared::open`]), so a closed editor costs
//! the audio thread nothing and the monitor does no work.
//!
//! **Why a wrapper around nice-plug-egui's editor.** nice-plug-egui 0.6 neither persists its
//! [`EguiEditorState`] (it has no serde support and no size setter) nor calls
//! `NiceEguiApp::editor_closed`. [`WhiteningEditor`] therefore keeps the size in a
//! `#[persist = "editor-state"]` field of the parameters ([`EditorSize`]), builds the egui
//! editor from it whenever a restored project changed it, and wraps the editor handle so that
//! dropping it (the host closing the editor) clears the "editor open" flag.
//!
//! [`Monitor`]: crate::monitor::Monitor

mod app;
mod controls;
mod heard;
pub mod labels;
mod plots;
mod table;

pub use controls::ReinitPulse;

pub use super::editor_size::{EditorSize, DEFAULT_SIZE, MIN_SIZE};

use super::params::WhiteningParams;
use crate::engine::{HeardView, StatsRecord};
use crate::whitener::WhitenerKind;
use app::EditorApp;
use crossbeam_channel::Receiver;
use nice_plug::context::gui::GuiContext;
use nice_plug::editor::dpi::{LogicalSize, NativeSize, Size};
use nice_plug::editor::{
    Editor, EditorHandle, HostMethods, Modifiers, ParentWindowHandle, ResizeHint, SizeConstraints,
    SpawnedEditor, VirtualKeyCode,
};
use nice_plug_egui::{
    create_egui_editor, EguiEditor, EguiEditorHandle, EguiEditorState, EguiNiceSettings,
    RepaintNotifier,
};
use std::error::Error;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Delay of the repaint each frame requests: the plots move continuously, so the editor
/// repaints on its own instead of waiting for input events. baseview (X11) presents at most
/// every second vblank and only starts waiting for one once this delay has passed, so the
/// frame period is about `max(delay + draw time, 2 vblanks)`: 30 fps on a 60 Hz display
/// when drawing is fast. (Under Xvfb, Mesa's software rasteriser dominates the draw time:
/// about 23 fps with no delay and 20 fps with 20 ms on a busy 2-core machine.)
pub const FRAME_INTERVAL: Duration = Duration::from_millis(10);

/// The size of the window `state` describes, in logical pixels.
fn size_of_state(state: &EguiEditorState) -> EditorSize {
    let s = match state.size() {
        Size::Logical(l) => l,
        Size::Physical(p) => p.to_logical(1.0),
    };
    EditorSize {
        width: s.width.round() as u32,
        height: s.height.round() as u32,
    }
}

/// Everything the editor shares with the plugin. Cheap to clone (all `Arc`s and a channel
/// end).
#[derive(Clone)]
pub struct EditorShared {
    /// The parameters (read for display, written only through nice-plug's `ParamSetter`).
    pub params: Arc<WhiteningParams>,
    /// The receiving end of the stats channel; every engine the plugin builds sends into it.
    pub stats: Receiver<StatsRecord>,
    /// The receiving end of the view channel: what the heard whitener does (the editor keeps
    /// the latest).
    pub views: Receiver<HeardView>,
    /// Set while an editor window exists; the plugin enables the engine's stats only then.
    pub open: Arc<AtomicBool>,
    /// Re-initialisations performed by the audio thread, so the "Re-initialise" button knows
    /// when the trigger parameter has been seen and can be released.
    pub reinitialisations: Arc<AtomicU64>,
}

impl EditorShared {
    fn persisted_size(&self) -> EditorSize {
        self.params
            .editor_size
            .read()
            .map(|s| *s)
            .unwrap_or_default()
            .sane()
    }
}

/// A whitener's colour of the product's one palette ([`WhitenerKind::colour`]) for egui: the
/// editor and the figures draw each whitener in the same colour.
pub fn whitener_color(kind: WhitenerKind) -> egui::Color32 {
    let c = kind.colour();
    egui::Color32::from_rgb(c.0, c.1, c.2)
}

/// The plugin's [`Editor`]: nice-plug-egui's editor, rebuilt at the persisted size when a
/// restored state changed it, with a handle that reports when the window closes.
pub struct WhiteningEditor {
    /// What every window of this editor shows and writes to.
    shared: EditorShared,
    /// The egui editor; behind a mutex because it is rebuilt (`&self`) when a restored state
    /// changed the persisted size.
    inner: Mutex<Inner>,
}

/// The egui editor and the state it was built with.
struct Inner {
    /// nice-plug-egui's window state: its size tells whether a rebuild is due.
    state: Arc<EguiEditorState>,
    /// The editor nice-plug-egui built over `state`.
    egui: EguiEditor<EditorApp>,
}

impl Inner {
    fn build(shared: &EditorShared, size: EditorSize) -> Self {
        let state = EguiEditorState::from_size(
            LogicalSize::new(size.width as f64, size.height as f64),
            1.0,
        );
        let settings = EguiNiceSettings::new()
            .with_tile("Interneuron Whitening")
            .with_resize_hint(ResizeHint {
                can_resize: true,
                can_resize_horizontally: true,
                can_resize_vertically: true,
                size_constraints: SizeConstraints::min_logical_size(LogicalSize::new(
                    MIN_SIZE.0 as f32,
                    MIN_SIZE.1 as f32,
                )),
                ..ResizeHint::NON_RESIZABLE
            });
        let egui = create_egui_editor(
            state.clone(),
            RepaintNotifier::new(),
            settings,
            EditorApp::new(shared.clone()),
        )
        .expect("nice-plug-egui always creates an editor");
        Self { state, egui }
    }
}

impl WhiteningEditor {
    /// An editor over the plugin's shared state. Creates no window.
    pub fn new(shared: EditorShared) -> Self {
        let inner = Inner::build(&shared, shared.persisted_size());
        Self {
            shared,
            inner: Mutex::new(inner),
        }
    }

    /// Run `f` on the egui editor, first rebuilding it if the persisted size differs from
    /// the one it has (a state was restored while the editor was closed).
    fn with_egui<R>(&self, f: impl FnOnce(&EguiEditor<EditorApp>) -> R) -> R {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let wanted = self.shared.persisted_size();
        if !inner.state.is_open() && size_of_state(&inner.state) != wanted {
            *inner = Inner::build(&self.shared, wanted);
        }
        f(&inner.egui)
    }
}

impl Editor for WhiteningEditor {
    type Handle = WhiteningEditorHandle;

    fn spawn(
        &self,
        parent: Option<ParentWindowHandle>,
        wait_for_parent: bool,
        fallback_scale_factor: Option<f64>,
        gui_context: GuiContext,
        host: Option<HostMethods>,
    ) -> Result<SpawnedEditor<Self::Handle>, Box<dyn Error>> {
        let spawned = self.with_egui(|e| {
            e.spawn(
                parent,
                wait_for_parent,
                fallback_scale_factor,
                gui_context,
                host,
            )
        })?;
        Ok(SpawnedEditor {
            handle: WhiteningEditorHandle {
                inner: spawned.handle,
                open: self.shared.open.clone(),
            },
            window: spawned.window,
        })
    }

    fn size(&self) -> NativeSize<u32> {
        self.with_egui(|e| e.size())
    }

    fn resize_hint(&self) -> ResizeHint {
        self.with_egui(|e| e.resize_hint())
    }

    fn track_info_updated(&self, info: nice_plug::prelude::TrackInfo) {
        self.with_egui(|e| e.track_info_updated(info));
    }

    unsafe fn assume_standalone_in_process(&self) {
        // SAFETY: forwarded unchanged; the caller upholds the same contract.
        self.with_egui(|e| unsafe { e.assume_standalone_in_process() });
    }
}

/// nice-plug-egui's handle plus the "editor open" flag, cleared when the host drops the
/// handle (closes the editor).
pub struct WhiteningEditorHandle {
    /// nice-plug-egui's handle, to which every call is forwarded.
    inner: EguiEditorHandle,
    /// The "editor open" flag, cleared on drop so the audio thread stops computing stats.
    open: Arc<AtomicBool>,
}

impl Drop for WhiteningEditorHandle {
    fn drop(&mut self) {
        self.open.store(false, Ordering::Release);
    }
}

impl EditorHandle for WhiteningEditorHandle {
    type Window = <EguiEditorHandle as EditorHandle>::Window;
    type Error = <EguiEditorHandle as EditorHandle>::Error;

    fn run_until_closed(window: Self::Window) -> Result<(), Self::Error> {
        EguiEditorHandle::run_until_closed(window)
    }

    fn set_parent(
        &self,
        parent: ParentWindowHandle,
        window: &Self::Window,
    ) -> Result<(), Self::Error> {
        self.inner.set_parent(parent, window)
    }

    fn show(&self, window: &Self::Window) -> Result<(), Self::Error> {
        self.inner.show(window)
    }

    fn hide(&self, window: &Self::Window) -> Result<(), Self::Error> {
        self.inner.hide(window)
    }

    fn set_size(
        &self,
        new_size: NativeSize<u32>,
        window: &Self::Window,
    ) -> Result<(), Self::Error> {
        self.inner.set_size(new_size, window)
    }

    fn host_main_thread_callback(&self, window: &Self::Window) {
        self.inner.host_main_thread_callback(window)
    }

    fn adjust_size(
        &self,
        new_size: NativeSize<u32>,
        window: &Self::Window,
    ) -> Option<NativeSize<u32>> {
        self.inner.adjust_size(new_size, window)
    }

    fn set_fallback_scale_factor(
        &self,
        scale_factor: f64,
        window: &Self::Window,
    ) -> Result<(), Self::Error> {
        self.inner.set_fallback_scale_factor(scale_factor, window)
    }

    fn on_virtual_key_from_host(
        &self,
        key_code: VirtualKeyCode,
        is_down: bool,
        modifiers: Modifiers,
    ) -> bool {
        self.inner
            .on_virtual_key_from_host(key_code, is_down, modifiers)
    }

    fn state_changed(&self) {
        self.inner.state_changed()
    }

    fn param_value_changed(&self, id: &str, normalized_value: f32) {
        self.inner.param_value_changed(id, normalized_value)
    }

    fn param_modulation_changed(&self, id: &str, modulation_offset: f32) {
        self.inner.param_modulation_changed(id, modulation_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nice_plug::prelude::Params;

    fn editor_over(params: Arc<WhiteningParams>) -> WhiteningEditor {
        let (_tx, stats) = crossbeam_channel::bounded(1);
        let (_tx, views) = crossbeam_channel::bounded(1);
        WhiteningEditor::new(EditorShared {
            views,
            params,
            stats,
            open: Arc::new(AtomicBool::new(false)),
            reinitialisations: Arc::new(AtomicU64::new(0)),
        })
    }

    #[test]
    fn size_is_saved_and_restored_with_the_state() {
        let params = WhiteningParams::default();
        *params.editor_size.write().unwrap() = EditorSize {
            width: 1300,
            height: 820,
        };
        let fields = params.serialize_fields();
        assert!(fields.contains_key("editor-state"), "{fields:?}");
        let restored = WhiteningParams::default();
        restored.deserialize_fields(&fields);
        assert_eq!(
            *restored.editor_size.read().unwrap(),
            EditorSize {
                width: 1300,
                height: 820
            }
        );
    }

    #[test]
    fn a_restored_size_is_used_by_the_next_window() {
        // No window is opened: `size()` is what a host asks before opening one.
        let params = Arc::new(WhiteningParams::default());
        let editor = editor_over(params.clone());
        assert_eq!(
            editor.size(),
            NativeSize::new(DEFAULT_SIZE.0, DEFAULT_SIZE.1)
        );
        *params.editor_size.write().unwrap() = EditorSize {
            width: 1400,
            height: 900,
        };
        assert_eq!(editor.size(), NativeSize::new(1400, 900));
        // A corrupt state cannot shrink it below the minimum.
        *params.editor_size.write().unwrap() = EditorSize {
            width: 10,
            height: 10,
        };
        assert_eq!(editor.size(), NativeSize::new(MIN_SIZE.0, MIN_SIZE.1));
        assert!(editor.resize_hint().can_resize);
    }
}
