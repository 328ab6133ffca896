//! What each function measures: whether its calls are long enough that
//! they should bypass the turn, decided by a vote of its sampled calls.

use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::time::Duration;

use super::LONG_CALL_NS;

/// How long a [`Function`](crate::Function)'s calls take, measured while
/// they hold the GIL under the turn: it decides whether the function takes
/// the turn at all.
///
/// A vote, not an average: each sampled call votes long (the threshold or
/// more) or short, and the function changes sides only when most recent
/// votes agree, so one slow call (the first, which warms caches and imports,
/// or one the host's Python threads interrupted) does not send a short
/// function around the turn, where it would meet contention and look long.
#[derive(Default)]
pub(crate) struct CallStats {
    /// Up by one for a long sample, down by one for a short one, within
    /// 0..=[`VOTES_MAX`].
    pub(super) votes: AtomicU32,
    /// [`SETTLED`], [`VOTING`] or [`LONG`]: what a call needs to know, in one
    /// load.
    pub(super) mode: AtomicU8,
    /// Counts calls while long, to probe one in [`PROBE_EVERY`](super::PROBE_EVERY).
    pub(super) probes: AtomicU32,
}

/// Short, and no recent long call: timed only as sampled.
pub(super) const SETTLED: u8 = 0;
/// Short, with a recent long call: timed at every call until the vote
/// settles, so a long function is found within a few calls, not dozens.
pub(super) const VOTING: u8 = 1;
/// Long: calls bypass the turn, one in [`PROBE_EVERY`](super::PROBE_EVERY) excepted.
pub(super) const LONG: u8 = 2;

const VOTES_MAX: u32 = 8;
/// Long from this many votes up, short again from [`SHORT_AT`] down.
const LONG_AT: u32 = 6;
const SHORT_AT: u32 = 2;

impl CallStats {
    /// Counts one timed call: the scheduler's own, and the calls the
    /// serving threads ([`crate::serve`]) run in their held-GIL scope.
    pub(crate) fn record(&self, took: Duration) {
        let threshold = LONG_CALL_NS.load(Ordering::Relaxed);
        let long_sample = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX) >= threshold;
        // Threads may race here; a lost vote only delays a change of side.
        let votes = self.votes.load(Ordering::Relaxed);
        let votes = if long_sample {
            (votes + 1).min(VOTES_MAX)
        } else {
            votes.saturating_sub(1)
        };
        self.votes.store(votes, Ordering::Relaxed);
        let was_long = self.mode.load(Ordering::Relaxed) == LONG;
        let long = if votes >= LONG_AT {
            true
        } else if votes <= SHORT_AT {
            false
        } else {
            was_long
        };
        let mode = match (long, votes) {
            (true, _) => LONG,
            (false, 0) => SETTLED,
            (false, _) => VOTING,
        };
        self.mode.store(mode, Ordering::Relaxed);
    }

    /// Whether the function's calls bypass the turn: the serving threads
    /// ([`crate::serve`]) run them outside their held-GIL scope.
    pub(crate) fn is_long(&self) -> bool {
        self.mode.load(Ordering::Relaxed) == LONG
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_changes_sides_only_when_most_recent_calls_agree() {
        let stats = CallStats::default();
        let (short, long) = (Duration::from_micros(20), Duration::from_micros(400));
        // One or two slow calls among short ones: still short.
        for sample in [long, long, short, long, short, short] {
            stats.record(sample);
            assert!(!stats.is_long(), "{sample:?}");
        }
        // Long calls in a row: long after enough of them.
        let mut became = None;
        for n in 1..=8 {
            stats.record(long);
            if stats.is_long() && became.is_none() {
                became = Some(n);
            }
        }
        assert_eq!(became, Some(6));
        // A few short probes do not flip it back; most of them do.
        for _ in 0..5 {
            stats.record(short);
        }
        assert!(stats.is_long());
        stats.record(short);
        assert!(!stats.is_long());
    }
}
