//! What a message offers to thread on ([`probe`]), and the two values
//! rule 4 compares: the normalised subject and the inbound address.

use std::sync::LazyLock;

use super::{Probe, TokenSeen};
use crate::config::Config;
use crate::domain::Envelope;
use crate::parse::ParsedMessage;

/// What `msg`, arriving under `env`, offers to thread on.
pub fn probe(cfg: &Config, env: &Envelope, msg: &ParsedMessage) -> Probe {
    use crate::domain::Source;
    let has_envelope = matches!(env.source, Source::Smtp | Source::Lmtp);
    let mut tokens: Vec<TokenSeen> = Vec::new();
    let recipients = env
        .rcpt_to
        .iter()
        .map(|r| (r.to_ascii_lowercase(), true))
        .chain(
            msg.to
                .iter()
                .chain(&msg.cc)
                .map(|m| (m.address.to_ascii_lowercase(), false)),
        );
    for (address, in_envelope) in recipients {
        let (_, detail) = crate::token::split_detail(&address);
        let ours = address
            .rsplit_once('@')
            .is_some_and(|(_, d)| cfg.serves_domain(d));
        if let Some(detail) = detail
            && ours
            && (crate::token::claim(detail).is_some() || crate::token::is_retired_format(detail))
            && !tokens.iter().any(|t| t.address == address)
        {
            let token = detail.to_string();
            tokens.push(TokenSeen {
                address,
                token,
                in_envelope: in_envelope && has_envelope,
            });
        }
    }
    let token_tickets = tokens
        .iter()
        .filter_map(|t| crate::token::claim(&t.token).map(|c| c.ticket))
        .collect();
    let subject = msg.subject.as_deref().unwrap_or("");
    Probe {
        sender: msg
            .from
            .as_ref()
            .map(|m| m.address.clone())
            .unwrap_or_default(),
        tokens,
        has_envelope,
        is_automatic: crate::guard::is_automatic(cfg, env, msg).is_some(),
        token_tickets,
        in_reply_to: msg.in_reply_to.clone(),
        references: msg.references.iter().rev().cloned().collect(),
        own_id: msg.message_id.clone(),
        tag: cfg.tickets.tag_number(subject),
        inbound_address: inbound_address(cfg, env, msg),
        normalized_subject: normalize_subject(subject, &cfg.tickets.tag_pattern),
    }
}
/// Reply and forward prefixes in the languages mail clients write them:
/// English (`Re`, `Fwd`, `Fw`), German (`AW`, `WG`), Nordic (`SV`, `VS`,
/// `VL`), Dutch (`Antw`, `Doorst`), French (`Réf`, `TR`, `RE`), Italian (`R`,
/// `I`, `Rif`), Spanish/Portuguese (`RV`, `ENC`, `Res`), Polish (`Odp`),
/// Turkish (`YNT`), Russian (`Отв`), Greek (`Απ`, `ΣΧΕΤ`), Chinese. Each may
/// carry a counter (`Re[2]:`, `Re(2):`, `Re^2:`) and a space before the
/// colon (French typography). `Re: Fwd: AW:` is stripped to the end.
static PREFIX: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::RegexBuilder::new(
        r"^\s*(?:re|fwd?|aw|wg|sv|vs|vl|antw|antwort|doorst|réf|ref|tr|rif|r|i|rv|enc|res|odp|ynt|отв|пр|απ|σχετ|回复|回覆|答复|转发|轉寄)\.?\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:：]",
    )
    .case_insensitive(true)
    .build()
    .expect("the prefix pattern is a valid regex")
});

/// The subject as rule 4 compares it: the ticket tag and reply/forward
/// prefixes removed (repeatedly), whitespace collapsed, lower-case.
pub fn normalize_subject(subject: &str, tag: &regex::Regex) -> String {
    let untagged = tag.replace_all(subject, " ");
    let mut s: &str = &untagged;
    while let Some(m) = PREFIX.find(s) {
        s = &s[m.end()..];
    }
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The address the message came in through, sub-address removed: among the
/// envelope recipients and then To/Cc that postdesk serves, the first
/// support address, else the first sales or info address, else the first
/// address with a mailbox entry, else the first served address at all. So a
/// mail to both support@ and info@ is a support mail, whatever the order
/// (the script's `'support@' in recipient`). Empty when none is ours.
pub fn inbound_address(cfg: &Config, env: &Envelope, msg: &ParsedMessage) -> String {
    let rank = |a: &str| -> Option<u8> {
        let (_, domain) = a.rsplit_once('@')?;
        if !cfg.serves_domain(domain) {
            return None;
        }
        let ad = &cfg.addresses;
        Some(if ad.support.iter().any(|s| s == a) {
            0
        } else if ad.sales.iter().chain(&ad.info).any(|s| s == a) {
            1
        } else if cfg.mailbox(a).is_some() {
            2
        } else {
            3
        })
    };
    let mut best: Option<(u8, String)> = None;
    let all = env.rcpt_to.iter().map(|r| r.to_ascii_lowercase()).chain(
        msg.to
            .iter()
            .chain(&msg.cc)
            .map(|m| m.address.to_ascii_lowercase()),
    );
    for address in all {
        let (base, _) = crate::token::split_detail(&address);
        if let Some(r) = rank(&base)
            && best.as_ref().is_none_or(|(b, _)| r < *b)
        {
            best = Some((r, base));
        }
    }
    best.map(|(_, a)| a).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;

    #[test]
    fn subjects_normalise_across_clients_and_languages() {
        let tag = crate::config::number::tag_pattern(&[
            crate::config::NumberFormat::parse("#{n}").unwrap()
        ])
        .unwrap();
        for (input, want) in [
            ("Printer on fire", "printer on fire"),
            ("Re: Printer on fire", "printer on fire"),
            ("RE: Printer on fire", "printer on fire"),
            ("AW: RE: Fwd: Printer on fire", "printer on fire"),
            ("SV: Printer on fire", "printer on fire"),
            ("Antw: Printer on fire", "printer on fire"),
            ("Réf. : Printer on fire", "printer on fire"),
            ("TR: WG: FW: Printer on fire", "printer on fire"),
            ("Re[2]: Re(3): Re^4: Printer on fire", "printer on fire"),
            ("Re: [#1042] Printer on fire", "printer on fire"),
            ("[#1042] RE: Printer   on fire ", "printer on fire"),
            ("回复: Printer on fire", "printer on fire"),
            ("Отв: Printer on fire", "printer on fire"),
            ("Regarding: printers", "regarding: printers"),
            ("Re:", ""),
            ("", ""),
        ] {
            assert_eq!(normalize_subject(input, &tag), want, "{input:?}");
        }
    }
}
