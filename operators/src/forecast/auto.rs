//! Automatic model choice: runs several forecasters side by side on the same series and
//! forecasts with the one whose recent one-step error is lowest (the source design's
//! "automatic model tuning", done live and per key).
//!
//! Every candidate sees every observation, so switching costs nothing: the newly chosen model
//! is already warm. The score is the MAE over the last [`AutoConfig::window`] forecasts, the
//! same figure that [`RollingAccuracy`] reports; a candidate becomes eligible once it has
//! [`AutoConfig::min_scored`] scored forecasts, and ties keep the earlier candidate.
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

use super::accuracy::RollingAccuracy;
use super::Forecaster;

/// How [`AutoForecaster`] scores its candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoConfig {
    /// Number of recent one-step forecasts over which each candidate's MAE is taken.
    pub window: usize,
    /// Least number of scored forecasts before a candidate can be chosen.
    pub min_scored: usize,
    /// Season of the series, for the MASE scale of the candidates' accuracy (1 = none).
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

/// One candidate and its recent accuracy.
struct Candidate {
    model: Box<dyn Forecaster>,
    accuracy: RollingAccuracy,
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
                accuracy: RollingAccuracy::new(config.window, config.season),
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

    /// Every candidate's name and recent accuracy, in the order given to [`AutoForecaster::new`].
    pub fn candidates(&self) -> impl Iterator<Item = (&'static str, &RollingAccuracy)> {
        self.candidates
            .iter()
            .map(|candidate| (candidate.model.name(), &candidate.accuracy))
    }

    /// The recent accuracy of the chosen candidate.
    pub fn accuracy(&self) -> Option<&RollingAccuracy> {
        self.candidates
            .get(self.chosen)
            .map(|candidate| &candidate.accuracy)
    }

    fn choose(&mut self) {
        let mut best: Option<(usize, f64)> = None;
        for (index, candidate) in self.candidates.iter().enumerate() {
            if candidate.accuracy.count() < self.config.min_scored {
                continue;
            }
            if let Some(mae) = candidate.accuracy.mae() {
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
            candidate.accuracy.record(forecast, value);
            candidate.model.update(value);
        }
        self.choose();
    }
}
