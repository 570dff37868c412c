//! The Layer-1 rules. Every rejection names the field and the value that failed (never a
//! card number), so a dead-letter reviewer sees the cause without decoding anything.

use crate::avro::{Reader, Schema, Value};
use crate::{pan, unprintable};
use std::collections::{HashMap, HashSet};

pub const SCHEMA_ERRORS: &str = "dlq-schema-errors";
pub const INCOMPLETE: &str = "dlq-incomplete";
const REQUIRED: [&str; 5] = ["transaction_id", "user_id", "merchant_id", "amount", "timestamp"];
const MAX_ID_LENGTH: usize = 128;
const MAGIC: u8 = 0;
const HEADER: usize = 5;

pub struct Limits {
    pub max_message_bytes: usize,
    pub max_amount: f64,
    pub max_future_skew_ms: i64,
    pub max_age_ms: i64,
    pub currencies: HashSet<String>,
}

pub struct Rejection {
    pub dlq: &'static str,
    pub reason: &'static str,
    pub detail: String,
}

pub struct Verdict {
    pub transaction_id: Option<String>,
    pub user_id: Option<String>,
    pub rejection: Option<Rejection>,
    /// The payload's event time: what transactions-raw stamps its records with, whatever
    /// timestamp the producer set on the Kafka record.
    pub timestamp: Option<i64>,
}

struct Contract {
    name: String,
    version: u32,
    schema: Schema,
    fields: Option<Fields>, // set for the accepted contract only
}

/// Characters in a card token: an HMAC-SHA256 in unpadded base32 (`governance.pci.card_token`).
const TOKEN_LENGTH: usize = 52;

/// Where each checked field sits in a transaction record (None: not in this version).
struct Fields {
    transaction_id: Option<usize>,
    user_id: Option<usize>,
    merchant_id: Option<usize>,
    amount: Option<usize>,
    currency: Option<usize>,
    timestamp: Option<usize>,
    location: Option<(usize, usize, usize)>, // field, lat, lon
    card_last4: Option<usize>,
    card_token: Option<usize>,
    names: Vec<String>, // every field, in wire order: string fields are named in rejections
}

impl Fields {
    fn of(schema: &Schema) -> Fields {
        let at = |name| schema.field_index(name);
        let location = at("location").and_then(|i| {
            let inner = schema.record_field(i)?;
            Some((i, inner.field_index("lat")?, inner.field_index("lon")?))
        });
        Fields {
            transaction_id: at("transaction_id"),
            user_id: at("user_id"),
            merchant_id: at("merchant_id"),
            amount: at("amount"),
            currency: at("currency"),
            timestamp: at("timestamp"),
            location,
            card_last4: at("card_last4"),
            card_token: at("card_token"),
            names: match schema {
                Schema::Record(fields) => fields.iter().map(|(name, _)| name.clone()).collect(),
                _ => Vec::new(),
            },
        }
    }
}

pub struct Checker {
    contracts: HashMap<u32, Contract>,
    limits: Limits,
}

fn reject(dlq: &'static str, reason: &'static str, detail: String) -> Option<Rejection> {
    Some(Rejection { dlq, reason, detail })
}

/// Python's repr of a float, so details read the same as the rest of the platform's.
fn py_float(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf".into() } else { "-inf".into() }
    } else if x.fract() == 0.0 && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

/// Python's `str.isprintable()`, the one rule for every string field: no control, format,
/// private-use, unassigned, line or paragraph separator characters, and no space but U+0020
/// (`unprintable.rs` is generated from Python's own tables).
pub fn printable(s: &str) -> bool {
    first_unprintable(s).is_none()
}

/// The first character of `s` that `printable` refuses.
fn first_unprintable(s: &str) -> Option<char> {
    s.chars().find(|&c| {
        let code = u32::from(c);
        unprintable::RANGES
            .binary_search_by(|&(low, high)| {
                if high < code {
                    std::cmp::Ordering::Less
                } else if low > code {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .is_ok()
    })
}

impl Checker {
    pub fn new(contracts: Vec<(u32, String, u32, String)>, accept: &str, limits: Limits) -> Result<Checker, String> {
        let mut parsed = HashMap::new();
        for (id, name, version, json) in contracts {
            let schema = Schema::parse(&json).map_err(|e| format!("{name} v{version}: {e}"))?;
            let fields = (name == accept).then(|| Fields::of(&schema));
            parsed.insert(id, Contract { name, version, schema, fields });
        }
        if !parsed.values().any(|c| c.fields.is_some()) {
            return Err(format!("no registered contract named {accept:?}"));
        }
        Ok(Checker { contracts: parsed, limits })
    }

    pub fn check(&self, value: Option<&[u8]>, now_ms: i64) -> Verdict {
        let mut verdict = Verdict { transaction_id: None, user_id: None, rejection: None, timestamp: None };
        verdict.rejection = self.decode_and_check(value, now_ms, &mut verdict);
        verdict
    }

    fn decode_and_check(&self, value: Option<&[u8]>, now_ms: i64, verdict: &mut Verdict) -> Option<Rejection> {
        let Some(data) = value else {
            return reject(SCHEMA_ERRORS, "empty_message", "message has no value (tombstone)".into());
        };
        let limit = self.limits.max_message_bytes;
        if data.len() > limit {
            return reject(
                SCHEMA_ERRORS,
                "oversized",
                format!("message is {} bytes, more than the {limit} allowed", data.len()),
            );
        }
        let (contract, record) = match self.decode(data) {
            Ok(decoded) => decoded,
            Err(detail) => return reject(SCHEMA_ERRORS, "undecodable", detail),
        };
        let Some(fields) = &contract.fields else {
            return reject(
                SCHEMA_ERRORS,
                "wrong_contract",
                format!("a {} message on the transactions topic", contract.name),
            );
        };
        let Value::Record(values) = record else { unreachable!("contracts are records") };
        let text = |i: Option<usize>| match i.map(|i| &values[i]) {
            Some(Value::String(s)) => Some(s.as_str()),
            _ => None,
        };
        verdict.transaction_id = text(fields.transaction_id).map(str::to_string);
        verdict.user_id = text(fields.user_id).map(str::to_string);
        if let Some(Value::Long(t)) = fields.timestamp.map(|i| &values[i]) {
            verdict.timestamp = Some(*t);
        }
        self.check_record(fields, &values, now_ms)
    }

    fn decode(&self, data: &[u8]) -> Result<(&Contract, Value), String> {
        if data.len() < HEADER {
            return Err(format!("{} bytes: too short for the 5-byte schema header", data.len()));
        }
        if data[0] != MAGIC {
            return Err(format!("magic byte is {}, not {MAGIC}: not a framed Avro message", data[0] as i8));
        }
        let id = u32::from_be_bytes(data[1..HEADER].try_into().unwrap());
        let contract = self.contracts.get(&id).ok_or_else(|| format!("schema id {id} is not registered"))?;
        let mut reader = Reader::new(data, HEADER);
        let record = reader
            .value(&contract.schema)
            .map_err(|e| format!("body does not decode as {} v{}: {e}", contract.name, contract.version))?;
        if reader.remaining() > 0 {
            return Err(format!(
                "{} bytes left after a {} v{} record: not written with this schema",
                reader.remaining(),
                contract.name,
                contract.version
            ));
        }
        Ok((contract, record))
    }

    fn check_record(&self, f: &Fields, values: &[Value], now_ms: i64) -> Option<Rejection> {
        let get = |i: Option<usize>| i.map(|i| &values[i]).unwrap_or(&Value::Null);
        let text = |i| match get(i) {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        };
        let ids = [text(f.transaction_id), text(f.user_id), text(f.merchant_id)];
        let amount = match get(f.amount) {
            Value::Double(x) => Some(*x),
            _ => None,
        };
        let timestamp = match get(f.timestamp) {
            Value::Long(t) => Some(*t),
            _ => None,
        };
        let present = [
            ids[0].is_some_and(|s| !s.is_empty()),
            ids[1].is_some_and(|s| !s.is_empty()),
            ids[2].is_some_and(|s| !s.is_empty()),
            amount.is_some(),
            timestamp.is_some(),
        ];
        if present.contains(&false) {
            let missing: Vec<&str> = REQUIRED.iter().zip(present).filter(|(_, p)| !p).map(|(n, _)| *n).collect();
            return reject(INCOMPLETE, "missing_field", format!("required field(s) missing: {}", missing.join(", ")));
        }
        for (name, id) in REQUIRED.iter().zip(ids) {
            let id = id.unwrap();
            if id.chars().count() > MAX_ID_LENGTH || !printable(id) {
                return reject(
                    SCHEMA_ERRORS,
                    "malformed_id",
                    format!("{name} is not a printable id of at most {MAX_ID_LENGTH} characters"),
                );
            }
        }
        let (amount, timestamp) = (amount.unwrap(), timestamp.unwrap());
        let limits = &self.limits;
        if !amount.is_finite() {
            return reject(SCHEMA_ERRORS, "amount_not_finite", format!("amount is {}", py_float(amount)));
        }
        if !(amount > 0.0 && amount <= limits.max_amount) {
            return reject(
                SCHEMA_ERRORS,
                "amount_out_of_range",
                format!("amount {} is not in (0, {}]", py_float(amount), py_float(limits.max_amount)),
            );
        }
        if let Some(currency) = text(f.currency) {
            if !limits.currencies.contains(currency) {
                return reject(
                    SCHEMA_ERRORS,
                    "unknown_currency",
                    format!("currency {currency:?} is not an ISO 4217 code in use"),
                );
            }
        }
        if timestamp > now_ms.saturating_add(limits.max_future_skew_ms) {
            let ahead = (timestamp as f64 - now_ms as f64) / 1000.0;
            return reject(
                SCHEMA_ERRORS,
                "timestamp_in_future",
                format!("timestamp is {ahead:.0}s ahead of the validator's clock"),
            );
        }
        if timestamp < now_ms.saturating_sub(limits.max_age_ms) {
            let age = (now_ms as f64 - timestamp as f64) / 86_400_000.0;
            let allowed = limits.max_age_ms as f64 / 86_400_000.0;
            return reject(
                SCHEMA_ERRORS,
                "timestamp_too_old",
                format!("timestamp is {age:.1} days old, more than {allowed} allowed"),
            );
        }
        if let Some((field, lat, lon)) = f.location {
            if let Value::Record(point) = &values[field] {
                if let (Value::Double(lat), Value::Double(lon)) = (&point[lat], &point[lon]) {
                    if !((-90.0..=90.0).contains(lat) && (-180.0..=180.0).contains(lon)) {
                        return reject(
                            SCHEMA_ERRORS,
                            "location_out_of_range",
                            format!("location ({}, {}) is not on Earth", py_float(*lat), py_float(*lon)),
                        );
                    }
                }
            }
        }
        if let Some(last4) = text(f.card_last4) {
            if !(last4.len() == 4 && last4.bytes().all(|b| b.is_ascii_digit())) {
                // Never echo the value: it may be a full card number.
                return reject(
                    SCHEMA_ERRORS,
                    "bad_card_last4",
                    format!("card_last4 has {} characters, not 4 digits", last4.chars().count()),
                );
            }
        }
        if let Some(token) = text(f.card_token) {
            let base32 = |b: u8| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b);
            if !(token.len() == TOKEN_LENGTH && token.bytes().all(base32)) {
                // Never echo the value either: a producer may have put the number here.
                return reject(
                    SCHEMA_ERRORS,
                    "bad_card_token",
                    format!(
                        "card_token has {} characters, not the {TOKEN_LENGTH} of a base32 HMAC",
                        token.chars().count()
                    ),
                );
            }
        }
        check_texts(f, values)
    }
}

/// Every string field: no card number (a producer may put one anywhere, and a valid record is
/// stored everywhere downstream), no control or invisible character outside the ids (whose
/// own rule, `malformed_id`, says the same). Neither value is ever echoed.
fn check_texts(f: &Fields, values: &[Value]) -> Option<Rejection> {
    let texts = values.iter().enumerate().filter_map(|(i, v)| match v {
        Value::String(s) => Some((f.names[i].as_str(), s.as_str())),
        _ => None,
    });
    let texts: Vec<(&str, &str)> = texts.collect();
    if let Some((name, _)) = texts.iter().find(|(_, s)| !pan::spans(s.as_bytes()).is_empty()) {
        return reject(SCHEMA_ERRORS, "card_number_in_field", format!("{name} holds a card number"));
    }
    let id = |name: &str| REQUIRED[..3].contains(&name);
    let refused = texts.iter().filter(|(name, _)| !id(name));
    if let Some((name, c)) = refused.filter_map(|(name, s)| Some((name, first_unprintable(s)?))).next() {
        return reject(
            SCHEMA_ERRORS,
            "unprintable_text",
            format!("{name} holds U+{:04X}, a control or invisible character", u32::from(c)),
        );
    }
    None
}
