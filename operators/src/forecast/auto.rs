//! Automatic model choice: runs several forecasters side by side on the same series and
//! forecasts with the one whose recent one-step error is lowest (the source design's
//! "automatic model tuning", done live and per key).
//!
//! Every candidate sees every observation, so switching costs nothing: the newly chosen model
//! is already warm. The score is the MAE over the last [`AutoConfig::window`] forecasts, the
//! same figure (to the bit) that [`RollingAccuracy::mae`] reports; a candidate becomes eligible
//! once it has [`AutoConfig::min_scored`] scored forecasts, and ties keep the earlier candidate.
//!
//! Only that MAE is kept per candidate, in O(1) per observation: a [`RollingAccuracy`] per
//! candidate would also track RMSE, sMAPE and the MASE scale, which the choice does not use
//! (they took about 5% of the time of `auto` over five candidates).
//!
//! # Examples
//! ```
//! use tidewatch_operators::forecast::auto::{AutoConfig, AutoForecaster};
//! use tidewatch_operators::forecast::ewma::Ewma;
//! use tidewatch_operators::forecast::moving_average::MovingAverage;
//! use tidewatch_operators::forecast::Forecaster;
//!
//! let candidates: Vec<Box<dyn Forecaster>> =
//!     vec![Box::new(MovingAverage::simple(50)), Box::new(Ewma::new(0.9))];
//! let mut auto = AutoForecaster::new(candidates, AutoConfig { window: 20, min_scored: 5, season: 1 });
//! // A series that jumps: the fast EWMA follows it, the long moving average lags behind.
//! for step in 0..200 {
//!     auto.update(if step < 190 { 10.0 } else { 50.0 });
//! }
//! assert_eq!(auto.name(), "ewma");
//! assert!((auto.forecast().unwrap() - 50.0).abs() < 1e-6);
//! ```

use std::collections::VecDeque;

#[cfg(doc)]
use super::accuracy::RollingAccuracy;
use super::Forecaster;

/// How [`AutoForecaster`] scores its candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoConfig {
    /// Number of recent one-step forecasts over which each candidate's MAE is taken.
    pub window: usize,
    /// Least number of scored forecasts before a candidate can be chosen.
    pub min_scored: usize,
    /// Season of the series (1 = none). The choice does not use it; it is kept so that a
    /// configuration says what it was made for ([`AutoConfig::for_season`]).
    pub season: usize,
}

impl AutoConfig {
    /// The default for a series with season `season` (0 or 1 = none): a window of 8 seasons,
    /// at least 96 steps, so that the choice reflects whole cycles rather than the last hour.
    pub fn for_season(season: usize) -> Self {
        let season = season.max(1);
        AutoConfig {
            window: (8 * season).max(96),
            min_scored: season.clamp(10, 96),
            season,
        }
    }
}

/// The MAE of the last `window` one-step forecasts, kept as [`RollingAccuracy`] keeps it (a
/// running sum over a ring, recomputed once per `window` steps against rounding drift), so
/// that both give the same figure to the bit.
#[derive(Clone, Debug)]
struct RecentMae {
    window: usize,
    /// `|y - f|` of the last `window` forecasts, oldest first.
    errors: VecDeque<f64>,
    sum: f64,
    steps_since_recompute: usize,
}

impl RecentMae {
    fn new(window: usize) -> Self {
        let window = window.max(1);
        RecentMae {
            window,
            errors: VecDeque::with_capacity(window + 1),
            sum: 0.0,
            steps_since_recompute: 0,
        }
    }

    fn record(&mut self, forecast: Option<f64>, actual: f64) {
        let Some(forecast) = forecast else { return };
        let error = (actual - forecast).abs();
        self.errors.push_back(error);
        self.sum += error;
        if self.errors.len() > self.window {
            if let Some(old) = self.errors.pop_front() {
                self.sum -= old;
            }
        }
        self.steps_since_recompute += 1;
        if self.steps_since_recompute >= self.window {
            self.steps_since_recompute = 0;
            self.sum = self.errors.iter().sum();
        }
    }

    fn count(&self) -> usize {
        self.errors.len()
    }

    fn mae(&self) -> Option<f64> {
        let n = self.errors.len();
        (n > 0).then(|| self.sum.max(0.0) / n as f64)
    }
}

/// One candidate and its recent MAE.
struct Candidate {
    model: Box<dyn Forecaster>,
    mae: RecentMae,
}

/// Forecasts with the candidate of lowest recent MAE. See the module documentation.
pub struct AutoForecaster {
    candidates: Vec<Candidate>,
    config: AutoConfig,
    chosen: usize,
}

impl AutoForecaster {
    /// Chooses among `candidates` (at least one; an empty list forecasts nothing).
    pub fn new(candidates: Vec<Box<dyn Forecaster>>, config: AutoConfig) -> Self {
        let candidates = candidates
            .into_iter()
            .map(|model| Candidate {
                model,
                mae: RecentMae::new(config.window),
            })
            .collect();
        AutoForecaster {
            candidates,
            config,
            chosen: 0,
        }
    }

    /// Index of the candidate that forecasts now.
    pub fn chosen(&self) -> usize {
        self.chosen
    }

    /// Every candidate's name, number of scored forecasts in the window and MAE over them
    /// (`None` before the first), in the order given to [`AutoForecaster::new`].
    pub fn candidates(&self) -> impl Iterator<Item = (&'static str, usize, Option<f64>)> + '_ {
        self.candidates.iter().map(|candidate| {
            (
                candidate.model.name(),
                candidate.mae.count(),
                candidate.mae.mae(),
            )
        })
    }

    /// The recent MAE of the chosen candidate.
    pub fn mae(&self) -> Option<f64> {
        self.candidates
            .get(self.chosen)
            .and_then(|candidate| candidate.mae.mae())
    }

    fn choose(&mut self) {
        let mut best: Option<(usize, f64)> = None;
        for (index, candidate) in self.candidates.iter().enumerate() {
            if candidate.mae.count() < self.config.min_scored {
                continue;
            }
            if let Some(mae) = candidate.mae.mae() {
                if best.is_none_or(|(_, best_mae)| mae < best_mae) {
                    best = Some((index, mae));
                }
            }
        }
        if let Some((index, _)) = best {
            self.chosen = index;
        }
    }
}

impl Forecaster for AutoForecaster {
    /// The chosen candidate's name: what an alert or a report shows as "the model".
    fn name(&self) -> &'static str {
        self.candidates
            .get(self.chosen)
            .map_or("auto", |candidate| candidate.model.name())
    }

    fn forecast(&self) -> Option<f64> {
        self.candidates
            .get(self.chosen)
            .and_then(|candidate| candidate.model.forecast())
            .or_else(|| {
                self.candidates
                    .iter()
                    .find_map(|candidate| candidate.model.forecast())
            })
    }

    fn update(&mut self, value: f64) {
        for candidate in &mut self.candidates {
            let forecast = candidate.model.forecast();
            candidate.mae.record(forecast, value);
            candidate.model.update(value);
        }
        self.choose();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::accuracy::RollingAccuracy;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The choice's MAE is [`RollingAccuracy::mae`] to the bit, missing forecasts included, so
    /// keeping only it changes no choice.
    #[test]
    fn recent_mae_is_the_rolling_mae() {
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        for window in [1, 5, 96] {
            let mut mae = RecentMae::new(window);
            let mut rolling = RollingAccuracy::new(window, 1);
            for _ in 0..2_000 {
                let actual: f64 = rng.random_range(-1e4..1e4);
                let forecast =
                    (rng.random_range(0..10) > 0).then(|| actual + rng.random_range(-100.0..100.0));
                mae.record(forecast, actual);
                rolling.record(forecast, actual);
                assert_eq!(mae.count(), rolling.count());
                assert_eq!(mae.mae().map(f64::to_bits), rolling.mae().map(f64::to_bits));
            }
        }
    }
}
