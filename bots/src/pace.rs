//! Rate control. Open loop: sends are scheduled at fixed times whatever the server does, and
//! latency is measured from the scheduled time, so a slow server cannot hide its queueing by
//! slowing the load down (coordinated omission).

use std::time::Duration;

/// The send schedule of one sender: `rate` sends per second from a start time.
#[derive(Debug, Clone)]
pub struct Pacer {
    interval: Duration,
    sent: u64,
}

/// What the pacer says to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send the send that was due at this offset from the start.
    Send(Duration),
    /// Nothing is due before this offset.
    Wait(Duration),
}

impl Pacer {
    /// A schedule of `rate` sends per second; `None` when `rate` is not positive.
    pub fn new(rate: f64) -> Option<Pacer> {
        (rate > 0.0 && rate.is_finite()).then(|| Pacer { interval: Duration::from_secs_f64(1.0 / rate), sent: 0 })
    }

    /// Given the time since the start, the next send that is due (late ones first: catching
    /// up is part of open loop), or how long until one is.
    pub fn next(&mut self, elapsed: Duration) -> Next {
        let due = self.interval.saturating_mul(self.sent.min(u32::MAX as u64) as u32);
        if due <= elapsed {
            self.sent += 1;
            Next::Send(due)
        } else {
            Next::Wait(due)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn open_loop_schedule_is_fixed_and_catches_up() {
        let mut p = Pacer::new(100.0).unwrap();
        assert_eq!(p.next(ms(0)), Next::Send(ms(0)));
        assert_eq!(p.next(ms(5)), Next::Wait(ms(10)));
        // Late by 25 ms: the three sends that were due go at once, each with its own due time,
        // so their latency counts the lateness.
        assert_eq!(p.next(ms(35)), Next::Send(ms(10)));
        assert_eq!(p.next(ms(35)), Next::Send(ms(20)));
        assert_eq!(p.next(ms(35)), Next::Send(ms(30)));
        assert_eq!(p.next(ms(35)), Next::Wait(ms(40)));
    }

    #[test]
    fn rate_over_a_run_is_exact() {
        let mut p = Pacer::new(2500.0).unwrap();
        let mut sent = 0;
        // A sender that wakes every 7 ms for 2 s.
        let mut t = Duration::ZERO;
        while t < Duration::from_secs(2) {
            while let Next::Send(_) = p.next(t) {
                sent += 1;
            }
            t += ms(7);
        }
        // The last wake-up is at 1995 ms: every send due by then, one per 0.4 ms from 0.
        assert_eq!(sent, 1995 * 10 / 4 + 1);
        assert!(Pacer::new(0.0).is_none());
        assert!(Pacer::new(f64::NAN).is_none());
    }
}
