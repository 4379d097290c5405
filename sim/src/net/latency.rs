//! One-way message latency: a draw per message from the configured distribution, between
//! the sender's and the receiver's regions.

use crate::config::Latency;
use crate::presets::Preset;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Draws one message's one-way latency in milliseconds.
pub fn sample_latency(
    model: &Latency,
    preset: Option<&Preset>,
    from_region: u8,
    to_region: u8,
    rng: &mut ChaCha8Rng,
) -> u64 {
    match *model {
        Latency::Const(m) => m.0,
        Latency::Uniform(lo, hi) => {
            if lo == hi {
                lo.0
            } else {
                rng.gen_range(lo.0..=hi.0)
            }
        }
        Latency::Normal { mean, sd } => {
            let z = std_normal(rng);
            (mean.0 as f64 + z * sd.0 as f64).max(1.0).round() as u64
        }
        Latency::LogNormal { median, sigma } => {
            let z = std_normal(rng);
            (median.0 as f64 * (sigma * z).exp())
                .clamp(1.0, 1e9)
                .round() as u64
        }
        Latency::Region => {
            let mean = preset.map_or(100, |p| {
                p.latency_ms[from_region as usize][to_region as usize]
            }) as f64;
            // SimBlock's model: Pareto with shape 0.2 * mean and scale mean - 5, whose mean is
            // the measured mean; clamped so that tiny means stay well defined.
            let shape = (0.2 * mean).max(1.1);
            let scale = (mean - 5.0).max(1.0);
            let u: f64 = 1.0 - rng.gen::<f64>(); // in (0, 1]
            (scale / u.powf(1.0 / shape)).clamp(1.0, 1e7).round() as u64
        }
    }
}

/// The smallest one-way latency `model` can draw between peers in `regions` (in ms): the
/// lookahead of a conservative parallel schedule, within which no message sent by one peer
/// can reach another. `const:D` and `uniform:LO..` give D and LO (0 when written so); the
/// normal and log-normal models are clamped at 1 ms; `region`'s Pareto never draws below its
/// scale, the pair's mean minus 5 ms (at least 1), so its floor is the smallest over the
/// region pairs present.
pub fn latency_floor_ms(model: &Latency, preset: Option<&Preset>, regions: &[u8]) -> u64 {
    match *model {
        Latency::Const(m) => m.0,
        Latency::Uniform(lo, _) => lo.0,
        Latency::Normal { .. } | Latency::LogNormal { .. } => 1,
        Latency::Region => {
            let mut present = [false; 256];
            for &r in regions {
                present[r as usize] = true;
            }
            let used: Vec<usize> = (0..256).filter(|&r| present[r]).collect();
            let mut floor = u64::MAX;
            for &a in &used {
                for &b in &used {
                    let mean = preset.map_or(100, |p| {
                        p.latency_ms
                            .get(a)
                            .and_then(|row| row.get(b))
                            .copied()
                            .unwrap_or(100)
                    }) as f64;
                    floor = floor.min((mean - 5.0).max(1.0).round() as u64);
                }
            }
            if floor == u64::MAX {
                1
            } else {
                floor
            }
        }
    }
}

fn std_normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller.
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// No draw falls below the documented floor (100,000 draws per model).
    #[test]
    fn draws_never_fall_below_the_floor() {
        let preset = &crate::presets::BITCOIN_2019;
        let regions: Vec<u8> = (0..6).collect();
        for model in [
            "const:50ms",
            "uniform:10ms..200ms",
            "normal:20ms:30ms",
            "lognormal:5ms:2",
            "region",
        ] {
            let m: Latency = model.parse().unwrap();
            let floor = latency_floor_ms(&m, Some(preset), &regions);
            assert!(floor >= 1, "{model}");
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let mut least = u64::MAX;
            for i in 0..100_000u32 {
                let (a, b) = ((i % 6) as u8, ((i / 6) % 6) as u8);
                least = least.min(sample_latency(&m, Some(preset), a, b, &mut rng));
            }
            assert!(
                least >= floor,
                "{model}: drew {least} below the floor {floor}"
            );
        }
        let region: Latency = "region".parse().unwrap();
        // Only the regions peers are in count: Europe alone has a larger floor than all six.
        assert!(
            latency_floor_ms(&region, Some(preset), &[1])
                >= latency_floor_ms(&region, Some(preset), &regions)
        );
        assert_eq!(latency_floor_ms(&"0ms".parse().unwrap(), None, &[0]), 0);
    }

    #[test]
    fn region_latency_mean_is_close_to_measured() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let p = &crate::presets::BITCOIN_2019;
        let n = 20_000;
        let sum: u64 = (0..n)
            .map(|_| sample_latency(&Latency::Region, Some(p), 0, 1, &mut rng))
            .sum();
        let mean = sum as f64 / n as f64;
        assert!((mean - 124.0).abs() < 6.0, "mean {mean}");
    }
}
