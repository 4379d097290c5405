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
