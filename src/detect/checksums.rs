//! Checksums that decide whether a number-like token is really an IBAN, a
//! wallet address, a routing number or a card number.
//!
//! Receives one candidate token (already cut out of the text by the scanner)
//! and answers yes or no. Where a format carries a checksum, a hit must pass
//! it: that is what keeps the detector's precision high, because random
//! order numbers, hashes and reference codes almost never do.
//!
//! Everything here is pure, allocation-light and tested against published
//! vectors (ISO 13616 examples, BIP-173, BIP-350, the Bitcoin genesis
//! address, the ABA and Luhn textbook examples).

use sha2::{Digest, Sha256};

/// IBAN length by ISO 3166 country code (SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"ad", 24),
    (b"ae", 23),
    (b"al", 28),
    (b"at", 20),
    (b"az", 28),
    (b"ba", 20),
    (b"be", 16),
    (b"bg", 22),
    (b"bh", 22),
    (b"bi", 27),
    (b"br", 29),
    (b"by", 28),
    (b"ch", 21),
    (b"cr", 22),
    (b"cy", 28),
    (b"cz", 24),
    (b"de", 22),
    (b"dj", 27),
    (b"dk", 18),
    (b"do", 28),
    (b"ee", 20),
    (b"eg", 29),
    (b"es", 24),
    (b"fi", 18),
    (b"fk", 18),
    (b"fo", 18),
    (b"fr", 27),
    (b"gb", 22),
    (b"ge", 22),
    (b"gi", 23),
    (b"gl", 18),
    (b"gr", 27),
    (b"gt", 28),
    (b"hr", 21),
    (b"hu", 28),
    (b"ie", 22),
    (b"il", 23),
    (b"iq", 23),
    (b"is", 26),
    (b"it", 27),
    (b"jo", 30),
    (b"kw", 30),
    (b"kz", 20),
    (b"lb", 28),
    (b"lc", 32),
    (b"li", 21),
    (b"lt", 20),
    (b"lu", 20),
    (b"lv", 21),
    (b"ly", 25),
    (b"mc", 27),
    (b"md", 24),
    (b"me", 22),
    (b"mk", 19),
    (b"mn", 20),
    (b"mr", 27),
    (b"mt", 31),
    (b"mu", 30),
    (b"ni", 28),
    (b"nl", 18),
    (b"no", 15),
    (b"om", 23),
    (b"pk", 24),
    (b"pl", 28),
    (b"ps", 29),
    (b"pt", 25),
    (b"qa", 29),
    (b"ro", 24),
    (b"rs", 22),
    (b"ru", 33),
    (b"sa", 24),
    (b"sc", 31),
    (b"sd", 18),
    (b"se", 24),
    (b"si", 19),
    (b"sk", 24),
    (b"sm", 27),
    (b"so", 23),
    (b"st", 25),
    (b"sv", 28),
    (b"tl", 23),
    (b"tn", 24),
    (b"tr", 26),
    (b"ua", 29),
    (b"va", 22),
    (b"vg", 24),
    (b"xk", 20),
    (b"ye", 30),
];

/// The registered IBAN length for a two-letter country code (any case).
pub fn iban_length(country: &[u8]) -> Option<usize> {
    if country.len() != 2 {
        return None;
    }
    let cc = [
        country[0].to_ascii_lowercase(),
        country[1].to_ascii_lowercase(),
    ];
    IBAN_LENGTHS
        .iter()
        .find(|(c, _)| **c == cc)
        .map(|&(_, len)| len)
}

/// True when `iban` (spaces allowed, any case) has its country's registered
/// length and passes the ISO 7064 mod-97 check.
pub fn iban_is_valid(iban: &str) -> bool {
    let mut compact = [0u8; 34];
    let mut n = 0;
    for b in iban.bytes() {
        if b == b' ' {
            continue;
        }
        if !b.is_ascii_alphanumeric() || n == compact.len() {
            return false;
        }
        compact[n] = b.to_ascii_lowercase();
        n += 1;
    }
    let compact = &compact[..n];
    if n < 5
        || !compact[0].is_ascii_alphabetic()
        || !compact[1].is_ascii_alphabetic()
        || !compact[2].is_ascii_digit()
        || !compact[3].is_ascii_digit()
    {
        return false;
    }
    if iban_length(&compact[..2]) != Some(n) {
        return false;
    }
    // Move the first four characters to the end, letters become 10..35,
    // and the whole number must be 1 modulo 97 (ISO 13616).
    let mut rem: u32 = 0;
    for &b in compact[4..].iter().chain(&compact[..4]) {
        if b.is_ascii_digit() {
            rem = (rem * 10 + u32::from(b - b'0')) % 97;
        } else {
            let v = u32::from(b - b'a') + 10;
            rem = (rem * 100 + v) % 97;
        }
    }
    rem == 1
}

const BASE58_ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

fn base58_value(b: u8) -> Option<u8> {
    BASE58_ALPHABET
        .iter()
        .position(|&a| a == b)
        .and_then(|p| u8::try_from(p).ok())
}

/// Decode a Base58 string into `out`, returning the number of bytes, or
/// `None` for a character outside the alphabet or a result longer than `out`.
fn base58_decode(s: &[u8], out: &mut [u8]) -> Option<usize> {
    // Big-endian big number in `out[out.len() - len..]`.
    let cap = out.len();
    let mut len = 0usize;
    out.fill(0);
    for &c in s {
        let mut carry = u32::from(base58_value(c)?);
        let mut i = 0;
        while i < len || carry != 0 {
            if i == cap {
                return None;
            }
            let idx = cap - 1 - i;
            let v = u32::from(out[idx]) * 58 + carry;
            out[idx] = (v & 0xff) as u8;
            carry = v >> 8;
            i += 1;
        }
        len = len.max(i);
    }
    // Leading '1's are leading zero bytes.
    let zeros = s.iter().take_while(|&&c| c == b'1').count();
    let total = len + zeros;
    if total > cap {
        return None;
    }
    out.copy_within(cap - len.., zeros);
    out[..zeros].fill(0);
    Some(total)
}

fn double_sha256_prefix(data: &[u8]) -> [u8; 4] {
    let first = Sha256::digest(data);
    let second = Sha256::digest(first);
    [second[0], second[1], second[2], second[3]]
}

/// Decode a Base58Check string: the version byte and the payload length
/// (without version and checksum) when its double-SHA-256 checksum holds.
pub fn base58check_decode(s: &str) -> Option<(u8, usize)> {
    let mut buf = [0u8; 64];
    let n = base58_decode(s.as_bytes(), &mut buf)?;
    if n < 5 {
        return None;
    }
    let (body, check) = buf[..n].split_at(n - 4);
    if double_sha256_prefix(body) != check {
        return None;
    }
    Some((body[0], body.len() - 1))
}

/// The checksum variant of a Bech32 string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bech32Variant {
    /// BIP-173 (segwit v0).
    Bech32,
    /// BIP-350 (segwit v1 and later).
    Bech32m,
}

const BECH32_CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const BECH32M_CONST: u32 = 0x2bc8_30a3;

fn bech32_polymod_step(chk: u32, v: u8) -> u32 {
    const GEN: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];
    let top = chk >> 25;
    let mut chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
    for (i, g) in GEN.iter().enumerate() {
        if (top >> i) & 1 == 1 {
            chk ^= g;
        }
    }
    chk
}

/// Verify a Bech32 or Bech32m string (BIP-173 / BIP-350): one case
/// throughout, at most 90 characters, a human-readable part of printable
/// ASCII, a separator `1`, and a data part with a valid 6-character checksum.
/// Returns the variant whose checksum holds.
pub fn bech32_verify(s: &str) -> Option<Bech32Variant> {
    bech32_decode(s, &mut [0u8; 90]).map(|(v, _, _)| v)
}

/// Decode a Bech32/Bech32m string into its 5-bit data values (checksum
/// excluded) in `data`; returns the variant, the HRP length and the number of
/// data values.
fn bech32_decode(s: &str, data: &mut [u8; 90]) -> Option<(Bech32Variant, usize, usize)> {
    let b = s.as_bytes();
    if b.len() < 8 || b.len() > 90 {
        return None;
    }
    let has_lower = b.iter().any(u8::is_ascii_lowercase);
    let has_upper = b.iter().any(u8::is_ascii_uppercase);
    if has_lower && has_upper {
        return None;
    }
    if b.iter().any(|&c| !(33..=126).contains(&c)) {
        return None;
    }
    let sep = b.iter().rposition(|&c| c == b'1')?;
    if sep == 0 || sep + 7 > b.len() {
        return None;
    }
    let hrp = &b[..sep];
    let mut chk: u32 = 1;
    for &c in hrp {
        chk = bech32_polymod_step(chk, c.to_ascii_lowercase() >> 5);
    }
    chk = bech32_polymod_step(chk, 0);
    for &c in hrp {
        chk = bech32_polymod_step(chk, c.to_ascii_lowercase() & 31);
    }
    let mut n = 0;
    for &c in &b[sep + 1..] {
        let lc = c.to_ascii_lowercase();
        let v = BECH32_CHARSET.iter().position(|&a| a == lc)?;
        let v = u8::try_from(v).ok()?;
        chk = bech32_polymod_step(chk, v);
        data[n] = v;
        n += 1;
    }
    let variant = match chk {
        1 => Bech32Variant::Bech32,
        BECH32M_CONST => Bech32Variant::Bech32m,
        _ => return None,
    };
    Some((variant, sep, n - 6))
}

/// True when `s` is a valid segwit address (BIP-173 for version 0, BIP-350
/// for versions 1 to 16) whose human-readable part is one of `hrps`
/// (lower case, e.g. `bc`, `tb`, `ltc`).
pub fn segwit_address_is_valid(s: &str, hrps: &[&str]) -> bool {
    let mut data = [0u8; 90];
    let Some((variant, hrp_len, n)) = bech32_decode(s, &mut data) else {
        return false;
    };
    let hrp = &s[..hrp_len];
    if !hrps.iter().any(|h| h.eq_ignore_ascii_case(hrp)) || n == 0 {
        return false;
    }
    let version = data[0];
    if version > 16 {
        return false;
    }
    let expected = if version == 0 {
        Bech32Variant::Bech32
    } else {
        Bech32Variant::Bech32m
    };
    if variant != expected {
        return false;
    }
    // Regroup the 5-bit program into bytes; at most 4 padding bits, all zero.
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut len = 0usize;
    for &v in &data[1..n] {
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            len += 1;
            acc &= (1 << bits) - 1;
        }
    }
    if bits > 4 || acc != 0 {
        return false;
    }
    if !(2..=40).contains(&len) {
        return false;
    }
    version != 0 || len == 20 || len == 32
}

/// True when a 9-digit ABA routing transit number passes its checksum:
/// 3·(d1+d4+d7) + 7·(d2+d5+d8) + (d3+d6+d9) ≡ 0 (mod 10).
pub fn aba_is_valid(digits: &[u8]) -> bool {
    if digits.len() != 9 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut d = [0u32; 9];
    for (x, &b) in d.iter_mut().zip(digits) {
        *x = u32::from(b - b'0');
    }
    // All zeros passes the arithmetic but is no routing number.
    if d.iter().all(|&x| x == 0) {
        return false;
    }
    let sum = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8]);
    sum.is_multiple_of(10)
}

/// True when a string of ASCII digits passes the Luhn check (card numbers).
pub fn luhn_is_valid(digits: &[u8]) -> bool {
    if digits.len() < 2 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut sum = 0u32;
    for (i, &b) in digits.iter().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iban_examples_from_the_registry_pass_mod_97() {
        for iban in [
            "GB82 WEST 1234 5698 7654 32",
            "GB29 NWBK 6016 1331 9268 19",
            "DE89 3704 0044 0532 0130 00",
            "FR14 2004 1010 0505 0001 3M02 606",
            "NL91 ABNA 0417 1643 00",
            "CH93 0076 2011 6238 5295 7",
            "BE68 5390 0754 7034",
            "ES91 2100 0418 4502 0005 1332",
            "IT60 X054 2811 1010 0000 0123 456",
            "NO9386011117947",
            "de89370400440532013000",
        ] {
            assert!(iban_is_valid(iban), "{iban}");
        }
    }

    #[test]
    fn iban_with_a_wrong_digit_or_length_or_country_fails() {
        for iban in [
            "GB82 WEST 1234 5698 7654 33",
            "DE89 3704 0044 0532 0130 0",
            "DE89 3704 0044 0532 0130 001",
            "ZZ89 3704 0044 0532 0130 00",
            "GB82-WEST-1234-5698-7654-32",
            "",
            "DE",
        ] {
            assert!(!iban_is_valid(iban), "{iban}");
        }
    }

    #[test]
    fn base58check_accepts_known_bitcoin_addresses() {
        // The genesis block's coinbase address (P2PKH, version 0).
        assert_eq!(
            base58check_decode("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"),
            Some((0x00, 20))
        );
        // BIP-13 P2SH example (version 5).
        assert_eq!(
            base58check_decode("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"),
            Some((0x05, 20))
        );
        // bitcoinjs P2PKH/P2SH documentation examples.
        assert_eq!(
            base58check_decode("1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH"),
            Some((0x00, 20))
        );
        assert_eq!(
            base58check_decode("3LRW7jeCvQCRdPF8S3yUCfRAx4eqXFmdcr"),
            Some((0x05, 20))
        );
    }

    #[test]
    fn base58check_rejects_a_typo_and_foreign_characters() {
        assert_eq!(
            base58check_decode("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb"),
            None
        );
        assert_eq!(
            base58check_decode("1A1zP1eP5QGefi2DMPTfTL5SLmv7Divf0a"),
            None
        );
        assert_eq!(base58check_decode(""), None);
        assert_eq!(base58check_decode("11111"), None);
    }

    #[test]
    fn bip173_valid_checksums() {
        for s in [
            "A12UEL5L",
            "a12uel5l",
            "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
            "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
            "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
            "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
            "?1ezyfcl",
        ] {
            assert_eq!(bech32_verify(s), Some(Bech32Variant::Bech32), "{s}");
        }
    }

    #[test]
    fn bip173_invalid_checksums() {
        for s in [
            "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx",
            "pzry9x0s0muk",
            "1pzry9x0s0muk",
            "x1b4n0q5v",
            "li1dgmt3",
            "A1G7SGD8",
            "10a06t8",
            "1qzzfhee",
        ] {
            assert_eq!(bech32_verify(s), None, "{s}");
        }
    }

    #[test]
    fn bip350_valid_checksums() {
        for s in [
            "A1LQFN3A",
            "a1lqfn3a",
            "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
            "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
            "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
            "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
            "?1v759aa",
        ] {
            assert_eq!(bech32_verify(s), Some(Bech32Variant::Bech32m), "{s}");
        }
    }

    #[test]
    fn bip350_valid_segwit_addresses() {
        for s in [
            "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4",
            "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
            "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
            "BC1SW50QGDZ25J",
            "bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs",
            "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
            "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        ] {
            assert!(segwit_address_is_valid(s, &["bc", "tb"]), "{s}");
        }
    }

    #[test]
    fn bip350_invalid_segwit_addresses() {
        for s in [
            // Invalid human-readable part.
            "tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut",
            // Bech32 checksum on a v1 address.
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
            // Bech32m checksum on a v0 address.
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",
            // Invalid character.
            "bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4",
            // Program too short.
            "bc1pw5dgrnzv",
            // Invalid program length for witness version 0.
            "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",
            // Mixed case.
            "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq",
            // Empty data section.
            "bc1gmk9yu",
        ] {
            assert!(!segwit_address_is_valid(s, &["bc", "tb"]), "{s}");
        }
    }

    #[test]
    fn segwit_address_for_another_chain_is_not_bitcoin() {
        assert!(!segwit_address_is_valid(
            "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
            &["bc"]
        ));
    }

    #[test]
    fn aba_routing_numbers() {
        assert!(aba_is_valid(b"021000021"));
        assert!(aba_is_valid(b"011000015"));
        assert!(aba_is_valid(b"121000358"));
        assert!(!aba_is_valid(b"021000022"));
        assert!(!aba_is_valid(b"000000000"));
        assert!(!aba_is_valid(b"12345678"));
    }

    #[test]
    fn luhn_textbook_examples() {
        assert!(luhn_is_valid(b"79927398713"));
        assert!(luhn_is_valid(b"4111111111111111"));
        assert!(!luhn_is_valid(b"4111111111111112"));
        assert!(!luhn_is_valid(b"7"));
    }
}
