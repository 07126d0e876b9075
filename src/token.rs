//! Signed reply addresses by purpose: `support+<token>@example.com`.
//!
//! Receives a purpose, a ticket id and the keys from the configuration;
//! returns a short token that names the purpose and the ticket and carries
//! an HMAC-SHA256 over them, so mail sent to the address threads by rule 1
//! even when every header was rewritten. Four purposes, each its own MAC
//! domain (the purpose is part of what is signed, so one can never be
//! turned into another):
//!
//! - [`Purpose::Agent`] (`a<ticket>-<mac>`): the only address that
//!   authenticates an agent. The MAC also covers the address of the agent it
//!   was issued to, so it is bound to the ticket *and* that agent; it goes
//!   only into mail to that agent (the notification's `Reply-To`, the
//!   answer to a command error, an alert to an admin who is an agent).
//! - [`Purpose::Bounce`] (`b<ticket>.<outbox row>-<mac>`): the envelope
//!   sender of mail postdesk sends, one per recipient (VERP), so a DSN
//!   finds its ticket and the one recipient it is about; it threads
//!   bounces and automatic mail only, and a bounce suppresses only the
//!   recipient of the row it names. It grants nothing else.
//! - [`Purpose::Customer`] (`c<ticket>-<mac>`): an optional customer reply
//!   address (`[threading] customer_reply_address`); threads a reply like
//!   `In-Reply-To` does, never grants agent rights.
//! - [`Purpose::Rating`] (`s<ticket>.<score>-<mac>`): a one-click
//!   satisfaction rating, 1 to 5, in the survey mail sent when a ticket is
//!   resolved (`mailto:` links, so any mail client can answer it). The
//!   score is signed with the ticket, so an address cannot be edited into
//!   another score or another ticket. Mail to it records the rating and
//!   does nothing else (see `crate::satisfaction`).
//! - [`Purpose::Page`] (`p<ticket>.<day>-<mac>`): not an address but the
//!   customer page link (`<public_url>/t/<token>`) an acknowledgement
//!   carries. The MAC covers the last day (days since 1970, UTC) the link
//!   works, so an old link cannot be extended; it shows the ticket's
//!   customer-visible messages and takes a reply, nothing else.
//!
//! A guessed, altered or foreign token does not verify: the MAC is checked
//! in constant time (`hmac`'s `verify_truncated_left`). 64 bits of MAC make
//! a blind guess succeed once in 2^64 tries, far beyond what SMTP lets
//! anyone send. Tokens are lower-case (addresses are compared lower-cased)
//! and use only characters of a dot-atom local part (RFC 5322 §3.4.1).
//!
//! Rotation: [`Keys`] holds the current secret, which signs and verifies,
//! and optionally the previous one, which only verifies, so addresses
//! already sent keep working while the previous secret stays configured.
//!
//! The first format (`<ticket>-<mac>`, one purpose for everything) leaked
//! to customers as an envelope sender; it no longer verifies at all.

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::domain::TicketId;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MAC kept in a token.
const MAC_BYTES: usize = 8;

/// Fewest bytes a secret may have: shorter keys make the MAC guessable
/// offline from a few tokens.
pub const MIN_SECRET_BYTES: usize = 16;

/// Domain separation: the MAC is over this label, the purpose and the
/// ticket (and for an agent address the agent), never the id alone.
const LABEL: &[u8] = b"postdesk reply address v2\0";

/// The key that signs reply addresses. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret from raw bytes (surrounding whitespace removed, as a file
    /// written with `echo` ends in a newline); `None` when shorter than
    /// [`MIN_SECRET_BYTES`].
    pub fn new(bytes: &[u8]) -> Option<Secret> {
        let trimmed = bytes.trim_ascii();
        (trimmed.len() >= MIN_SECRET_BYTES).then(|| Secret(trimmed.to_vec()))
    }

    /// A fresh random secret of 32 bytes, hex-encoded (64 characters), as
    /// written to a generated secret file.
    ///
    /// # Errors
    ///
    /// When the system's random source cannot be read.
    pub fn generate_hex() -> std::io::Result<String> {
        use std::io::Read;
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        Ok(hex::encode(bytes))
    }

    fn mac(&self, purpose: &Purpose<'_>, ticket: TicketId) -> HmacSha256 {
        // HMAC accepts keys of any length; `new_from_slice` only fails for
        // MACs with fixed key sizes, which HMAC is not.
        let mut mac =
            HmacSha256::new_from_slice(&self.0).expect("HMAC-SHA256 takes keys of any length");
        mac.update(LABEL);
        mac.update(&[purpose.kind().letter()]);
        mac.update(&ticket.0.to_be_bytes());
        match purpose {
            Purpose::Agent(agent) => {
                mac.update(b"\0");
                mac.update(agent.to_ascii_lowercase().as_bytes());
            }
            Purpose::Bounce { outbox } => mac.update(&outbox.to_be_bytes()),
            Purpose::Page { expires_day } => mac.update(&expires_day.to_be_bytes()),
            Purpose::Customer => {}
            Purpose::Rating { score } => mac.update(&[*score]),
        }
        mac
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The secrets in force: `current` signs and verifies; `previous` (while an
/// admin rotates) only verifies.
#[derive(Debug, Clone, Copy)]
pub struct Keys<'a> {
    /// Signs and verifies.
    pub current: &'a Secret,
    /// Verifies only.
    pub previous: Option<&'a Secret>,
}

impl Keys<'_> {
    fn verifies(&self, purpose: &Purpose<'_>, ticket: TicketId, tag: &[u8]) -> bool {
        std::iter::once(self.current)
            .chain(self.previous)
            .any(|s| s.mac(purpose, ticket).verify_truncated_left(tag).is_ok())
    }
}

/// What an address is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose<'a> {
    /// Authenticates the agent with this address on the ticket.
    Agent(&'a str),
    /// The envelope sender of one outbox row (one recipient): VERP, so a
    /// DSN names the mail and recipient it is about.
    Bounce {
        /// The outbox row.
        outbox: i64,
    },
    /// A customer's reply address.
    Customer,
    /// A satisfaction rating of the ticket, 1 (worst) to 5 (best).
    Rating {
        /// The score the address gives.
        score: u8,
    },
    /// The customer page of a ticket, until the end of this day (days
    /// since 1970-01-01, UTC).
    Page {
        /// The last day the link works.
        expires_day: i64,
    },
}

impl Purpose<'_> {
    /// The purpose without its agent.
    pub fn kind(&self) -> Kind {
        match self {
            Purpose::Agent(_) => Kind::Agent,
            Purpose::Bounce { .. } => Kind::Bounce,
            Purpose::Customer => Kind::Customer,
            Purpose::Rating { .. } => Kind::Rating,
            Purpose::Page { .. } => Kind::Page,
        }
    }
}

/// The scores a rating address may give.
pub const SCORES: std::ops::RangeInclusive<u8> = 1..=5;

/// A purpose as a token shows it (its first letter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `a…`: an agent address.
    Agent,
    /// `b…`: a bounce address.
    Bounce,
    /// `c…`: a customer reply address.
    Customer,
    /// `s…`: a satisfaction rating address.
    Rating,
    /// `p…`: a customer page link.
    Page,
}

impl Kind {
    fn letter(self) -> u8 {
        match self {
            Kind::Agent => b'a',
            Kind::Bounce => b'b',
            Kind::Customer => b'c',
            Kind::Rating => b's',
            Kind::Page => b'p',
        }
    }

    /// The name used in events and `explain`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Agent => "agent",
            Kind::Bounce => "bounce",
            Kind::Customer => "customer",
            Kind::Rating => "rating",
            Kind::Page => "page",
        }
    }
}

/// The token for `purpose` on `ticket`, signed with the current key.
pub fn sign(keys: Keys<'_>, purpose: &Purpose<'_>, ticket: TicketId) -> String {
    let tag = keys.current.mac(purpose, ticket).finalize().into_bytes();
    let outbox = match purpose {
        Purpose::Bounce { outbox } => format!(".{outbox}"),
        Purpose::Rating { score } => format!(".{score}"),
        Purpose::Page { expires_day } => format!(".{expires_day}"),
        _ => String::new(),
    };
    format!(
        "{}{}{outbox}-{}",
        char::from(purpose.kind().letter()),
        ticket.0,
        hex::encode(&tag[..MAC_BYTES])
    )
}

/// A token's shape, before its MAC is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The purpose it claims.
    pub kind: Kind,
    /// The ticket it claims.
    pub ticket: TicketId,
    /// The outbox row a bounce address claims (`None` for the others).
    pub outbox: Option<i64>,
    /// The score a rating address claims (`None` for the others).
    pub score: Option<u8>,
    /// The last day a page link claims to work (`None` for the others).
    pub expires_day: Option<i64>,
    tag: Vec<u8>,
}

/// The purpose and ticket a token *claims*, without checking its MAC;
/// `None` when it does not have a token's shape. Only for deciding what to
/// load before [`verify`] runs: never trust it on its own.
pub fn claim(token: &str) -> Option<Claim> {
    let (head, tag) = token.split_once('-')?;
    let kind = match head.bytes().next()? {
        b'a' => Kind::Agent,
        b'b' => Kind::Bounce,
        b'c' => Kind::Customer,
        b's' => Kind::Rating,
        b'p' => Kind::Page,
        _ => return None,
    };
    let digits = |d: &str| !d.is_empty() && d.len() <= 18 && d.bytes().all(|b| b.is_ascii_digit());
    let mut score = None;
    let (id, extra) = match (kind, head[1..].split_once('.')) {
        (Kind::Bounce | Kind::Page, Some((id, extra))) if digits(extra) => {
            (id, Some(extra.parse().ok()?))
        }
        (Kind::Rating, Some((id, s))) if s.len() == 1 && digits(s) => {
            score = Some(s.parse::<u8>().ok().filter(|s| SCORES.contains(s))?);
            (id, None)
        }
        (Kind::Bounce | Kind::Page | Kind::Rating, _) | (_, Some(_)) => return None,
        (_, None) => (&head[1..], None),
    };
    let (outbox, expires_day) = match kind {
        Kind::Page => (None, extra),
        _ => (extra, None),
    };
    let well_formed = digits(id)
        && tag.len() == MAC_BYTES * 2
        && tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !well_formed {
        return None;
    }
    Some(Claim {
        kind,
        ticket: TicketId(id.parse().ok()?),
        outbox,
        score,
        expires_day,
        tag: hex::decode(tag).ok()?,
    })
}

/// Whether the first format (`<ticket>-<mac>`, before purposes) has this
/// shape: such a token is recognised only to say why it is refused.
pub fn is_retired_format(token: &str) -> bool {
    token.split_once('-').is_some_and(|(id, tag)| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
            && tag.len() == MAC_BYTES * 2
            && tag.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Whether `claim` verifies for `purpose` (whose kind must be the claim's)
/// under either key.
pub fn verify(keys: Keys<'_>, claim: &Claim, purpose: &Purpose<'_>) -> bool {
    claim.kind == purpose.kind() && keys.verifies(purpose, claim.ticket, &claim.tag)
}

/// Whether `claim` is a bounce address that verifies; the outbox row it
/// names when it does.
pub fn verify_bounce(keys: Keys<'_>, claim: &Claim) -> Option<i64> {
    let outbox = claim.outbox?;
    verify(keys, claim, &Purpose::Bounce { outbox }).then_some(outbox)
}

/// Whether `claim` is a rating address that verifies; the score it gives
/// when it does. The score is part of what is signed: an address edited to
/// another score does not verify.
pub fn verify_rating(keys: Keys<'_>, claim: &Claim) -> Option<u8> {
    let score = claim.score?;
    verify(keys, claim, &Purpose::Rating { score }).then_some(score)
}

/// The ticket a customer page link opens, when it verifies and `today`
/// (days since 1970, UTC) is not past its last day; `None` for a forged,
/// altered, expired or foreign token alike, so a caller cannot tell them
/// apart.
pub fn verify_page(keys: Keys<'_>, token: &str, today: i64) -> Option<TicketId> {
    let claim = claim(token)?;
    let expires_day = claim.expires_day?;
    (verify(keys, &claim, &Purpose::Page { expires_day }) && today <= expires_day)
        .then_some(claim.ticket)
}

/// The agent an agent address was issued to, among `agents` (addresses);
/// `None` when it verifies for none of them (or is not an agent address).
pub fn verify_agent<'a>(
    keys: Keys<'_>,
    claim: &Claim,
    agents: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    if claim.kind != Kind::Agent {
        return None;
    }
    agents
        .into_iter()
        .find(|a| keys.verifies(&Purpose::Agent(a), claim.ticket, &claim.tag))
}

/// `base` with the token for `purpose` on `ticket` as its sub-address:
/// `support@example.com` becomes `support+a1042-…@example.com`.
pub fn address(keys: Keys<'_>, purpose: &Purpose<'_>, ticket: TicketId, base: &str) -> String {
    let (local, domain) = base.rsplit_once('@').unwrap_or((base, ""));
    let local = local.split_once('+').map_or(local, |(l, _)| l);
    format!("{local}+{}@{domain}", sign(keys, purpose, ticket))
}

/// Split `local+detail@domain` into `local@domain` and `detail`. An address
/// without `+` has no detail. Only the first `+` counts, as in Postfix's
/// `recipient_delimiter`.
pub fn split_detail(address: &str) -> (String, Option<&str>) {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return (address.to_string(), None);
    };
    match local.split_once('+') {
        Some((base, detail)) => (format!("{base}@{domain}"), Some(detail)),
        None => (address.to_string(), None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new(b"0123456789abcdef-test-secret\n").unwrap()
    }

    fn other() -> Secret {
        Secret::new(b"another secret of enough length").unwrap()
    }

    fn keys(s: &Secret) -> Keys<'_> {
        Keys {
            current: s,
            previous: None,
        }
    }

    const BOB: &str = "bob@example.com";
    const ANN: &str = "ann@example.com";

    #[test]
    fn each_purpose_signs_a_token_that_verifies_only_for_that_purpose() {
        let s = secret();
        let k = keys(&s);
        let t = TicketId(1042);
        let agent = sign(k, &Purpose::Agent(BOB), t);
        let bounce = sign(k, &Purpose::Bounce { outbox: 77 }, t);
        let customer = sign(k, &Purpose::Customer, t);
        assert!(agent.starts_with("a1042-"), "{agent}");
        assert!(bounce.starts_with("b1042.77-"), "{bounce}");
        assert!(customer.starts_with("c1042-"), "{customer}");
        assert_eq!(agent.len(), "a1042-".len() + 16);
        let c = claim(&agent).unwrap();
        assert_eq!((c.kind, c.ticket), (Kind::Agent, t));
        assert!(verify(k, &c, &Purpose::Agent(BOB)));
        assert_eq!(verify_bounce(k, &claim(&bounce).unwrap()), Some(77));
        // Another row's MAC does not verify for this row.
        let other_row = sign(k, &Purpose::Bounce { outbox: 78 }, t);
        let swapped = format!("b1042.77-{}", other_row.split_once('-').unwrap().1);
        assert_eq!(verify_bounce(k, &claim(&swapped).unwrap()), None);
        assert!(verify(k, &claim(&customer).unwrap(), &Purpose::Customer));
        // One purpose's MAC under another purpose's letter never verifies.
        let mac = |tok: &str| tok.split_once('-').unwrap().1.to_owned();
        let bounce_as_agent = claim(&format!("a1042-{}", mac(&bounce))).unwrap();
        assert_eq!(verify_agent(k, &bounce_as_agent, [BOB, ANN]), None);
        let agent_as_bounce = claim(&format!("b1042.77-{}", mac(&agent))).unwrap();
        assert_eq!(verify_bounce(k, &agent_as_bounce), None);
        let customer_as_agent = claim(&format!("a1042-{}", mac(&customer))).unwrap();
        assert_eq!(verify_agent(k, &customer_as_agent, [BOB, ANN]), None);
    }

    #[test]
    fn a_rating_address_signs_its_score_and_ticket() {
        let s = secret();
        let k = keys(&s);
        let t = TicketId(1042);
        let four = sign(k, &Purpose::Rating { score: 4 }, t);
        assert!(four.starts_with("s1042.4-"), "{four}");
        let c = claim(&four).unwrap();
        assert_eq!((c.kind, c.ticket, c.score), (Kind::Rating, t, Some(4)));
        assert_eq!(verify_rating(k, &c), Some(4));
        let mac = four.split_once('-').unwrap().1;
        // The score edited: the MAC no longer verifies.
        let five = claim(&format!("s1042.5-{mac}")).unwrap();
        assert_eq!(verify_rating(k, &five), None);
        // Another ticket with this MAC.
        let other_ticket = claim(&format!("s1043.4-{mac}")).unwrap();
        assert_eq!(verify_rating(k, &other_ticket), None);
        // A forged MAC, and one signed with another secret.
        let forged = claim("s1042.4-0011223344556677").unwrap();
        assert_eq!(verify_rating(k, &forged), None);
        let o = other();
        let foreign = claim(&sign(keys(&o), &Purpose::Rating { score: 4 }, t)).unwrap();
        assert_eq!(verify_rating(k, &foreign), None);
        // A customer or agent MAC under the rating letter, and back.
        let customer = sign(k, &Purpose::Customer, t);
        let as_rating = claim(&format!("s1042.4-{}", customer.split_once('-').unwrap().1)).unwrap();
        assert_eq!(verify_rating(k, &as_rating), None);
        let as_customer = claim(&format!("c1042-{mac}")).unwrap();
        assert!(!verify(k, &as_customer, &Purpose::Customer));
        // Scores outside 1 to 5 and malformed shapes are not rating tokens.
        for bad in [
            "s1042.0-0011223344556677",
            "s1042.6-0011223344556677",
            "s1042.45-0011223344556677",
            "s1042-0011223344556677",
            "s1042.-0011223344556677",
            "s.4-0011223344556677",
        ] {
            assert_eq!(claim(bad), None, "{bad}");
        }
        for score in SCORES {
            let tok = sign(k, &Purpose::Rating { score }, t);
            assert_eq!(verify_rating(k, &claim(&tok).unwrap()), Some(score));
        }
    }

    #[test]
    fn an_agent_address_is_bound_to_its_agent_and_ticket() {
        let s = secret();
        let k = keys(&s);
        let bobs = claim(&sign(k, &Purpose::Agent(BOB), TicketId(7))).unwrap();
        assert_eq!(verify_agent(k, &bobs, [ANN, BOB]), Some(BOB));
        assert_eq!(verify_agent(k, &bobs, [ANN]), None);
        assert!(!verify(k, &bobs, &Purpose::Agent(ANN)));
        // Case of the configured address does not matter.
        assert!(verify(k, &bobs, &Purpose::Agent("Bob@Example.COM")));
        // Another ticket's MAC on this id.
        let eight = sign(k, &Purpose::Agent(BOB), TicketId(8));
        let swapped = claim(&format!("a7-{}", eight.split_once('-').unwrap().1)).unwrap();
        assert_eq!(verify_agent(k, &swapped, [BOB]), None);
    }

    #[test]
    fn altered_foreign_and_retired_tokens_do_not_verify() {
        let s = secret();
        let k = keys(&s);
        let good = sign(k, &Purpose::Bounce { outbox: 3 }, TicketId(7));
        let mut flipped = good.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        let o = other();
        let foreign = sign(keys(&o), &Purpose::Bounce { outbox: 3 }, TicketId(7));
        for bad in [flipped.as_str(), foreign.as_str()] {
            assert_eq!(verify_bounce(k, &claim(bad).unwrap()), None, "{bad}");
        }
        for malformed in [
            "b7",
            "b7.3-",
            "b-0011223344556677",
            "b.3-0011223344556677",
            "b7.-0011223344556677",
            "b7-0011223344556677",
            "a7.3-0011223344556677",
            "b7.3-00112233445566",
            "b7.3-0011223344556677aa",
            "b7.3-00112233445566GG",
            "x7-0011223344556677",
            "7-0011223344556677",
            "bx7-0011223344556677",
        ] {
            assert_eq!(claim(malformed), None, "{malformed}");
        }
        assert!(is_retired_format("7-0011223344556677"));
        assert!(!is_retired_format("b7.3-0011223344556677"));
    }

    #[test]
    fn the_previous_secret_verifies_while_set_but_never_signs() {
        let new = secret();
        let old = other();
        let issued_before = sign(keys(&old), &Purpose::Agent(BOB), TicketId(9));
        let c = claim(&issued_before).unwrap();
        let rotating = Keys {
            current: &new,
            previous: Some(&old),
        };
        assert_eq!(verify_agent(rotating, &c, [BOB]), Some(BOB));
        assert_eq!(verify_agent(keys(&new), &c, [BOB]), None);
        // Signing always uses the current key.
        assert_eq!(
            sign(rotating, &Purpose::Customer, TicketId(9)),
            sign(keys(&new), &Purpose::Customer, TicketId(9))
        );
    }

    #[test]
    fn short_secrets_are_refused_and_never_printed() {
        assert!(Secret::new(b"short").is_none());
        assert!(Secret::new(b"   0123456789abcde   ").is_none());
        assert_eq!(format!("{:?}", secret()), "Secret(<redacted>)");
        let g = Secret::generate_hex().unwrap();
        assert_eq!(g.len(), 64);
        assert!(Secret::new(g.as_bytes()).is_some());
    }

    #[test]
    fn a_page_link_opens_its_ticket_until_its_last_day_only() {
        let s = secret();
        let k = keys(&s);
        let t = TicketId(42);
        let link = sign(
            k,
            &Purpose::Page {
                expires_day: 20_000,
            },
            t,
        );
        assert!(link.starts_with("p42.20000-"), "{link}");
        assert_eq!(verify_page(k, &link, 19_990), Some(t));
        assert_eq!(verify_page(k, &link, 20_000), Some(t));
        assert_eq!(verify_page(k, &link, 20_001), None);
        // A later day under the same MAC (extending the link) fails.
        let mac = link.split_once('-').unwrap().1;
        assert_eq!(verify_page(k, &format!("p42.30000-{mac}"), 20_001), None);
        // Another ticket, another purpose's MAC, another key: no ticket.
        assert_eq!(verify_page(k, &format!("p43.20000-{mac}"), 19_990), None);
        let customer = sign(k, &Purpose::Customer, t);
        let cmac = customer.split_once('-').unwrap().1;
        assert_eq!(verify_page(k, &format!("p42.20000-{cmac}"), 19_990), None);
        assert_eq!(verify_page(k, &customer, 19_990), None);
        let o = other();
        let foreign = sign(
            keys(&o),
            &Purpose::Page {
                expires_day: 20_000,
            },
            t,
        );
        assert_eq!(verify_page(k, &foreign, 19_990), None);
        for junk in [
            "p42-0011223344556677",
            "p42.x-0011223344556677",
            "",
            "../etc",
        ] {
            assert_eq!(verify_page(k, junk, 0), None, "{junk}");
        }
    }

    #[test]
    fn address_carries_the_token_as_sub_address() {
        let s = secret();
        let k = keys(&s);
        let a = address(k, &Purpose::Customer, TicketId(5), "support@example.com");
        let (base, detail) = split_detail(&a);
        assert_eq!(base, "support@example.com");
        let c = claim(detail.unwrap()).unwrap();
        assert!(verify(k, &c, &Purpose::Customer));
        assert_eq!(split_detail("a@b.c"), ("a@b.c".to_string(), None));
    }
}
