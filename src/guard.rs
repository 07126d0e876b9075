//! Guard: loop and abuse protection for automatic mail.
//!
//! A pure decision over the configuration, the envelope, the parsed message
//! and what the store counted (automatic mails to the recipient in the last
//! hour, a suppression of the address). The pipeline loads those, asks
//! [`auto_reply`], and either queues the acknowledgement (or command
//! answer) or records the [`AutoReply::Suppressed`] reason as an event.
//!
//! No automatic mail answers a message that is itself automatic (RFC 3834
//! §2): any of the rules of [`is_automatic`], checked in this order, marks
//! it so, and the first that fires is the reason given:
//!
//! 1. `auto_submitted`: `Auto-Submitted` present and not `no`;
//! 2. `precedence`: `Precedence: bulk`, `junk`, `list` (or `auto_reply`);
//! 3. `list_id`: a `List-Id` header (mailing-list traffic);
//! 4. `autoreply_header`: `X-Autoreply`/`X-Autorespond` (vacation
//!    programs), or `X-Auto-Response-Suppress` asking for no auto-reply;
//! 5. `null_return_path`: the null reverse-path `<>` (bounces, and what RFC
//!    3834 §3.3 says automatic responders send);
//! 6. `x_loop`: our own `X-Loop` value: postdesk's mail came back;
//! 7. `system_sender`: a `[senders] system_keywords` word in the sender's
//!    local part (mailer-daemon, noreply, ...).
//!
//! Then `suppressed` (a permanent failure to the address was seen) and
//! `rate_limit` (`[outbound] auto_replies_per_hour`) bound what one
//! recipient can receive, whatever the headers claim: two responders that
//! strip every header above still stop after N mails an hour.
//!
//! Both `[outbound]` values come from the core configuration's
//! [`LoopGuard`](crate::config::LoopGuard), so the guard, which `outbound`
//! itself uses, depends on nothing of `outbound`.

use serde::Serialize;

use crate::config::Config;
use crate::domain::{Envelope, Source};
use crate::parse::ParsedMessage;
use crate::parse::{header_token as token, header_values as values};

/// Why a message counts as automatic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Automatic {
    /// The rule that fired (see the module docs).
    pub because: &'static str,
    /// The header or address that made it fire.
    pub detail: String,
}

/// Whether an automatic answer may go out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum AutoReply {
    /// Send it.
    Send,
    /// Do not; record why.
    Suppressed {
        /// The rule that fired.
        because: &'static str,
        /// What made it fire.
        detail: String,
    },
}

/// Whether the envelope or headers carry the null reverse-path. Only
/// SMTP and LMTP have an envelope (a web message never has the null one); for ingested and polled mail an empty
/// `mail_from` means "unknown", so a `Return-Path: <>` header decides.
pub fn has_null_return_path(env: &Envelope, msg: &ParsedMessage) -> bool {
    match env.source {
        Source::Smtp | Source::Lmtp => env.mail_from.trim().is_empty(),
        // The web door builds the message itself, from a person's form.
        Source::Web => false,
        Source::Ingest | Source::Imap => values(msg, "Return-Path").next().is_some_and(|v| {
            v.trim_matches(|c: char| c == '<' || c == '>' || c.is_whitespace())
                .is_empty()
        }),
    }
}

/// Whether `msg` is automatic mail, and by which rule.
pub fn is_automatic(cfg: &Config, env: &Envelope, msg: &ParsedMessage) -> Option<Automatic> {
    let hit = |because, detail: String| Some(Automatic { because, detail });
    if let Some(v) = values(msg, "Auto-Submitted").find(|v| token(v) != "no") {
        return hit("auto_submitted", format!("Auto-Submitted: {v}"));
    }
    if let Some(v) = values(msg, "Precedence")
        .find(|v| matches!(token(v).as_str(), "bulk" | "junk" | "list" | "auto_reply"))
    {
        return hit("precedence", format!("Precedence: {v}"));
    }
    if let Some(v) = values(msg, "List-Id").next() {
        return hit("list_id", format!("List-Id: {v}"));
    }
    for name in ["X-Autoreply", "X-Autorespond"] {
        if let Some(v) = values(msg, name).next() {
            return hit("autoreply_header", format!("{name}: {v}"));
        }
    }
    if let Some(v) = values(msg, "X-Auto-Response-Suppress").find(|v| {
        v.split(',')
            .map(token)
            .any(|t| matches!(t.as_str(), "all" | "autoreply" | "oof"))
    }) {
        return hit("autoreply_header", format!("X-Auto-Response-Suppress: {v}"));
    }
    if has_null_return_path(env, msg) {
        return hit("null_return_path", "MAIL FROM:<>".into());
    }
    let ours = cfg.loop_guard.x_loop.trim();
    if let Some(v) = values(msg, "X-Loop").find(|v| v.eq_ignore_ascii_case(ours)) {
        return hit("x_loop", format!("X-Loop: {v}"));
    }
    let from = msg.from.as_ref().map(|m| m.address.as_str()).unwrap_or("");
    for address in [from, env.mail_from.as_str()] {
        let local = address.rsplit_once('@').map_or(address, |(l, _)| l);
        if local.is_empty() {
            continue;
        }
        if let Some(k) = cfg.senders.system_keyword(local) {
            return hit("system_sender", format!("{address} ({k})"));
        }
    }
    None
}

/// Whether an automatic answer (acknowledgement, command answer, warning)
/// may go to `msg`'s sender, who received `sent_last_hour` automatic mails
/// in the last hour and whose address is suppressed for `suppression` (the
/// reason), if it is.
pub fn auto_reply(
    cfg: &Config,
    env: &Envelope,
    msg: &ParsedMessage,
    sent_last_hour: u32,
    suppression: Option<&str>,
) -> AutoReply {
    if let Some(a) = is_automatic(cfg, env, msg) {
        return AutoReply::Suppressed {
            because: a.because,
            detail: a.detail,
        };
    }
    limit(cfg, sent_last_hour, suppression)
}

/// The recipient-side limits alone: suppression, then the hourly rate.
pub fn limit(cfg: &Config, sent_last_hour: u32, suppression: Option<&str>) -> AutoReply {
    if let Some(reason) = suppression {
        return AutoReply::Suppressed {
            because: "suppressed",
            detail: reason.to_owned(),
        };
    }
    let max = cfg.loop_guard.auto_replies_per_hour;
    if sent_last_hour >= max {
        return AutoReply::Suppressed {
            because: "rate_limit",
            detail: format!("{sent_last_hour} automatic mails in the last hour (limit {max})"),
        };
    }
    AutoReply::Send
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;
    use crate::parse::Mailbox;

    fn config() -> crate::outbound::Config {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rules.toml"),
            "[server]\nhostname = \"desk.example.com\"\n[outbound]\nauto_replies_per_hour = 3\n",
        )
        .unwrap();
        crate::outbound::whole::load(dir.path()).unwrap()
    }

    fn env(source: Source, mail_from: &str) -> Envelope {
        Envelope {
            mail_from: mail_from.into(),
            rcpt_to: vec!["support@example.com".into()],
            source,
            peer: None,
            helo: String::new(),
            web: None,
        }
    }

    fn msg(from: &str, headers: &[(&str, &str)]) -> ParsedMessage {
        ParsedMessage {
            from: Some(Mailbox {
                name: None,
                address: from.into(),
            }),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            ..ParsedMessage::default()
        }
    }

    /// One table row: envelope, headers, From, the rule expected (or none).
    type Row<'a> = (Envelope, Vec<(&'a str, &'a str)>, &'a str, Option<&'a str>);

    #[test]
    fn automatic_mail_rules_one_row_each() {
        let cfg = config();
        let smtp = |from: &str| env(Source::Smtp, from);
        let rows: Vec<Row<'_>> = vec![
            (smtp("ann@c.test"), vec![], "ann@c.test", None),
            (
                smtp("ann@c.test"),
                vec![("Auto-Submitted", "no")],
                "ann@c.test",
                None,
            ),
            (
                smtp("ann@c.test"),
                vec![("Auto-Submitted", "No (a person)")],
                "ann@c.test",
                None,
            ),
            (
                smtp("ann@c.test"),
                vec![("Auto-Submitted", "auto-replied")],
                "ann@c.test",
                Some("auto_submitted"),
            ),
            (
                smtp("ann@c.test"),
                vec![("auto-submitted", "Auto-Generated; owner=x")],
                "ann@c.test",
                Some("auto_submitted"),
            ),
            (
                smtp("ann@c.test"),
                vec![("Precedence", "bulk")],
                "ann@c.test",
                Some("precedence"),
            ),
            (
                smtp("ann@c.test"),
                vec![("Precedence", "JUNK")],
                "ann@c.test",
                Some("precedence"),
            ),
            (
                smtp("ann@c.test"),
                vec![("Precedence", "list")],
                "ann@c.test",
                Some("precedence"),
            ),
            (
                smtp("ann@c.test"),
                vec![("Precedence", "first-class")],
                "ann@c.test",
                None,
            ),
            (
                smtp("ann@c.test"),
                vec![("List-Id", "<users.lists.c.test>")],
                "ann@c.test",
                Some("list_id"),
            ),
            (
                smtp("ann@c.test"),
                vec![("X-Autoreply", "yes")],
                "ann@c.test",
                Some("autoreply_header"),
            ),
            (
                smtp("ann@c.test"),
                vec![("X-Auto-Response-Suppress", "DR, OOF")],
                "ann@c.test",
                Some("autoreply_header"),
            ),
            (
                smtp("ann@c.test"),
                vec![("X-Auto-Response-Suppress", "DR")],
                "ann@c.test",
                None,
            ),
            (smtp(""), vec![], "ann@c.test", Some("null_return_path")),
            // Ingested mail has no envelope: only Return-Path: <> counts.
            (env(Source::Ingest, ""), vec![], "ann@c.test", None),
            (
                env(Source::Imap, ""),
                vec![("Return-Path", "<>")],
                "ann@c.test",
                Some("null_return_path"),
            ),
            (
                smtp("ann@c.test"),
                vec![("X-Loop", "postdesk@desk.example.com")],
                "ann@c.test",
                Some("x_loop"),
            ),
            (
                smtp("ann@c.test"),
                vec![("X-Loop", "someone-else@x.test")],
                "ann@c.test",
                None,
            ),
            (
                smtp("ann@c.test"),
                vec![],
                "MAILER-DAEMON@c.test",
                Some("system_sender"),
            ),
            (
                smtp("noreply@shop.test"),
                vec![],
                "ann@c.test",
                Some("system_sender"),
            ),
        ];
        for (e, headers, from, expected) in rows {
            let m = msg(from, &headers);
            let got = is_automatic(&cfg, &e, &m);
            assert_eq!(
                got.as_ref().map(|a| a.because),
                expected,
                "{headers:?} from {from} via {:?} <{}>",
                e.source,
                e.mail_from
            );
            let decision = auto_reply(&cfg, &e, &m, 0, None);
            assert_eq!(
                decision == AutoReply::Send,
                expected.is_none(),
                "{decision:?}"
            );
        }
    }

    #[test]
    fn the_first_rule_that_fires_is_the_reason() {
        let cfg = config();
        let m = msg(
            "noreply@c.test",
            &[("Precedence", "bulk"), ("Auto-Submitted", "auto-generated")],
        );
        let a = is_automatic(&cfg, &env(Source::Smtp, ""), &m).unwrap();
        assert_eq!(a.because, "auto_submitted");
        assert_eq!(a.detail, "Auto-Submitted: auto-generated");
    }

    #[test]
    fn the_hourly_limit_and_suppression_bound_a_person_too() {
        let cfg = config();
        let e = env(Source::Smtp, "ann@c.test");
        let m = msg("ann@c.test", &[]);
        assert_eq!(auto_reply(&cfg, &e, &m, 2, None), AutoReply::Send);
        assert!(matches!(
            auto_reply(&cfg, &e, &m, 3, None),
            AutoReply::Suppressed {
                because: "rate_limit",
                ..
            }
        ));
        assert!(matches!(
            auto_reply(&cfg, &e, &m, 0, Some("550 5.1.1 user unknown")),
            AutoReply::Suppressed {
                because: "suppressed",
                ..
            }
        ));
    }
}
