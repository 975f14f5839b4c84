//! The rule that slows down password guessing: too many failed sign-ins for one account
//! or from one address within a window lock further attempts until the window passes.

use chrono::{DateTime, Duration, Utc};

/// Which counter a failed sign-in is charged to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThrottleScope {
    Account,
    Address,
}

impl ThrottleScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Address => "address",
        }
    }
}

/// Failed attempts inside the current window, as counted by the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailureStats {
    pub count: u32,
    pub oldest: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottlePolicy {
    pub window: Duration,
    pub max_per_account: u32,
    pub max_per_address: u32,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            window: Duration::minutes(15),
            max_per_account: 5,
            max_per_address: 20,
        }
    }
}

impl ThrottlePolicy {
    pub fn window_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.window
    }

    /// `Some(seconds to wait)` when the scope has used up its attempts.
    pub fn retry_after(
        &self,
        scope: ThrottleScope,
        stats: FailureStats,
        now: DateTime<Utc>,
    ) -> Option<u64> {
        let max = match scope {
            ThrottleScope::Account => self.max_per_account,
            ThrottleScope::Address => self.max_per_address,
        };
        if stats.count < max {
            return None;
        }
        let oldest = stats.oldest.unwrap_or(now);
        let free_at = oldest + self.window;
        let wait = (free_at - now).num_seconds().max(1);
        Some(u64::try_from(wait).unwrap_or(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn locks_after_the_limit_until_the_oldest_failure_leaves_the_window() {
        let policy = ThrottlePolicy::default();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let oldest = now - Duration::minutes(10);
        let four = FailureStats {
            count: 4,
            oldest: Some(oldest),
        };
        let five = FailureStats {
            count: 5,
            oldest: Some(oldest),
        };
        assert_eq!(policy.retry_after(ThrottleScope::Account, four, now), None);
        assert_eq!(
            policy.retry_after(ThrottleScope::Account, five, now),
            Some(300)
        );
        assert_eq!(policy.retry_after(ThrottleScope::Address, five, now), None);
    }
}
