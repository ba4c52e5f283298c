//! The gap check: every delivery's seq is compared with the last one the same session saw in
//! the same conversation, so loss, duplicates and disorder are counted rather than assumed away.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Loss and disorder seen by one or more sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gaps {
    /// Seqs skipped over: a delivery of seq n after n - k - 1 misses k.
    pub missing: u64,
    /// Deliveries of a seq already seen.
    pub duplicates: u64,
    /// Deliveries of a seq lower than the last one seen, not seen before.
    pub reordered: u64,
}

impl Gaps {
    /// Adds another count into this one.
    pub fn add(&mut self, other: &Gaps) {
        self.missing += other.missing;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
    }
}

/// The seqs one session has seen, per conversation.
#[derive(Debug, Default)]
pub struct GapCheck {
    last: HashMap<Box<str>, Seen>,
    gaps: Gaps,
}

#[derive(Debug)]
struct Seen {
    /// The first seq seen: the baseline.
    first: u64,
    last: u64,
    /// Seqs skipped and not yet delivered late, and seqs below the baseline delivered late
    /// (bounded: beyond it, a late delivery is counted as a duplicate).
    skipped: Vec<u64>,
    early: Vec<u64>,
}

/// How many seqs a conversation remembers, to tell a late delivery from a duplicate.
const REMEMBERED: usize = 1024;

impl GapCheck {
    /// Records a delivery of `seq` in `conversation`. The first seq seen in a conversation is
    /// its baseline: a session that joins a stream mid-way is not missing what came before,
    /// and what came before but arrives late is disorder, not duplication.
    pub fn see(&mut self, conversation: &str, seq: u64) {
        let Some(seen) = self.last.get_mut(conversation) else {
            self.last
                .insert(conversation.into(), Seen { first: seq, last: seq, skipped: Vec::new(), early: Vec::new() });
            return;
        };
        if seq == seen.last + 1 {
            seen.last = seq;
        } else if seq > seen.last {
            let skipped = seq - seen.last - 1;
            self.gaps.missing += skipped;
            for s in (seen.last + 1..seq).take(REMEMBERED.saturating_sub(seen.skipped.len())) {
                seen.skipped.push(s);
            }
            seen.last = seq;
        } else if let Some(i) = seen.skipped.iter().position(|&s| s == seq) {
            // Late, not lost: what was counted missing was disorder.
            seen.skipped.swap_remove(i);
            self.gaps.missing -= 1;
            self.gaps.reordered += 1;
        } else if seq < seen.first && !seen.early.contains(&seq) && seen.early.len() < REMEMBERED {
            seen.early.push(seq);
            self.gaps.reordered += 1;
        } else {
            self.gaps.duplicates += 1;
        }
    }

    /// What this session has seen wrong so far.
    pub fn gaps(&self) -> Gaps {
        self.gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(seqs: &[(&str, u64)]) -> Gaps {
        let mut c = GapCheck::default();
        for (conversation, seq) in seqs {
            c.see(conversation, *seq);
        }
        c.gaps()
    }

    #[test]
    fn in_order_streams_are_clean_from_any_start() {
        assert!(check(&[("a", 1), ("a", 2), ("b", 7), ("a", 3), ("b", 8)]).eq(&Gaps::default()));
        assert!(check(&[("a", 41), ("a", 42)]).eq(&Gaps::default()), "joining mid-stream is not loss");
    }

    #[test]
    fn loss_duplicates_and_disorder_are_told_apart() {
        assert_eq!(check(&[("a", 1), ("a", 4)]), Gaps { missing: 2, duplicates: 0, reordered: 0 });
        assert_eq!(check(&[("a", 1), ("a", 2), ("a", 2)]), Gaps { missing: 0, duplicates: 1, reordered: 0 });
        // Sent before the first one seen but delivered after it: disorder; seen twice: a duplicate.
        assert_eq!(check(&[("a", 5), ("a", 3), ("a", 6), ("a", 3)]), Gaps { missing: 0, duplicates: 1, reordered: 1 });
        assert_eq!(check(&[("a", 1), ("a", 3), ("a", 2)]), Gaps { missing: 0, duplicates: 0, reordered: 1 });
        assert_eq!(
            check(&[("a", 1), ("a", 3), ("a", 2), ("a", 2), ("a", 5)]),
            Gaps { missing: 1, duplicates: 1, reordered: 1 }
        );
        // Another conversation's seqs do not interfere.
        assert_eq!(check(&[("a", 1), ("b", 1), ("a", 2), ("b", 3)]).missing, 1);
    }

    #[test]
    fn a_huge_jump_is_counted_without_remembering_every_seq() {
        let mut c = GapCheck::default();
        c.see("a", 1);
        c.see("a", 1_000_000);
        assert_eq!(c.gaps().missing, 999_998);
        c.see("a", 5);
        assert_eq!(c.gaps(), Gaps { missing: 999_997, duplicates: 0, reordered: 1 });
        let mut total = Gaps::default();
        total.add(&c.gaps());
        total.add(&Gaps { missing: 3, duplicates: 1, reordered: 0 });
        assert_eq!(total, Gaps { missing: 1_000_000, duplicates: 1, reordered: 1 });
    }
}
