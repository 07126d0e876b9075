//! STARTTLS: PEM certificate and key files into a [`TlsAcceptor`].
//!
//! Receives the `[server.tls]` file paths and returns an acceptor the
//! sessions share; loading happens once at start, so a missing or broken
//! file stops `postdesk serve` with the path in the message instead of
//! failing the first client that says STARTTLS.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};

use crate::config::TlsFiles;

/// Why the certificate or key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A PEM file could not be opened or read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The certificate file holds no `CERTIFICATE` block.
    #[error("no certificate in {path}")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key block.
    #[error("no private key in {path}")]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the pair (for example, the key does not match).
    #[error("certificate {cert} with key {key} rejected")]
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
}

/// Load `files` into a TLS acceptor for STARTTLS.
///
/// Installs ring as the process's rustls crypto provider first; that is
/// idempotent, so a provider installed earlier by someone else is kept.
///
/// # Errors
///
/// [`Error::Read`] when a file cannot be read, [`Error::NoCertificate`] or
/// [`Error::NoKey`] when a file holds no usable PEM block, and
/// [`Error::Rejected`] when rustls refuses the pair.
pub fn load_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, Error> {
    // Err means a provider is already installed, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let certs = read_certs(&files.cert)?;
    let key = read_key(&files.key)?;
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|source| Error::Rejected {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn open(path: &Path) -> Result<BufReader<File>, Error> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })
}

fn read_certs(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, Error> {
    let certs = rustls_pemfile::certs(&mut open(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(Error::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<rustls::pki_types::PrivateKeyDer<'static>, Error> {
    rustls_pemfile::private_key(&mut open(path)?)
        .map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| Error::NoKey {
            path: path.to_path_buf(),
        })
}

/// A self-signed certificate for `localhost` (EC P-256, valid 2020 to
/// 2120), generated with `openssl ca -selfsign` for the unit tests.
/// Test-only: it protects nothing.
#[cfg(test)]
pub(crate) mod fixture {
    /// The certificate (PEM).
    pub(crate) const CERT: &str = "\
-----BEGIN CERTIFICATE-----
MIIBgzCCASmgAwIBAgIBATAKBggqhkjOPQQDAjAUMRIwEAYDVQQDDAlsb2NhbGhv
c3QwIBcNMjAwMTAxMDAwMDAwWhgPMjEyMDAxMDEwMDAwMDBaMBQxEjAQBgNVBAMM
CWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABOl2yNVCsMBFZrXW
xI0TWCs/+4MxVMsg8sVMkt2eiQTftByOYDhCWT0GKuqnYL0DUHjZ3Mibmq3fiUq4
d5XEFSejajBoMBQGA1UdEQQNMAuCCWxvY2FsaG9zdDAMBgNVHRMBAf8EAjAAMA4G
A1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDATAdBgNVHQ4EFgQUpSbg
lLExIQjU+zO2HPPKDfpqqlYwCgYIKoZIzj0EAwIDSAAwRQIgf0irQZOaBn3soNKy
6/fHBdVcPJks5VmJQiizGxgYp0ECIQCGP2rJmJO4pSgn/k8m9XGu0778as1rRj8B
y0lePFwgFQ==
-----END CERTIFICATE-----
";
    /// Its private key (PEM, PKCS#8).
    pub(crate) const KEY: &str = "\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg/GB6Djrltjlos8PS
ibp40MDJKBZfcqVEcbvO865DvqqhRANCAATpdsjVQrDARWa11sSNE1grP/uDMVTL
IPLFTJLdnokE37QcjmA4Qlk9Birqp2C9A1B42dzIm5qt34lKuHeVxBUn
-----END PRIVATE KEY-----
";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("temp dir is writable");
        path
    }

    #[test]
    fn loads_a_pem_certificate_and_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = TlsFiles {
            cert: write(dir.path(), "cert.pem", fixture::CERT),
            key: write(dir.path(), "key.pem", fixture::KEY),
        };
        load_acceptor(&files).expect("fixture pair loads");
    }

    #[test]
    fn missing_file_names_the_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = TlsFiles {
            cert: dir.path().join("absent.pem"),
            key: write(dir.path(), "key.pem", fixture::KEY),
        };
        let Err(err) = load_acceptor(&files) else {
            panic!("cert is missing");
        };
        assert!(matches!(err, Error::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("absent.pem"), "{err}");
    }

    #[test]
    fn key_file_given_as_certificate_is_no_certificate() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = TlsFiles {
            cert: write(dir.path(), "cert.pem", fixture::KEY),
            key: write(dir.path(), "key.pem", fixture::KEY),
        };
        let Err(err) = load_acceptor(&files) else {
            panic!("no certificate");
        };
        assert!(matches!(err, Error::NoCertificate { .. }), "{err:?}");
    }

    #[test]
    fn certificate_given_as_key_is_no_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = TlsFiles {
            cert: write(dir.path(), "cert.pem", fixture::CERT),
            key: write(dir.path(), "key.pem", fixture::CERT),
        };
        let Err(err) = load_acceptor(&files) else {
            panic!("no key");
        };
        assert!(matches!(err, Error::NoKey { .. }), "{err:?}");
    }
}
