//! The plugin as a standalone application (nice-plug's standalone wrapper): JACK or ALSA via
//! `--backend`, layouts via `--audio-layout`; see `--help`.

use interneuron_whitening::plugin::InterneuronWhitening;
use nice_plug::prelude::*;

fn main() {
    nice_export_standalone::<InterneuronWhitening>();
}
