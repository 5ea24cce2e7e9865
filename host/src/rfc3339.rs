//! RFC 3339 timestamps, character for character as chrono writes them, without going
//! through `std::fmt`.
//!
//! Why: a colony worker's events, states and report carry nine timestamps, and chrono
//! writes each through the formatting machinery one piece at a time (a `write!` per
//! field, and for an event serde's escaping adapter around every piece) — a microsecond
//! apiece, a few percent of what a journaled worker costs. These write the same text into
//! a stack buffer. Years outside 0–9999 (which chrono writes with a sign) are left to
//! chrono.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serializer;

/// The longest text written here: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+00:00`.
const LONGEST: usize = 35;

/// `time` as [`DateTime::to_rfc3339`] writes it (`…+00:00`): the journal's timestamps.
#[cfg(feature = "colony")]
pub(crate) fn format(time: &DateTime<Utc>) -> String {
    match Text::of(time, false) {
        Some(text) => text.as_str().to_owned(),
        None => time.to_rfc3339(),
    }
}

/// Serializes `time` as chrono's `Serialize` does (`…Z`): for `#[serde(serialize_with)]`.
pub(crate) fn serialize<S: Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    match Text::of(time, true) {
        Some(text) => s.serialize_str(text.as_str()),
        None => serde::Serialize::serialize(time, s),
    }
}

/// A timestamp's text, on the stack.
struct Text {
    bytes: [u8; LONGEST],
    len: usize,
}

impl Text {
    /// `time`'s text ending in `Z` (`zulu`) or `+00:00`; `None` for a year chrono writes
    /// with a sign.
    fn of(time: &DateTime<Utc>, zulu: bool) -> Option<Self> {
        let year = u32::try_from(time.year()).ok().filter(|y| *y <= 9999)?;
        let mut text = Self {
            bytes: [0; LONGEST],
            len: 0,
        };
        let (mut second, mut nano) = (time.second(), time.nanosecond());
        // A leap second: chrono keeps it in the nanoseconds, and writes second 60.
        if nano >= 1_000_000_000 {
            second += 1;
            nano -= 1_000_000_000;
        }
        text.digits(year, 4);
        text.push(b'-');
        text.digits(time.month(), 2);
        text.push(b'-');
        text.digits(time.day(), 2);
        text.push(b'T');
        text.digits(time.hour(), 2);
        text.push(b':');
        text.digits(time.minute(), 2);
        text.push(b':');
        text.digits(second, 2);
        // As chrono's `SecondsFormat::AutoSi`: as many digits as the value needs, in
        // steps of three.
        if nano != 0 {
            text.push(b'.');
            if nano % 1_000_000 == 0 {
                text.digits(nano / 1_000_000, 3);
            } else if nano % 1_000 == 0 {
                text.digits(nano / 1_000, 6);
            } else {
                text.digits(nano, 9);
            }
        }
        let zone: &[u8] = if zulu { b"Z" } else { b"+00:00" };
        for &b in zone {
            text.push(b);
        }
        Some(text)
    }

    fn push(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    /// `value`'s last `width` decimal digits, zero-padded.
    fn digits(&mut self, mut value: u32, width: usize) {
        for i in (0..width).rev() {
            self.bytes[self.len + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        self.len += width;
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits and punctuation were written.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;

    /// Timestamps of every fraction width, a leap second, both ends of the year range
    /// chrono writes unsigned, and out of it.
    fn samples() -> Vec<DateTime<Utc>> {
        let mut times = vec![Utc::now()];
        for nano in [
            0,
            5,
            120_000_000,
            123_000,
            123_456_789,
            999_999_999,
            1_500_000_000,
        ] {
            for (y, mo, d, h, mi, s) in [
                (2026, 12, 6, 20, 38, 28),
                (0, 1, 1, 0, 0, 0),
                (9999, 12, 31, 23, 59, 59),
                (1970, 1, 1, 0, 0, 0),
                (10000, 1, 1, 0, 0, 0),
                (-1, 6, 15, 12, 30, 45),
            ] {
                let Some(date) = NaiveDate::from_ymd_opt(y, mo, d) else {
                    continue;
                };
                if let Some(t) = date.and_hms_nano_opt(h, mi, s, nano) {
                    times.push(Utc.from_utc_datetime(&t));
                }
            }
        }
        times
    }

    #[test]
    fn writes_what_chrono_writes() {
        for time in samples() {
            #[cfg(feature = "colony")]
            assert_eq!(format(&time), time.to_rfc3339(), "{time:?}");
            let mine = serialize(&time, serde_json::value::Serializer).unwrap();
            let chrono = serde_json::to_value(time).unwrap();
            assert_eq!(mine, chrono, "{time:?}");
        }
    }
}
