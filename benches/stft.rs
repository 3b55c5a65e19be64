//! Throughput of the streaming STFT (`framing::stft`): analysis + identity callback + resynthesis
//! for typical plugin block sizes, the cost the spectral framing adds before any circuit runs.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use interneuron_whitening::framing::stft::Stft;

fn bench_stft(c: &mut Criterion) {
    let block = 512;
    let mut group = c.benchmark_group("stft_process");
    for &fft_size in &[256usize, 1024, 8192] {
        for &channels in &[1usize, 2, 8] {
            let mut stft = Stft::new(fft_size, channels).expect("valid size");
            let input: Vec<Vec<f32>> = (0..channels)
                .map(|ch| {
                    (0..block)
                        .map(|t| ((t * 7 + ch * 13) % 101) as f32 / 101.0 - 0.5)
                        .collect()
                })
                .collect();
            let mut output = vec![vec![0.0f32; block]; channels];
            group.throughput(Throughput::Elements((block * channels) as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("N{fft_size}"), format!("{channels}ch")),
                &(),
                |b, _| {
                    b.iter(|| {
                        let ins: Vec<&[f32]> = input.iter().map(|c| c.as_slice()).collect();
                        let mut outs: Vec<&mut [f32]> =
                            output.iter_mut().map(|c| c.as_mut_slice()).collect();
                        stft.process(&ins, &mut outs, |frame| {
                            black_box(frame.channel_mut(0));
                        })
                        .expect("matching buffers");
                        black_box(&outs);
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench_stft);
criterion_main!(benches);
