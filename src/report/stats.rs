//! `postdesk stats satisfaction`: the ratings customers gave, per queue
//! and per agent (the ticket's assignee), as JSON or a table.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::printable;
use crate::store::RatingCount;

/// Count, average and distribution of one group's ratings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Ratings of each score, 1 to 5 (index 0 is score 1).
    pub distribution: [i64; 5],
}

impl Figures {
    /// Count `count` ratings of `score` (1 to 5; others are ignored).
    pub fn add(&mut self, score: u8, count: i64) {
        if let Some(slot) = usize::from(score)
            .checked_sub(1)
            .and_then(|i| self.distribution.get_mut(i))
        {
            *slot += count;
        }
    }

    /// How many ratings.
    pub fn count(&self) -> i64 {
        self.distribution.iter().sum()
    }

    /// The average score, `None` without ratings.
    pub fn average(&self) -> Option<f64> {
        let n = self.count();
        let sum: i64 = self.distribution.iter().zip(1..).map(|(c, s)| c * s).sum();
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        (n > 0).then(|| sum as f64 / n as f64)
    }

    /// `count`, `average` (two decimals) and `distribution` as JSON.
    pub fn json(&self) -> Value {
        let distribution: BTreeMap<String, i64> = self
            .distribution
            .iter()
            .zip(1..)
            .map(|(c, s): (&i64, u8)| (s.to_string(), *c))
            .collect();
        json!({
            "count": self.count(),
            "average": self.average().map(|a| (a * 100.0).round() / 100.0),
            "distribution": distribution,
        })
    }
}

/// The figures by queue and by agent (empty name: unassigned), and over all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Satisfaction {
    /// Every rating.
    pub total: Figures,
    /// By the ticket's queue.
    pub by_queue: BTreeMap<String, Figures>,
    /// By the ticket's assignee.
    pub by_agent: BTreeMap<String, Figures>,
}

/// Sum `rows` into figures.
pub fn satisfaction(rows: &[RatingCount]) -> Satisfaction {
    let mut s = Satisfaction::default();
    for r in rows {
        s.total.add(r.score, r.count);
        s.by_queue
            .entry(r.queue.clone())
            .or_default()
            .add(r.score, r.count);
        s.by_agent
            .entry(r.assignee.clone())
            .or_default()
            .add(r.score, r.count);
    }
    s
}

/// The `stats satisfaction --json` contract.
pub fn satisfaction_json(s: &Satisfaction, since: Option<&str>) -> Value {
    let groups = |m: &BTreeMap<String, Figures>, key: &str| -> Value {
        m.iter()
            .map(|(name, f)| {
                let mut v = f.json();
                if let Value::Object(o) = &mut v {
                    o.insert(key.to_owned(), json!(name));
                }
                v
            })
            .collect()
    };
    json!({
        "since": since,
        "total": s.total.json(),
        "queues": groups(&s.by_queue, "queue"),
        "agents": groups(&s.by_agent, "agent"),
    })
}

/// `stats satisfaction` as a table.
pub fn satisfaction_text(s: &Satisfaction) -> String {
    let line = |name: &str, f: &Figures| {
        let d = f.distribution;
        format!(
            "{:<20} {:>5} {:>7}   {:>4} {:>4} {:>4} {:>4} {:>4}\n",
            printable(name),
            f.count(),
            f.average().map_or("-".to_owned(), |a| format!("{a:.2}")),
            d[0],
            d[1],
            d[2],
            d[3],
            d[4]
        )
    };
    let head = format!(
        "{:<20} {:>5} {:>7}   {:>4} {:>4} {:>4} {:>4} {:>4}\n",
        "", "count", "average", "1", "2", "3", "4", "5"
    );
    let mut out = String::new();
    out.push_str(&format!("By queue\n{head}"));
    for (q, f) in &s.by_queue {
        out.push_str(&line(q, f));
    }
    out.push_str(&format!("\nBy agent\n{head}"));
    for (a, f) in &s.by_agent {
        out.push_str(&line(if a.is_empty() { "(unassigned)" } else { a }, f));
    }
    out.push('\n');
    out.push_str(&line("all", &s.total));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(queue: &str, assignee: &str, score: u8, count: i64) -> RatingCount {
        RatingCount {
            queue: queue.into(),
            assignee: assignee.into(),
            score,
            count,
        }
    }

    #[test]
    fn figures_sum_by_queue_and_agent() {
        let s = satisfaction(&[
            row("support", "bob", 4, 2),
            row("support", "", 1, 1),
            row("sales", "bob", 5, 1),
        ]);
        assert_eq!(s.total.count(), 4);
        assert_eq!(s.total.distribution, [1, 0, 0, 2, 1]);
        assert_eq!(s.total.average(), Some(3.5));
        assert_eq!(s.by_queue["support"].average(), Some(3.0));
        assert_eq!(s.by_agent["bob"].distribution, [0, 0, 0, 2, 1]);
        let v = satisfaction_json(&s, Some("2026-12-01"));
        assert_eq!(v["agents"][1]["agent"], "bob");
        assert_eq!(v["agents"][1]["average"], 4.33);
        assert_eq!(v["queues"][0]["queue"], "sales");
        assert_eq!(v["total"]["distribution"]["4"], 2);
        assert_eq!(Figures::default().average(), None);
    }
}
