//! JSON text written straight into a buffer: strings escaped exactly as
//! RFC 8259 (section 7) requires, and [`JsonObject`], a field value a JSON log
//! line writes as an object rather than as a string.

use std::{
    cell::Cell,
    fmt::{self, Write},
};

/// Writes `s` as a JSON string, quotes included: `"` and `\` escaped, and
/// every control character below U+0020 as `\n`, `\r`, `\t`, `\b`, `\f` or
/// `\u00XX`. Everything else, all of Unicode included, is copied as is, in
/// runs between the characters that need escaping.
pub(crate) fn write_json_str<W: Write + ?Sized>(out: &mut W, s: &str) -> fmt::Result {
    out.write_char('"')?;
    let bytes = s.as_bytes();
    let mut run_start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..0x20 => "",
            _ => continue,
        };
        // Only ASCII bytes end a run, so each run is whole UTF-8.
        out.write_str(&s[run_start..i])?;
        run_start = i + 1;
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.write_str("\\u00")?;
            out.write_char(char::from(HEX[usize::from(byte >> 4)]))?;
            out.write_char(char::from(HEX[usize::from(byte & 0xf)]))?;
        } else {
            out.write_str(escape)?;
        }
    }
    out.write_str(&s[run_start..])?;
    out.write_char('"')
}

/// Entries for a [`JsonObject`]: text keys and text values, in order.
pub trait JsonEntries {
    /// Calls `entry` once for each key and value.
    fn for_each_entry(&self, entry: &mut dyn FnMut(&str, &str));
}

/// A log field value that JSON log lines write as a JSON object
/// (`"headers":{"accept":"*/*"}`), not as a string holding one; text lines
/// write the same object text.
///
/// Its `Display` writes valid JSON whatever the entries hold, and tells the
/// JSON log layer so (see [`take_raw_json_mark`]): a field is written raw only
/// when a `JsonObject` wrote all of its text, so no other value, whatever
/// text it holds, can put raw JSON into a line.
#[derive(Debug, Clone, Copy)]
pub struct JsonObject<T>(pub T);

thread_local! {
    /// Set by [`JsonObject`]'s `Display` to the length of the text it wrote;
    /// `usize::MAX` when two wrote into one value.
    static RAW_JSON: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Clears the mark [`JsonObject`] leaves, before a field value is formatted.
pub(crate) fn clear_raw_json_mark() {
    RAW_JSON.set(None);
}

/// Whether the text just formatted, `written` bytes long, was all written by
/// one [`JsonObject`], and so is a JSON object to embed as it is.
pub(crate) fn take_raw_json_mark(written: usize) -> bool {
    RAW_JSON.take() == Some(written)
}

impl<T: JsonEntries> fmt::Display for JsonObject<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Counting {
            inner: f,
            written: 0,
        };
        out.write_char('{')?;
        let mut outcome = Ok(());
        let mut first = true;
        self.0.for_each_entry(&mut |key, value| {
            if outcome.is_ok() {
                outcome = write_entry(&mut out, first, key, value);
                first = false;
            }
        });
        outcome?;
        out.write_char('}')?;
        let written = out.written;
        RAW_JSON.set(match RAW_JSON.get() {
            None => Some(written),
            Some(_) => Some(usize::MAX),
        });
        Ok(())
    }
}

fn write_entry<W: Write>(out: &mut W, first: bool, key: &str, value: &str) -> fmt::Result {
    if !first {
        out.write_char(',')?;
    }
    write_json_str(out, key)?;
    out.write_char(':')?;
    write_json_str(out, value)
}

/// A writer that counts the bytes it passes on.
struct Counting<'a, 'f> {
    inner: &'a mut fmt::Formatter<'f>,
    written: usize,
}

impl Write for Counting<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.written += s.len();
        self.inner.write_str(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> String {
        let mut out = String::new();
        write_json_str(&mut out, s).unwrap();
        out
    }

    #[test]
    fn escapes_what_rfc_8259_requires_and_nothing_else() {
        assert_eq!(json("plain"), r#""plain""#);
        assert_eq!(json("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            json("\n\r\t\u{8}\u{c}\u{0}\u{1f}"),
            r#""\n\r\t\b\f\u0000\u001f""#
        );
        assert_eq!(json("é \u{7f} ✓ \u{fffd}/"), "\"é \u{7f} ✓ \u{fffd}/\"");
    }

    struct Pairs(&'static [(&'static str, &'static str)]);

    impl JsonEntries for Pairs {
        fn for_each_entry(&self, entry: &mut dyn FnMut(&str, &str)) {
            for (key, value) in self.0 {
                entry(key, value);
            }
        }
    }

    #[test]
    fn an_object_is_marked_only_when_it_wrote_the_whole_value() {
        clear_raw_json_mark();
        let object = JsonObject(Pairs(&[("a\"", "1\n"), ("b", "")]));
        let text = object.to_string();
        assert_eq!(text, r#"{"a\"":"1\n","b":""}"#);
        assert!(take_raw_json_mark(text.len()));

        clear_raw_json_mark();
        let wrapped = format!("x{object}");
        assert!(!take_raw_json_mark(wrapped.len()), "{wrapped}");

        clear_raw_json_mark();
        let twice = format!("{object}{object}");
        assert!(!take_raw_json_mark(twice.len()), "{twice}");

        clear_raw_json_mark();
        assert!(!take_raw_json_mark(r#"{"a":"1"}"#.len()));
    }
}
