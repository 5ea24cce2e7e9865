//! [`EventRate`]: a token bucket on the events, log lines and reports a guest produces.
//!
//! A guest may burst up to `max_events_per_second` and sustain that rate; beyond it the
//! guest is ended with a [`LimitExceeded::EventRate`] trap, so a flooding plugin cannot
//! drown the bus, the event log or the CPU in host calls.

use std::time::Instant;

use crate::error::LimitExceeded;

pub(crate) struct EventRate {
    per_second: u32,
    tokens: f64,
    last: Instant,
}

impl EventRate {
    pub(crate) fn new(per_second: u32) -> Self {
        Self {
            per_second,
            tokens: f64::from(per_second),
            last: Instant::now(),
        }
    }

    /// Spends one token, or says the rate is exceeded.
    pub(crate) fn take(&mut self) -> Result<(), LimitExceeded> {
        let now = Instant::now();
        let rate = f64::from(self.per_second);
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(rate);
        self.last = now;
        if self.tokens < 1.0 {
            return Err(LimitExceeded::EventRate(self.per_second));
        }
        self.tokens -= 1.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_up_to_the_rate_passes_then_it_is_refused() {
        let mut rate = EventRate::new(100);
        for _ in 0..100 {
            rate.take().unwrap();
        }
        assert_eq!(rate.take(), Err(LimitExceeded::EventRate(100)));
        std::thread::sleep(std::time::Duration::from_millis(30));
        rate.take().expect("tokens refill with time");
    }
}
