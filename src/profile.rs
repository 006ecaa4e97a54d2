//! `imgx run --profile`: where a run's time goes, by primitive and phase (forward, backward,
//! the optimiser's update). Evaluation and reverse mode report each primitive call here by
//! the primitive's registered name; this module knows no primitive.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What a timed call was doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Forward,
    Backward,
    /// The optimiser's step on the learnables (and the finiteness checks around it).
    Update,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Forward => "forward",
            Phase::Backward => "backward",
            Phase::Update => "update",
        }
    }
}

/// One line of a profile.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Row {
    pub name: &'static str,
    pub phase: Phase,
    pub calls: u64,
    pub seconds: f64,
}

/// Calls and their total time, by (name, phase).
type Totals = BTreeMap<(&'static str, Phase), (u64, Duration)>;

/// Time and calls by (name, phase), collected while a run goes on.
#[derive(Default)]
pub struct Profile {
    rows: RefCell<Totals>,
}

impl Profile {
    /// Runs `f`, counting its time under (name, phase).
    pub fn time<R>(&self, name: &'static str, phase: Phase, f: impl FnOnce() -> R) -> R {
        let start = Instant::now();
        let r = f();
        let spent = start.elapsed();
        let mut rows = self.rows.borrow_mut();
        let row = rows.entry((name, phase)).or_default();
        row.0 += 1;
        row.1 += spent;
        r
    }

    /// The rows, the most time first (ties in name and phase order).
    pub fn rows(&self) -> Vec<Row> {
        let mut rows: Vec<Row> = (self.rows.borrow().iter())
            .map(|(&(name, phase), &(calls, time))| Row {
                name,
                phase,
                calls,
                seconds: time.as_secs_f64(),
            })
            .collect();
        rows.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        rows
    }
}

/// Runs `f`, timed into `profile` when there is one.
pub fn timed<R>(
    profile: Option<&Profile>,
    name: &'static str,
    phase: Phase,
    f: impl FnOnce() -> R,
) -> R {
    match profile {
        Some(p) => p.time(name, phase, f),
        None => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_calls_and_orders_by_time() {
        let p = Profile::default();
        for _ in 0..3 {
            p.time("fast", Phase::Forward, || ());
        }
        p.time("slow", Phase::Backward, || {
            std::thread::sleep(Duration::from_millis(5))
        });
        assert_eq!(timed(None, "none", Phase::Update, || 7), 7);
        let rows = p.rows();
        assert_eq!(
            rows.iter()
                .map(|r| (r.name, r.phase, r.calls))
                .collect::<Vec<_>>(),
            [("slow", Phase::Backward, 1), ("fast", Phase::Forward, 3)]
        );
        assert!(rows[0].seconds >= 0.005);
    }
}
