//! A throwaway certificate authority, made fresh for each test: a CA, a
//! collector certificate for `127.0.0.1` and `localhost`, and a client
//! certificate for mutual TLS, as PEM files in a directory of their own
//! (the services read them from `OTEL_EXPORTER_OTLP_*` paths), and the
//! rustls server configuration a TLS collector serves with.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use rustls::{
    RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};

/// The CA and what it signed, on disk until dropped.
#[derive(Debug)]
pub struct ThrowawayPki {
    dir: PathBuf,
    ca: CertificateDer<'static>,
    server: (CertificateDer<'static>, PrivateKeyDer<'static>),
}

impl ThrowawayPki {
    /// A new CA named `name` (in its certificate's subject), its collector
    /// certificate and its client certificate, written as `ca.pem`,
    /// `server.pem`, `server-key.pem`, `client.pem` and `client-key.pem`.
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "test-harness-pki-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("the temporary directory is writable");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("a key"))
            .expect("the CA signs itself");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("writable");

        let mut server = CertificateParams::new(vec!["localhost".to_owned()]).expect("a name");
        server
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        let server = issue(&dir, "server", server, &ca);
        issue(
            &dir,
            "client",
            CertificateParams::new(vec!["hello-svc".to_owned()]).expect("a name"),
            &ca,
        );
        Self {
            dir,
            ca: ca.der().clone(),
            server,
        }
    }

    /// The CA certificate's file, for `OTEL_EXPORTER_OTLP_CERTIFICATE`.
    pub fn ca_file(&self) -> String {
        self.file("ca.pem")
    }

    /// The client certificate's file.
    pub fn client_certificate_file(&self) -> String {
        self.file("client.pem")
    }

    /// The client key's file.
    pub fn client_key_file(&self) -> String {
        self.file("client-key.pem")
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// What a collector serves with: this CA's collector certificate, and,
    /// when `require_client_certificate`, a demand for a client certificate
    /// this CA signed. ALPN offers `h2` (gRPC) and `http/1.1`.
    pub fn server_config(&self, require_client_certificate: bool) -> ServerConfig {
        let provider = Arc::new(crypto_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions");
        let builder = if require_client_certificate {
            let mut roots = RootCertStore::empty();
            roots.add(self.ca.clone()).expect("the CA is valid");
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("a verifier for one CA");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let (certificate, key) = &self.server;
        let mut config = builder
            .with_single_cert(vec![certificate.clone()], key.clone_key())
            .expect("the collector's key is its certificate's");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config
    }
}

impl Drop for ThrowawayPki {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// Signs `params` with `ca`, writes `NAME.pem` and `NAME-key.pem`, and
/// returns them.
fn issue(
    dir: &Path,
    name: &str,
    params: CertificateParams,
    ca: &CertifiedIssuer<'_, KeyPair>,
) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate().expect("a key");
    let certificate = params.signed_by(&key, ca).expect("the CA signs");
    std::fs::write(dir.join(format!("{name}.pem")), certificate.pem()).expect("writable");
    let key_pem = key.serialize_pem();
    std::fs::write(dir.join(format!("{name}-key.pem")), &key_pem).expect("writable");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("rcgen writes PEM");
    (certificate.der().clone(), key)
}

/// rustls on *ring*, as the services use it (mesh-telemetry's
/// `collector_tls`); deprecated in rustls 0.23.48 only for lacking
/// post-quantum key exchange.
#[allow(deprecated)]
fn crypto_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
