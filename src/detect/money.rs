//! Money: bank and card numbers, IBANs and wallet addresses in the text.
//!
//! Receives a token (or a digit run) the scanner found and answers whether
//! it is payment evidence, always through a checksum where the format has
//! one ([`checksums`](super::checksums)):
//!
//! - IBAN: country, registered length, mod-97;
//! - ABA routing number: 9 digits, checksum, and a banking word near it;
//! - bank account number: 6–17 digits after "account"/"acct" when the
//!   sentence talks about a bank, routing or wire;
//! - card number: 13–19 digits, a known issuer prefix, Luhn;
//! - Bitcoin (Base58Check P2PKH/P2SH, Bech32/Bech32m segwit), Litecoin,
//!   Dogecoin, Tron (Base58Check with their version bytes), Ethereum (`0x` +
//!   40 hex; its EIP-55 checksum needs Keccak, which the crate does not
//!   carry, so the strict shape stands in for it).
//!
//! Wallet checks read the original text: Base58 is case-sensitive and the
//! skeleton is lower-cased.

use super::checksums::{
    aba_is_valid, base58check_decode, iban_is_valid, iban_length, luhn_is_valid,
    segwit_address_is_valid,
};
use super::patterns::Compiled;
use super::phone::Run;
use super::words::{self, LINE_STOPS, words_before};

/// The IBAN starting at the token `start..end` of the skeleton (groups of
/// characters separated by single spaces, as printed): its end.
pub(crate) fn iban_at(norm: &[u8], start: usize, end: usize) -> Option<usize> {
    let tok = &norm[start..end];
    if tok.len() < 4
        || !tok[0].is_ascii_alphabetic()
        || !tok[1].is_ascii_alphabetic()
        || !tok[2].is_ascii_digit()
        || !tok[3].is_ascii_digit()
    {
        return None;
    }
    let want = iban_length(&tok[..2])?;
    let mut compact = [0u8; 34];
    let mut n = 0;
    let mut i = start;
    loop {
        let mut j = i;
        while j < norm.len() && norm[j].is_ascii_alphanumeric() {
            if n == compact.len() {
                return None;
            }
            compact[n] = norm[j];
            n += 1;
            j += 1;
        }
        if n == want {
            let s = std::str::from_utf8(&compact[..n]).ok()?;
            return iban_is_valid(s).then_some(j);
        }
        if n > want {
            return None;
        }
        // Next group: exactly one space (or a dash), then more characters.
        if j + 1 < norm.len()
            && matches!(norm[j], b' ' | b'-')
            && norm[j + 1].is_ascii_alphanumeric()
        {
            i = j + 1;
        } else {
            return None;
        }
    }
}

/// What kind of wallet address a token is.
pub(crate) fn wallet_kind(token: &str) -> Option<&'static str> {
    let b = token.as_bytes();
    if !(25..=90).contains(&b.len()) || !b.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    if b.len() == 42 && (token.starts_with("0x") || token.starts_with("0X")) {
        return b[2..]
            .iter()
            .all(u8::is_ascii_hexdigit)
            .then_some("payment.ethereum");
    }
    let lower = token.to_ascii_lowercase();
    if lower.starts_with("bc1") {
        return segwit_address_is_valid(token, &["bc"]).then_some("payment.bitcoin");
    }
    if lower.starts_with("ltc1") {
        return segwit_address_is_valid(token, &["ltc"]).then_some("payment.litecoin");
    }
    if b.len() > 35 {
        return None;
    }
    let (version, payload) = base58check_decode(token)?;
    if payload != 20 {
        return None;
    }
    match version {
        0x00 | 0x05 => Some("payment.bitcoin"),
        0x30 | 0x32 => Some("payment.litecoin"),
        0x1e | 0x16 => Some("payment.dogecoin"),
        0x41 => Some("payment.tron"),
        _ => None,
    }
}

fn has_card_prefix(d: &[u8]) -> bool {
    let two = (d[0] - b'0') * 10 + (d[1] - b'0');
    let four: u32 = d[..4].iter().fold(0, |a, &x| a * 10 + u32::from(x - b'0'));
    d[0] == b'4'
        || (51..=55).contains(&two)
        || (2221..=2720).contains(&four)
        || two == 34
        || two == 37
        || four == 6011
        || two == 65
        || (644..=649).contains(&(four / 10))
        || (3528..=3589).contains(&four)
        || two == 36
        || two == 38
}

/// A card number: 13–19 digits grouped like a card (or not at all), a
/// known issuer prefix and a valid Luhn digit.
pub(crate) fn is_card(run: &Run) -> bool {
    let n = run.len;
    if !(13..=19).contains(&n) || run.word_digits > 0 || run.plus {
        return false;
    }
    let g = run.groups();
    let grouped = matches!(
        g,
        [4, 4, 4, 4] | [4, 4, 4, 4, 3] | [4, 6, 5] | [4, 6, 4] | [4, 4, 4, 1]
    ) || g.len() == 1;
    let d = run.digits();
    grouped && has_card_prefix(d) && luhn_is_valid(d)
}

/// Banking words near a number: "routing", "aba", "bank", "wire"...
const ROUTING_WORDS: &[&[u8]] = &[b"routing", b"aba", b"rtn", b"transit", b"bank", b"wire"];
const ACCOUNT_WORDS: &[&[u8]] = &[b"account", b"acct", b"checking", b"savings", b"chequing"];
const BANK_WORDS: &[&[u8]] = &[
    b"routing", b"aba", b"bank", b"wire", b"swift", b"iban", b"bic", b"sort", b"transit",
];

/// A 9-digit run with a valid ABA checksum and a banking word within six
/// words before it.
pub(crate) fn is_routing_number(norm: &[u8], run: &Run) -> bool {
    run.len == 9
        && run.groups() == [9]
        && aba_is_valid(run.digits())
        && words_before(norm, run.start, LINE_STOPS, 6).any(|w| ROUTING_WORDS.contains(&w))
}

/// A 6–17 digit run right after an account word, in a sentence (or the two
/// lines around it) that talks about a bank.
pub(crate) fn is_bank_account(norm: &[u8], run: &Run) -> bool {
    if !(6..=17).contains(&run.len) || run.word_digits > 0 || run.groups().len() > 2 {
        return false;
    }
    if !words_before(norm, run.start, LINE_STOPS, 3).any(|w| ACCOUNT_WORDS.contains(&w)) {
        return false;
    }
    let lo = run.start.saturating_sub(120);
    let hi = (run.end + 120).min(norm.len());
    words::words_in(&norm[lo..hi]).any(|w| BANK_WORDS.contains(&w))
}

/// The platform's own number?
pub(crate) fn is_platform_phone(c: &Compiled, run: &Run) -> bool {
    let d = run.digits();
    c.platform_phones.iter().any(|p| {
        let k = d.len().min(p.len());
        k >= 7 && d[d.len() - k..] == p[p.len() - k..]
    })
}

#[cfg(test)]
mod tests {
    use crate::detect::{Category, Detector, ScanContext};

    fn payment_rules(text: &str) -> Vec<(String, String)> {
        let d = Detector::new(&crate::detect::rules_only()).expect("defaults compile");
        d.scan(text, &ScanContext::default())
            .hits
            .into_iter()
            .filter(|h| h.category == Category::Payment)
            .map(|h| (h.rule, h.text))
            .collect()
    }

    fn has_rule(text: &str, rule: &str) -> bool {
        payment_rules(text).iter().any(|(r, _)| r == rule)
    }

    #[test]
    fn ibans_with_a_valid_checksum_in_any_layout() {
        assert!(has_rule(
            "IBAN: DE89 3704 0044 0532 0130 00 (Commerzbank)",
            "payment.iban"
        ));
        assert!(has_rule(
            "send to GB82WEST12345698765432 please",
            "payment.iban"
        ));
        assert!(has_rule(
            "fr14 2004 1010 0505 0001 3m02 606",
            "payment.iban"
        ));
        assert_eq!(
            payment_rules("to GB82 WEST 1234 5698 7654 32 thanks")
                .iter()
                .find(|(r, _)| r == "payment.iban")
                .map(|(_, t)| t.as_str()),
            Some("GB82 WEST 1234 5698 7654 32")
        );
    }

    #[test]
    fn an_iban_shaped_code_with_a_bad_checksum_is_not_evidence() {
        assert!(!has_rule("ref GB82 WEST 1234 5698 7654 33", "payment.iban"));
        assert!(!has_rule(
            "part DE12 3456 7890 1234 5678 90",
            "payment.iban"
        ));
    }

    #[test]
    fn wallets_need_their_checksums() {
        assert!(has_rule(
            "btc: 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
            "payment.bitcoin"
        ));
        assert!(has_rule(
            "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
            "payment.bitcoin"
        ));
        assert!(has_rule(
            "send to bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4.",
            "payment.bitcoin"
        ));
        assert!(has_rule(
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
            "payment.bitcoin"
        ));
        assert!(has_rule(
            "0x52908400098527886E0F7030069857D2E4169EE7",
            "payment.ethereum"
        ));
        // One character off: no checksum, no hit.
        assert!(!has_rule(
            "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb",
            "payment.bitcoin"
        ));
        assert!(!has_rule(
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",
            "payment.bitcoin"
        ));
        // A 64-hex transaction hash is not an address.
        assert!(
            payment_rules("tx 0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060")
                .is_empty()
        );
    }

    #[test]
    fn a_tron_address_round_trips_through_base58check() {
        assert_eq!(
            super::wallet_kind("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"),
            Some("payment.tron")
        );
    }

    #[test]
    fn routing_and_account_numbers_next_to_banking_words() {
        assert!(has_rule(
            "routing 021000021 account 123456789",
            "payment.routing_number"
        ));
        assert!(has_rule(
            "Bank: Chase, acct 483920117, routing 021000021",
            "payment.bank_account"
        ));
        // Valid ABA digits without a banking word: an order number.
        assert!(!has_rule("order 021000021", "payment.routing_number"));
    }

    #[test]
    fn card_numbers_pass_luhn() {
        assert!(has_rule(
            "card 4111 1111 1111 1111 exp 04/27",
            "payment.card_number"
        ));
        assert!(!has_rule("card 4111 1111 1111 1112", "payment.card_number"));
        assert!(!has_rule("order 4111111111111111", "payment.card_number"));
    }
}
