//! The stats emitter (docs/DESIGN.md §5): every ~10 ms of audio, one [`StatsRecord`] per
//! whitener into a bounded channel, never blocking.
//!
//! A record's error estimate is always current; eigenvalues cost an O(n³) decomposition per
//! whitener and band, so they are refreshed in turn: in the channels framing one whitener per
//! record (each every 30 ms), in the spectral framing [`EIG_BANDS_PER_RECORD`] bands per
//! record for every whitener. In the spectral framing a record aggregates the bands: mean
//! error, extreme eigenvalues, summed resets, and the full spectrum of the loudest band.

use super::kernels::energy;
use super::race::WhitenerSnapshot;
use super::safety::power_to_db;
use super::stats::{Eigenvalues, StatsRecord, StatsSender};
use super::Core;
use crate::whitener::WhitenerKind;

/// Interval of stats records.
pub const STATS_INTERVAL_MS: f64 = 10.0;
/// Bands whose eigenvalues are refreshed per stats record in the spectral framing (round
/// robin); the error estimate of every band is always current.
pub const EIG_BANDS_PER_RECORD: usize = 4;

/// Makes and sends the stats records of one engine.
pub(super) struct StatsEmitter {
    /// Where records go (`None`: nobody listens).
    sender: Option<StatsSender>,
    /// Whether records are computed at all (off while nobody watches: the eigenvalue
    /// refreshes are the costliest part of the stats).
    pub(super) enabled: bool,
    /// Samples per record.
    pub(super) interval: usize,
    /// Samples until the next record.
    pub(super) countdown: usize,
    /// Sum of squared input samples since the last record (its input level).
    input_energy: f64,
    /// Samples in `input_energy`.
    input_count: u64,
    /// Next band whose eigenvalues a spectral record refreshes.
    eig_band_cursor: usize,
    /// Records made so far (drives the round-robin eigenvalue refresh).
    records_emitted: u64,
    /// Records sent.
    pub(super) sent: u64,
    /// Records dropped because the channel was full.
    pub(super) dropped: u64,
}

impl StatsEmitter {
    /// An emitter making a record every [`STATS_INTERVAL_MS`] at `sample_rate`.
    pub(super) fn new(sample_rate: f64) -> Self {
        let interval = ((STATS_INTERVAL_MS * 1e-3 * sample_rate).round() as usize).max(1);
        Self {
            sender: None,
            enabled: true,
            interval,
            countdown: interval,
            input_energy: 0.0,
            input_count: 0,
            eig_band_cursor: 0,
            records_emitted: 0,
            sent: 0,
            dropped: 0,
        }
    }

    /// Send records on this channel (or stop sending).
    pub(super) fn set_sender(&mut self, sender: Option<StatsSender>) {
        self.sender = sender;
    }

    /// Add a chunk of one channel's input to the level of the next record.
    #[inline]
    pub(super) fn measure(&mut self, seg: &[f32]) {
        self.add_energy(energy(seg), seg.len());
    }

    /// Add the energy `Σ x²` of `count` samples of input (already measured) to the level of
    /// the next record.
    #[inline]
    pub(super) fn add_energy(&mut self, energy: f64, count: usize) {
        self.input_energy += energy;
        self.input_count += count as u64;
    }

    /// Make and send one record per whitener from `races` (one, or one per band). `change`
    /// says a change of the input statistics was detected since the last record, `reinit` that
    /// the whiteners were re-initialised. Never blocks; a full channel drops the record and
    /// counts it.
    pub(super) fn emit(
        &mut self,
        races: &mut Core,
        selected: WhitenerKind,
        time_s: f64,
        change: bool,
        reinit: bool,
    ) {
        let input_rms_db = power_to_db(self.input_energy / self.input_count.max(1) as f64);
        self.input_energy = 0.0;
        self.input_count = 0;
        let Some(tx) = self.sender.as_ref().filter(|_| self.enabled) else {
            return;
        };
        let bands = races.race_count();
        if bands == 0 {
            return;
        }
        // Bands: every whitener's numbers aggregated in one pass over them.
        let aggregates = (bands > 1).then(|| aggregate(races, self.eig_band_cursor));
        for kind in WhitenerKind::ALL {
            let snap = match &aggregates {
                Some(agg) => agg[kind.index()],
                None => {
                    // One race: its own numbers; one whitener's eigenvalues refreshed per
                    // record.
                    let refresh = self.records_emitted % WhitenerKind::ALL.len() as u64
                        == kind.index() as u64;
                    races.race_mut(0).snapshot_with(kind, refresh)
                }
            };
            let record = StatsRecord {
                time_s,
                circuit: kind,
                selected: kind == selected,
                error: snap.error,
                eig_min: snap.eig_min,
                eig_max: snap.eig_max,
                condition: snap.eig_max / snap.eig_min,
                eigenvalues: snap.eigenvalues,
                input_rms_db,
                change,
                reinit,
                resets: snap.resets,
            };
            if tx.try_send(record) {
                self.sent += 1;
            } else {
                self.dropped += 1;
            }
        }
        if bands > 1 {
            self.eig_band_cursor = (self.eig_band_cursor + EIG_BANDS_PER_RECORD) % bands;
        }
        self.records_emitted += 1;
    }
}

/// The band whose input the baseline estimates loudest (largest `tr Ĉ`).
fn loudest_band(races: &Core) -> usize {
    (0..races.race_count())
        .map(|b| races.race(b).estimated_power())
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (b, p)| {
            if p > best.1 {
                (b, p)
            } else {
                best
            }
        })
        .0
}

/// Every whitener's numbers over every band, in [`WhitenerKind::ALL`]'s order: the error
/// averaged over the bins (each band weighted by its share of them), extreme eigenvalues,
/// summed resets, and the eigenvalue spectrum of the loudest band. The eigenvalues of the
/// [`EIG_BANDS_PER_RECORD`] bands from `cursor` on are refreshed.
fn aggregate(races: &mut Core, cursor: usize) -> [WhitenerSnapshot; WhitenerKind::ALL.len()] {
    let mut agg = [WhitenerSnapshot {
        error: 0.0,
        eig_min: f64::INFINITY,
        eig_max: 0.0,
        eigenvalues: Eigenvalues::EMPTY,
        resets: 0,
    }; WhitenerKind::ALL.len()];
    let bands = races.race_count();
    let loudest = loudest_band(races);
    for b in 0..bands {
        let refresh = (b + bands - cursor) % bands < EIG_BANDS_PER_RECORD;
        let weight = races.race_weight(b);
        let summaries = races.race_mut(b).summaries_with(refresh);
        for (a, sn) in agg.iter_mut().zip(&summaries) {
            a.error += weight * sn.error;
            a.eig_min = a.eig_min.min(sn.eig_min);
            a.eig_max = a.eig_max.max(sn.eig_max);
            a.resets += sn.resets;
        }
    }
    if loudest < bands {
        for (a, kind) in agg.iter_mut().zip(WhitenerKind::ALL) {
            a.eigenvalues = races.race(loudest).stats_eigenvalues(kind);
        }
    }
    agg
}
