//! JSON text written straight into a buffer: strings escaped exactly as
//! RFC 8259 (section 7) requires, and [`JsonObject`], a field value a JSON log
//! line writes as an object rather than as a string.

use std::{
    cell::{Cell, RefCell},
    fmt::{self, Write},
};

/// Writes `s` as a JSON string, quotes included: `"` and `\` escaped, and
/// every control character below U+0020 as `\n`, `\r`, `\t`, `\b`, `\f` or
/// `\u00XX`. Everything else, all of Unicode included, is copied as is, in
/// runs between the characters that need escaping.
pub(crate) fn write_json_str<W: Write + ?Sized>(out: &mut W, s: &str) -> fmt::Result {
    out.write_char('"')?;
    write_escaped(out, s)?;
    out.write_char('"')
}

/// `s` escaped for the inside of a JSON string (see [`write_json_str`]).
fn write_escaped<W: Write + ?Sized>(out: &mut W, s: &str) -> fmt::Result {
    let bytes = s.as_bytes();
    let mut run_start = 0;
    loop {
        let i = next_to_escape(bytes, run_start);
        // Only ASCII bytes end a run, so each run is whole UTF-8.
        out.write_str(&s[run_start..i])?;
        let Some(&byte) = bytes.get(i) else {
            return Ok(());
        };
        run_start = i + 1;
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            _ => "",
        };
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.write_str("\\u00")?;
            out.write_char(char::from(HEX[usize::from(byte >> 4)]))?;
            out.write_char(char::from(HEX[usize::from(byte & 0xf)]))?;
        } else {
            out.write_str(escape)?;
        }
    }
}

/// The index of the first byte from `from` on that JSON escapes (`"`, `\\`,
/// or below 0x20), or the length. Eight bytes at a time, the last eight
/// read again rather than one by one: header values and span fields are
/// mostly runs with nothing to escape.
fn next_to_escape(bytes: &[u8], from: usize) -> usize {
    let word = |at: usize| {
        let mut word = [0; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(word)
    };
    let mut i = from;
    while i + 8 <= bytes.len() {
        let flagged = to_escape(word(i));
        if flagged != 0 {
            return i + first_flagged(flagged);
        }
        i += 8;
    }
    if i > from && i < bytes.len() {
        // Bytes `from..i` are clean, so the first one flagged in the last
        // eight is at `i` or after.
        let last = bytes.len() - 8;
        let flagged = to_escape(word(last));
        return if flagged == 0 {
            bytes.len()
        } else {
            last + first_flagged(flagged)
        };
    }
    i + bytes[i..]
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .unwrap_or(bytes.len() - i)
}

/// A high bit in each byte of `word` (little-endian) that JSON escapes.
/// Past such a byte, a borrow may flag bytes that need nothing, so only the
/// lowest flag is exact: the classic "has zero byte" and "has less than"
/// tests.
fn to_escape(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    below_space
        | has_zero(word ^ (ONES * u64::from(b'"')))
        | has_zero(word ^ (ONES * u64::from(b'\\')))
}

/// The index, in its word, of the byte behind the lowest flag of `flagged`.
fn first_flagged(flagged: u64) -> usize {
    (flagged.trailing_zeros() / 8) as usize
}

/// A field value written as a JSON string straight into a line, escaped as
/// it arrives; or, when a [`JsonObject`] writes the whole value, as that
/// object.
pub(crate) struct JsonValueWriter<'a> {
    out: &'a mut String,
    received: usize,
    raw: bool,
}

impl<'a> JsonValueWriter<'a> {
    /// Writes `value`'s `Debug` text into `out` as a JSON value.
    pub(crate) fn write(out: &'a mut String, value: &dyn fmt::Debug) {
        let start = out.len();
        RAW_JSON.set(IDLE);
        let mut writer = Self {
            out,
            received: 0,
            raw: false,
        };
        let _ = write!(writer, "{value:?}");
        let Self {
            out, received, raw, ..
        } = writer;
        if !raw {
            if received == 0 {
                out.push('"');
            }
            out.push('"');
        } else if RAW_JSON.get() != received {
            // Something wrote after the object: the whole text, escaped.
            out.truncate(start);
            let mut text = String::new();
            let _ = write!(text, "{value:?}");
            let _ = write_json_str(out, &text);
        }
        RAW_JSON.set(IDLE);
    }
}

impl Write for JsonValueWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // `fmt` may pass empty pieces ahead of the first argument.
        if s.is_empty() {
            return Ok(());
        }
        if self.received == 0 {
            self.raw = RAW_JSON.get() == STARTED;
            if !self.raw {
                self.out.push('"');
            }
        }
        self.received += s.len();
        if self.raw {
            self.out.push_str(s);
            Ok(())
        } else {
            write_escaped(self.out, s)
        }
    }
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
/// JSON log layer so: a field is written raw only
/// when a `JsonObject` wrote all of its text, so no other value, whatever
/// text it holds, can put raw JSON into a line.
#[derive(Debug, Clone, Copy)]
pub struct JsonObject<T>(pub T);

thread_local! {
    /// What [`JsonObject`]s have written into the value being formatted:
    /// nothing ([`IDLE`]), one has begun ([`STARTED`]), one wrote this many
    /// bytes, or more than one wrote ([`SPOILED`]).
    static RAW_JSON: Cell<usize> = const { Cell::new(IDLE) };
}

const IDLE: usize = usize::MAX;
const STARTED: usize = usize::MAX - 1;
const SPOILED: usize = usize::MAX - 2;

impl<T: JsonEntries> fmt::Display for JsonObject<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        thread_local! {
            static TEXT: RefCell<String> = const { RefCell::new(String::new()) };
        }
        // The object is written into a thread's reused buffer, then passed
        // on in one piece: piece by piece, each key, quote and value would
        // go through `fmt`'s writers, one dynamic call each.
        let mut write = |text: &mut String| {
            let alone = RAW_JSON.get() == IDLE;
            let mark = if alone { STARTED } else { SPOILED };
            RAW_JSON.set(mark);
            text.clear();
            self.write_into(text);
            // An object formatted while the entries were read left its own
            // mark; the value being written is this one.
            RAW_JSON.set(mark);
            f.write_str(text)?;
            if alone {
                RAW_JSON.set(text.len());
            }
            Ok(())
        };
        // An entry whose reading formats another object finds the buffer in
        // use: that object gets a buffer of its own.
        match TEXT.try_with(|text| text.try_borrow_mut().ok().map(|mut text| write(&mut text))) {
            Ok(Some(outcome)) => outcome,
            _ => write(&mut String::new()),
        }
    }
}

impl<T: JsonEntries> JsonObject<T> {
    /// The object's JSON text, appended to `out`.
    fn write_into(&self, out: &mut String) {
        out.push('{');
        let mut first = true;
        self.0.for_each_entry(&mut |key, value| {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write_json_str(out, key);
            out.push(':');
            let _ = write_json_str(out, value);
        });
        out.push('}');
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

    fn value(value: &dyn fmt::Debug) -> String {
        let mut out = String::new();
        JsonValueWriter::write(&mut out, value);
        out
    }

    #[test]
    fn a_value_is_an_object_only_when_one_object_wrote_all_of_it() {
        let object = JsonObject(Pairs(&[("a\"", "1\n"), ("b", "")]));
        assert_eq!(object.to_string(), r#"{"a\"":"1\n","b":""}"#);
        assert_eq!(value(&format_args!("{object}")), r#"{"a\"":"1\n","b":""}"#);
        assert_eq!(
            value(&format_args!("x{object}")),
            r#""x{\"a\\\"\":\"1\\n\",\"b\":\"\"}""#
        );
        assert_eq!(
            value(&format_args!("{object}x")),
            r#""{\"a\\\"\":\"1\\n\",\"b\":\"\"}x""#
        );
        assert_eq!(
            value(&format_args!("{object}{object}")),
            serde_json::to_string(&format!("{object}{object}")).unwrap()
        );
        assert_eq!(value(&format_args!(r#"{{"a":"1"}}"#)), r#""{\"a\":\"1\"}""#);
        assert_eq!(value(&""), r#""\"\"""#);
        assert_eq!(value(&format_args!("")), r#""""#);
    }

    #[test]
    fn every_length_and_every_place_of_a_special_byte_is_escaped() {
        for len in 0..26 {
            let plain: String = ('a'..='z').take(len).collect();
            assert_eq!(json(&plain), format!("\"{plain}\""));
            for at in 0..len {
                for special in ['"', '\\', '\u{0}', '\u{1f}'] {
                    let mut text = plain.clone();
                    text.replace_range(at..=at, &special.to_string());
                    assert_eq!(json(&text), serde_json::to_string(&text).unwrap());
                }
            }
        }
    }

    /// Entries that format another object while being read.
    struct Nested;

    impl JsonEntries for Nested {
        fn for_each_entry(&self, entry: &mut dyn FnMut(&str, &str)) {
            let inner = JsonObject(Pairs(&[("k", "v")])).to_string();
            entry("inner", &inner);
            entry("after", "x");
        }
    }

    #[test]
    fn an_object_formatted_inside_another_gets_a_buffer_of_its_own() {
        assert_eq!(
            JsonObject(Nested).to_string(),
            r#"{"inner":"{\"k\":\"v\"}","after":"x"}"#
        );
        assert_eq!(
            value(&format_args!("{}", JsonObject(Nested))),
            r#"{"inner":"{\"k\":\"v\"}","after":"x"}"#
        );
    }

    #[test]
    fn long_runs_are_scanned_a_word_at_a_time_and_nothing_is_missed() {
        for special in ['"', '\\', '\u{0}', '\u{1f}', '\n'] {
            for at in 0..20 {
                let mut text: String = "é".repeat(10);
                text.insert(at / 2 * 2, special);
                let written = json(&text);
                let read: String = serde_json::from_str(&written).unwrap();
                assert_eq!(read, text, "{written}");
            }
        }
    }
}
