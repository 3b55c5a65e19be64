//! The editor's window size as persisted state: a leaf module that both the parameters (which
//! persist it, `#[persist = "editor-state"]`) and the editor (which opens its window at it)
//! import, so neither depends on the other for it.

use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};

/// Default editor size in logical pixels: room for the three plots and the controls side by
/// side, and small enough for a 1280×800 laptop screen with a host's window decorations.
pub const DEFAULT_SIZE: (u32, u32) = (1160, 760);
/// Smallest size at which every control and plot stays readable.
pub const MIN_SIZE: (u32, u32) = (960, 640);
/// Largest width and height accepted from a saved state.
const MAX_SIDE: u32 = 8192;

/// The editor's size, persisted with the plugin state (`#[persist = "editor-state"]`) so a
/// project reopens the editor at the size the user left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditorSize {
    /// Width in logical pixels.
    pub width: u32,
    /// Height in logical pixels.
    pub height: u32,
}

impl Default for EditorSize {
    fn default() -> Self {
        Self {
            width: DEFAULT_SIZE.0,
            height: DEFAULT_SIZE.1,
        }
    }
}

impl EditorSize {
    /// Clamped to [`MIN_SIZE`] (a corrupt or hand-edited state must not open a tiny window).
    pub fn sane(self) -> Self {
        Self {
            width: self.width.clamp(MIN_SIZE.0, MAX_SIDE),
            height: self.height.clamp(MIN_SIZE.1, MAX_SIDE),
        }
    }
}

/// The persisted field's type: shared between the parameters and the editor.
pub type PersistedEditorSize = Arc<RwLock<EditorSize>>;
