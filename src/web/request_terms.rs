//! serde's complaints about a request, said in the request's terms: the
//! field's path as the client wrote it (`transport.port`, `channels[1]`)
//! and what the value must be (`a number`, `text`, `an object`), never the
//! server's Rust types (`expected u16`, `struct NewDevice with 6 elements`).

/// `message` (serde's, after the extractor's own prefix: `path: what` or
/// `what`) as `path: what must be`, or `what must be` for the request as a
/// whole. `whole` names the request as a whole (`the body`, `the query`).
pub(crate) fn in_request_terms(message: &str, whole: &str) -> String {
    let (path, rest) = split_path(strip_position(message));
    let said = say(rest);
    match (path.is_empty(), said) {
        (_, Said::Field { name, text }) => {
            // serde_path_to_error already took an unknown field into the path.
            let taken = path == name || path.ends_with(&format!(".{name}"));
            let field = match (path.is_empty(), taken) {
                (true, _) => name,
                (false, true) => path,
                (false, false) => format!("{path}.{name}"),
            };
            format!("{field}: {text}")
        }
        (true, Said::Here(text)) => format!("{whole}: {text}"),
        (false, Said::Here(text)) => format!("{path}: {text}"),
    }
}

/// What a type must be, in the client's terms: `u16` is a whole number
/// 0-65535, `struct X` an object. A description serde took from our own
/// types' `expecting` is kept.
pub(crate) fn must_be(expected: &str) -> String {
    let whole = |range: &str| format!("a number (whole, {range})");
    match expected {
        "u8" => whole("0-255"),
        "u16" => whole("0-65535"),
        "u32" => whole("0-4294967295"),
        "u64" | "usize" | "u128" => whole("0 or more"),
        "i8" => whole("-128-127"),
        "i16" => whole("-32768-32767"),
        "i32" | "i64" | "isize" | "i128" => "a number (whole)".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "a string" | "a borrowed string" | "a character" | "a string or bytes" => "text".to_owned(),
        "a sequence" | "a tuple" => "a list".to_owned(),
        "a map" => "an object".to_owned(),
        other if other.starts_with("struct ") || other.starts_with("internally tagged enum") => "an object".to_owned(),
        other if other.starts_with("tuple") || other.starts_with("a tuple of size") => "a list".to_owned(),
        other if other.starts_with("a sequence") || other.starts_with("an array") => "a list".to_owned(),
        other => other.to_owned(),
    }
}

/// A value as serde names it (`string "x"`, `integer `7``), as the client wrote it.
fn as_written(unexpected: &str) -> String {
    let quoted = |text: &str| text.trim_matches('`').to_owned();
    if let Some(text) = unexpected.strip_prefix("string ") {
        return text.to_owned();
    }
    for prefix in ["integer ", "floating point ", "boolean ", "character "] {
        if let Some(text) = unexpected.strip_prefix(prefix) {
            return quoted(text);
        }
    }
    match unexpected {
        "sequence" => "a list".to_owned(),
        "map" => "an object".to_owned(),
        "unit value" | "null" => "null".to_owned(),
        other => other.to_owned(),
    }
}

enum Said {
    /// About a field inside the value at the path (missing, unknown, twice).
    Field { name: String, text: String },
    /// About the value at the path itself.
    Here(String),
}

fn say(message: &str) -> Said {
    let backticked = |text: &str| text.split('`').nth(1).unwrap_or_default().to_owned();
    if let Some(rest) = message.strip_prefix("missing field ") {
        return Said::Field {
            name: backticked(rest),
            text: "is required".to_owned(),
        };
    }
    if let Some(rest) = message.strip_prefix("duplicate field ") {
        return Said::Field {
            name: backticked(rest),
            text: "is given twice".to_owned(),
        };
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let known = rest.split_once(", expected ").map(|(_, known)| known.replace('`', ""));
        return Said::Field {
            name: backticked(rest),
            text: match known {
                Some(known) => format!("is not a field here (expected {known})"),
                None => "is not a field here".to_owned(),
            },
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let given = backticked(rest);
        let text = match rest.split_once(", expected ") {
            Some((_, known)) => format!("{given:?} is not known; expected {}", known.replace('`', "")),
            None => format!("{given:?} is not known"),
        };
        return Said::Here(text);
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((unexpected, expected)) = rest.split_once(", expected ")
        {
            return Said::Here(format!("must be {}, not {}", must_be(expected), as_written(unexpected)));
        }
    }
    if let Some(rest) = message.strip_prefix("invalid length ")
        && let Some((length, expected)) = rest.split_once(", expected ")
    {
        return Said::Here(format!("must be {} (got {length} items)", must_be(expected)));
    }
    // A query parameter's value is parsed from text (serde_urlencoded):
    // the standard library's parse errors.
    let parsed = match message {
        "invalid digit found in string" | "cannot parse integer from empty string" => Some("must be a number (whole)"),
        "number too large to fit in target type" | "number too small to fit in target type" => Some("is out of range"),
        "invalid float literal" => Some("must be a number"),
        "provided string was not `true` or `false`" => Some("must be true or false"),
        _ => None,
    };
    Said::Here(parsed.map_or_else(|| message.to_owned(), str::to_owned))
}

/// `message` without serde_json's ` at line L column C`.
fn strip_position(message: &str) -> &str {
    if let Some((before, after)) = message.rsplit_once(" at line ") {
        let mut parts = after.split(" column ");
        let numeric = |part: Option<&str>| part.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if numeric(parts.next()) && numeric(parts.next()) && parts.next().is_none() {
            return before;
        }
    }
    message
}

/// The leading `a.b[0]: ` segments of `message` (ours name a field of a
/// tagged variant the same way), and the rest.
fn split_path(message: &str) -> (String, &str) {
    let mut path = String::new();
    let mut rest = message;
    while let Some((head, tail)) = rest.split_once(": ") {
        let is_path = !head.is_empty()
            && head
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'[' | b']' | b'-'))
            && head
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'[');
        if !is_path {
            break;
        }
        if !path.is_empty() && !head.starts_with('[') {
            path.push('.');
        }
        path.push_str(head);
        rest = tail;
    }
    (path, rest)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Bus {
        name: String,
        transport: Tcp,
        channels: Option<Vec<u8>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Tcp {
        host: String,
        port: u16,
    }

    /// serde's message for `body`, as the JSON extractor gets it.
    fn complaint(body: &str) -> String {
        let mut deserializer = serde_json::Deserializer::from_str(body);
        let error = serde_path_to_error::deserialize::<_, Bus>(&mut deserializer).unwrap_err();
        in_request_terms(&error.to_string(), "the body")
    }

    #[test]
    fn a_wrong_type_names_the_field_and_the_kind_of_value() {
        assert_eq!(
            complaint(r#"{"name": "b", "transport": {"host": "h", "port": "x"}}"#),
            "transport.port: must be a number (whole, 0-65535), not \"x\""
        );
        assert_eq!(
            complaint(r#"{"name": "b", "transport": {"host": "h", "port": 70000}}"#),
            "transport.port: must be a number (whole, 0-65535), not 70000"
        );
        assert_eq!(
            complaint(r#"{"name": "b", "transport": {"host": "h", "port": 1}, "channels": [1, -2]}"#),
            "channels[1]: must be a number (whole, 0-255), not -2"
        );
        assert_eq!(complaint(r#""text""#), "the body: must be an object, not \"text\"");
        assert_eq!(
            complaint(r#"{"name": 5, "transport": {"host": "h", "port": 1}}"#),
            "name: must be text, not 5"
        );
    }

    #[test]
    fn missing_and_unknown_fields_are_named_where_they_belong() {
        assert_eq!(
            complaint(r#"{"name": "b", "transport": {"host": "h"}}"#),
            "transport.port: is required"
        );
        assert_eq!(
            complaint(r#"{"name": "b", "transport": {"host": "h", "port": 1, "baud": 9600}}"#),
            "transport.baud: is not a field here (expected host or port)"
        );
        assert_eq!(
            complaint(r#"{"transport": {"host": "h", "port": 1}}"#),
            "name: is required"
        );
    }

    #[test]
    fn a_field_named_inside_our_own_message_joins_the_path() {
        assert_eq!(
            in_request_terms(
                "transport: port: invalid type: string \"x\", expected u16 at line 1 column 40",
                "the body"
            ),
            "transport.port: must be a number (whole, 0-65535), not \"x\""
        );
        assert_eq!(
            in_request_terms("limit: invalid digit found in string", "the query"),
            "limit: must be a number (whole)"
        );
    }
}
