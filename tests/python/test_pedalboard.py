"""The VST3 bundle in a third-party host: Spotify's pedalboard, as researchers script plugins
(issue 11, item 5; docs/DESIGN.md §7).

Run by tests/pedalboard_host.rs with the project's Python environment (target/pyenv, made by
`cargo xtask setup`) on the bundle `cargo xtask test` builds (debug, assert_process_allocs:
an allocation inside process() aborts the interpreter, which the Rust side reports). Standalone:

    target/pyenv/bin/python tests/python/test_pedalboard.py -v

The scene is generated here: two independent Gaussian sources through a strongly
non-orthogonal mix (condition number of the covariance ≈ 100) at −14 dBFS, so the input is far
from white at the plugin's reference level and a fresh plugin must learn before it whitens.

What is checked:
* every numeric parameter is a number to pedalboard and takes the value a script sets
  (`plugin.<key> = 50`), booleans are booleans, choices take their names;
* every circuit whitens in both framings at buffer sizes 64, 1000 and 4096: the output
  covariance over the last second is the output level² · I;
* latency compensation: in the spectral framing the plugin reports the FFT size as latency and
  pedalboard's output lines up with the input (the wet signal's cross-correlation with the
  input peaks at lag 0; with dry/wet at 0 the output is the input, sample for sample);
* bounded output: loud, clipped input with NaN and ±Inf samples gives finite output within ±1;
* what `reset` does (pedalboard resets before each render unless `reset=False`): it clears the
  signal history (STFT buffers, dry delay, limiter: silence after a loud render is exactly
  silent) and keeps what the circuits learned (a render after a reset starts whitened, where a
  fresh plugin starts far from white);
* README's Python example runs as printed.
"""

import os
import re
import sys
import time
import unittest

import numpy as np
import pedalboard

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUNDLE = os.environ.get("INTERNEURON_VST3") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"),
    "bundled",
    "Interneuron Whitening.vst3",
)
RATE = 48000
BUFFER_SIZES = (64, 1000, 4096)
CIRCUITS = ("Direct", "Interneuron", "Baseline (ZCA)", "Gain-modulating")
FRAMINGS = ("Channels", "Spectral")
OUTPUT_DB = -18.0
GAIN = 10 ** (OUTPUT_DB / 20)

# Every numeric parameter (by its display name) and the number a script sets it to. The
# adaptation time is short so that the tests converge in a few seconds of audio.
NUMERIC = {
    "Adaptation time": 50.0,
    "Interneurons": 4,
    "Init scale": 2.0,
    "Reference level": -20.0,
    "Output level": OUTPUT_DB,
    "Dry/wet": 100.0,
    "Noise floor": -100.0,
    "FFT size": 512,
    "Bands": 16,
}
BOOLEAN = {"Learning": True, "Re-initialise": False, "Sidechain learning": False}


def scene(seconds, seed=1):
    """A correlated stereo mixture of two white Gaussian sources, float32, (2, frames)."""
    rng = np.random.default_rng(seed)
    sources = rng.standard_normal((2, int(seconds * RATE)))
    mix = np.array([[1.0, 0.9], [0.8, 1.0]])
    x = mix @ sources
    x *= 10 ** (-14 / 20) / np.sqrt(np.mean(x**2))
    return x.astype(np.float32)


def whitening_error(y, gain=GAIN):
    """‖C/g² − I‖_F / √n for the covariance C of y (channels × frames)."""
    y = y.astype(np.float64)
    c = y @ y.T / y.shape[1] / gain**2
    return float(np.linalg.norm(c - np.eye(y.shape[0])) / np.sqrt(y.shape[0]))


def key(plugin, name):
    """The Python name pedalboard gives the parameter displayed as `name`."""
    for k, p in plugin.parameters.items():
        if p.name == name:
            return k
    raise AssertionError(f"no parameter named {name!r} in {sorted(plugin.parameters)}")


def set_number(plugin, name, value):
    """Set a numeric parameter as a script does. If pedalboard does not see it as a number
    (test_every_parameter_is_set_by_number fails then), fall back to the displayed text with
    the nearest value, so that the other tests still test what they are about."""
    k = key(plugin, name)
    p = plugin.parameters[k]
    if p.type is float:
        setattr(plugin, k, value)
        return
    numbers = {}
    for text in p.valid_values:
        m = re.match(r"\s*(-?[0-9.]+)\s*(ms|s)?\b", text)
        if m:
            v = float(m.group(1)) * (1000.0 if m.group(2) == "s" else 1.0)
            numbers[text] = v
    nearest = min(numbers, key=lambda t: abs(numbers[t] - value))
    setattr(plugin, k, nearest)


def load(framing="Channels", **overrides):
    """A fresh plugin with every parameter set by number, name or boolean."""
    plugin = pedalboard.load_plugin(BUNDLE)
    values = dict(NUMERIC, **overrides)
    for name, value in values.items():
        set_number(plugin, name, value)
    for name, value in BOOLEAN.items():
        setattr(plugin, key(plugin, name), value)
    setattr(plugin, key(plugin, "Framing"), framing)
    settle(plugin, framing, values["FFT size"])
    return plugin


def settle(plugin, framing, fft_size):
    """After a structural change (framing, FFT size, bands, interneurons) the plugin builds a
    new engine off the audio thread and reports its latency when it is in place: render a short
    warm-up until it does, as a script should before the render it keeps."""
    want = fft_size if framing == "Spectral" else 0
    deadline = time.monotonic() + 10.0
    silence = np.zeros((2, RATE // 10), dtype=np.float32)
    while True:
        plugin.process(silence, RATE)
        if plugin.reported_latency_samples == want:
            break
        assert time.monotonic() < deadline, (
            f"the plugin never reported latency {want} "
            f"(reports {plugin.reported_latency_samples})"
        )
        time.sleep(0.01)
    # One more render: an engine of the same latency (bands, interneurons) may still be on
    # its way; it is swapped in at the start of the next block.
    time.sleep(0.05)
    plugin.process(silence, RATE)


def check_bounded(test, y, what):
    test.assertTrue(np.all(np.isfinite(y)), f"{what}: non-finite output")
    peak = float(np.max(np.abs(y)))
    test.assertLessEqual(peak, 1.0, f"{what}: output peak {peak}")


class PedalboardHost(unittest.TestCase):
    def test_every_parameter_is_set_by_number(self):
        plugin = pedalboard.load_plugin(BUNDLE)
        names = {p.name: k for k, p in plugin.parameters.items()}
        print("\npedalboard's parameter names:", dict(sorted(names.items())))
        not_numbers = []
        for name, value in NUMERIC.items():
            p = plugin.parameters[key(plugin, name)]
            if p.type is not float:
                shown = list(p.valid_values)
                not_numbers.append(f"{name} ({len(shown)} strings: {shown[:2]} … {shown[-2:]})")
        self.assertEqual(
            not_numbers, [], "parameters pedalboard cannot set by number: " + "; ".join(not_numbers)
        )
        for name, value in NUMERIC.items():
            k = key(plugin, name)
            setattr(plugin, k, value)
            got = getattr(plugin, k)
            lo, hi, step = plugin.parameters[k].range
            # Within the display's precision (three significant digits, or the step).
            tolerance = max(step or 0.0, 0.01 * max(abs(value), 1.0))
            self.assertLessEqual(
                abs(float(got) - value), tolerance, f"plugin.{k} = {value} reads back {got}"
            )
            # Both ends of the range are reachable by number.
            for end in (lo, hi):
                setattr(plugin, k, end)
                self.assertAlmostEqual(float(getattr(plugin, k)), end, delta=tolerance)
        for name, value in BOOLEAN.items():
            k = key(plugin, name)
            self.assertIs(plugin.parameters[k].type, bool, f"{name} is a boolean")
            setattr(plugin, k, not value)
            self.assertEqual(getattr(plugin, k), (not value))
        for name, choices in (("Circuit", CIRCUITS), ("Framing", FRAMINGS)):
            k = key(plugin, name)
            for choice in choices:
                setattr(plugin, k, choice)
                self.assertEqual(getattr(plugin, k), choice)

    def test_every_circuit_whitens_in_both_framings_at_every_buffer_size(self):
        x = scene(3.0)
        before = whitening_error(x[:, -RATE:], 10 ** (-14 / 20))
        self.assertGreater(before, 0.5, "the scene itself must be far from white")
        for framing in FRAMINGS:
            for buffer_size in BUFFER_SIZES:
                plugin = load(framing)
                errors = []
                for circuit in CIRCUITS:
                    setattr(plugin, key(plugin, "Circuit"), circuit)
                    what = f"{framing}, buffer {buffer_size}, {circuit}"
                    y = plugin.process(x, RATE, buffer_size=buffer_size)
                    self.assertEqual(y.shape, x.shape, what)
                    check_bounded(self, y, what)
                    err = whitening_error(y[:, -RATE:])
                    errors.append(f"{circuit} {err:.3f}")
                    self.assertLess(err, 0.1, f"{what}: output not white (error {err:.3f})")
                print(f"\n{framing}, buffer {buffer_size}: whitening error " + ", ".join(errors))

    def test_spectral_latency_is_compensated(self):
        x = scene(2.0, seed=2)
        for fft_size in (256, 1024, 4096):
            plugin = load("Spectral", **{"FFT size": fft_size})
            self.assertEqual(plugin.reported_latency_samples, fft_size)
            y = plugin.process(x, RATE, buffer_size=1000)
            self.assertEqual(y.shape, x.shape)
            # The whitened signal is (per band) a mix of the input channels: its
            # cross-correlation with the input channels peaks at lag 0 if aligned.
            a = y[:, RATE:].astype(np.float64)
            lags = range(-2 * fft_size, 2 * fft_size + 1, 1)
            strength = []
            for lag in lags:
                b = np.roll(x, lag, axis=1)[:, RATE:].astype(np.float64)
                strength.append(np.abs(a @ b.T).sum())
            best = list(lags)[int(np.argmax(strength))]
            print(f"\nFFT {fft_size}: cross-correlation peaks at lag {best}")
            self.assertEqual(best, 0, f"FFT {fft_size}: the wet output is {best} samples late")
            # Dry only: the output is the input itself, aligned (after the 20 ms ramp of the
            # dry/wet smoother at the start of the render).
            set_number(plugin, "Dry/wet", 0.0)
            y = plugin.process(x, RATE, buffer_size=1000)
            ramp = RATE // 20
            np.testing.assert_array_equal(
                y[:, ramp:], x[:, ramp:], f"FFT {fft_size}: dry output is not the aligned input"
            )

    def test_bypass_is_the_aligned_input(self):
        x = scene(1.0, seed=3)
        plugin = load("Spectral", **{"FFT size": 1024})
        bypass = plugin.parameters[key(plugin, "Bypass")]
        on = bypass.valid_values[-1] if bypass.type is not bool else True
        setattr(plugin, key(plugin, "Bypass"), on)
        y = plugin.process(x, RATE, buffer_size=1000)
        np.testing.assert_array_equal(y, x, "bypassed output is not the aligned input")

    def test_output_is_bounded_on_hostile_input(self):
        rng = np.random.default_rng(4)
        x = scene(2.0, seed=4) * 30.0
        x = np.clip(x, -1.0, 1.0)
        for i in range(0, x.shape[1], 4800):
            x[:, i + 100 : i + 110] = np.nan
            x[:, i + 300 : i + 305] = np.inf * np.sign(rng.standard_normal((2, 5)))
        x[:, RATE : RATE + RATE // 4] = 0.0
        for framing in FRAMINGS:
            plugin = load(framing)
            for circuit in CIRCUITS:
                setattr(plugin, key(plugin, "Circuit"), circuit)
                for buffer_size in BUFFER_SIZES:
                    y = plugin.process(x.astype(np.float32), RATE, buffer_size=buffer_size)
                    check_bounded(self, y, f"{framing}, {circuit}, buffer {buffer_size}")

    def test_reset_clears_the_signal_and_keeps_what_was_learned(self):
        # A slow adaptation (1 s), so that a fresh plugin is visibly far from white over the
        # first 0.3 s of a render.
        slow = {"Adaptation time": 1000.0}
        x = scene(8.0, seed=5)
        start = x[:, : 3 * RATE // 10]
        window = slice(RATE // 20, None)
        for framing in FRAMINGS:
            fresh = load(framing, **slow)
            first = whitening_error(fresh.process(start, RATE)[:, window])
            plugin = load(framing, **slow)
            plugin.process(x, RATE)
            # reset=True (pedalboard's default): the learned state is kept.
            again = whitening_error(plugin.process(start, RATE)[:, window])
            print(
                f"\n{framing}: whitening error over the first 0.3 s: fresh {first:.3f}, "
                f"after a reset {again:.3f}"
            )
            self.assertGreater(first, 0.3, f"{framing}: a fresh plugin starts far from white")
            self.assertLess(again, 0.1, f"{framing}: a reset must keep what was learned")
            # The signal history is cleared: after a loud render, a reset and silence give
            # exact silence; without the reset, the spectral framing's buffered tail plays.
            silence = np.zeros((2, RATE // 4), dtype=np.float32)
            plugin.process(x, RATE)
            y = plugin.process(silence, RATE)
            self.assertEqual(float(np.max(np.abs(y))), 0.0, f"{framing}: reset left a tail")
            if framing == "Spectral":
                plugin.process(x, RATE)
                y = plugin.process(silence, RATE, reset=False)
                self.assertGreater(
                    float(np.max(np.abs(y))), 0.0, "without a reset the STFT tail follows"
                )

    def test_readme_example_runs(self):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
        self.assertEqual(len(blocks), 1, "README has one Python example")
        code = blocks[0].replace(
            '"target/bundled/Interneuron Whitening.vst3"', repr(BUNDLE)
        )
        self.assertIn(repr(BUNDLE), code, "the example loads target/bundled/…vst3")
        namespace = {}
        exec(compile(code, "README.md", "exec"), namespace)
        plugin = namespace["plugin"]
        for name in re.findall(r"^plugin\.(\w+)\s*=", code, re.M):
            self.assertIn(name, plugin.parameters, f"README sets plugin.{name}: no such parameter")
        white = namespace["white"]
        self.assertEqual(white.shape[0], 2)
        check_bounded(self, white, "README example")


if __name__ == "__main__":
    print(f"pedalboard {pedalboard.__version__}, numpy {np.__version__}, bundle {BUNDLE}")
    if not os.path.isdir(BUNDLE):
        sys.exit(f"the VST3 bundle {BUNDLE} does not exist: run `cargo xtask test` or "
                 "`cargo xtask bundle interneuron-whitening --lib --features assert_process_allocs`")
    unittest.main()
