//! DKIM signing with mail-auth 0.13 directly (mail-send's own `dkim`
//! feature needs mail-auth 0.14 and so mail-parser 1.0, which this
//! toolchain cannot build; see `shared/deps.md`).
//!
//! The key is read once per configuration (`[outbound] dkim_key_file`, PEM:
//! PKCS#8 RSA or Ed25519, or PKCS#1 RSA) and the signer built then, so a bad
//! key is a `check` error. [`sign`] signs the bytes exactly as they will be
//! sent and returns them with the `DKIM-Signature` header prepended; the
//! outbox stores the unsigned bytes, and signing happens at send time, so a
//! key rotation applies to mail still queued.

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{DkimSigner, Done};

/// The headers signed: those a forger would want to change, whenever
/// present (a header listed but absent is signed as absent, RFC 6376
/// §5.4, so it cannot be added later either).
pub const SIGNED_HEADERS: [&str; 12] = [
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Auto-Submitted",
];

/// A ready DKIM signer.
pub enum Signer {
    /// RSA-SHA256.
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
    /// Ed25519-SHA256.
    Ed25519(DkimSigner<Ed25519Key, Done>),
}

/// Why a key could not be loaded or a message signed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key file could not be read, or other users can read it (the
    /// message names the file and the `chmod` that fixes it).
    #[error("{0}")]
    Read(String),
    /// The file holds no private key in PEM form.
    #[error("no PEM private key found (expected PKCS#8 or PKCS#1 RSA, or PKCS#8 Ed25519)")]
    NoKey,
    /// The key is not one DKIM can use.
    #[error("unusable key: {0}")]
    Key(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// Load the PEM key in `path` and build a signer for `domain`/`selector`.
///
/// # Errors
///
/// [`Error::Read`], [`Error::NoKey`] or [`Error::Key`].
pub fn load(path: &std::path::Path, domain: &str, selector: &str) -> Result<Signer, Error> {
    let pem = crate::config::read_private_file(path).map_err(Error::Read)?;
    from_pem(&pem, domain, selector)
}

/// A signer from PEM bytes.
///
/// # Errors
///
/// [`Error::NoKey`] or [`Error::Key`].
pub fn from_pem(pem: &[u8], domain: &str, selector: &str) -> Result<Signer, Error> {
    use tokio_rustls::rustls::pki_types::PrivateKeyDer;
    let mut reader = std::io::BufReader::new(pem);
    let found = rustls_pemfile::private_key(&mut reader).map_err(|e| Error::Key(e.to_string()))?;
    let key = found.ok_or(Error::NoKey)?;
    let domain = domain.to_ascii_lowercase();
    // An Ed25519 PKCS#8 key is tried first: RSA parsing rejects it anyway.
    if let PrivateKeyDer::Pkcs8(k) = &key
        && let Ok(ed) = Ed25519Key::from_pkcs8_maybe_unchecked_der(k.secret_pkcs8_der())
    {
        return Ok(Signer::Ed25519(
            DkimSigner::from_key(ed)
                .domain(domain)
                .selector(selector)
                .headers(SIGNED_HEADERS),
        ));
    }
    let rsa = RsaKey::<Sha256>::from_key_der(key).map_err(|e| Error::Key(e.to_string()))?;
    Ok(Signer::Rsa(
        DkimSigner::from_key(rsa)
            .domain(domain)
            .selector(selector)
            .headers(SIGNED_HEADERS),
    ))
}

/// `message` with a `DKIM-Signature` header prepended.
///
/// # Errors
///
/// [`Error::Sign`] when mail-auth cannot sign (no signable header).
pub fn sign(signer: &Signer, message: &[u8]) -> Result<Vec<u8>, Error> {
    let signature = match signer {
        Signer::Rsa(s) => s.sign(message),
        Signer::Ed25519(s) => s.sign(message),
    }
    .map_err(|e| Error::Sign(e.to_string()))?;
    let mut out = Vec::with_capacity(message.len() + 512);
    signature.write_header(&mut out);
    out.extend_from_slice(message);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In a test a panic is the failure report.
mod tests {
    use super::*;

    /// An Ed25519 PKCS#8 key in PEM form, generated for this test.
    fn ed25519_pem() -> (String, Vec<u8>) {
        let der = Ed25519Key::generate_pkcs8().unwrap();
        let public = Ed25519Key::from_pkcs8_der(&der).unwrap().public_key();
        let b64 = base64_encode(&der);
        (
            format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n"),
            public,
        )
    }

    fn base64_encode(data: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    const MAIL: &[u8] = b"From: support@example.com\r\nTo: alice@customer.test\r\n\
        Subject: Hello\r\nMessage-ID: <m1@example.com>\r\n\r\nHi there\r\n";

    #[test]
    fn signing_prepends_a_signature_for_the_configured_domain_and_selector() {
        let (pem, _) = ed25519_pem();
        let signer = from_pem(pem.as_bytes(), "Example.com", "pd2026").unwrap();
        let signed = sign(&signer, MAIL).unwrap();
        assert!(signed.ends_with(MAIL));
        let header = String::from_utf8_lossy(&signed[..signed.len() - MAIL.len()]).into_owned();
        assert!(header.starts_with("DKIM-Signature:"), "{header}");
        let flat: String = header.split_whitespace().collect();
        assert!(flat.contains("d=example.com;"), "{header}");
        assert!(flat.contains("s=pd2026;"), "{header}");
        assert!(flat.contains("a=ed25519-sha256;"), "{header}");
        let h = flat
            .split(';')
            .find_map(|t| t.strip_prefix("h="))
            .unwrap_or("")
            .to_ascii_lowercase();
        for name in ["from", "to", "subject", "message-id", "date", "references"] {
            assert!(
                h.split(':').any(|x| x == name),
                "{name} not signed: {header}"
            );
        }
    }

    /// A resolver cache holding one TXT record, so verification needs no
    /// network.
    struct OneRecord(String, mail_auth::Txt);

    impl mail_auth::ResolverCache<Box<str>, mail_auth::Txt> for OneRecord {
        fn get<Q>(&self, name: &Q) -> Option<mail_auth::Txt>
        where
            Box<str>: std::borrow::Borrow<Q>,
            Q: std::hash::Hash + Eq + ?Sized,
        {
            let key: Box<str> = self.0.clone().into_boxed_str();
            (std::borrow::Borrow::<Q>::borrow(&key) == name).then(|| self.1.clone())
        }

        fn remove<Q>(&self, name: &Q) -> Option<mail_auth::Txt>
        where
            Box<str>: std::borrow::Borrow<Q>,
            Q: std::hash::Hash + Eq + ?Sized,
        {
            self.get(name)
        }

        fn insert(&self, _: Box<str>, _: mail_auth::Txt, _: std::time::Instant) {}
    }

    #[test]
    fn the_signature_verifies_with_the_public_key() {
        use mail_auth::common::parse::TxtRecordParser;
        use mail_auth::common::verify::DomainKey;
        use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters};
        let (pem, public) = ed25519_pem();
        let signer = from_pem(pem.as_bytes(), "example.com", "pd").unwrap();
        let signed = sign(&signer, MAIL).unwrap();
        let record = format!("v=DKIM1; k=ed25519; p={}", base64_encode(&public));
        let key = DomainKey::parse(record.as_bytes()).unwrap();
        let cache = OneRecord("pd._domainkey.example.com.".into(), key.into());
        let msg = AuthenticatedMessage::parse(&signed).unwrap();
        let auth = MessageAuthenticator::new_cloudflare().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let result = rt.block_on(auth.verify_dkim(Parameters::new(&msg).with_txt_cache(&cache)));
        assert!(
            result.iter().any(|r| r.result() == &DkimResult::Pass),
            "{result:?}"
        );
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert!(matches!(
            from_pem(b"not a key", "example.com", "s"),
            Err(Error::NoKey)
        ));
    }
}
