//! TLS to the collector: which certificates are trusted, the certificate
//! the service presents for mutual TLS, and the one rustls configuration
//! both exporters (OTLP/HTTP and OTLP/gRPC) connect with.
//!
//! Every file is read and checked at start-up, so a setting that cannot work
//! is refused in one line instead of failing every export later. Errors name
//! the variable and the file, never the file's contents.

use std::{path::PathBuf, sync::Arc};

use rustls::{
    ClientConfig, RootCertStore,
    crypto::ring,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};

use crate::config::TelemetryArgs;

/// One file setting and the variable it came from, to name in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileSetting {
    /// The variable, `OTEL_EXPORTER_OTLP_…`.
    pub(crate) var: &'static str,
    /// The file it names.
    pub(crate) path: PathBuf,
}

/// The TLS files of `OTEL_EXPORTER_OTLP_*`, each traces-specific one winning
/// over the general one, as the OTLP exporter specification says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    /// CA certificates to trust instead of the system's.
    pub(crate) ca: Option<FileSetting>,
    /// The client certificate chain, for mutual TLS.
    pub(crate) client_certificate: Option<FileSetting>,
    /// The client certificate's private key.
    pub(crate) client_key: Option<FileSetting>,
}

impl TlsFiles {
    /// The files `args` name.
    pub(crate) fn from_args(args: &TelemetryArgs) -> Self {
        let pick = |traces: &Option<PathBuf>, traces_var, general: &Option<PathBuf>, var| match (
            traces, general,
        ) {
            (Some(path), _) => Some(FileSetting {
                var: traces_var,
                path: path.clone(),
            }),
            (None, Some(path)) => Some(FileSetting {
                var,
                path: path.clone(),
            }),
            (None, None) => None,
        };
        Self {
            ca: pick(
                &args.otel_exporter_otlp_traces_certificate,
                "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
                &args.otel_exporter_otlp_certificate,
                "OTEL_EXPORTER_OTLP_CERTIFICATE",
            ),
            client_certificate: pick(
                &args.otel_exporter_otlp_traces_client_certificate,
                "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
                &args.otel_exporter_otlp_client_certificate,
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            ),
            client_key: pick(
                &args.otel_exporter_otlp_traces_client_key,
                "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
                &args.otel_exporter_otlp_client_key,
                "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            ),
        }
    }
}

/// Why the TLS settings cannot work. Each renders as one line naming the
/// variable and the file; none prints what a file holds.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{var}: cannot read `{path}`: {reason}")]
    Unreadable {
        /// The variable that names the file.
        var: &'static str,
        /// The file.
        path: String,
        /// The operating system's reason.
        reason: std::io::Error,
    },
    /// A certificate file holds no PEM certificate, or a malformed one.
    #[error("{var}: `{path}` holds no valid PEM certificate")]
    NoCertificate {
        /// The variable that names the file.
        var: &'static str,
        /// The file.
        path: String,
    },
    /// A key file holds no PEM private key, or a malformed one.
    #[error("{var}: `{path}` holds no valid PEM private key")]
    NoKey {
        /// The variable that names the file.
        var: &'static str,
        /// The file.
        path: String,
    },
    /// A CA certificate rustls cannot use as a trust anchor.
    #[error("{var}: `{path}` holds a certificate that cannot be trusted as a CA: {reason}")]
    BadCa {
        /// The variable that names the file.
        var: &'static str,
        /// The file.
        path: String,
        /// rustls's reason.
        reason: rustls::Error,
    },
    /// A client certificate without its key, or a key without its
    /// certificate.
    #[error("{given} is set but {missing} is not: mutual TLS needs both")]
    Unpaired {
        /// The variable that is set.
        given: &'static str,
        /// The one that is not.
        missing: &'static str,
    },
    /// The key is not the certificate's, or rustls cannot use the pair.
    #[error(
        "{key_var}: the key in `{key}` cannot be used with the certificate in `{certificate}`: {reason}"
    )]
    Pair {
        /// The key's variable.
        key_var: &'static str,
        /// The key file.
        key: String,
        /// The certificate file.
        certificate: String,
        /// Why: the key is another certificate's, or rustls's reason.
        reason: String,
    },
    /// An `https` endpoint, no CA file, and no system CA certificates.
    #[error(
        "no CA certificates to verify the collector with: the system has none; \
         set OTEL_EXPORTER_OTLP_CERTIFICATE to a PEM file of the collector's CA"
    )]
    NoSystemRoots,
}

/// ALPN for OTLP/gRPC: HTTP/2, which gRPC servers require TLS to negotiate.
pub(crate) const ALPN_H2: &[u8] = b"h2";

/// ALPN for OTLP/HTTP: HTTP/1.1, the one version its client speaks.
pub(crate) const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The rustls configuration for exports, from `files`.
///
/// Every file is checked, whatever the endpoint. The trusted CAs are the CA
/// file's, or else, for an `https` endpoint (`https` true), the system's,
/// of which at least one is required. (For an `http` endpoint without a CA
/// file nothing is trusted: the configuration is never used to connect,
/// but the HTTP client is always given one, so it never looks for a
/// process-wide crypto provider.)
pub(crate) fn client_config(files: &TlsFiles, https: bool) -> Result<ClientConfig, TlsError> {
    let ca = files
        .ca
        .as_ref()
        .map(|setting| Ok::<_, TlsError>((setting, certificates(setting)?)))
        .transpose()?;
    let identity = identity(files)?;
    let roots = match (https, ca) {
        (_, Some((setting, certificates))) => ca_roots(setting, certificates)?,
        (true, None) => system_roots()?,
        (false, None) => RootCertStore::empty(),
    };
    let builder = ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .expect("ring's provider supports the default TLS versions")
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((certificate, key, chain, private_key)) => builder
            .with_client_auth_cert(chain, private_key)
            .map_err(|reason| TlsError::Pair {
                key_var: key.var,
                key: key.path.display().to_string(),
                certificate: certificate.path.display().to_string(),
                reason: match reason {
                    rustls::Error::InconsistentKeys(_) => "it is another certificate's key".into(),
                    other => other.to_string(),
                },
            })?,
    };
    Ok(config)
}

/// rustls on *ring*, chosen over aws-lc-rs for its build: *ring* needs only
/// a C compiler, where aws-lc-rs compiles the AWS-LC C library (docs/configuration.md,
/// "TLS to the collector"). rustls 0.23.48 deprecates this provider because
/// *ring* has no post-quantum key exchange (X25519MLKEM768); the export
/// link then negotiates X25519 or a NIST curve, as before that was added.
#[allow(deprecated)]
fn provider() -> rustls::crypto::CryptoProvider {
    ring::default_provider()
}

type Identity<'a> = (
    &'a FileSetting,
    &'a FileSetting,
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
);

/// The client certificate chain and key, both or neither.
fn identity(files: &TlsFiles) -> Result<Option<Identity<'_>>, TlsError> {
    match (&files.client_certificate, &files.client_key) {
        (None, None) => Ok(None),
        (Some(certificate), None) => Err(TlsError::Unpaired {
            given: certificate.var,
            missing: key_var_for(certificate.var),
        }),
        (None, Some(key)) => Err(TlsError::Unpaired {
            given: key.var,
            missing: certificate_var_for(key.var),
        }),
        (Some(certificate), Some(key)) => {
            let chain = certificates(certificate)?;
            let bytes = read(key)?;
            let private_key =
                PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| TlsError::NoKey {
                    var: key.var,
                    path: key.path.display().to_string(),
                })?;
            Ok(Some((certificate, key, chain, private_key)))
        }
    }
}

fn key_var_for(certificate_var: &str) -> &'static str {
    if certificate_var.contains("TRACES") {
        "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"
    } else {
        "OTEL_EXPORTER_OTLP_CLIENT_KEY"
    }
}

fn certificate_var_for(key_var: &str) -> &'static str {
    if key_var.contains("TRACES") {
        "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"
    } else {
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"
    }
}

fn read(setting: &FileSetting) -> Result<Vec<u8>, TlsError> {
    std::fs::read(&setting.path).map_err(|reason| TlsError::Unreadable {
        var: setting.var,
        path: setting.path.display().to_string(),
        reason,
    })
}

/// Every PEM certificate in the file: at least one, all well-formed.
fn certificates(setting: &FileSetting) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(setting)?;
    let invalid = || TlsError::NoCertificate {
        var: setting.var,
        path: setting.path.display().to_string(),
    };
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| invalid())?;
    if certificates.is_empty() {
        return Err(invalid());
    }
    Ok(certificates)
}

fn ca_roots(
    setting: &FileSetting,
    certificates: Vec<CertificateDer<'static>>,
) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots.add(certificate).map_err(|reason| TlsError::BadCa {
            var: setting.var,
            path: setting.path.display().to_string(),
            reason,
        })?;
    }
    Ok(roots)
}

/// The system's CA certificates, found as OpenSSL would
/// (`rustls-native-certs`: `SSL_CERT_FILE`, `SSL_CERT_DIR`, else the
/// distribution's bundle, `/etc/ssl/certs/ca-certificates.crt` on Debian
/// and in the distroless image). Certificates it cannot parse are skipped,
/// as OpenSSL skips them.
fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(TlsError::NoSystemRoots);
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway CA and a leaf it signed, as PEM.
    struct Pki {
        ca: String,
        leaf: String,
        leaf_key: String,
        other_key: String,
    }

    fn pki() -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["client".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        Pki {
            ca: ca.pem(),
            leaf: leaf.pem(),
            leaf_key: leaf_key.serialize_pem(),
            other_key: rcgen::KeyPair::generate().unwrap().serialize_pem(),
        }
    }

    /// `contents` written to files in a directory of their own.
    struct Files(PathBuf);

    impl Files {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("mesh-telemetry-tls-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn write(&self, var: &'static str, name: &str, contents: &str) -> FileSetting {
            let path = self.0.join(name);
            std::fs::write(&path, contents).unwrap();
            FileSetting { var, path }
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }

    const CA: &str = "OTEL_EXPORTER_OTLP_CERTIFICATE";
    const CERT: &str = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE";
    const KEY: &str = "OTEL_EXPORTER_OTLP_CLIENT_KEY";

    fn error(files: &TlsFiles) -> String {
        client_config(files, true).unwrap_err().to_string()
    }

    #[test]
    fn a_ca_file_and_a_matching_pair_make_a_config_that_presents_the_certificate() {
        let pki = pki();
        let dir = Files::new("good");
        let files = TlsFiles {
            ca: Some(dir.write(CA, "ca.pem", &pki.ca)),
            client_certificate: Some(dir.write(CERT, "client.pem", &pki.leaf)),
            client_key: Some(dir.write(KEY, "client-key.pem", &pki.leaf_key)),
        };
        let config = client_config(&files, true).unwrap();
        assert!(config.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn a_missing_file_is_named_with_its_variable_and_the_reason() {
        let files = TlsFiles {
            ca: Some(FileSetting {
                var: CA,
                path: "/nonexistent/ca.pem".into(),
            }),
            ..TlsFiles::default()
        };
        assert_eq!(
            error(&files),
            "OTEL_EXPORTER_OTLP_CERTIFICATE: cannot read `/nonexistent/ca.pem`: \
             No such file or directory (os error 2)"
        );
        // Even for an http endpoint: the setting is wrong either way.
        assert!(client_config(&files, false).is_err());
    }

    #[test]
    fn a_file_without_pem_is_refused_without_printing_it() {
        let dir = Files::new("nopem");
        let junk = dir.write(CA, "ca.pem", "s3cret-not-pem");
        let files = TlsFiles {
            ca: Some(junk.clone()),
            ..TlsFiles::default()
        };
        let message = error(&files);
        assert_eq!(
            message,
            format!(
                "OTEL_EXPORTER_OTLP_CERTIFICATE: `{}` holds no valid PEM certificate",
                junk.path.display()
            )
        );
        let pki = pki();
        let files = TlsFiles {
            client_certificate: Some(dir.write(CERT, "client.pem", &pki.leaf)),
            client_key: Some(dir.write(KEY, "key.pem", "s3cret-not-pem")),
            ..TlsFiles::default()
        };
        let message = error(&files);
        assert!(
            message.ends_with("holds no valid PEM private key"),
            "{message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[test]
    fn a_certificate_without_its_key_and_a_key_without_its_certificate_are_refused() {
        let dir = Files::new("unpaired");
        let pki = pki();
        let certificate = dir.write(CERT, "client.pem", &pki.leaf);
        let files = TlsFiles {
            client_certificate: Some(certificate),
            ..TlsFiles::default()
        };
        assert_eq!(
            error(&files),
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE is set but OTEL_EXPORTER_OTLP_CLIENT_KEY \
             is not: mutual TLS needs both"
        );
        let key = dir.write(
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            "key.pem",
            &pki.leaf_key,
        );
        let files = TlsFiles {
            client_key: Some(key),
            ..TlsFiles::default()
        };
        assert_eq!(
            error(&files),
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY is set but \
             OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE is not: mutual TLS needs both"
        );
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let dir = Files::new("mismatch");
        let pki = pki();
        let files = TlsFiles {
            client_certificate: Some(dir.write(CERT, "client.pem", &pki.leaf)),
            client_key: Some(dir.write(KEY, "other-key.pem", &pki.other_key)),
            ..TlsFiles::default()
        };
        let message = error(&files);
        assert!(
            message.starts_with("OTEL_EXPORTER_OTLP_CLIENT_KEY: the key in `")
                && message.contains("cannot be used with the certificate in `")
                && message.ends_with(": it is another certificate's key"),
            "{message}"
        );
        assert!(!message.contains("PRIVATE KEY"), "{message}");
    }
}
