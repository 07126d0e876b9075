//! `GET /metrics`: the Prometheus text exposition of postdesk.
//!
//! Two sources. Events of this process are counted where they happen,
//! through the `metrics` facade, into the recorder [`install`] sets (from
//! `metrics-exporter-prometheus`): messages by source and outcome and the
//! pipeline latency (`store::writer`), the writer's batch size, SMTP
//! sessions and reply codes (`listener`), outbox sends and webhook POSTs by
//! outcome. The state of the store is read at each scrape
//! ([`crate::store::Store::gauges`]): open tickets, backlogs, SLA at risk
//! and breached, mailbox health, detector flags, so those agree with the CLI
//! and survive a restart.
//!
//! Names follow Prometheus conventions: `postdesk_` prefix, `_total` on
//! counters, seconds for durations. Label values come from small fixed sets
//! (sources, outcomes, reply codes, queues, priorities, statuses): no
//! address, subject or URL is a label.

use std::fmt::Write as _;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::store::Gauges;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Seconds from the writer's queue to the commit's answer.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Jobs per committed batch.
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Install the process's recorder (once; later calls return the same
/// handle). Until it is installed, counting is a no-op.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("postdesk_pipeline_duration_seconds".into()),
                &LATENCY_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("postdesk_writer_batch_size".into()),
                    &BATCH_BUCKETS,
                )
            })
            // Only an empty bucket list is refused; ours are not empty.
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed");
        }
        describe();
        handle
    })
}

/// The HELP lines of what this process counts.
fn describe() {
    metrics::describe_counter!(
        "postdesk_messages_total",
        "Messages the writer answered, by source (smtp, lmtp, imap, ingest, web) and outcome (stored, duplicate, failed)."
    );
    metrics::describe_histogram!(
        "postdesk_pipeline_duration_seconds",
        metrics::Unit::Seconds,
        "Seconds from handing a message to the writer to the answer after its commit."
    );
    metrics::describe_histogram!(
        "postdesk_writer_batch_size",
        "Jobs committed per writer transaction."
    );
    metrics::describe_counter!(
        "postdesk_smtp_sessions_total",
        "SMTP and LMTP connections accepted, by protocol."
    );
    metrics::describe_counter!(
        "postdesk_smtp_replies_total",
        "SMTP and LMTP replies sent, by reply code."
    );
    metrics::describe_counter!(
        "postdesk_outbox_sends_total",
        "Outbox send attempts, by outcome (sent, retry, failed)."
    );
    metrics::describe_counter!(
        "postdesk_webhook_posts_total",
        "Webhook POST attempts, by event and outcome (sent, or the failure's class)."
    );
}

/// The exposition: what this process counted, then `gauges` from the
/// store.
pub fn render(handle: &PrometheusHandle, gauges: &Gauges) -> String {
    handle.run_upkeep();
    let mut out = handle.render();
    write_gauges(&mut out, gauges);
    out
}

/// A label value, escaped for the text format (backslash, quote, newline).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn write_gauges(out: &mut String, g: &Gauges) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    header(
        out,
        "postdesk_tickets_open",
        "gauge",
        "Tickets not closed or resolved, by queue, priority and status.",
    );
    for (queue, priority, status, n) in &g.open_tickets {
        let _ = writeln!(
            out,
            "postdesk_tickets_open{{queue=\"{}\",priority=\"{}\",status=\"{}\"}} {n}",
            esc(queue),
            esc(priority),
            esc(status)
        );
    }
    for (name, help, rows) in [
        (
            "postdesk_outbox_backlog",
            "Outbox rows not sent, by status (queued, sending, failed).",
            &g.outbox,
        ),
        (
            "postdesk_webhook_backlog",
            "Webhook deliveries not delivered, by status (queued, sending, failed).",
            &g.webhooks,
        ),
    ] {
        header(out, name, "gauge", help);
        for status in ["queued", "sending", "failed"] {
            let n = rows.iter().find(|(s, _)| s == status).map_or(0, |r| r.1);
            let _ = writeln!(out, "{name}{{status=\"{status}\"}} {n}");
        }
    }
    header(
        out,
        "postdesk_sla_tickets",
        "gauge",
        "Open tickets whose SLA is at risk (a warning fired, no breach) or breached.",
    );
    let _ = writeln!(
        out,
        "postdesk_sla_tickets{{state=\"at_risk\"}} {}",
        g.sla_at_risk
    );
    let _ = writeln!(
        out,
        "postdesk_sla_tickets{{state=\"breached\"}} {}",
        g.sla_breached
    );
    header(
        out,
        "postdesk_imap_mailboxes",
        "gauge",
        "Polled mailboxes with a recorded health, by state (healthy, broken).",
    );
    let _ = writeln!(
        out,
        "postdesk_imap_mailboxes{{state=\"healthy\"}} {}",
        g.mailboxes_healthy
    );
    let _ = writeln!(
        out,
        "postdesk_imap_mailboxes{{state=\"broken\"}} {}",
        g.mailboxes_broken
    );
    header(
        out,
        "postdesk_detector_flagged_messages_total",
        "counter",
        "Messages the bypass detector flagged, by queue.",
    );
    for (queue, n) in &g.detector_flags {
        let _ = writeln!(
            out,
            "postdesk_detector_flagged_messages_total{{queue=\"{}\"}} {n}",
            esc(queue)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_gauges_are_written_with_escaped_labels_and_every_status() {
        let mut out = String::new();
        write_gauges(
            &mut out,
            &Gauges {
                open_tickets: vec![("su\"pport".into(), "high".into(), "Open".into(), 3)],
                webhooks: vec![("failed".into(), 2)],
                ..Gauges::default()
            },
        );
        assert!(out.contains(
            "postdesk_tickets_open{queue=\"su\\\"pport\",priority=\"high\",status=\"Open\"} 3\n"
        ));
        assert!(out.contains("postdesk_webhook_backlog{status=\"failed\"} 2\n"));
        assert!(out.contains("postdesk_webhook_backlog{status=\"queued\"} 0\n"));
        assert!(out.contains("# TYPE postdesk_outbox_backlog gauge\n"));
    }
}
