//! `whiten demo`'s last part, the paper's effect in audio (docs/DESIGN.md §4.4): rendered into a
//! temporary directory, its measured readaptation times beside the continuous-time theory.

use interneuron_whitening::demo::paper::{render, PaperEvent};
use interneuron_whitening::whitener::WhitenerKind;

#[test]
fn the_paper_scene_shows_the_effect_measured_beside_the_theory() {
    let dir = tempfile::tempdir().unwrap();
    let report = render(dir.path()).unwrap();
    for f in &report.files {
        assert!(
            f.exists() && std::fs::metadata(f).unwrap().len() > 0,
            "{f:?}"
        );
    }
    for row in &report.rows {
        // The gain-modulating circuit has no closed-form theory (docs/DESIGN.md §2.9).
        assert_eq!(row.theory[WhitenerKind::Gain.index()], None);
        for kind in WhitenerKind::ALL
            .into_iter()
            .filter(|k| *k != WhitenerKind::Gain)
        {
            let (m, t) = (row.measured[kind.index()], row.theory[kind.index()]);
            let (m, t) = (m.unwrap(), t.unwrap());
            assert!(
                (m - t).abs() <= (0.2 * t).max(0.2),
                "{:?} {kind}: measured {m:.2} s, theory {t:.2} s",
                row.event
            );
        }
    }
    // From s = 100 the direct circuit is at least ten times slower than the interneuron circuit
    // (the theory says 37×; linear against logarithmic in s).
    let s100 = report
        .rows
        .iter()
        .find(|r| r.event == PaperEvent::Reinit(100.0))
        .unwrap();
    let ratio = s100.measured[0].unwrap() / s100.measured[1].unwrap();
    assert!(ratio >= 10.0, "direct / interneuron at s = 100: {ratio:.1}");
    let text = interneuron_whitening::demo::paper::format_table(&report);
    assert!(text.contains("re-initialise at s = 100"), "{text}");
}
