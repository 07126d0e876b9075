//! Signed reply-address tokens: `support+<token>@example.com`.
//!
//! Receives a ticket id and the secret from the configuration; returns a
//! short token that names the ticket and carries an HMAC-SHA256 over it, so
//! a reply sent to the address threads by rule 1 even when every header was
//! rewritten. A guessed, altered or foreign token does not verify: the MAC is
//! checked in constant time (`hmac`'s `verify_truncated_left`), so timing
//! does not leak how much of a guess was right.
//!
//! Format: `<ticket id, decimal>-<first 8 bytes of the MAC, lower-case hex>`,
//! e.g. `1042-3f9a0c1b2d4e5f60`. Lower-case only, because addresses are
//! compared lower-cased; `-` and digits are valid in a dot-atom local part
//! (RFC 5322 §3.4.1). 64 bits of MAC make a blind guess succeed once in
//! 2^64 tries, far beyond what SMTP lets anyone send. The MAC input carries
//! a version label, so a future format cannot be confused with this one.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::ids::TicketId;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MAC kept in a token.
const MAC_BYTES: usize = 8;

/// Fewest bytes a secret may have: shorter keys make the MAC guessable
/// offline from a few tokens.
pub const MIN_SECRET_BYTES: usize = 16;

/// Domain separation: the MAC is over this label and the id, never the id
/// alone, so a MAC made for another purpose with the same key never passes.
const LABEL: &[u8] = b"postdesk reply token v1\0";

/// The key that signs reply tokens. Its `Debug` never shows the bytes.
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

    fn mac(&self, ticket: TicketId) -> HmacSha256 {
        // HMAC accepts keys of any length; `new_from_slice` only fails for
        // MACs with fixed key sizes, which HMAC is not.
        let mut mac =
            HmacSha256::new_from_slice(&self.0).expect("HMAC-SHA256 takes keys of any length");
        mac.update(LABEL);
        mac.update(&ticket.0.to_be_bytes());
        mac
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The token for `ticket`.
pub fn sign(secret: &Secret, ticket: TicketId) -> String {
    let tag = secret.mac(ticket).finalize().into_bytes();
    format!("{}-{}", ticket.0, hex::encode(&tag[..MAC_BYTES]))
}

/// The ticket a token names, if its MAC verifies under `secret`.
pub fn verify(secret: &Secret, token: &str) -> Option<TicketId> {
    let (ticket, tag) = claimed(token)?;
    let tag = hex::decode(tag).ok()?;
    secret.mac(ticket).verify_truncated_left(&tag).ok()?;
    Some(ticket)
}

/// The ticket a token *claims* to name, without checking its MAC; `None`
/// when it does not have the token's shape. Only for deciding what to load
/// before [`verify`] runs: never trust it on its own.
pub fn claimed_ticket(token: &str) -> Option<TicketId> {
    claimed(token).map(|(t, _)| t)
}

fn claimed(token: &str) -> Option<(TicketId, &str)> {
    let (id, tag) = token.split_once('-')?;
    let well_formed = !id.is_empty()
        && id.len() <= 18
        && id.bytes().all(|b| b.is_ascii_digit())
        && tag.len() == MAC_BYTES * 2
        && tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !well_formed {
        return None;
    }
    Some((TicketId(id.parse().ok()?), tag))
}

/// `base` with the token for `ticket` as its sub-address:
/// `support@example.com` becomes `support+1042-…@example.com`.
pub fn reply_address(secret: &Secret, ticket: TicketId, base: &str) -> String {
    let (local, domain) = base.rsplit_once('@').unwrap_or((base, ""));
    let local = local.split_once('+').map_or(local, |(l, _)| l);
    format!("{local}+{}@{domain}", sign(secret, ticket))
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

    #[test]
    fn signed_token_verifies_and_names_its_ticket() {
        let t = sign(&secret(), TicketId(1042));
        assert!(t.starts_with("1042-"), "{t}");
        assert_eq!(t.len(), "1042-".len() + 16);
        assert_eq!(verify(&secret(), &t), Some(TicketId(1042)));
    }

    #[test]
    fn altered_or_foreign_tokens_do_not_verify() {
        let s = secret();
        let good = sign(&s, TicketId(7));
        // Another ticket's MAC on this id.
        let other = sign(&s, TicketId(8));
        let swapped = format!("7-{}", other.split_once('-').unwrap().1);
        // One hex digit changed.
        let mut flipped = good.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        // Signed with another secret.
        let foreign = sign(
            &Secret::new(b"another secret of enough length").unwrap(),
            TicketId(7),
        );
        for bad in [
            swapped.as_str(),
            flipped.as_str(),
            foreign.as_str(),
            "7",
            "7-",
            "-0011223344556677",
            "7-00112233445566",
            "7-0011223344556677aa",
            "7-00112233445566GG",
            "x7-0011223344556677",
        ] {
            assert_eq!(verify(&s, bad), None, "{bad}");
        }
    }

    #[test]
    fn short_secrets_are_refused_and_never_printed() {
        assert!(Secret::new(b"short").is_none());
        assert!(Secret::new(b"   0123456789abcde   ").is_none());
        assert_eq!(format!("{:?}", secret()), "Secret(<redacted>)");
    }

    #[test]
    fn reply_address_carries_the_token_as_sub_address() {
        let s = secret();
        let a = reply_address(&s, TicketId(5), "support@example.com");
        let (base, detail) = split_detail(&a);
        assert_eq!(base, "support@example.com");
        assert_eq!(detail.and_then(|d| verify(&s, d)), Some(TicketId(5)));
        assert_eq!(split_detail("a@b.c"), ("a@b.c".to_string(), None));
    }
}
