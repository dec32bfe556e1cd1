//! Log lines captured in a test, shared by the crate's unit tests.

use std::sync::{Arc, Mutex};

/// What `run` logged, as text lines, under a plain `fmt` subscriber.
pub(crate) fn captured(run: impl FnOnce()) -> String {
    let log = Arc::new(Mutex::new(Vec::new()));
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || LogWriter(writer.clone()))
        .finish();
    tracing::subscriber::with_default(subscriber, run);
    let bytes = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    String::from_utf8(bytes).expect("log lines are UTF-8")
}

/// Log lines written into a shared buffer.
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
