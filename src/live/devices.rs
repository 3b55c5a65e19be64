//! The audio devices of `whiten live`: cpal hosts ([`HostChoice`]), naming and matching
//! devices for `--input`/`--output`, the listing of `--list-devices`, and the choice of the
//! rate, channel counts and sample formats both streams run with ([`Devices`]).

use super::LiveOptions;
use crate::engine::MAX_CHANNELS;
use anyhow::{anyhow, bail, Result};
use cpal::traits::{DeviceTrait, HostTrait};
use cpal::SampleFormat;
use std::io::Write;

/// Which cpal host to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostChoice {
    /// cpal's default host (ALSA on Linux).
    Default,
    /// ALSA.
    Alsa,
    /// A running JACK server (the one named by `JACK_DEFAULT_SERVER`, else the default).
    Jack,
}

impl HostChoice {
    /// The cpal host this choice names.
    fn open(self) -> Result<cpal::Host> {
        match self {
            HostChoice::Default => Ok(cpal::default_host()),
            HostChoice::Alsa => Ok(cpal::host_from_id(cpal::HostId::Alsa)?),
            HostChoice::Jack => Ok(cpal::host_from_id(cpal::HostId::Jack)?),
        }
    }
}

/// The devices `whiten live` runs on and how: chosen before the engine exists, because the
/// engine needs the rate and the channel count.
pub(super) struct Devices {
    /// The cpal host both devices belong to.
    pub(super) host: cpal::Host,
    /// The device recorded from.
    pub(super) input: cpal::Device,
    /// The device played to.
    pub(super) output: cpal::Device,
    /// The input's default sample rate; the output runs at the same rate (no resampling).
    pub(super) rate: u32,
    /// Channels recorded and whitened (the engine's channel count).
    pub(super) channels: usize,
    /// The input stream's sample format.
    pub(super) in_format: SampleFormat,
    /// Output stream channels: `channels` if the output device plays that many, else its
    /// default count.
    pub(super) out_channels: usize,
    /// The output stream's sample format.
    pub(super) out_format: SampleFormat,
}

impl Devices {
    /// Open the host, pick the devices `opts` names (or the defaults) and choose the streams'
    /// rate, channel counts and sample formats.
    pub(super) fn open(opts: &LiveOptions) -> Result<Self> {
        let host = opts.host.open()?;
        let input = pick_device(&host, opts.input.as_deref(), true, opts.host)?;
        let output = pick_device(&host, opts.output.as_deref(), false, opts.host)?;
        let in_default = input.default_input_config().map_err(|e| {
            anyhow!(
                "input device {} has no default configuration ({e}); {}",
                device_label(&input),
                no_device_hint(opts.host, host.id().name(), "input")
            )
        })?;
        let rate = in_default.sample_rate();
        let channels = opts
            .channels
            .unwrap_or((in_default.channels() as usize).min(MAX_CHANNELS));
        let in_format = input_format(&input, channels as u16, rate, in_default.sample_format())
            .ok_or_else(|| {
                anyhow!(
                    "input device {:?} cannot record {channels} channels at {rate} Hz as f32, \
                     i32 or i16 (see --list-devices; --channels chooses the count)",
                    device_name(&input)
                )
            })?;
        let (out_channels, out_format) = output_layout(&output, channels, rate)?;
        Ok(Self {
            host,
            input,
            output,
            rate,
            channels,
            in_format,
            out_channels,
            out_format,
        })
    }
}

/// The output's channel count and sample format: the same channel count as the input if
/// possible, else the device's default count (with a note on stderr about what is heard).
fn output_layout(
    output: &cpal::Device,
    channels: usize,
    rate: u32,
) -> Result<(usize, SampleFormat)> {
    Ok(match output_format(output, channels as u16, rate) {
        Some(f) => (channels, f),
        None => {
            let def = output
                .default_output_config()
                .map(|c| c.channels())
                .unwrap_or(2);
            let f = output_format(output, def, rate).ok_or_else(|| {
                anyhow!(
                    "output device {:?} cannot play {channels} (or {def}) channels at {rate} Hz \
                     (the input's rate); pick another --output",
                    device_name(output)
                )
            })?;
            eprintln!(
                "whiten live: the output plays {def} channels ({channels} whitened{})",
                if channels == 1 {
                    ", mono on every channel"
                } else if (def as usize) < channels {
                    ", the last ones are not heard"
                } else {
                    ", the extra ones are silent"
                }
            );
            (def as usize, f)
        }
    })
}

/// The device's human-readable name.
pub(super) fn device_name(d: &cpal::Device) -> String {
    d.description()
        .map(|desc| desc.name().to_string())
        .unwrap_or_else(|_| d.to_string())
}

/// The device's id as text (`alsa:hw:0,0`, `jack:input`), empty if unknown.
fn device_id(d: &cpal::Device) -> String {
    d.id().map(|id| id.to_string()).unwrap_or_default()
}

/// Whether `arg` names `d`: its name, its id, or its id without the host prefix.
fn device_matches(d: &cpal::Device, arg: &str) -> bool {
    let id = device_id(d);
    device_name(d) == arg
        || (!id.is_empty()
            && (id == arg || id.split_once(':').is_some_and(|(_, rest)| rest == arg)))
}

/// `"name" = id` for messages.
fn device_label(d: &cpal::Device) -> String {
    let (name, id) = (device_name(d), device_id(d));
    if id.is_empty() || id == name {
        format!("{name:?}")
    } else {
        format!("{name:?} = {id}")
    }
}

/// The host's devices of one direction. A device is listed for a direction only if its
/// description says it has it (cpal's JACK host offers input configurations on its output
/// device too).
fn devices_of(host: &cpal::Host, input: bool) -> Result<Vec<cpal::Device>, cpal::Error> {
    let all: Vec<cpal::Device> = if input {
        host.input_devices()?.collect()
    } else {
        host.output_devices()?.collect()
    };
    Ok(all
        .into_iter()
        .filter(|d| {
            d.description().map_or(true, |desc| {
                if input {
                    desc.supports_input()
                } else {
                    desc.supports_output()
                }
            })
        })
        .collect())
}

/// Why there is no usable device, and what to do instead.
fn no_device_hint(host_choice: HostChoice, host_name: &str, what: &str) -> String {
    match host_choice {
        HostChoice::Jack => format!(
            "no JACK {what} device: is a JACK server running{}? Start one (e.g. `jackd -d dummy` \
             or qjackctl), or use the standalone `interneuron_whitening --backend jack`",
            std::env::var("JACK_DEFAULT_SERVER")
                .map(|s| format!(" (JACK_DEFAULT_SERVER={s})"))
                .unwrap_or_default()
        ),
        _ => format!(
            "no usable {what} device on the {host_name} host (no sound card?): try `--host jack` \
             with a running JACK server, or the standalone `interneuron_whitening --backend \
             jack`; `--list-devices` shows what exists"
        ),
    }
}

/// The device `name` names (see [`device_matches`]), or the host's default one.
fn pick_device(
    host: &cpal::Host,
    name: Option<&str>,
    input: bool,
    host_choice: HostChoice,
) -> Result<cpal::Device> {
    let what = if input { "input" } else { "output" };
    let host_name = host.id().name();
    let Some(name) = name else {
        let d = if input {
            host.default_input_device()
        } else {
            host.default_output_device()
        };
        return d.ok_or_else(|| anyhow!(no_device_hint(host_choice, host_name, what)));
    };
    let devices = devices_of(host, input)?;
    if let Some(d) = devices.iter().find(|d| device_matches(d, name)) {
        return Ok(d.clone());
    }
    if devices.is_empty() {
        bail!(
            "--{what} {name:?}: {}",
            no_device_hint(host_choice, host_name, what)
        );
    }
    bail!(
        "--{what} {name:?}: no such {what} device on the {host_name} host; available: {}",
        devices
            .iter()
            .map(device_label)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Print every available host's input and output devices with their default configuration.
pub fn list_devices(out: &mut impl Write) -> Result<()> {
    for id in cpal::available_hosts() {
        writeln!(out, "{} (--host {}):", id.name(), id.name().to_lowercase())?;
        let host = match cpal::host_from_id(id) {
            Ok(h) => h,
            Err(e) => {
                writeln!(out, "  unavailable: {e}")?;
                continue;
            }
        };
        let default_in = host.default_input_device().map(|d| device_name(&d));
        let default_out = host.default_output_device().map(|d| device_name(&d));
        let mut any = false;
        for (input, devices) in [
            (true, devices_of(&host, true)),
            (false, devices_of(&host, false)),
        ] {
            let devices = match devices {
                Ok(d) => d,
                Err(e) => {
                    writeln!(out, "  cannot list devices: {e}")?;
                    continue;
                }
            };
            for d in devices {
                any = true;
                let name = device_name(&d);
                let config = if input {
                    d.default_input_config()
                } else {
                    d.default_output_config()
                };
                let config = config
                    .map(|c| {
                        format!(
                            "{} ch, {} Hz, {}",
                            c.channels(),
                            c.sample_rate(),
                            c.sample_format()
                        )
                    })
                    .unwrap_or_else(|e| format!("no default configuration: {e}"));
                let default = if input {
                    default_in.as_deref() == Some(name.as_str())
                } else {
                    default_out.as_deref() == Some(name.as_str())
                };
                writeln!(
                    out,
                    "  {:<6} {}{}  ({config})",
                    if input { "input" } else { "output" },
                    device_label(&d),
                    if default { " [default]" } else { "" },
                )?;
            }
        }
        if !any {
            writeln!(
                out,
                "  no devices{}",
                if id == cpal::HostId::Jack {
                    " (is a JACK server running?)"
                } else {
                    ""
                }
            )?;
        }
    }
    Ok(())
}

/// Preferred sample formats, best first.
const FORMATS: [SampleFormat; 3] = [SampleFormat::F32, SampleFormat::I32, SampleFormat::I16];

/// A supported output format for `channels` at `rate`: the best one, or `None`.
fn output_format(device: &cpal::Device, channels: u16, rate: u32) -> Option<SampleFormat> {
    let ranges: Vec<_> = device.supported_output_configs().ok()?.collect();
    FORMATS.into_iter().find(|f| {
        ranges.iter().any(|r| {
            r.channels() == channels
                && r.sample_format() == *f
                && (r.min_sample_rate()..=r.max_sample_rate()).contains(&rate)
        })
    })
}

/// A supported input format for `channels` at `rate`, preferring the default one.
fn input_format(
    device: &cpal::Device,
    channels: u16,
    rate: u32,
    default: SampleFormat,
) -> Option<SampleFormat> {
    let ranges: Vec<_> = device.supported_input_configs().ok()?.collect();
    std::iter::once(default).chain(FORMATS).find(|f| {
        FORMATS.contains(f)
            && ranges.iter().any(|r| {
                r.channels() == channels
                    && r.sample_format() == *f
                    && (r.min_sample_rate()..=r.max_sample_rate()).contains(&rate)
            })
    })
}
