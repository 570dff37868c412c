//! Card numbers (PANs) in text or bytes: the platform's one definition, used by the validator,
//! the importer, the archiver, the Flink jobs (masking) and the scanner (finding), through
//! `fraud_platform.governance.pci`.
//!
//! A card number is 13 to 19 ASCII digits starting with a card network's digit (2-6) and
//! passing Luhn's check, found as
//! - a run of digits, or the run less its first byte when that is an even digit: in raw Avro
//!   a string's length byte can read as one (`'0'` to `'8'` are the lengths 24 to 28), so a
//!   number at the start of such a field is glued to a digit that is not its own. (Odd digits
//!   are negative lengths; trimming them too would read the 19-digit nanosecond times of
//!   2018-2033, which start with 1, as card numbers.)
//! - or the printed groups of a card, 4-4-4-4[-3] or 4-6-5, split by one kind of separator
//!   (space or dash), with no digit or dash around them.
//!
//! Not card numbers, so that clean data never reads as card data: the digits after a decimal
//! point (`76.40374999999999`), and digits inside a hash-sized hexadecimal token (32 or more
//! hex characters with a letter among them, as digests and pseudonyms are). Works on bytes:
//! in UTF-8 no multi-byte character holds an ASCII byte, so the spans are the same as in text.

const NETWORK_DIGITS: std::ops::RangeInclusive<u8> = b'2'..=b'6';
const HASH_LENGTH: usize = 32;

fn digit(b: u8) -> bool {
    b.is_ascii_digit()
}

fn luhn_valid(digits: &[u8]) -> bool {
    let total: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(position, b)| {
            let value = u32::from(b - b'0');
            if position % 2 == 1 {
                if value > 4 { value * 2 - 9 } else { value * 2 }
            } else {
                value
            }
        })
        .sum();
    total % 10 == 0
}

/// 13-19 ASCII digits of a card network passing Luhn.
pub fn is_pan(digits: &[u8]) -> bool {
    (13..=19).contains(&digits.len())
        && digits.iter().all(|b| digit(*b))
        && NETWORK_DIGITS.contains(&digits[0])
        && luhn_valid(digits)
}

fn run_end(data: &[u8], start: usize) -> usize {
    let mut end = start;
    while end < data.len() && digit(data[end]) {
        end += 1;
    }
    end
}

/// The grouped form starting at `start` (a run of exactly 4 digits): its end and its digits.
fn grouped(data: &[u8], start: usize) -> Option<(usize, Vec<u8>)> {
    let separator = *data.get(start + 4)?;
    if separator != b' ' && separator != b'-' {
        return None;
    }
    let free = |end: usize| data.get(end).is_none_or(|b| !digit(*b) && *b != b'-');
    // Longest first, as a printed 19-digit card holds a 16-digit one.
    for groups in [&[4, 4, 4, 4, 3][..], &[4, 4, 4, 4], &[4, 6, 5]] {
        let mut at = start;
        let mut digits = Vec::with_capacity(19);
        let fits = groups.iter().enumerate().all(|(k, &length)| {
            if k > 0 {
                if data.get(at) != Some(&separator) {
                    return false;
                }
                at += 1;
            }
            let end = run_end(data, at);
            if end - at != length {
                return false;
            }
            digits.extend_from_slice(&data[at..end]);
            at = end;
            true
        });
        if fits && free(at) {
            return Some((at, digits));
        }
    }
    None
}

fn fraction(data: &[u8], start: usize) -> bool {
    start >= 2 && data[start - 1] == b'.' && digit(data[start - 2])
}

fn in_hash(data: &[u8], start: usize, end: usize) -> bool {
    let hex = |b: &u8| b.is_ascii_hexdigit();
    let left = data[..start].iter().rev().take_while(|b| hex(b)).count();
    let right = data[end..].iter().take_while(|b| hex(b)).count();
    let token = &data[start - left..end + right];
    token.len() >= HASH_LENGTH && token.iter().any(|b| b.is_ascii_alphabetic())
}

/// The byte spans (start, end) of the card numbers in `data`, in order.
pub fn spans(data: &[u8]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if !digit(data[i]) {
            i += 1;
            continue;
        }
        let end = run_end(data, i);
        if end - i == 4 && (i == 0 || data[i - 1] != b'-') {
            if let Some((group_end, digits)) = grouped(data, i) {
                if is_pan(&digits) {
                    found.push((i, group_end));
                    i = group_end;
                    continue;
                }
            }
        }
        if !fraction(data, i) && !in_hash(data, i, end) {
            let length_byte = matches!(data[i], b'0' | b'2' | b'4' | b'6' | b'8');
            if is_pan(&data[i..end]) {
                found.push((i, end));
            } else if length_byte && is_pan(&data[i + 1..end]) {
                found.push((i + 1, end));
            }
        }
        i = end;
    }
    found
}

/// Every card number's digits but its last 4 replaced by `*`, in place: lengths do not change,
/// so an Avro record stays decodable and a dead letter keeps everything but the number.
pub fn mask(data: &mut [u8]) -> bool {
    let found = spans(data);
    for &(start, end) in &found {
        let mut keep = 4;
        for b in data[start..end].iter_mut().rev() {
            if digit(*b) {
                if keep > 0 {
                    keep -= 1;
                } else {
                    *b = b'*';
                }
            }
        }
    }
    !found.is_empty()
}
